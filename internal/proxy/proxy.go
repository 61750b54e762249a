// Package proxy passes one HTTP request to an upstream group the way nginx's
// proxy module does: it picks peers through internal/upstream, talks
// HTTP/1.x to them over its own connections (with nginx's keepalive pool
// semantics), retries on the next peer according to proxy_next_upstream, and
// streams the response to the client.
//
// It knows nothing of configuration files or of the HTTP server: the server
// translates its config into Options, evaluates proxy_set_header & co. into
// an Out, and calls Serve.
//
// Where nginx and this package differ on purpose:
//   - a response whose status line is not "HTTP/x.y NNN" is an invalid
//     header (502); nginx would pass it on as an HTTP/0.9 body;
//   - a keepalive connection the peer closed while idle is replaced by a
//     new one without counting a try or a failure (nginx counts the failure
//     and gives back the try); it is done only for GET, HEAD, OPTIONS,
//     TRACE, PUT and DELETE, or when nothing could be written; before a
//     non-idempotent request a pooled connection is first checked with a
//     non-blocking peek (Linux);
//   - HTTP/1.0 responses with "Connection: keep-alive" may be kept alive.
//
// As in nginx (and unlike RFC 9110's list), the requests that
// proxy_next_upstream treats as non-idempotent are POST, LOCK and PATCH.
package proxy

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"upstreamd/internal/errlog"
	"upstreamd/internal/upstream"
)

// NextUpstream is the set of proxy_next_upstream conditions.
type NextUpstream uint32

// The proxy_next_upstream conditions, in the same bit order as the config
// package's, so the server can convert by value.
const (
	NextError NextUpstream = 1 << iota
	NextTimeout
	NextInvalidHeader
	NextHTTP500
	NextHTTP502
	NextHTTP503
	NextHTTP504
	NextHTTP403
	NextHTTP404
	NextHTTP429
	NextNonIdempotent
	NextOff
)

// DefaultNextUpstream is nginx's default: proxy_next_upstream error timeout.
const DefaultNextUpstream = NextError | NextTimeout

// DefaultBufferSize is nginx's default proxy_buffer_size on x86-64 (one
// page): the upstream's response head must fit in it.
const DefaultBufferSize = 4096

// Options are the per-location proxy settings. One Options value is shared
// by all requests of a location and must not be modified while in use.
type Options struct {
	// Timeouts with nginx's semantics: connect bounds establishing the
	// connection, send is between two successive writes, read between two
	// successive reads (for the header and the body alike). 0 = none.
	ConnectTimeout, SendTimeout, ReadTimeout time.Duration

	NextUpstream        NextUpstream
	NextUpstreamTries   int           // 0 = limited only by Attempt.Tries()
	NextUpstreamTimeout time.Duration // 0 = unlimited

	// Buffering is proxy_buffering. Both modes stream: off flushes to the
	// client after every upstream read, on lets writes accumulate in the
	// server's response buffer. An upstream's "X-Accel-Buffering: yes|no"
	// overrides it for that response, as in nginx.
	Buffering bool

	// BufferSize is proxy_buffer_size: the limit for the upstream's response
	// head ("upstream sent too big header"). 0 = DefaultBufferSize.
	BufferSize int

	// InterceptErrors is proxy_intercept_errors: an upstream response with a
	// status >= 300 is offered to ErrorPage before being passed through.
	InterceptErrors bool

	// ErrorPage, if set, produces the client response for an error status:
	// the 502/504 Serve ends with, or an intercepted upstream status. It
	// returns false to decline (Serve then writes nginx's default page, or
	// passes the intercepted response through). When it returns true,
	// Result.Status is 0: the caller produced the response. w is the
	// ResponseWriter given to Serve, so per-request state can travel in it.
	// For an intercepted 401, the upstream's WWW-Authenticate is already in
	// w.Header(), as nginx does.
	ErrorPage func(w http.ResponseWriter, status int) bool

	// HeaderFilter, if set, is called when the upstream response is passed
	// through, with its headers already in w.Header() and before
	// WriteHeader; it returns the status to send. This is where the server
	// applies proxy_hide_header, proxy_redirect, add_header,
	// header_filter_by_lua and the like.
	HeaderFilter func(w http.ResponseWriter, status int) int
}

// HeadSetter is implemented by a ResponseWriter that can write the head of
// a proxied response as nginx does. Serve passes through it:
//   - the upstream's reason phrase ("HTTP/1.1 429 Slow Down" stays so),
//     which applies only if the status finally written is code (a header
//     filter that changes the status gets the standard text);
//   - the order of the upstream's header fields (names as in the Header
//     map), for the fields the writer does not place itself; fields added
//     later (add_header, Lua) follow them.
type HeadSetter interface {
	SetStatusText(code int, text string)
	SetFieldOrder(names []string)
}

// DefaultOptions returns nginx's defaults: 60s timeouts, proxy_next_upstream
// error timeout, proxy_buffering on.
func DefaultOptions() Options {
	return Options{
		ConnectTimeout: 60 * time.Second,
		SendTimeout:    60 * time.Second,
		ReadTimeout:    60 * time.Second,
		NextUpstream:   DefaultNextUpstream,
		Buffering:      true,
	}
}

var defaultOptions = DefaultOptions()

func discardLog(errlog.Level, string, string) {}

// Target says where to send the request.
type Target struct {
	Upstream *upstream.Upstream
	Pool     *Pool // nil: no keepalive
	Select   upstream.Request
}

// Out is the request to send: method, URI (path+query already mapped by the
// server per proxy_pass rules), headers already evaluated (proxy_set_header;
// empty values are not sent, Host/Content-Length/Transfer-Encoding entries
// are ignored), Host value, body bytes (nil = none; non-nil, even empty,
// sends Content-Length), and the HTTP version for the request line ("1.0"
// or "1.1"; anything else means "1.0", nginx's default).
type Out struct {
	Method, URI, Host, HTTPVersion string
	Header                         http.Header
	Body                           []byte
}

// Result describes what happened, for the access log variables. Serve
// appends one element per try to each slice (it does not reset them, so
// that internal redirects can accumulate, as nginx does).
type Result struct {
	Addrs    []string // $upstream_addr pieces ("ip:port"); the upstream name when no peer was live
	Statuses []int    // $upstream_status pieces: 502/504 for failed tries; 0 prints as "-"

	// $upstream_response_time, $upstream_connect_time and
	// $upstream_header_time pieces. A negative duration means the phase was
	// not reached (nginx prints "-"). A reused keepalive connection has a
	// connect time of 0.
	ResponseTimes, ConnectTimes, HeaderTimes []time.Duration

	BytesReceived, BytesSent int64 // summed over all tries

	// Status is the status sent to the client; 0 if the client response was
	// produced by the caller (Options.ErrorPage), 499 if the client went
	// away before a response was sent (nothing was written).
	Status int
}

// Serve proxies out to the upstream and writes the response to w. It tries
// peers per nginx's proxy_next_upstream rules. logf writes an error-log
// line; the server appends nginx's context (", client: ..., server: ...,
// request: ..., upstream: ..., host: ..."), so the upstream URL is passed
// separately.
//
// Nothing is written to w before the retry decisions are over. If the
// upstream fails after the response header was sent, Serve flushes what it
// got, fills res, and panics with http.ErrAbortHandler so that net/http
// aborts the client connection (the caller's deferred functions run; res is
// complete). A 101 response to a request with an Upgrade header hijacks the
// connection (w must support it, directly or via Unwrap) and relays bytes
// both ways until either side closes.
//
// A nil o means DefaultOptions(); a nil logf discards log lines. res must
// not be nil; t.Upstream must not be nil.
func Serve(ctx context.Context, w http.ResponseWriter, out *Out, t Target, o *Options, res *Result, logf func(level errlog.Level, upstreamURL string, msg string)) {
	if o == nil {
		o = &defaultOptions
	}
	if logf == nil {
		logf = discardLog
	}
	s := sessionPool.Get().(*session)
	s.ctx, s.w, s.out, s.t, s.o, s.res, s.logf = ctx, w, out, t, o, res, logf
	defer s.release()
	s.serve()
}

// session is the state of one Serve call; sessions and their buffers are
// pooled.
type session struct {
	ctx  context.Context
	w    http.ResponseWriter
	out  *Out
	t    Target
	o    *Options
	res  *Result
	logf func(level errlog.Level, upstreamURL string, msg string)

	att    upstream.Attempt
	next   NextUpstream            // Options.NextUpstream; just NextOff when off is set
	attLog func(level, msg string) // s.attemptLog, bound once
	peer   *upstream.Peer          // returned by Next, not yet passed to Finish
	addr   string
	act    string // what the current try is doing, for log lines

	pc *pconn

	// Watching the client: one registration per request (not per try) on
	// the request context, with s.abort bound once, so that with h1's
	// context (a cancelWatcher) watching costs no allocation and with any
	// other cancellable context one context.AfterFunc. abort may run on
	// another goroutine: mu guards what it touches.
	watching  bool          // the context is watched or was already done
	watcher   cancelWatcher // with watchKey: the registration, if h1's
	watchKey  uint64
	stop      func() bool // the registration, if context.AfterFunc's
	abortFn   func()      // s.abort, bound once
	abortLate bool        // abort may still run: do not reuse the session
	mu        sync.Mutex
	aborted   bool   // the client went away (guarded by mu)
	abortPC   *pconn // the connection abort must stop (guarded by mu)

	start, tryStart time.Time
	tryEnd          time.Time // when the current try ended (zero: not yet)
	triesLeft       int
	nonIdempotent   bool // POST, LOCK, PATCH (nginx's rule for next upstream)
	replayable      bool // GET, HEAD, OPTIONS, TRACE, PUT, DELETE (stale keepalive retry)

	// Per-try statistics for the peer (see record): whether the response
	// head arrived, and the Result byte counts when the try began.
	gotHeader          bool
	trySent0, tryRecv0 int64

	reqBuf  []byte
	reqKeep bool
	bodyOut bool // the body is sent separately from reqBuf

	rd   connReader
	hdr  respHeader
	body bodyReader

	scratch   *[]byte
	scratchFn func() []byte // s.getScratch, bound once

	flusher  http.Flusher
	rc       *http.ResponseController
	unsent   bool   // response bytes written to w since the last flush
	flushErr error  // a flush before waiting for the upstream failed
	waitFn   func() // s.flushUnsent, bound once
}

var sessionPool = sync.Pool{New: func() any {
	s := &session{}
	s.attLog = s.attemptLog
	s.scratchFn = s.getScratch
	s.waitFn = s.flushUnsent
	s.abortFn = s.abort
	return s
}}

// cancelWatcher is implemented by contexts that run a function on
// cancellation without allocating: h1's request context (its WatchCancel
// runs f synchronously on the cancelling goroutine; UnwatchCancel returns
// false once the cancellation took f).
type cancelWatcher interface {
	WatchCancel(f func()) (key uint64, ok bool)
	UnwatchCancel(key uint64) bool
}

// watch starts watching the client for this request.
func (s *session) watch() {
	if w, ok := s.ctx.(cancelWatcher); ok {
		s.watching = true
		if key, ok := w.WatchCancel(s.abortFn); ok {
			s.watcher, s.watchKey = w, key
		} else {
			s.aborted = true // already gone: attach aborts every connection
		}
		return
	}
	if s.ctx.Done() != nil {
		s.watching = true
		s.stop = context.AfterFunc(s.ctx, s.abortFn)
	}
}

// unwatch stops watching the client. If the abort has run, or was started
// and may still run, the session is not reused (abortLate): a late abort
// must not hit a later request's connection.
func (s *session) unwatch() {
	stopped := true
	switch {
	case s.watcher != nil:
		stopped = s.watcher.UnwatchCancel(s.watchKey)
		s.watcher, s.watchKey = nil, 0
	case s.stop != nil:
		stopped = s.stop()
		s.stop = nil
	}
	if !stopped {
		s.abortLate = true
	}
}

// abort runs when the client goes away: it makes blocked I/O on the current
// upstream connection return, and marks the session so that the
// connections of later tries are aborted as soon as they are attached.
func (s *session) abort() {
	s.mu.Lock()
	s.aborted = true
	if s.abortPC != nil {
		s.abortPC.abort()
	}
	s.mu.Unlock()
}

const scratchSize = 32 << 10

var scratchPool = sync.Pool{New: func() any {
	b := make([]byte, scratchSize)
	return &b
}}

func (s *session) getScratch() []byte {
	if s.scratch == nil {
		s.scratch = scratchPool.Get().(*[]byte)
	}
	return *s.scratch
}

// release returns the session to the pool. If Serve is unwinding from an
// unexpected panic, it also frees the connection and the peer.
func (s *session) release() {
	if s.pc != nil {
		s.closeConn()
	}
	if s.peer != nil {
		s.att.Finish(s.peer, false)
		s.peer = nil
	}
	s.unwatch()
	if s.scratch != nil {
		scratchPool.Put(s.scratch)
		s.scratch = nil
	}
	s.ctx, s.w, s.out, s.t, s.o, s.res, s.logf = nil, nil, nil, Target{}, nil, nil, nil
	s.att.Reset()
	s.addr, s.act = "", ""
	s.gotHeader = false
	s.rd.pc = nil
	s.hdr.block = nil
	s.body = bodyReader{}
	s.flusher, s.rc = nil, nil
	s.unsent, s.flushErr = false, nil
	if cap(s.reqBuf) > 64<<10 {
		s.reqBuf = nil
	}
	if s.abortLate {
		return // abort may still run on this session: let it go
	}
	s.watching, s.aborted = false, false
	sessionPool.Put(s)
}

func (s *session) serve() {
	o := s.o
	s.start = time.Now()
	switch s.out.Method {
	case "POST", "LOCK", "PATCH":
		s.nonIdempotent = true
		s.replayable = false
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		s.nonIdempotent, s.replayable = false, true
	default:
		s.nonIdempotent, s.replayable = false, false
	}
	s.bodyOut = len(s.out.Body) > 64<<10
	s.reqBuf, s.reqKeep = appendRequest(s.reqBuf[:0], s.out, !s.bodyOut)

	size := o.BufferSize
	if size <= 0 {
		size = DefaultBufferSize
	}
	if cap(s.rd.buf) < size {
		s.rd.buf = make([]byte, size)
	}
	s.rd.buf = s.rd.buf[:size]

	s.next = o.NextUpstream
	if s.next&NextOff != 0 {
		s.next = NextOff // nginx: "off" clears every other condition
	}

	s.watch()
	s.t.Upstream.BeginInto(&s.att, s.t.Select)
	s.att.SetLog(s.attLog)
	s.triesLeft = s.att.Tries()
	if o.NextUpstreamTries > 0 && o.NextUpstreamTries < s.triesLeft {
		s.triesLeft = o.NextUpstreamTries
	}

	for {
		s.act = actConnect
		peer, err := s.att.Next()
		if err != nil {
			s.noLive()
			return
		}
		s.peer, s.addr = peer, peer.Addr()
		s.triesLeft--
		s.beginTry()

		f, ok := s.roundTrip()
		if !ok {
			s.closeConn()
			s.endTry()
			if f.class == 0 { // the client went away
				s.logf(errlog.Info, s.url(), f.msg)
				s.finish(false)
				s.res.Status = 499
				return
			}
			s.logf(errlog.Error, s.url(), f.msg)
			s.finish(true)
			status := http.StatusBadGateway
			if f.class == NextTimeout {
				status = http.StatusGatewayTimeout
			}
			s.setStatus(status)
			if s.canRetry(f.class, f.sent) {
				continue
			}
			s.errorResponse(status)
			return
		}

		status := s.hdr.status
		s.setStatus(status)
		failed := false
		if cond := statusCondition(status); cond != 0 && s.next&cond != 0 {
			// nginx: if the condition is enabled but switching is not
			// possible, the peer is still remembered as failed (except for
			// 403 and 404, which never count as failures).
			failed = cond != NextHTTP403 && cond != NextHTTP404
			if s.canRetry(cond, true) {
				s.closeConn()
				s.endTry()
				s.finish(failed)
				continue
			}
		}
		if status == http.StatusSwitchingProtocols {
			s.upgrade()
			return
		}
		if o.InterceptErrors && status >= 300 && o.ErrorPage != nil && s.intercept(status, failed) {
			return
		}
		s.sendResponse(failed)
		return
	}
}

// statusCondition maps an upstream status to its proxy_next_upstream
// condition (0: none).
func statusCondition(status int) NextUpstream {
	switch status {
	case 500:
		return NextHTTP500
	case 502:
		return NextHTTP502
	case 503:
		return NextHTTP503
	case 504:
		return NextHTTP504
	case 403:
		return NextHTTP403
	case 404:
		return NextHTTP404
	case 429:
		return NextHTTP429
	}
	return 0
}

// canRetry is nginx's ngx_http_upstream_next decision: the condition is
// enabled, a non-idempotent request that reached a peer needs
// non_idempotent, tries and next_upstream_timeout remain.
func (s *session) canRetry(cond NextUpstream, sent bool) bool {
	next := s.next
	if next&cond == 0 {
		return false
	}
	if sent && s.nonIdempotent && next&NextNonIdempotent == 0 {
		return false
	}
	if s.triesLeft <= 0 {
		return false
	}
	if t := s.o.NextUpstreamTimeout; t > 0 && time.Since(s.start) >= t {
		return false
	}
	return s.ctx.Err() == nil
}

// failure is a failed try.
type failure struct {
	class NextUpstream // NextError, NextTimeout or NextInvalidHeader; 0: the client went away
	msg   string       // nginx's log message, "while ..." included
	sent  bool         // the request was (at least partly) sent to the peer
}

// roundTrip gets a connection to s.addr, sends the request and reads the
// response head into s.hdr. On success s.pc is the connection. A reused
// keepalive connection that turns out to be closed by the peer is replaced
// by a new one, transparently (it is not a try and not a failure), when the
// request can safely be repeated.
func (s *session) roundTrip() (failure, bool) {
	fresh := false
	for {
		s.act = actConnect
		var pc *pconn
		if !fresh {
			pc = s.t.Pool.get(s.addr, s.tryStart)
			if pc != nil && s.nonIdempotent && !connAlive(pc) {
				pc.close()
				continue
			}
		}
		if pc == nil {
			t0 := time.Now()
			var err error
			pc, err = dial(s.ctx, s.addr, s.peer.AddrPort(), s.o.ConnectTimeout, s.connecting)
			if err != nil {
				s.connecting(nil) // pc is closed: nothing for abort to stop
				if s.ctx.Err() != nil {
					return failure{msg: "client prematurely closed connection while " + actConnect}, false
				}
				return connectFailure(err), false
			}
			s.setConnectTime(time.Since(t0))
		} else {
			pc.reused = true
			pc.clock = s.tryStart // nothing blocked since (connAlive does not wait)
			s.setConnectTime(0)
		}
		s.attach(pc)

		s.act = actSend
		n, err := pc.Write(s.reqBuf)
		if err == nil && s.bodyOut {
			var m int
			m, err = pc.Write(s.out.Body)
			n += m
		}
		if err != nil {
			err = s.cancelErr(err)
			f := ioFailure(err, actSend, true)
			if f.class != 0 && pc.reused && isStaleErr(err) && (s.replayable || n == 0) {
				s.closeConn()
				fresh = true
				continue
			}
			f.sent = true
			return f, false
		}

		s.act = actHeader
		f, ok, ioErr := s.readHeader()
		if ok {
			s.setHeaderTime(time.Since(s.tryStart))
			s.gotHeader = true
			return failure{}, true
		}
		f.sent = true
		if f.class == NextError && pc.reused && pc.received == 0 && s.replayable && ioErr != nil && isStaleErr(ioErr) {
			s.closeConn()
			fresh = true
			continue
		}
		return f, false
	}
}

// connecting makes the client abort reach pc while its connect is in
// progress (dial's started hook); attach takes over once it is connected.
func (s *session) connecting(pc *pconn) {
	if s.watching {
		s.mu.Lock()
		s.abortPC = pc
		if s.aborted && pc != nil {
			pc.abort()
		}
		s.mu.Unlock()
	}
}

// attach makes pc the session's connection for the current request.
func (s *session) attach(pc *pconn) {
	s.pc = pc
	pc.readTimeout, pc.sendTimeout = s.o.ReadTimeout, s.o.SendTimeout
	pc.requests++
	s.rd.reset(pc)
	if s.watching {
		s.mu.Lock()
		s.abortPC = pc
		if s.aborted {
			pc.abort()
		}
		s.mu.Unlock()
	}
}

// detach stops watching the client for pc and accounts its I/O.
func (s *session) detach() *pconn {
	pc := s.pc
	s.pc = nil
	if s.watching {
		// After this abort cannot touch pc; if it did, pc.canceled is set
		// and releaseConn does not keep it (its deadlines are gone).
		s.mu.Lock()
		s.abortPC = nil
		s.mu.Unlock()
	}
	s.res.BytesSent += pc.sent
	s.res.BytesReceived += pc.received
	pc.sent, pc.received = 0, 0
	return pc
}

func (s *session) closeConn() {
	if s.pc != nil {
		s.detach().close()
	}
}

// releaseConn returns the connection to the pool if it may be reused.
func (s *session) releaseConn(reusable bool) {
	pc := s.detach()
	if reusable && !pc.canceled.Load() {
		now := s.tryEnd // endTry ran just before
		if now.IsZero() {
			now = time.Now()
		}
		s.t.Pool.put(pc, now)
	} else {
		pc.close()
	}
}

// cancelErr replaces err by errClientCanceled if the client went away (the
// error is then just the consequence of the aborted deadline).
func (s *session) cancelErr(err error) error {
	if s.pc != nil && s.pc.canceled.Load() {
		return errClientCanceled
	}
	return err
}

// finish ends the current try: it records the peer's response statistics
// and passes the peer to Attempt.Finish. Every try ends here, after endTry
// and after its connection was closed or released (so the byte counts are
// complete).
func (s *session) finish(failed bool) {
	if s.peer != nil {
		s.record()
		s.att.Finish(s.peer, failed)
		s.peer = nil
	}
}

// record accounts the try in the peer's statistics when the peer answered.
// As in NGINX Plus, "responses" counts responses received from the peer
// (whatever happens to them next: retried on, intercepted, cut short by the
// client); a try that got no response head — refused, timed out, invalid
// header — is a failure (Attempt.Finish counts it in "fails"), not a
// response, and a client that left before the head leaves neither. It is
// done before Finish so that once "active" drops the response is counted.
// The peer's counters are atomics: no lock, no allocation.
func (s *session) record() {
	if !s.gotHeader {
		return
	}
	s.gotHeader = false
	r := s.res
	i := len(r.HeaderTimes) - 1
	s.peer.RecordResponse(s.hdr.status, r.BytesSent-s.trySent0, r.BytesReceived-s.tryRecv0, r.HeaderTimes[i], r.ResponseTimes[i])
}

// ---- Result bookkeeping ----

func (s *session) beginTry() {
	r := s.res
	if len(r.Addrs) == 0 {
		s.tryStart = s.start // the first try: serve just read the clock
	} else {
		s.tryStart = time.Now()
	}
	s.tryEnd = time.Time{}
	s.gotHeader = false
	s.trySent0, s.tryRecv0 = r.BytesSent, r.BytesReceived
	r.Addrs = append(r.Addrs, s.addr)
	r.Statuses = append(r.Statuses, 0)
	r.ResponseTimes = append(r.ResponseTimes, -1)
	r.ConnectTimes = append(r.ConnectTimes, -1)
	r.HeaderTimes = append(r.HeaderTimes, -1)
}

func (s *session) setStatus(status int)           { s.res.Statuses[len(s.res.Statuses)-1] = status }
func (s *session) setConnectTime(d time.Duration) { s.res.ConnectTimes[len(s.res.ConnectTimes)-1] = d }
func (s *session) setHeaderTime(d time.Duration)  { s.res.HeaderTimes[len(s.res.HeaderTimes)-1] = d }
func (s *session) endTry() {
	s.tryEnd = time.Now()
	s.res.ResponseTimes[len(s.res.ResponseTimes)-1] = s.tryEnd.Sub(s.tryStart)
}

// url is the "upstream:" part of nginx's log context.
func (s *session) url() string {
	if strings.HasPrefix(s.addr, "unix:") {
		return "http://" + s.addr + ":" + s.out.URI // as nginx prints it
	}
	return "http://" + s.addr + s.out.URI
}

// attemptLog receives the upstream package's messages for this request
// ("upstream server temporarily disabled").
func (s *session) attemptLog(level, msg string) {
	if s.logf == nil {
		return
	}
	l, ok := errlog.ParseLevel(level)
	if !ok {
		l = errlog.Warn
	}
	s.logf(l, s.url(), msg+" while "+s.act)
}

// noLive answers when the balancer has no usable peer.
func (s *session) noLive() {
	name := s.t.Upstream.Name()
	s.logf(errlog.Error, "http://"+name+s.out.URI, "no live upstreams while "+actConnect)
	r := s.res
	r.Addrs = append(r.Addrs, name)
	r.Statuses = append(r.Statuses, http.StatusBadGateway)
	r.ResponseTimes = append(r.ResponseTimes, 0)
	r.ConnectTimes = append(r.ConnectTimes, -1)
	r.HeaderTimes = append(r.HeaderTimes, -1)
	s.errorResponse(http.StatusBadGateway)
}

// errorResponse sends the final error status produced by Serve itself.
func (s *session) errorResponse(status int) {
	if s.ctx.Err() != nil {
		s.res.Status = 499 // the client is gone: nginx logs 499, sends nothing
		return
	}
	if s.o.ErrorPage != nil && s.o.ErrorPage(s.w, status) {
		s.res.Status = 0
		return
	}
	writeErrorPage(s.w, status)
	s.res.Status = status
}

// intercept offers an upstream error response to ErrorPage
// (proxy_intercept_errors). It reports whether the caller took it.
func (s *session) intercept(status int, failed bool) bool {
	h := s.w.Header()
	var prev []string
	had := false
	if status == http.StatusUnauthorized {
		prev, had = h["Www-Authenticate"]
		for _, f := range s.hdr.fields {
			if string(s.hdr.block[f.ks:f.ke]) == "Www-Authenticate" {
				h["Www-Authenticate"] = append(h["Www-Authenticate"], string(s.hdr.block[f.vs:f.ve]))
			}
		}
	}
	if !s.o.ErrorPage(s.w, status) {
		if status == http.StatusUnauthorized {
			if had {
				h["Www-Authenticate"] = prev
			} else {
				delete(h, "Www-Authenticate")
			}
		}
		return false
	}
	s.closeConn()
	s.endTry()
	s.finish(failed)
	s.res.Status = 0
	return true
}

// flush pushes buffered response bytes to the client.
func (s *session) flush() error {
	if s.flusher == nil && s.rc == nil {
		if f, ok := s.w.(http.Flusher); ok {
			s.flusher = f
		} else {
			s.rc = http.NewResponseController(s.w)
		}
	}
	if s.flusher != nil {
		s.flusher.Flush()
		return nil
	}
	return s.rc.Flush()
}

// flushUnsent runs before every upstream read when not buffering: whatever
// was written to the client is flushed before waiting for more.
func (s *session) flushUnsent() {
	if s.unsent && s.flushErr == nil {
		s.unsent = false
		s.flushErr = s.flush()
	}
}

// sendResponse passes the upstream response through to the client.
func (s *session) sendResponse(failed bool) {
	hdr := &s.hdr
	w := s.w
	status := hdr.status
	mode := bodyClose
	switch {
	case s.out.Method == "HEAD" || status < 200 || status == 204 || status == 304:
		mode = bodyNone
	case hdr.chunked:
		mode = bodyChunked
	case hdr.clen >= 0:
		mode = bodyLength
	}
	s.body.init(&s.rd, mode, hdr.clen)

	h := w.Header()
	hdr.copyTo(h)
	if status < 200 || status == 204 {
		delete(h, "Content-Length")
	}
	if hs, ok := w.(HeadSetter); ok {
		if reason := hdr.reason(); reason != "" {
			hs.SetStatusText(status, reason)
		}
		if names := hdr.names(); len(names) > 1 {
			hs.SetFieldOrder(names)
		}
	}
	buffering := s.o.Buffering
	if hdr.accelBuffer != 0 {
		buffering = hdr.accelBuffer > 0
	}
	if s.o.HeaderFilter != nil {
		status = s.o.HeaderFilter(w, status)
	}
	w.WriteHeader(status)
	s.res.Status = status
	if !buffering {
		if err := s.flush(); err != nil {
			s.clientGone(err)
			return
		}
	}

	s.act = actBody
	if !buffering {
		s.rd.wait = s.waitFn
	}
	for {
		p, err := s.body.next(s.scratchFn)
		if s.flushErr != nil {
			s.clientGone(s.flushErr)
			return
		}
		if len(p) > 0 {
			if _, werr := w.Write(p); werr != nil {
				s.clientGone(werr)
				return
			}
			s.unsent = !buffering
			continue
		}
		if err == io.EOF {
			break
		}
		f := ioFailure(s.cancelErr(err), actBody, false)
		if f.class == 0 {
			s.logf(errlog.Info, s.url(), f.msg)
			s.closeConn()
			s.endTry()
			s.finish(false)
			return
		}
		// The upstream failed mid-body: send what we have and abort the
		// client connection, so the client can tell the response is cut.
		s.logf(errlog.Error, s.url(), f.msg)
		s.closeConn()
		s.endTry()
		s.finish(false)
		_ = s.flush()
		panic(http.ErrAbortHandler)
	}
	s.endTry()
	reusable := mode != bodyClose && hdr.keepAlive() && s.reqKeep && s.rd.buffered() == 0
	s.releaseConn(reusable)
	s.finish(failed)
}

// clientGone ends the request after a failed write to the client.
func (s *session) clientGone(err error) {
	msg := "client prematurely closed connection while " + actClient
	if _, ok := errnoOf(err); ok {
		msg = "writev() failed " + errnoPart(err) + " while " + actClient
	}
	s.logf(errlog.Info, s.url(), msg)
	s.closeConn()
	s.endTry()
	s.finish(false)
}

// ---- error pages ----

var errorPages sync.Map // status → []byte

// writeErrorPage writes nginx's built-in error page for status.
func writeErrorPage(w http.ResponseWriter, status int) {
	var page []byte
	if v, ok := errorPages.Load(status); ok {
		page = v.([]byte)
	} else {
		title := strconv.Itoa(status) + " " + http.StatusText(status)
		page = []byte("<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" +
			title + "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
		errorPages.Store(status, page)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(status)
	_, _ = w.Write(page)
}

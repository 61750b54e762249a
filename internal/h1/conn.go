package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"upstreamd/internal/pollwait"
)

// Connection states, for Shutdown and the client check.
const (
	stateIdle     int32 = iota // waiting for the first byte of a request
	stateReading               // reading a request header
	stateHandling              // in the handler (or finishing its response)
	stateClosing               // claimed by Shutdown
)

// Read phases, for the deadline the next read of the connection needs.
const (
	phaseIdle   = iota // the idle deadline is set
	phaseHeader        // set the header deadline once
	phaseBody          // set the body deadline before every read
	phaseNone          // no reads expected (in the handler, hijacked)
)

const bufSize = 4 << 10

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}
)

type conn struct {
	srv    *Server
	rwc    net.Conn
	remote string
	br     *bufio.Reader
	bw     *bufio.Writer
	ctx    *connCtx

	state    atomic.Int32
	reqStart atomic.Int64 // UnixNano when the handler started
	served   atomic.Int64 // requests read
	accepted int64        // UnixNano

	phase       int
	deadlineSet bool // the header deadline of this request is set

	// Clock and deadline bookkeeping. A time.Now costs a vDSO call or two
	// and SetReadDeadline a runtime timer update; per keepalive request
	// we read the clock when the request arrives and when its head is
	// committed (the Date header), and re-arm the read deadline lazily.
	now        time.Time // the last clock reading
	clockFresh bool      // nothing that may block ran since now was read
	reqTime    time.Time // when the current request arrived
	rdl        time.Time // the read deadline set on rwc (zero: none)

	hijacked   bool
	waiter     pollwait.Lazy // waits for the next keepalive request without a failing read
	werr       error         // first write error; the connection is dead
	closeAfter bool          // close once the current response is out
	linger     bool          // the client may still be sending: close gently

	// Per-request state, reused.
	tmpl     http.Request // carries the context; copied into req per request
	req      http.Request
	hdr      http.Header
	vals     []string // backing for the header values
	head     []byte   // the raw head, copied out of br
	lastHead string   // the previous request's head as a string (parseHead)
	spans    []span
	url      urlBuf
	body     body
	w        response
}

// span locates one header line in head: key [ks,ke), value [vs,ve).
type span struct{ ks, ke, vs, ve int }

func newConn(s *Server, rwc net.Conn) *conn {
	c := &conn{srv: s, rwc: rwc, remote: rwc.RemoteAddr().String(), accepted: time.Now().UnixNano()}
	base := context.Background()
	if s.ConnContext != nil {
		base = s.ConnContext(base, rwc)
	}
	c.ctx = &connCtx{parent: base, conn: rwc}
	// The only way to give a Request a context is WithContext; do it once
	// and copy the struct (context included) for every request.
	c.tmpl = *(&http.Request{}).WithContext(c.ctx)
	// Maps sized for up to 8 fields are a single group, much cheaper to
	// clear, search and iterate than larger ones; a request or response
	// with more fields grows its map once for the connection's life.
	c.hdr = make(http.Header, 8)
	c.body.c, c.body.done = c, true
	c.w.c = c
	c.w.hdr = make(http.Header, 8)
	return c
}

// connReader is what br reads from. It flushes the pending response before
// blocking (so responses go out in one write, and pipelined ones share a
// write), sets the read deadline the phase needs, and cancels the context
// on a failed read.
type connReader struct{ c *conn }

func (cr connReader) Read(p []byte) (int, error) {
	c := cr.c
	if c.hijacked {
		return c.rwc.Read(p)
	}
	if c.bw.Buffered() > 0 {
		if err := c.bw.Flush(); err != nil {
			return 0, err
		}
	}
	switch c.phase {
	case phaseHeader:
		if !c.deadlineSet {
			// The request arrived just before the head is read (c.now,
			// taken after the idle wait), so no new clock read here.
			c.deadlineSet = true
			c.setReadDeadline(c.now, c.srv.headerTimeout())
		}
	case phaseBody:
		c.setReadDeadline(time.Now(), c.srv.bodyTimeout())
	}
	c.clockFresh = false // the read may block
	if c.phase == phaseIdle && c.served.Load() > 0 {
		// Keepalive: the client sends its next request only after our
		// response, so a read now would fail; wait for it instead.
		c.waiter.Wait(c.rwc)
	}
	n, err := c.rwc.Read(p)
	if err != nil && n == 0 {
		c.ctx.cancel()
	}
	return n, err
}

// lazySlack is how much earlier than exact a read deadline may fire so that
// it need not be re-armed on every request or read: nginx keeps a timer
// that moves by less than NGX_TIMER_LAZY_DELAY (300 ms). For short timeouts
// the slack is at most 1/8 of the timeout.
const lazySlack = 300 * time.Millisecond

// setReadDeadline makes the read deadline now+d, lazily: a deadline already
// set that is earlier by at most the slack is kept (the timeout then fires
// up to the slack early, as nginx's), anything else is replaced.
func (c *conn) setReadDeadline(now time.Time, d time.Duration) {
	t := now.Add(d)
	if !c.rdl.IsZero() {
		slack := d / 8
		if slack > lazySlack {
			slack = lazySlack
		}
		if diff := t.Sub(c.rdl); diff >= 0 && diff <= slack {
			return
		}
	}
	if c.rwc.SetReadDeadline(t) == nil {
		c.rdl = t
	} else {
		c.rdl = time.Time{}
	}
}

// clock returns the current time, or the last reading when nothing could
// have blocked since it was taken (the head was committed as the handler
// returned, and the response is still in bw).
func (c *conn) clock() time.Time {
	if !c.clockFresh {
		c.now, c.clockFresh = time.Now(), true
	}
	return c.now
}

// connWriter is what bw writes to: it remembers the first error and
// cancels the context, since the client is gone.
type connWriter struct{ c *conn }

func (cw connWriter) Write(p []byte) (int, error) {
	c := cw.c
	if c.werr != nil {
		return 0, c.werr
	}
	c.clockFresh = false // the write may block on a slow client
	n, err := c.rwc.Write(p)
	if err != nil && !c.hijacked {
		c.werr = err
		c.ctx.cancel()
	}
	return n, err
}

func (c *conn) serve() {
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(connReader{c})
	c.bw = writerPool.Get().(*bufio.Writer)
	c.bw.Reset(connWriter{c})
	defer c.finish()
	for {
		if err := c.readRequest(); err != nil {
			var pe *parseError
			if errors.As(err, &pe) && c.werr == nil {
				c.writeError(pe)
			}
			return
		}
		c.state.Store(stateHandling)
		c.reqStart.Store(c.reqTime.UnixNano())
		c.clockFresh = false // the handler may take any time
		if !c.runHandler() {
			return
		}
		if c.hijacked {
			return
		}
		c.w.finish()
		c.body.drain()
		if c.closeAfter || c.werr != nil || c.srv.inShutdown.Load() {
			return
		}
	}
}

// runHandler calls the handler; false means it panicked and the
// connection must be dropped.
func (c *conn) runHandler() (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.logf("h1: panic serving %v: %v\n%s", c.remote, v, buf)
			}
			// What the handler flushed is out; send what it wrote after a
			// committed header too (the client sees the body cut short),
			// but no final chunk.
			if c.w.committed && !c.hijacked {
				_ = c.bw.Flush()
			}
			ok = false
		}
	}()
	c.srv.Handler.ServeHTTP(&c.w, &c.req)
	return true
}

// finish ends the connection: flush what is left, close (lingering when
// the client may still be sending, so it reads our response instead of a
// reset), return the buffers.
func (c *conn) finish() {
	c.srv.untrack(c)
	if c.hijacked {
		// The handler owns the connection and the buffers now.
		c.ctx.cancel()
		return
	}
	c.phase = phaseNone
	if c.werr == nil && c.bw.Buffered() > 0 {
		_ = c.bw.Flush()
	}
	if c.werr == nil && (c.linger || !c.body.done) {
		if tc, ok := c.rwc.(interface{ CloseWrite() error }); ok && tc.CloseWrite() == nil {
			_ = c.rwc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			c.rdl = time.Time{} // not tracked any more
			_, _ = io.Copy(io.Discard, io.LimitReader(c.rwc, 1<<20))
		}
	}
	_ = c.rwc.Close()
	c.ctx.cancel()
	c.br.Reset(nil)
	readerPool.Put(c.br)
	c.bw.Reset(nil)
	writerPool.Put(c.bw)
	c.br, c.bw = nil, nil
}

// hijack hands the connection to the handler.
func (c *conn) hijack() (net.Conn, *bufio.ReadWriter, error) {
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if c.bw.Buffered() > 0 {
		if err := c.bw.Flush(); err != nil {
			return nil, nil, err
		}
	}
	c.hijacked = true
	c.phase = phaseNone
	c.rdl = time.Time{} // the handler owns the deadlines now
	c.srv.untrack(c)
	return c.rwc, bufio.NewReadWriter(c.br, c.bw), nil
}

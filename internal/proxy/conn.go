package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"upstreamd/internal/pollwait"
)

// aLongTimeAgo is a deadline in the past: setting it makes blocked I/O on a
// conn return at once (used to abort on client cancellation).
var aLongTimeAgo = time.Unix(1, 0)

// pconn is one connection to a peer. While a request uses it, it is owned by
// that request's session; while idle it belongs to a Pool.
type pconn struct {
	nc   rawConn
	addr string

	waiter pollwait.Lazy // waits for a response without a failing read

	// clock is a reading of the time taken since the last call on this
	// connection that may have blocked (zero: none), so that arming the
	// send timeout need not read the clock again.
	clock time.Time

	requests int  // requests sent on this connection (nginx c->requests)
	reused   bool // taken from the pool for the current request
	nodelay  bool // TCP_NODELAY is set (or does not apply)

	// Timeouts in force for the current request, and the deadlines last set
	// on the socket (for lazy re-arming, like nginx's lazy timer updates).
	readTimeout, sendTimeout time.Duration
	rdl, wdl                 time.Time

	// canceled is set (before the socket deadline is moved into the past)
	// when the client's context is done.
	canceled atomic.Bool

	// I/O counters for the current request.
	received, sent int64

	// Pool bookkeeping (guarded by Pool.mu): idle since, global LRU list
	// (most recent at the head) and the per-address list.
	idleAt       time.Time
	prev, next   *pconn
	aprev, anext *pconn
	alist        *addrList
}

// addrList is a Pool's list of idle connections to one address. It stays
// in the pool's map when it empties, so that the usual get/put pair on a
// busy address costs two map lookups and no insert or delete.
type addrList struct{ head *pconn }

// lazySlack is how much earlier than exact a re-armed deadline may fire in
// exchange for not touching the runtime timer on every read/write: nginx does
// the same with its 300ms lazy timer delay. The slack is at most 1/8 of the
// timeout.
const lazySlack = 300 * time.Millisecond

func slackFor(d time.Duration) time.Duration {
	if s := d / 8; s < lazySlack {
		return s
	}
	return lazySlack
}

// Read reads from the connection, re-arming the read timeout first: nginx's
// proxy_read_timeout is a limit between two successive reads.
func (c *pconn) Read(p []byte) (int, error) {
	if c.readTimeout > 0 {
		d := time.Now().Add(c.readTimeout)
		if diff := d.Sub(c.rdl); diff < 0 || diff > slackFor(c.readTimeout) {
			if err := c.nc.SetReadDeadline(d); err != nil {
				return 0, err
			}
			c.rdl = d
		}
	} else if !c.rdl.IsZero() {
		// A previous request on this keepalive connection had a timeout.
		if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
			return 0, err
		}
		c.rdl = time.Time{}
	}
	if c.canceled.Load() {
		return 0, errClientCanceled
	}
	if c.received == 0 {
		// The response cannot be there yet, just after the request was
		// sent: wait for it rather than make a read that fails.
		c.waiter.Wait(c.nc)
	}
	n, err := c.nc.Read(p)
	c.received += int64(n)
	return n, err
}

// maxWriteChunk bounds one write so that the send timeout is re-armed at
// least this often (nginx: proxy_send_timeout is between two writes).
const maxWriteChunk = 256 << 10

// nagleSafe is the largest write that goes out at once with Nagle's
// algorithm on: a request's first write finds nothing unacknowledged on the
// connection, and up to this size it is not split into a full segment and
// a held-back tail.
const nagleSafe = 4 << 10

// Write writes all of p, re-arming the send timeout between chunks. It
// returns how many bytes the kernel accepted.
func (c *pconn) Write(p []byte) (int, error) {
	if !c.nodelay && (c.sent > 0 || len(p) > nagleSafe) {
		// A second write of this request (a body after the head, an
		// upgraded connection's traffic) or a large one: Nagle could hold
		// its tail until the peer's delayed ACK. A request written at once
		// (nearly all) never needs the setsockopt, as in nginx 1.22.
		c.setNoDelay()
	}
	now := c.clock // good for the first chunk only: a write may block
	c.clock = time.Time{}
	written := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > maxWriteChunk {
			chunk = chunk[:maxWriteChunk]
		}
		if s, ok := c.nc.(*pollwait.Sock); ok {
			// What the socket takes at once (nearly every request) needs
			// no send timeout: arm it only for what has to wait, as nginx.
			if c.canceled.Load() {
				return written, errClientCanceled
			}
			n, err := s.TryWrite(chunk)
			written += n
			c.sent += int64(n)
			p = p[n:]
			if err != nil {
				return written, err
			}
			if n == len(chunk) {
				continue
			}
			chunk = chunk[n:]
			now = time.Time{} // the clock reading is older than this
		}
		if c.sendTimeout > 0 {
			if now.IsZero() {
				now = time.Now()
			}
			d := now.Add(c.sendTimeout)
			now = time.Time{}
			if diff := d.Sub(c.wdl); diff < 0 || diff > slackFor(c.sendTimeout) {
				if err := c.nc.SetWriteDeadline(d); err != nil {
					return written, err
				}
				c.wdl = d
			}
		} else if !c.wdl.IsZero() {
			if err := c.nc.SetWriteDeadline(time.Time{}); err != nil {
				return written, err
			}
			c.wdl = time.Time{}
		}
		if c.canceled.Load() {
			return written, errClientCanceled
		}
		n, err := c.nc.Write(chunk)
		written += n
		c.sent += int64(n)
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// abort is run (from session.abort) when the client goes away: it makes
// any blocked I/O on the connection return.
func (c *pconn) abort() {
	c.canceled.Store(true)
	_ = c.nc.SetDeadline(aLongTimeAgo)
}

func (c *pconn) close() { _ = c.nc.Close() }

// rawConn is what a pconn needs of its socket: a net.Conn from net.Dialer,
// or dialRaw's pollwait.Sock (or *os.File).
type rawConn interface {
	io.ReadWriteCloser
	SetDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// errNeedNet: dialRaw cannot connect to this address, net.Dialer must.
var errNeedNet = errors.New("dial through net")

// dial opens a new connection to addr ("ip:port", or "unix:/path"); ap is
// addr parsed, when the caller has it (the zero AddrPort: parse here).
// Literal ip:port addresses (every resolved peer) take dialRaw's lean path;
// started, if not nil, is called with the connection before dialRaw waits
// for the connect, so that the caller can abort the wait. Other addresses
// go through net.Dialer, which aborts when ctx is done.
func dial(ctx context.Context, addr string, ap netip.AddrPort, timeout time.Duration, started func(*pconn)) (*pconn, error) {
	if !ap.IsValid() {
		ap, _ = netip.ParseAddrPort(addr)
	}
	if ap.IsValid() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pc, err := dialRaw(ap, addr, timeout, started)
		if err != errNeedNet {
			return pc, err
		}
	}
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	network := "tcp"
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		network, addr = "unix", path
	}
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &pconn{nc: nc, addr: addr, nodelay: true}, nil // net sets TCP_NODELAY
}

// Pool keeps idle keepalive connections to the peers of one upstream, like
// nginx's `keepalive` directive: at most keepalive idle connections in total
// (the least recently used one is closed to make room), each closed after
// keepaliveTimeout idle or after serving keepaliveRequests requests.
//
// A nil *Pool, or one with keepalive 0, never keeps a connection: as nginx
// without the `keepalive` directive, every request uses a new connection.
type Pool struct {
	max         int
	timeout     time.Duration
	maxRequests int

	mu     sync.Mutex
	byAddr map[string]*addrList // idle conns per address, most recent first
	head   *pconn               // global LRU, most recent first
	tail   *pconn
	n      int
	closed bool
	timer  *time.Timer
	armed  bool
}

// NewPool returns a pool for one upstream. keepalive is the maximum number
// of idle connections kept (0: none), keepaliveTimeout the idle timeout (0:
// none) and keepaliveRequests the maximum number of requests per connection
// (0: unlimited). nginx's defaults are 60s and 1000.
func NewPool(keepalive int, keepaliveTimeout time.Duration, keepaliveRequests int) *Pool {
	return &Pool{
		max:         keepalive,
		timeout:     keepaliveTimeout,
		maxRequests: keepaliveRequests,
		byAddr:      make(map[string]*addrList),
	}
}

// Close closes all idle connections; connections in use are closed when
// their request ends instead of being kept.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.closed = true
	var idle []*pconn
	for c := p.head; c != nil; c = c.next {
		idle = append(idle, c)
	}
	p.head, p.tail, p.n = nil, nil, 0
	clear(p.byAddr)
	if p.timer != nil {
		p.timer.Stop()
	}
	p.armed = false
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// Idle returns the number of idle connections (for tests and status pages).
func (p *Pool) Idle() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// Capacity returns the most idle connections the pool keeps.
func (p *Pool) Capacity() int {
	if p == nil {
		return 0
	}
	return p.max
}

func (p *Pool) enabled() bool { return p != nil && p.max > 0 }

// get returns the most recently idled connection to addr, or nil; now is
// the current time, as the caller last read it.
func (p *Pool) get(addr string, now time.Time) *pconn {
	if !p.enabled() {
		return nil
	}
	var expired []*pconn
	p.mu.Lock()
	var c *pconn
	l := p.byAddr[addr]
	for l != nil {
		c = l.head
		if c == nil {
			break
		}
		p.unlink(c)
		if p.timeout > 0 && now.Sub(c.idleAt) >= p.timeout {
			expired = append(expired, c)
			continue
		}
		break
	}
	p.mu.Unlock()
	for _, e := range expired {
		e.close()
	}
	return c
}

// put offers a connection whose last response was fully read and that may be
// kept alive. If the pool is full, the least recently used idle connection is
// closed to make room (nginx's keepalive cache). A connection that has served
// keepalive_requests requests is closed instead.
// now is the current time, as the caller last read it.
func (p *Pool) put(c *pconn, now time.Time) {
	if !p.enabled() || (p.maxRequests > 0 && c.requests >= p.maxRequests) {
		c.close()
		return
	}
	c.reused = false
	c.received, c.sent = 0, 0
	c.canceled.Store(false)
	var evict *pconn
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.close()
		return
	}
	if p.n >= p.max {
		evict = p.tail
		p.unlink(evict)
	}
	c.idleAt = now
	// global LRU: push front
	c.prev, c.next = nil, p.head
	if p.head != nil {
		p.head.prev = c
	} else {
		p.tail = c
	}
	p.head = c
	// per address: push front
	l := p.byAddr[c.addr]
	if l == nil {
		if len(p.byAddr) >= 2*p.max+64 {
			p.pruneAddrs()
		}
		l = &addrList{}
		p.byAddr[c.addr] = l
	}
	first := l.head
	c.aprev, c.anext, c.alist = nil, first, l
	if first != nil {
		first.aprev = c
	}
	l.head = c
	p.n++
	if p.timeout > 0 && !p.armed {
		p.armed = true
		if p.timer == nil {
			p.timer = time.AfterFunc(p.timeout, p.sweep)
		} else {
			p.timer.Reset(p.timeout)
		}
	}
	p.mu.Unlock()
	if evict != nil {
		evict.close()
	}
}

// unlink removes c from both lists; p.mu must be held.
func (p *Pool) unlink(c *pconn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		p.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		p.tail = c.prev
	}
	if c.aprev != nil {
		c.aprev.anext = c.anext
	} else {
		c.alist.head = c.anext
	}
	if c.anext != nil {
		c.anext.aprev = c.aprev
	}
	c.prev, c.next, c.aprev, c.anext, c.alist = nil, nil, nil, nil, nil
	p.n--
}

// pruneAddrs drops the lists of addresses with no idle connection left, so
// that peers removed at run time do not keep entries; p.mu must be held.
func (p *Pool) pruneAddrs() {
	for a, l := range p.byAddr {
		if l.head == nil {
			delete(p.byAddr, a)
		}
	}
}

// sweep closes connections idle for longer than the keepalive timeout and
// re-arms the timer for the next one to expire.
func (p *Pool) sweep() {
	var expired []*pconn
	p.mu.Lock()
	now := time.Now()
	for c := p.tail; c != nil; c = p.tail {
		if now.Sub(c.idleAt) < p.timeout {
			break
		}
		p.unlink(c)
		expired = append(expired, c)
	}
	p.armed = false
	if p.tail != nil && !p.closed {
		p.armed = true
		p.timer.Reset(p.tail.idleAt.Add(p.timeout).Sub(now))
	}
	p.mu.Unlock()
	for _, c := range expired {
		c.close()
	}
}

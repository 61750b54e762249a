// Package h1 is a lean HTTP/1.x server for an http.Handler.
//
// It exists because net/http's server costs more per request than the rest
// of a proxied request together (bench/results, docs/benchmarks.md): a
// background read per request (half of all read syscalls return EAGAIN),
// a context and a cancel function per request, a cloned response header
// map, a fresh Request, Header and URL per request. h1 keeps what handlers
// rely on (the http.Handler interface, http.Flusher, Hijack through
// http.ResponseController, http.ErrAbortHandler, http.LocalAddrContextKey)
// and drops the rest:
//
//   - One goroutine per connection and no background reader. The request
//     context is per connection: it is cancelled when the connection is
//     seen to be gone — a failed read or write, a peer close found by the
//     client check below — and by Close or an expired Shutdown. It is not
//     cancelled when a handler returns; context.AfterFunc registrations a
//     handler leaves behind fire when the connection ends.
//   - Client check: handlers that wait a long time for something else (the
//     proxy waiting for an upstream, ngx.sleep) observe the context. Every
//     ClientCheckInterval the server peeks one byte (MSG_PEEK|MSG_DONTWAIT,
//     no read from the stream) on the connections whose request has run for
//     at least that long and whose context someone watches; a peer that
//     closed (or reset) cancels the context. So a client that goes away is
//     noticed within one to two intervals instead of at once, and the fast
//     path pays nothing. A client that half-closes after sending its
//     request is treated as gone, as nginx does.
//   - The http.Request, its Header, URL and body reader and the
//     ResponseWriter are reused for every request on a connection. Handlers
//     must not keep them after returning (net/http documents the same
//     rule); Request.Clone copies what a subrequest needs.
//   - Responses are buffered per connection and flushed just before the
//     next blocking read (or Flush, or close), so a keepalive request costs
//     one read and one write, and pipelined responses share writes.
//   - No Content-Type sniffing, no Pragma → Cache-Control rewriting, no
//     HTTP/2, no TLS, no trailers: nginx does none of them either.
//   - Malformed requests get nginx's answers: 400 (and "Request Header Or
//     Cookie Too Large" past MaxHeaderBytes), 414 for a request line past
//     it, 501 for an unknown Transfer-Encoding, 505 for HTTP/2+, then close.
package h1

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves HTTP/1.0 and HTTP/1.1 on listeners.
type Server struct {
	Handler http.Handler
	// ConnContext, if set, derives the base context of a connection (its
	// values are visible through every request's context).
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ReadHeaderTimeout bounds reading one request header, from its first
	// byte (nginx's client_header_timeout); 0 means 60s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keepalive
	// connection (keepalive_timeout); 0 means 75s.
	IdleTimeout time.Duration
	// BodyReadTimeout bounds each read of a request body
	// (client_body_timeout); 0 means 60s.
	BodyReadTimeout time.Duration
	// MaxHeaderBytes bounds the request line plus headers; 0 means 32 KB.
	MaxHeaderBytes int
	// ClientCheckInterval is how often long-running requests are checked
	// for a client that went away (see the package comment); 0 means 1s,
	// negative disables the check.
	ClientCheckInterval time.Duration
	// Name goes into the Server header of the error pages h1 writes itself.
	Name string
	// ErrorLog receives handler panics; nil logs with the log package.
	ErrorLog *log.Logger

	mu         sync.Mutex
	listeners  map[*net.Listener]struct{}
	conns      map[*conn]struct{}
	inShutdown atomic.Bool
	done       chan struct{} // closed by Shutdown/Close: stops the client check
	watchOnce  sync.Once
}

const (
	defaultHeaderTimeout = 60 * time.Second
	defaultIdleTimeout   = 75 * time.Second
	defaultBodyTimeout   = 60 * time.Second
	defaultMaxHeader     = 32 << 10
	defaultCheckInterval = time.Second
	// newConnGrace: Shutdown leaves a connection that has not sent its
	// first request alone this long, as net/http does, so a request on its
	// way when Shutdown starts is still served.
	newConnGrace = 5 * time.Second
)

func (s *Server) headerTimeout() time.Duration {
	return orDefault(s.ReadHeaderTimeout, defaultHeaderTimeout)
}
func (s *Server) idleTimeout() time.Duration { return orDefault(s.IdleTimeout, defaultIdleTimeout) }
func (s *Server) bodyTimeout() time.Duration { return orDefault(s.BodyReadTimeout, defaultBodyTimeout) }

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return defaultMaxHeader
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

func (s *Server) init() {
	if s.listeners == nil {
		s.listeners = map[*net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
		s.done = make(chan struct{})
	}
}

// Serve accepts connections on l and serves each on its own goroutine. It
// returns http.ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(l net.Listener) error {
	l = fastListener(l)
	s.mu.Lock()
	s.init()
	if s.inShutdown.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.listeners[&l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, &l)
		s.mu.Unlock()
	}()
	if s.ClientCheckInterval >= 0 {
		s.watchOnce.Do(func() { go s.watch(orDefault(s.ClientCheckInterval, defaultCheckInterval)) })
	}
	var delay time.Duration
	for {
		rw, err := l.Accept()
		if err != nil {
			if s.inShutdown.Load() {
				return http.ErrServerClosed
			}
			// Out of file descriptors and the like: back off as net/http
			// does instead of spinning or giving up the listener.
			if ne, ok := err.(net.Error); ok && ne.Temporary() { //nolint:staticcheck // as net/http
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := newConn(s, rw)
		if !s.track(c) {
			rw.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inShutdown.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting, closes idle connections, lets active requests
// finish (their connections close after the response) and returns when all
// connections are gone or ctx ends (then with ctx's error; call Close to
// drop the rest). Hijacked connections are not waited for.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginShutdown()
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	wait := time.Millisecond
	for {
		if s.closeIdle() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
		t.Reset(wait)
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.beginShutdown()
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.ctx.cancel()
		_ = c.rwc.Close()
	}
	return nil
}

func (s *Server) beginShutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if s.inShutdown.Swap(true) {
		return
	}
	close(s.done)
	for l := range s.listeners {
		_ = (*l).Close()
	}
}

// closeIdle closes the connections waiting for a request and reports
// whether no connection is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UnixNano()
	for c := range s.conns {
		if c.served.Load() == 0 && now-c.accepted < int64(newConnGrace) {
			continue
		}
		// The connection's goroutine moves idle → reading when a request
		// arrives; whoever wins the swap decides.
		if c.state.CompareAndSwap(stateIdle, stateClosing) {
			_ = c.rwc.Close()
		}
	}
	return len(s.conns) == 0
}

// watch runs the client check (see the package comment).
func (s *Server) watch(every time.Duration) {
	tk := time.NewTicker(every)
	defer tk.Stop()
	var due []*conn
	for {
		select {
		case <-s.done:
			return
		case <-tk.C:
		}
		before := time.Now().Add(-every).UnixNano()
		due = due[:0]
		s.mu.Lock()
		for c := range s.conns {
			if c.state.Load() == stateHandling && c.reqStart.Load() <= before && c.ctx.watched() {
				due = append(due, c)
			}
		}
		s.mu.Unlock()
		for _, c := range due {
			if peerClosed(c.rwc) {
				c.ctx.cancel()
			}
		}
		clear(due)
	}
}

var errServerShutdown = errors.New("h1: server shutting down")

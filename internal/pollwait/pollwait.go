// Package pollwait lets a goroutine wait until a connection is readable
// without reading it first.
//
// Go's net and os packages always try the read before they wait: every
// Read resets the descriptor's readiness and calls read(2), and only on
// EAGAIN parks the goroutine on the runtime poller. When the caller knows
// that no data can be there yet — the proxy has just sent a request
// upstream, or h1 has just sent a keepalive response and waits for the
// client's next request — that first read always fails. nginx does not
// make it (its read handler runs when epoll reports the socket readable);
// on loopback it was 2 of every 4 read(2) calls of a proxied request and
// about 15% of the proxy's CPU time (docs/benchmarks.md).
//
// Wait parks on the runtime poller directly, through the same entry point
// internal/poll uses, and without resetting readiness: an edge the poller
// saw earlier makes it return at once, so no wake-up can be lost; at worst
// the read that follows finds nothing and takes the usual path. Wait never
// reads or consumes anything, and returns on deadline expiry, close or error
// as well: the caller's Read that follows reports those as usual.
//
// This reaches into the runtime (a go:linkname to
// internal/poll.runtime_pollWait, and the poll descriptor found by field
// name with reflect), so it is compiled only for the Go releases it was
// checked against (see pollwait_runtime.go); elsewhere, for connection
// types it does not know, or with UPSTREAMD_POLLWAIT=off in the
// environment, New returns a Waiter whose Wait does nothing.
//
// Sock takes the same idea further, for sockets upstreamd opens or
// accepts itself: the socket is put on a poller directly, with no os.File
// or net.Conn around it (see Sock for what that saves). Where Waiter is
// not built, on other systems than Linux, or with UPSTREAMD_POLLWAIT=off,
// NewSock refuses and callers use net or os. On linux/amd64 and arm64 that
// poller is the package's own ordered one (order_linux.go), which wakes
// waiting goroutines in the order the kernel reported their sockets
// ready, where the runtime's wakes them in the reverse order;
// UPSTREAMD_POLLWAIT=runtime keeps Socks on the runtime's.
package pollwait

import (
	"errors"
	"os"
	"syscall"
)

// Waiter waits for one connection. The zero Waiter's Wait returns at once.
//
// Only the goroutine that reads the connection may call Wait, and only
// before a read: the runtime allows one reader waiting per descriptor, and
// Wait consumes the readiness it reports, so a second Wait without a read
// in between blocks until more data arrives.
type Waiter struct {
	rc   syscall.RawConn
	wait func(uintptr) // bound once, so that Wait does not allocate
}

// disabled is the operator's switch (UPSTREAMD_POLLWAIT=off).
var disabled = os.Getenv("UPSTREAMD_POLLWAIT") == "off"

// New returns a Waiter for c (a *net.TCPConn, *net.UnixConn, *os.File, or
// a *net.TCPListener: then Wait waits for a connection to accept).
func New(c any) Waiter {
	if disabled {
		return Waiter{}
	}
	return newWaiter(c)
}

// Enabled reports whether this build and environment wait at all (false:
// every Waiter is the zero one).
func Enabled() bool { return supported && !disabled }

// Active reports whether Wait really waits.
func (w Waiter) Active() bool { return w.rc != nil }

// Lazy is a Waiter made on the first Wait, for connections that may never
// need one (a client that sends a single request).
type Lazy struct {
	w    Waiter
	self interface{ WaitRead() } // the connection waits by itself (a Sock)
	made bool
}

// Wait waits for c as Waiter.Wait does, making the Waiter for c first if
// this is the first call. c must be the same connection every time. A
// connection that waits by itself (a Sock, or a type embedding one) needs
// no Waiter: its WaitRead is called.
func (l *Lazy) Wait(c any) {
	if !l.made {
		if s, ok := c.(interface{ WaitRead() }); ok {
			l.self = s
		} else {
			l.w = New(c)
		}
		l.made = true
	}
	if l.self != nil {
		l.self.WaitRead()
		return
	}
	l.w.Wait()
}

// ErrNoDescriptor is what Control returns for a connection without one.
var ErrNoDescriptor = errors.New("pollwait: connection has no descriptor")

// Control runs f with c's descriptor, which stays open while f runs: c is
// anything with a Control method (a Sock, or a type embedding one) or a
// syscall.Conn (net's connections, *os.File).
func Control(c any, f func(fd uintptr)) error {
	switch c := c.(type) {
	case interface{ Control(func(fd uintptr)) error }:
		return c.Control(f)
	case syscall.Conn:
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		return rc.Control(f)
	}
	return ErrNoDescriptor
}

// Made reports whether Wait has been called (and the Waiter made).
func (l *Lazy) Made() bool { return l.made }

// Active reports whether the Waiter was made and really waits.
func (l *Lazy) Active() bool { return l.w.Active() }

// Wait returns once the connection is readable, closed, past its read
// deadline or in error (or at once for the zero Waiter).
func (w Waiter) Wait() {
	if w.rc == nil {
		return
	}
	// Control holds a reference on the descriptor for as long as wait
	// runs, so a concurrent Close cannot free the poll descriptor under
	// us: it wakes us instead (the runtime evicts waiters on close).
	_ = w.rc.Control(w.wait)
}

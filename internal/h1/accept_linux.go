package h1

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"upstreamd/internal/pollwait"
)

// sockListener accepts TCP connections itself, as pollwait.Socks: a
// client's reads and writes then skip net's layers (the descriptor mutex,
// the poller reset, the scheduler's system call hand-off; see
// pollwait.Sock). Closing it closes the listener it wraps.
type sockListener struct {
	*net.TCPListener
	rc     syscall.RawConn
	waiter pollwait.Waiter // waits for a connection to accept
}

// fastListener returns l as a sockListener where that is supported, else
// l itself.
func fastListener(l net.Listener) net.Listener {
	tl, ok := l.(*net.TCPListener)
	if !ok || !pollwait.SockEnabled() {
		return l
	}
	rc, err := tl.SyscallConn()
	w := pollwait.New(tl)
	if err != nil || !w.Active() {
		return l
	}
	return &sockListener{TCPListener: tl, rc: rc, waiter: w}
}

// SetDeadline is not supported: Accept would not see the deadline (h1
// never sets one).
func (l *sockListener) SetDeadline(time.Time) error {
	return errors.New("h1: accept deadlines are not supported")
}

func (l *sockListener) Accept() (net.Conn, error) {
	var fd int
	var sa syscall.Sockaddr
	var aerr error
	accept := func(lfd uintptr) {
		for {
			fd, sa, aerr = syscall.Accept4(int(lfd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
			if aerr != syscall.EINTR && aerr != syscall.ECONNABORTED {
				return // as net, a connection reset before accept is skipped
			}
		}
	}
	for {
		// Control fails once the listener is closed; Close also wakes Wait.
		if err := l.rc.Control(accept); err != nil {
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: err}
		}
		if aerr != syscall.EAGAIN {
			break
		}
		l.waiter.Wait()
	}
	if aerr != nil {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", aerr)}
	}
	c := &sockConn{listener: l.Addr().(*net.TCPAddr)}
	if err := pollwait.InitSock(&c.Sock, fd); err != nil {
		syscall.Close(fd)
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: err}
	}
	c.raddr = tcpAddr(sa)
	return c, nil
}

// sockConn is an accepted client connection on a pollwait.Sock, in one
// allocation with it.
type sockConn struct {
	pollwait.Sock
	raddr    net.Addr
	listener *net.TCPAddr
	laddr    atomic.Pointer[net.TCPAddr]
}

func (c *sockConn) RemoteAddr() net.Addr { return c.raddr }

// LocalAddr is the listener's address, unless that is a wildcard: then it
// is asked for (getsockname) on first use, not on every accept as net does.
func (c *sockConn) LocalAddr() net.Addr {
	if !c.listener.IP.IsUnspecified() {
		return c.listener
	}
	if a := c.laddr.Load(); a != nil {
		return a
	}
	a := c.listener
	_ = c.Control(func(fd uintptr) {
		if sa, err := syscall.Getsockname(int(fd)); err == nil {
			if t, ok := tcpAddr(sa).(*net.TCPAddr); ok {
				a = t
			}
		}
	})
	c.laddr.Store(a)
	return a
}

// CloseWrite shuts the sending side down (lingering close).
func (c *sockConn) CloseWrite() error {
	var err error
	if cerr := c.Control(func(fd uintptr) { err = syscall.Shutdown(int(fd), syscall.SHUT_WR) }); cerr != nil {
		return cerr
	}
	return err
}

func tcpAddr(sa syscall.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port} // sa is ours: no copy, as net
	case *syscall.SockaddrInet6:
		a := &net.TCPAddr{IP: sa.Addr[:], Port: sa.Port}
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a
	}
	return &net.TCPAddr{}
}

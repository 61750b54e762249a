package proxy

import (
	"net/netip"
	"os"
	"syscall"
	"time"
)

// dialRaw connects to a literal ip:port with its own non-blocking connect
// and wraps the socket in an *os.File (which the runtime poller serves,
// deadlines included). net.Dialer costs ~30 allocations per dial: address
// resolution, a context with a deadline and its timer, an AfterFunc on it,
// getsockname and the net.TCPConn around the fd. Here: socket, TCP_NODELAY
// (as net.Dial sets it), connect, then the poller for writability, SO_ERROR
// and getpeername (the poller may wake spuriously, so "connected" is
// confirmed as net does).
//
// The connect timeout is a write deadline on the file. started, if not nil,
// gets the connection before the wait, so that the session's client abort
// (pconn.abort: a deadline in the past) ends the wait at once, as a
// cancelled context did.
func dialRaw(ap netip.AddrPort, addr string, timeout time.Duration, started func(*pconn)) (*pconn, error) {
	ip := ap.Addr().Unmap()
	var sa syscall.Sockaddr
	family := syscall.AF_INET
	if ip.Is4() {
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
	} else {
		family = syscall.AF_INET6
		sa6 := &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
		if z := ip.Zone(); z != "" {
			return nil, errNeedNet // scoped addresses: let net resolve the zone
		}
		sa = sa6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	for {
		err = syscall.Connect(fd, sa)
		if err != syscall.EINTR {
			break
		}
	}
	connected := err == nil || err == syscall.EISCONN
	if !connected && err != syscall.EINPROGRESS && err != syscall.EALREADY {
		syscall.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	f := os.NewFile(uintptr(fd), addr) // non-blocking: registered with the poller
	pc := &pconn{nc: f, addr: addr}
	if connected {
		return pc, nil
	}
	if started != nil {
		started(pc)
	}
	if timeout > 0 {
		_ = f.SetWriteDeadline(time.Now().Add(timeout))
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	// f runs once before any wait (the poller drops the readiness it saw
	// before), then after each wake-up; getpeername tells "connected" from
	// "still in progress" when SO_ERROR is 0.
	var cerr error
	err = rc.Write(func(fd uintptr) bool {
		n, e := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
		if e != nil {
			cerr = os.NewSyscallError("getsockopt", e)
			return true
		}
		switch e := syscall.Errno(n); e {
		case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
			return false
		case syscall.EISCONN:
			return true
		case 0:
			_, e := syscall.Getpeername(int(fd))
			return e == nil // ENOTCONN: in progress, or a spurious wake-up
		default:
			cerr = os.NewSyscallError("connect", e)
			return true
		}
	})
	if err == nil {
		err = cerr
	}
	if err == nil && pc.canceled.Load() {
		err = errClientCanceled
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if timeout > 0 {
		_ = f.SetWriteDeadline(time.Time{})
	}
	return pc, nil
}

package proxy

import (
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"

	"upstreamd/internal/pollwait"
)

// dialRaw connects to a literal ip:port with its own non-blocking connect
// and puts the socket on the runtime poller as a pollwait.Sock (an *os.File
// where that is not supported), deadlines included. net.Dialer costs ~30
// allocations per dial: address resolution, a context with a deadline and
// its timer, an AfterFunc on it, getsockname and the net.TCPConn around
// the fd. Here: socket, connect, then one getsockopt(TCP_INFO) to see
// whether the connect has finished. A loopback or near peer has usually
// answered by then, so the connect timeout (a write deadline: a runtime
// timer armed and stopped) and the wait for writability are only set up
// for a connect still in progress. TCP_NODELAY is set later, and only if a request needs
// more than one write (pconn.Write), as nginx 1.22 leaves Nagle on for an
// upstream request written at once.
//
// started, if not nil, gets the connection before that wait, so that the
// session's client abort (pconn.abort: a deadline in the past) ends it at
// once, as a cancelled context did.
func dialRaw(ap netip.AddrPort, addr string, timeout time.Duration, started func(*pconn)) (*pconn, error) {
	ip := ap.Addr().Unmap()
	family := syscall.AF_INET
	if !ip.Is4() {
		family = syscall.AF_INET6
		if ip.Zone() != "" {
			return nil, errNeedNet // scoped addresses: let net resolve the zone
		}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	for {
		err = connectRaw(fd, ip, ap.Port())
		if err != syscall.EINTR {
			break
		}
	}
	connected := err == nil || err == syscall.EISCONN
	if !connected && err != syscall.EINPROGRESS && err != syscall.EALREADY {
		syscall.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	if !connected {
		var err error
		if connected, err = connectDone(fd); err != nil {
			syscall.Close(fd)
			return nil, err
		}
	}
	sc := new(sockConn)
	switch err := pollwait.InitPrioritySock(&sc.sock, fd); err {
	case nil:
		sc.pc.nc = &sc.sock
	case pollwait.ErrSockUnsupported:
		sc.pc.nc = os.NewFile(uintptr(fd), addr)
	default:
		syscall.Close(fd)
		return nil, err
	}
	pc := &sc.pc
	pc.addr = addr
	nc := pc.nc
	if connected {
		return pc, nil
	}
	if started != nil {
		started(pc)
	}
	if timeout > 0 {
		_ = nc.SetWriteDeadline(time.Now().Add(timeout))
	}
	// Each wake-up may be spurious: the TCP state says whether the connect
	// is over.
	var cerr error // only here: the closure moves it to the heap
	err = pc.waitWritable(func(fd int) bool {
		var done bool
		done, cerr = connectDone(fd)
		return done
	})
	if err == nil {
		err = cerr
	}
	if err == nil && pc.canceled.Load() {
		err = errClientCanceled
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	if timeout > 0 {
		_ = nc.SetWriteDeadline(time.Time{})
	}
	return pc, nil
}

// sockConn is a dialled connection and its socket in one allocation: with
// nginx's default of no upstream keepalive there is one per request. The
// socket is a pollwait.Sock, which reads and writes with fewer layers, or,
// where that is not supported, an *os.File (sock then goes unused).
type sockConn struct {
	pc   pconn
	sock pollwait.Sock
}

// waitWritable calls done with the descriptor, and while it returns false
// waits until the socket is writable and calls it again (the first call
// comes before any wait: the poller may have seen the socket writable
// before we asked).
func (c *pconn) waitWritable(done func(fd int) bool) error {
	if s, ok := c.nc.(*pollwait.Sock); ok {
		for {
			var ok bool
			if err := s.Control(func(fd uintptr) { ok = done(int(fd)) }); err != nil {
				return err
			}
			if ok {
				return nil
			}
			if err := s.WaitWrite(); err != nil {
				return err
			}
		}
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return errNeedNet
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Write(func(fd uintptr) bool { return done(int(fd)) })
}

// control runs f with the connection's descriptor; false: there is none,
// or the connection is closed.
func (c *pconn) control(f func(fd uintptr)) bool {
	return pollwait.Control(c.nc, f) == nil
}

// connectRaw starts a connect on the non-blocking socket fd. The address
// is built on the stack (syscall.Connect takes a Sockaddr interface, one
// allocation per call) and the call is raw: on a non-blocking socket
// connect does not wait.
func connectRaw(fd int, ip netip.Addr, port uint16) error {
	var e syscall.Errno
	if ip.Is4() {
		sa := syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: ip.As4()}
		sa.Port = htons(port)
		_, _, e = syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	} else {
		sa := syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: ip.As16()}
		sa.Port = htons(port)
		_, _, e = syscall.RawSyscall(syscall.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	}
	if e != 0 {
		return e
	}
	return nil
}

// htons is port in network byte order, as the sockaddr's Port field
// holds it.
func htons(port uint16) uint16 {
	b := [2]byte{byte(port >> 8), byte(port)}
	return *(*uint16)(unsafe.Pointer(&b))
}

// Linux TCP states (include/net/tcp_states.h).
const (
	tcpSynSent = 2
	tcpSynRecv = 3
	tcpClose   = 7
)

// connectDone reports whether the non-blocking connect on fd is over, and
// its error if it failed. One getsockopt(TCP_INFO) in the usual case (its
// first byte is the state); SO_ERROR alone is 0 both for "connected" and
// "in progress", and telling them apart took a getpeername as well.
func connectDone(fd int) (bool, error) {
	var info [8]byte // the kernel copies no more than asked for
	size := uint32(len(info))
	_, _, e := syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), syscall.IPPROTO_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&size)), 0)
	if e != 0 {
		return true, os.NewSyscallError("getsockopt", e)
	}
	switch info[0] {
	case tcpSynSent, tcpSynRecv:
		return false, nil
	case tcpClose:
		n, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
		if err != nil {
			return true, os.NewSyscallError("getsockopt", err)
		}
		if n == 0 {
			n = int(syscall.ECONNREFUSED) // not expected: a failed connect leaves its error there
		}
		return true, os.NewSyscallError("connect", syscall.Errno(n))
	}
	return true, nil // established, or already closing: the request's write tells
}

// setNoDelay turns Nagle's algorithm off on a dialRaw socket (net's TCP
// connections have it off already).
func (c *pconn) setNoDelay() {
	c.nodelay = true
	c.control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	})
}

//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package h1

import (
	"net"
	"syscall"
)

// peerClosed peeks one byte without consuming it and without blocking:
// 0 bytes (EOF) or a connection error means the peer closed. Control holds
// a reference on the descriptor, so a concurrent Close cannot reuse it
// under us, and it takes no read lock, so it never waits for a handler
// that is reading the body.
func peerClosed(c net.Conn) bool {
	var control func(func(fd uintptr)) error
	switch c := c.(type) {
	case interface{ Control(func(fd uintptr)) error }: // sockConn
		control = c.Control
	case syscall.Conn:
		rc, err := c.SyscallConn()
		if err != nil {
			return false
		}
		control = rc.Control
	default:
		return false
	}
	closed := false
	var b [1]byte
	_ = control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			closed = n == 0
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		default:
			closed = true // ECONNRESET and the like
		}
	})
	return closed
}

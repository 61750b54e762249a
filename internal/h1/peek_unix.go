//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package h1

import (
	"net"
	"syscall"

	"upstreamd/internal/pollwait"
)

// peerClosed peeks one byte without consuming it and without blocking:
// 0 bytes (EOF) or a connection error means the peer closed. Control holds
// a reference on the descriptor, so a concurrent Close cannot reuse it
// under us, and it takes no read lock, so it never waits for a handler
// that is reading the body.
func peerClosed(c net.Conn) bool {
	closed := false
	var b [1]byte
	_ = pollwait.Control(c, func(fd uintptr) {
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

package proxy

import (
	"syscall"

	"upstreamd/internal/pollwait"
)

// connAlive reports whether an idle pooled connection still looks usable:
// no EOF, error or unexpected data is pending on it. It costs one
// non-blocking recv(MSG_PEEK) and is used before sending a non-idempotent
// request, which cannot be repeated if the peer had closed the connection.
func connAlive(c *pconn) bool {
	alive := false
	var b [1]byte
	err := pollwait.Control(c.nc, func(fd uintptr) {
		_, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = e == syscall.EAGAIN || e == syscall.EWOULDBLOCK
	})
	if err == pollwait.ErrNoDescriptor {
		return true // nothing to look at
	}
	return err == nil && alive
}

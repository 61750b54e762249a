package proxy

import (
	"syscall"
	"time"
)

// connAlive reports whether an idle pooled connection still looks usable:
// no EOF, error or unexpected data is pending on it. It costs one
// non-blocking recv(MSG_PEEK) and is used before sending a non-idempotent
// request, which cannot be repeated if the peer had closed the connection.
func connAlive(c *pconn) bool {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// An expired deadline from the previous request would make raw.Read
	// fail without calling us.
	if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
		return false
	}
	c.rdl = time.Time{}
	alive := false
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = e == syscall.EAGAIN || e == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && alive
}

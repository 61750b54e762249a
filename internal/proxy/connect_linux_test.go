package proxy

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestConnectTimeoutBacklog: a listener whose accept queue is full drops
// SYNs, so connect() hangs until the connect timeout.
func TestConnectTimeoutBacklog(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Skip(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Skip(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Skip(err)
	}
	sa, _ := syscall.Getsockname(fd)
	port := sa.(*syscall.SockaddrInet4).Port
	addr := net.JoinHostPort("127.0.0.1", itoa(port))
	// Fill the accept queue (nobody accepts).
	var fillers []net.Conn
	defer func() {
		for _, c := range fillers {
			c.Close()
		}
	}()
	for i := 0; i < 4; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		fillers = append(fillers, c)
	}
	u := newUpstream(t, addr)
	o := baseOptions()
	o.ConnectTimeout = 100 * time.Millisecond
	rec, res, logs, _ := serve(t, context.Background(), getOut("/"), Target{Upstream: u}, o)
	if rec.Code != 504 {
		t.Skipf("connect did not hang here: %d %q", rec.Code, logs.all())
	}
	if !logs.has("[error] upstream timed out (110: Connection timed out) while connecting to upstream") || res.Statuses[0] != 504 {
		t.Fatalf("statuses %v logs %q", res.Statuses, logs.all())
	}
}

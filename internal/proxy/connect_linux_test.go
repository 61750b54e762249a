package proxy

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"upstreamd/internal/testutil"
)

// fullBacklog returns the address of a listener whose accept queue is full:
// it drops SYNs, so a connect to it stays in progress.
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
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
	for i := 0; i < 4; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

// TestConnectTimeoutBacklog: a connect that hangs ends at the connect
// timeout.
func TestConnectTimeoutBacklog(t *testing.T) {
	addr := fullBacklog(t)
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

// TestConnectDone: the TCP state tells a finished connect from one in
// progress and from a socket that is not connecting.
func TestConnectDone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	connectTo := func(addr string) int {
		ap := netip.MustParseAddrPort(addr)
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Close(fd) })
		err = syscall.Connect(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
		if err != nil && err != syscall.EINPROGRESS {
			t.Fatal(err)
		}
		return fd
	}
	tests := []struct {
		name     string
		fd       func() int
		done     bool
		errMatch string
		mayHang  bool // a kernel that answers the SYN anyway: skip
	}{
		{"established", func() int {
			fd := connectTo(ln.Addr().String())
			for i := 0; i < 100; i++ { // loopback: at once, but do not rely on it
				if done, _ := connectDone(fd); done {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			return fd
		}, true, "", false},
		{"in progress", func() int { return connectTo(fullBacklog(t)) }, false, "", true},
		{"never connected", func() int {
			fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Close(fd) })
			return fd
		}, true, "connect: ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done, err := connectDone(tt.fd())
			if tt.mayHang && done && err == nil {
				t.Skip("the connect to a full backlog did not hang here")
			}
			if done != tt.done || (err == nil) != (tt.errMatch == "") || (err != nil && !strings.Contains(err.Error(), tt.errMatch)) {
				t.Fatalf("done %v, err %v; want %v, %q", done, err, tt.done, tt.errMatch)
			}
		})
	}
}

// TestNoDelayOnlyWhenNeeded: a request written at once leaves Nagle's
// algorithm on (one system call less per connection, as nginx 1.22); a
// second write of the request, or a large one, turns it off first.
func TestNoDelayOnlyWhenNeeded(t *testing.T) {
	addr := testutil.TCPServer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	nodelay := func(pc *pconn) int {
		t.Helper()
		v := -1
		if !pc.control(func(fd uintptr) { v, _ = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY) }) {
			t.Fatal("no descriptor")
		}
		return v
	}
	tests := []struct {
		name   string
		writes []int // sizes, in order
		want   int
	}{
		{"one small write", []int{300}, 0},
		{"head, then body", []int{300, 100}, 1},
		{"one large write", []int{nagleSafe + 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, err := dialRaw(netip.MustParseAddrPort(addr), addr, time.Second, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.close()
			if got := nodelay(pc); got != 0 {
				t.Fatalf("TCP_NODELAY %d on a new connection", got)
			}
			for _, n := range tt.writes {
				if _, err := pc.Write(make([]byte, n)); err != nil {
					t.Fatal(err)
				}
			}
			if got := nodelay(pc); got != tt.want {
				t.Fatalf("TCP_NODELAY %d, want %d", got, tt.want)
			}
		})
	}
}

// TestDialRawFamilies: dialRaw connects to IPv4 and IPv6 literals (the
// sockaddr is built by hand), and reports a refused connect as nginx words
// it.
func TestDialRawFamilies(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			host := "127.0.0.1"
			if network == "tcp6" {
				host = "::1"
			}
			ln, err := net.Listen(network, net.JoinHostPort(host, "0"))
			if err != nil {
				t.Skipf("no %s loopback: %v", network, err)
			}
			addr := ln.Addr().String()
			accepted := make(chan string, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					accepted <- ""
					return
				}
				accepted <- c.RemoteAddr().String()
				c.Close()
			}()
			pc, err := dialRaw(netip.MustParseAddrPort(addr), addr, time.Second, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.close()
			select {
			case from := <-accepted:
				if ap, err := netip.ParseAddrPort(from); err != nil || ap.Addr().String() != host {
					t.Fatalf("the listener accepted a connection from %q, want one from %s", from, host)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("nothing accepted")
			}
			ln.Close() // the port is free now: a new connect is refused
			_, err = dialRaw(netip.MustParseAddrPort(addr), addr, time.Second, nil)
			if err == nil || !strings.Contains(err.Error(), "connection refused") {
				t.Fatalf("connect to a closed port: %v, want connection refused", err)
			}
		})
	}
}

package h1

import (
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"upstreamd/internal/pollwait"
	"upstreamd/internal/testutil"
)

// acceptOne dials l's address and returns both ends.
func acceptOne(t *testing.T, l net.Listener, addr string) (server, client net.Conn) {
	t.Helper()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c := <-got
	if c == nil {
		t.FailNow()
	}
	t.Cleanup(func() { s.Close(); c.Close() })
	return s, c
}

func TestSockListener(t *testing.T) {
	if !pollwait.SockEnabled() {
		t.Skip("pollwait.Sock not supported here")
	}
	for _, tt := range []struct{ listen, dial string }{
		{"127.0.0.1:0", ""},
		{"0.0.0.0:0", "127.0.0.1"}, // the local address comes from getsockname
	} {
		t.Run(tt.listen, func(t *testing.T) {
			ln, err := net.Listen("tcp4", tt.listen)
			if err != nil {
				t.Skip(err)
			}
			l := fastListener(ln)
			if _, ok := l.(*sockListener); !ok {
				t.Fatalf("fastListener gave a %T", l)
			}
			addr := ln.Addr().String()
			if tt.dial != "" {
				addr = net.JoinHostPort(tt.dial, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
			}
			s, c := acceptOne(t, l, addr)
			if _, ok := s.(*sockConn); !ok {
				t.Fatalf("Accept gave a %T", s)
			}
			if s.RemoteAddr().String() != c.LocalAddr().String() || s.LocalAddr().String() != c.RemoteAddr().String() {
				t.Fatalf("server side %v ← %v, client side %v → %v", s.LocalAddr(), s.RemoteAddr(), c.LocalAddr(), c.RemoteAddr())
			}
			// Both directions, and the half close of a lingering close.
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			if n, err := s.Read(buf); err != nil || string(buf[:n]) != "ping" {
				t.Fatalf("server read %q, %v", buf[:n], err)
			}
			if err := s.(*sockConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := c.Read(buf); n != 0 || err == nil {
				t.Fatalf("client read after CloseWrite: %d, %v; want EOF", n, err)
			}
			if peerClosed(s) {
				t.Fatal("peerClosed with the client still there")
			}
			c.Close()
			deadline := time.Now().Add(5 * time.Second)
			for !peerClosed(s) {
				if time.Now().After(deadline) {
					t.Fatal("peerClosed did not see the client close")
				}
				time.Sleep(time.Millisecond)
			}
			ln.Close()
		})
	}
}

// Closing the listener ends a blocked Accept.
func TestSockListenerClose(t *testing.T) {
	if !pollwait.SockEnabled() {
		t.Skip("pollwait.Sock not supported here")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := fastListener(ln)
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // let it block (it must return either way)
	l.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v; want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
	if err := l.(*sockListener).SetDeadline(time.Now()); err == nil {
		t.Fatal("SetDeadline accepted: Accept would not honour it")
	}
}

// TestWithoutPollwait: the package's tests pass with UPSTREAMD_POLLWAIT=off
// as well (clients accepted by net).
func TestWithoutPollwait(t *testing.T) {
	testutil.RerunWithEnv(t, "UPSTREAMD_POLLWAIT=off")
}

// TestWithRuntimeOrder: the package's tests pass with Socks on the
// runtime's poller instead of pollwait's ordered one
// (UPSTREAMD_POLLWAIT=runtime).
func TestWithRuntimeOrder(t *testing.T) {
	testutil.RerunWithEnv(t, "UPSTREAMD_POLLWAIT=runtime")
}

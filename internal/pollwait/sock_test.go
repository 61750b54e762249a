//go:build linux

package pollwait

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sockPair returns a Sock and its peer, the other end of a stream socket
// pair, as an *os.File on the poller (so that its reads can time out).
func sockPair(t *testing.T) (*Sock, *os.File) {
	t.Helper()
	if !SockEnabled() {
		t.Skip("Sock not supported here (or UPSTREAMD_POLLWAIT=off)")
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSock(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	peer := os.NewFile(uintptr(fds[1]), "peer")
	t.Cleanup(func() { s.Close(); peer.Close() })
	return s, peer
}

// result is what a call made in a goroutine returned.
type result struct {
	n   int
	err error
}

// goRead starts s.Read into a buffer of size bytes.
func goRead(s *Sock, size int) <-chan result {
	ch := make(chan result, 1)
	go func() {
		n, err := s.Read(make([]byte, size))
		ch <- result{n, err}
	}()
	return ch
}

// within returns what ch yields in 5 s, failing the test otherwise.
func within(t *testing.T, ch <-chan result, what string) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal(what + " did not return")
	}
	return result{}
}

// blocked fails if ch yields within 20 ms.
func blocked(t *testing.T, ch <-chan result, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s returned early: %d, %v", what, r.n, r.err)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestSockReadWriteEOF(t *testing.T) {
	s, peer := sockPair(t)
	got := goRead(s, 64)
	blocked(t, got, "Read with nothing sent")
	if _, err := peer.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if r := within(t, got, "Read"); r.err != nil || r.n != 5 {
		t.Fatalf("Read = %d, %v; want 5, nil", r.n, r.err)
	}
	if n, err := s.Write([]byte("world")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "world" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
	if n, err := s.Read(nil); n != 0 || err != nil {
		t.Fatalf("Read(nil) = %d, %v; want 0, nil", n, err)
	}
	peer.Close()
	if r := within(t, goRead(s, 64), "Read at EOF"); r.err != io.EOF {
		t.Fatalf("Read after the peer closed = %d, %v; want io.EOF", r.n, r.err)
	}
}

// A write larger than the socket buffers waits for the peer to read, and
// returns only when all of it was taken.
func TestSockWriteWaitsForRoom(t *testing.T) {
	s, peer := sockPair(t)
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MB
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	n, err := s.Write(want)
	if n != len(want) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(want))
	}
	s.Close()
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Fatalf("peer read %d bytes, not the %d written", len(b), len(want))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("peer did not see EOF after Close")
	}
}

// TryWrite takes what fits and returns without waiting for the rest.
func TestSockTryWrite(t *testing.T) {
	s, peer := sockPair(t)
	if n, err := s.TryWrite([]byte("abc")); n != 3 || err != nil {
		t.Fatalf("TryWrite = %d, %v; want 3, nil", n, err)
	}
	big := make([]byte, 32<<20) // more than the socket buffers hold
	done := make(chan result, 1)
	go func() {
		n, err := s.TryWrite(big)
		done <- result{n, err}
	}()
	r := within(t, done, "TryWrite into a full socket")
	if r.err != nil || r.n <= 0 || r.n >= len(big) {
		t.Fatalf("TryWrite of %d bytes = %d, %v; want part of it, nil", len(big), r.n, r.err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "abc" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
	s.Close()
	if _, err := s.TryWrite([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("TryWrite after Close = %v", err)
	}
}

func TestSockDeadlines(t *testing.T) {
	s, peer := sockPair(t)
	if err := s.SetReadDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	r := within(t, goRead(s, 8), "Read past its deadline")
	var ne net.Error
	if !errors.Is(r.err, os.ErrDeadlineExceeded) || !errors.As(r.err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past the deadline = %d, %v; want a timeout (os.ErrDeadlineExceeded)", r.n, r.err)
	}
	// Cleared, the socket works again; a deadline in the past (the
	// proxy's abort) wakes a blocked Read.
	if err := s.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	peer.Write([]byte("x"))
	if r := within(t, goRead(s, 8), "Read"); r.err != nil || r.n != 1 {
		t.Fatalf("Read after clearing the deadline = %d, %v", r.n, r.err)
	}
	got := goRead(s, 8)
	blocked(t, got, "Read with no deadline")
	if err := s.SetDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if r := within(t, got, "Read after a deadline in the past"); !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %d, %v; want os.ErrDeadlineExceeded", r.n, r.err)
	}
	if err := s.WaitWrite(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("WaitWrite past the write deadline = %v", err)
	}
}

func TestSockCloseWakesAndRefuses(t *testing.T) {
	s, peer := sockPair(t)
	got := goRead(s, 8)
	blocked(t, got, "Read")
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if r := within(t, got, "Read blocked across Close"); !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("blocked Read after Close = %d, %v; want net.ErrClosed", r.n, r.err)
	}
	if err := s.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close = %v; want net.ErrClosed", err)
	}
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	if err := s.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SetDeadline after Close = %v", err)
	}
	if err := s.Control(func(uintptr) { t.Error("Control ran f after Close") }); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Control after Close = %v", err)
	}
	s.WaitRead() // returns at once
	// The descriptor itself was closed: the peer reads EOF.
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := peer.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer Read after Close = %d, %v; want EOF", n, err)
	}
}

// Close racing with a reader, a writer and another Close (the upgrade
// path's two directions close each other's sockets): exactly one Close
// succeeds, every call returns, the descriptor is closed once. Run with
// -race, and the runtime would throw on a poll descriptor freed while a
// call waits on it.
func TestSockConcurrentClose(t *testing.T) {
	var mu sync.Mutex
	closes := map[int]int{}
	saved := closeFD
	defer func() { closeFD = saved }()
	closeFD = func(fd int) error {
		mu.Lock()
		closes[fd]++
		mu.Unlock()
		return saved(fd)
	}
	for i := 0; i < 200; i++ {
		s, peer := sockPair(t)
		fd := s.fd
		var wg sync.WaitGroup
		var ok sync.Map
		wg.Add(4)
		go func() {
			defer wg.Done()
			buf := make([]byte, 16)
			for {
				if _, err := s.Read(buf); err != nil {
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for {
				if _, err := s.Write([]byte("ping")); err != nil {
					return
				}
			}
		}()
		for c := 0; c < 2; c++ {
			go func() {
				defer wg.Done()
				if s.Close() == nil {
					ok.Store(c, true)
				}
			}()
		}
		go io.Copy(peer, peer) // echo, so that both directions move
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("a call did not return after Close")
		}
		peer.Close()
		mu.Lock()
		if closes[fd] != 1 {
			t.Fatalf("round %d: descriptor closed %d times; want once", i, closes[fd])
		}
		delete(closes, fd) // the number is free for the next round
		mu.Unlock()
		n := 0
		ok.Range(func(any, any) bool { n++; return true })
		if n != 1 {
			t.Fatalf("round %d: %d Close calls succeeded; want 1", i, n)
		}
	}
}

// WaitRead waits for data without reading it; a Lazy given a Sock uses it
// rather than make a Waiter.
func TestSockWaitRead(t *testing.T) {
	s, peer := sockPair(t)
	var lazy Lazy
	done := make(chan result, 1)
	go func() { lazy.Wait(s); done <- result{} }()
	blocked(t, done, "WaitRead with nothing sent")
	peer.Write([]byte("abc"))
	within(t, done, "WaitRead after data arrived")
	if r := within(t, goRead(s, 8), "Read"); r.n != 3 || r.err != nil {
		t.Fatalf("Read after WaitRead = %d, %v", r.n, r.err)
	}
	if lazy.self != s || lazy.w.Active() {
		t.Fatal("Lazy made a Waiter for a Sock instead of using its WaitRead")
	}
}

func TestSockControl(t *testing.T) {
	s, _ := sockPair(t)
	var typ int
	err := s.Control(func(fd uintptr) {
		typ, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TYPE)
	})
	if err != nil || typ != syscall.SOCK_STREAM {
		t.Fatalf("Control: SO_TYPE %d, %v; want SOCK_STREAM", typ, err)
	}
}

func TestSockDoesNotAllocate(t *testing.T) {
	s, peer := sockPair(t)
	out, in := []byte("0123456789"), make([]byte, 10)
	back := make([]byte, 10)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := s.Write(out); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(peer, back); err != nil {
			t.Fatal(err)
		}
		if _, err := peer.Write(back); err != nil {
			t.Fatal(err)
		}
		s.WaitRead()
		if _, err := s.Read(in); err != nil {
			t.Fatal(err)
		}
	})
	// The peer's os.File calls allocate nothing either.
	if allocs != 0 {
		t.Fatalf("%v allocations per write/read round; want 0", allocs)
	}
}

func TestNewSockWhenDisabled(t *testing.T) {
	saved := disabled
	defer func() { disabled = saved }()
	disabled = true
	if SockEnabled() {
		t.Fatal("SockEnabled with UPSTREAMD_POLLWAIT=off")
	}
	if _, err := NewSock(-1); err != ErrSockUnsupported {
		t.Fatalf("NewSock while disabled = %v; want ErrSockUnsupported", err)
	}
}

func TestControlSock(t *testing.T) {
	s, _ := sockPair(t)
	var got uintptr
	if err := Control(s, func(fd uintptr) { got = fd }); err != nil || int(got) != s.fd {
		t.Fatalf("Control(*Sock) ran with fd %d (want %d), %v", got, s.fd, err)
	}
}

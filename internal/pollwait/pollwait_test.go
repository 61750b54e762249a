package pollwait

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

// waitDone runs w.Wait in a goroutine and returns a channel closed when it
// returns.
func waitDone(w Waiter) <-chan struct{} {
	done := make(chan struct{})
	go func() { w.Wait(); close(done) }()
	return done
}

// needActive skips tests of waiting when it is switched off.
func needActive(t *testing.T) {
	t.Helper()
	if disabled {
		t.Skip("UPSTREAMD_POLLWAIT=off")
	}
}

// stillWaiting fails if done is closed within 20 ms: Wait returned early.
func stillWaiting(t *testing.T, done <-chan struct{}, when string) {
	t.Helper()
	select {
	case <-done:
		t.Fatal("Wait returned " + when)
	case <-time.After(20 * time.Millisecond):
	}
}

// returned fails unless done is closed within 5 s.
func returned(t *testing.T, done <-chan struct{}, when string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return " + when)
	}
}

func TestActiveOnThisToolchain(t *testing.T) {
	needActive(t)
	s, _ := tcpPair(t)
	if !New(s).Active() {
		t.Fatalf("Waiter inactive on %s/%s %s: pollwait_runtime.go does not cover this toolchain or the runtime's layout changed; check runtime_pollWait and the poll descriptor fields, then extend the build constraint", runtime.GOOS, runtime.GOARCH, runtime.Version())
	}
	f, err := s.File() // a dup, blocking: not on the poller
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe() // non-blocking, on the poller
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if !New(r).Active() {
		t.Fatal("Waiter inactive for an *os.File pipe")
	}
}

func TestInactiveForUnknownConns(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	w := New(a)
	if w.Active() {
		t.Fatal("net.Pipe has no poll descriptor, Waiter must be inactive")
	}
	w.Wait() // returns at once
	var zero Waiter
	zero.Wait()
}

// The data arrives while we wait: Wait returns and the read gets it.
func TestWaitWakesOnData(t *testing.T) {
	needActive(t)
	s, c := tcpPair(t)
	w := New(s)
	done := waitDone(w)
	stillWaiting(t, done, "before any data was sent")
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	returned(t, done, "after data arrived")
	readWant(t, s, "ping")
}

// Data that arrived before Wait — and whose readiness the poller may
// already have reported — must not be lost: Wait returns at once.
func TestWaitDataAlreadyThere(t *testing.T) {
	s, c := tcpPair(t)
	w := New(s)
	if err := s.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("early")); err != nil {
		t.Fatal(err)
	}
	// Let the poller see the edge before anyone waits (a goroutine that
	// blocks makes the scheduler poll the network).
	time.Sleep(10 * time.Millisecond)
	start := time.Now()
	w.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Wait took %v: the readiness seen before it was lost", d)
	}
	readWant(t, s, "early")
}

// A stale readiness (data already consumed) makes Wait return early; the
// Read that follows must still wait properly for the next data.
func TestPingPongThroughWait(t *testing.T) {
	s, c := tcpPair(t)
	ws, wc := New(s), New(c)
	for _, conn := range []*net.TCPConn{s, c} {
		if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 16)
		for i := 0; i < 2000; i++ {
			ws.Wait()
			n, err := s.Read(buf)
			if err != nil {
				errc <- err
				return
			}
			if _, err := s.Write(buf[:n]); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	buf := make([]byte, 16)
	for i := 0; i < 2000; i++ {
		if _, err := c.Write([]byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		wc.Wait()
		if _, err := io.ReadFull(c, buf[:10]); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestWaitReturnsAtDeadline(t *testing.T) {
	s, _ := tcpPair(t)
	w := New(s)
	if err := s.SetReadDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	returned(t, waitDone(w), "at the read deadline")
	_, err := s.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after the deadline: %v, want a timeout", err)
	}
}

// Closing the connection from another goroutine wakes the waiter (as it
// does a blocked Read), and the read that follows reports the close.
func TestCloseWakesWaiter(t *testing.T) {
	needActive(t)
	s, _ := tcpPair(t)
	w := New(s)
	done := waitDone(w)
	stillWaiting(t, done, "before anything happened")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	returned(t, done, "after Close")
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	w.Wait() // on a closed conn: returns at once
}

func TestPeerCloseWakesWaiter(t *testing.T) {
	s, c := tcpPair(t)
	w := New(s)
	done := waitDone(w)
	c.Close()
	returned(t, done, "after the peer's FIN")
	if _, err := s.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want EOF", err)
	}
}

func TestWaitDoesNotAllocate(t *testing.T) {
	s, _ := tcpPair(t)
	w := New(s)
	// Wait consumes the readiness it reports, so it would block on a second
	// call without a read in between; an expired deadline makes every call
	// return at once.
	if err := s.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, w.Wait); n != 0 {
		t.Fatalf("Wait allocates %v times", n)
	}
}

// Lazy makes its Waiter on the first Wait, and then waits like one.
func TestLazy(t *testing.T) {
	s, c := tcpPair(t)
	var l Lazy
	if l.Made() || l.Active() {
		t.Fatal("a Lazy is made before its first Wait")
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { l.Wait(s); close(done) }()
	returned(t, done, "with data there")
	if !l.Made() || l.Active() != Enabled() {
		t.Fatalf("after Wait: made %v, active %v, enabled %v", l.Made(), l.Active(), Enabled())
	}
}

// readWant reads once from c and fails unless it got want.
func readWant(t *testing.T, c net.Conn, want string) {
	t.Helper()
	buf := make([]byte, len(want)+8)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != want {
		t.Fatalf("read %q, %v; want %q", buf[:n], err, want)
	}
}

// Control reaches the descriptor of a net connection and of anything with a
// Control method, and says when there is none.
func TestControl(t *testing.T) {
	s, _ := tcpPair(t)
	var got uintptr
	if err := Control(s, func(fd uintptr) { got = fd }); err != nil || got == 0 {
		t.Fatalf("Control(*net.TCPConn) ran with fd %d, %v", got, err)
	}
	if err := Control(struct{ io.Reader }{}, func(uintptr) { t.Error("ran f without a descriptor") }); err != ErrNoDescriptor {
		t.Fatalf("Control(no descriptor) = %v, want ErrNoDescriptor", err)
	}
	s.Close()
	if err := Control(s, func(uintptr) { t.Error("ran f on a closed connection") }); err == nil {
		t.Fatal("Control on a closed connection succeeded")
	}
}

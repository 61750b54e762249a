//go:build linux && (amd64 || arm64) && go1.26 && !go1.27

package pollwait

import (
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"upstreamd/internal/testutil"
)

// rawPair returns a Sock (a priority one if asked) and its peer's raw,
// blocking descriptor: the test writes to it with write(2) alone, so that
// nothing it does goes through the runtime's poller or scheduler.
func rawPair(t *testing.T, priority bool) (*Sock, int) {
	t.Helper()
	if !SockEnabled() {
		t.Skip("Sock not supported here (or UPSTREAMD_POLLWAIT=off)")
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	s, err := newSock(fds[0], priority)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); syscall.Close(fds[1]) })
	return s, fds[1]
}

// needOrdered skips where Socks are on the runtime's poller.
func needOrdered(t *testing.T, s *Sock) {
	t.Helper()
	if !s.ordered {
		t.Skip("Socks are on the runtime poller here (UPSTREAMD_POLLWAIT=runtime, or not linux/amd64 or arm64)")
	}
}

// TestOrderedByDefault: where the ordered poller is built, Socks use it
// unless UPSTREAMD_POLLWAIT=runtime says otherwise.
func TestOrderedByDefault(t *testing.T) {
	s, _ := rawPair(t, false)
	if want := orderSupported && !orderOff; s.ordered != want {
		t.Fatalf("Sock ordered = %v; want %v (supported %v, UPSTREAMD_POLLWAIT=%q)", s.ordered, want, orderSupported, os.Getenv("UPSTREAMD_POLLWAIT"))
	}
}

// TestWithRuntimeOrder: the package's tests pass with Socks on the
// runtime's poller as well (UPSTREAMD_POLLWAIT=runtime).
func TestWithRuntimeOrder(t *testing.T) {
	testutil.RerunWithEnv(t, "UPSTREAMD_POLLWAIT=runtime")
}

// needDeterministicScheduler skips under the race detector, whose
// scheduler shuffles the run queue on purpose; TestOrderWithoutRace runs
// the test without it then.
func needDeterministicScheduler(t *testing.T) {
	t.Helper()
	if raceBuild {
		t.Skip("the race detector randomizes the scheduler's order (TestOrderWithoutRace runs this without it)")
	}
}

// TestOrderWithoutRace runs the order tests in a build without the race
// detector when this one has it (as the project's test command does).
func TestOrderWithoutRace(t *testing.T) {
	if !raceBuild {
		t.Skip("not a race build: the order tests run in this binary")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	if !orderSupported || orderOff || disabled {
		t.Skip("Socks are not on the ordered poller here")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goBin, "test", "-count=1", "-run", "^(TestOrderWakesInKernelOrder|TestOrderPriorityAlternates)$", "-v", ".")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	for _, name := range []string{"TestOrderWakesInKernelOrder", "TestOrderPriorityAlternates"} {
		if !strings.Contains(string(out), "--- PASS: "+name) {
			t.Fatalf("%s did not run and pass without the race detector:\n%s", name, out)
		}
	}
}

// wakeOrder parks a reader on each Sock, makes the Socks readable in the
// order of ready (indexes), and returns the order in which the readers
// ran. It runs with GOMAXPROCS 1, where the run order is the scheduler's
// alone.
func wakeOrder(t *testing.T, socks []*Sock, peers []int, ready []int) []int {
	t.Helper()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var mu sync.Mutex
	var ran []int
	var wg sync.WaitGroup
	for i, s := range socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.WaitRead()
			mu.Lock()
			ran = append(ran, i)
			mu.Unlock()
		}()
	}
	// Until every reader is parked: its goroutine is in the park word.
	for _, s := range socks {
		for atomic.LoadUintptr(&s.park[0]) <= parkWait {
			runtime.Gosched()
		}
	}
	for _, i := range ready {
		if _, err := syscall.Write(peers[i], []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	return ran
}

func sameOrder(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The readers run in the order their sockets became readable. (The
// runtime's poller runs them in the reverse order.)
func TestOrderWakesInKernelOrder(t *testing.T) {
	const n = 32
	socks, peers := make([]*Sock, n), make([]int, n)
	for i := range socks {
		socks[i], peers[i] = rawPair(t, false)
	}
	needOrdered(t, socks[0])
	needDeterministicScheduler(t)
	ready := rand.Perm(n)
	if got := wakeOrder(t, socks, peers, ready); !sameOrder(got, ready) {
		t.Fatalf("readers ran in the order %v; the sockets became readable in the order %v", got, ready)
	}
}

// Priority Socks (upstream connections) and the others take turns, each
// kind in the order it became readable.
func TestOrderPriorityAlternates(t *testing.T) {
	socks, peers := make([]*Sock, 7), make([]int, 7)
	for i := range socks {
		socks[i], peers[i] = rawPair(t, i >= 3) // 0–2 plain, 3–6 priority
	}
	needOrdered(t, socks[0])
	needDeterministicScheduler(t)
	ready := []int{0, 1, 2, 6, 5, 3, 4}
	want := []int{6, 0, 5, 1, 3, 2, 4}
	if got := wakeOrder(t, socks, peers, ready); !sameOrder(got, want) {
		t.Fatalf("readers ran in the order %v; want %v (ready in the order %v, 3–6 priority)", got, want, ready)
	}
}

// A deadline moved later does not fire at the earlier time: its timer
// files itself again.
func TestOrderDeadlineMovedLater(t *testing.T) {
	s, _ := rawPair(t, false)
	start := time.Now()
	s.SetReadDeadline(start.Add(20 * time.Millisecond))
	s.SetReadDeadline(start.Add(200 * time.Millisecond))
	r := within(t, goRead(s, 1), "Read past its deadline")
	if d := time.Since(start); !errors.Is(r.err, os.ErrDeadlineExceeded) || d < 200*time.Millisecond {
		t.Fatalf("Read returned %v after %v; want a timeout at 200ms", r.err, d)
	}
	// Moved earlier, it fires at the earlier time.
	s.SetReadDeadline(time.Now().Add(time.Hour))
	s.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if r := within(t, goRead(s, 1), "Read past a deadline moved earlier"); !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %v; want a timeout", r.err)
	}
}

// A deadline moved earlier while its timer is being filed again (the
// timer fired early: the deadline had been moved later) is kept: it
// fires at its time, not at the later one the timer was about to be
// filed for.
func TestOrderDeadlineMovedEarlierWhileFiring(t *testing.T) {
	s, _ := rawPair(t, false)
	needOrdered(t, s)
	s.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	s.SetReadDeadline(time.Now().Add(time.Hour)) // the timer stays at 30ms
	var once sync.Once
	hook := func(fired *Sock) {
		if fired != s {
			return
		}
		once.Do(func() {
			// fire has seen the deadline an hour away; another goroutine
			// moves it to 50ms from now before fire files the timer again.
			// It returns at once if it leaves the filing to fire (the
			// bug), or waits for fire's lock to file it itself: then give
			// up waiting for it after a while.
			done := make(chan struct{})
			go func() {
				s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
	fireLoaded.Store(&hook)
	defer fireLoaded.Store(nil)
	if r := within(t, goRead(s, 1), "Read past a deadline moved earlier while its timer fired"); !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %v; want a timeout", r.err)
	}
}

// timerCount is how many timers the ordered poller holds.
func timerCount() int {
	order.mu.Lock()
	defer order.mu.Unlock()
	return len(order.timers)
}

// Closing a Sock takes its timers out: the heap does not keep closed
// sockets until their deadlines.
func TestOrderCloseDropsTimers(t *testing.T) {
	first, _ := rawPair(t, false)
	needOrdered(t, first)
	before := timerCount()
	var socks []*Sock
	for i := 0; i < 50; i++ {
		s, _ := rawPair(t, false)
		s.SetDeadline(time.Now().Add(time.Hour))
		socks = append(socks, s)
	}
	if n := timerCount(); n != before+100 {
		t.Fatalf("%d timers with 50 Socks' read and write deadlines set; want %d", n, before+100)
	}
	for _, s := range socks {
		s.Close()
	}
	if n := timerCount(); n != before {
		t.Fatalf("%d timers after closing the Socks; want %d", n, before)
	}
}

// checkArmed asserts the dispatcher's wake-up is set no later than the
// earliest timer (it may be earlier: rearm is lazy).
func checkArmed(t *testing.T, what string) {
	t.Helper()
	order.mu.Lock()
	defer order.mu.Unlock()
	if len(order.timers) > 0 && (order.armed <= 0 || order.armed > order.timers[0].when) {
		t.Fatalf("%s: wake-up at %d, earliest timer at %d", what, order.armed, order.timers[0].when)
	}
}

// A wake-up left earlier than needed (the Sock it was for closed) is not
// moved for a later deadline; the deadline still fires, after the
// dispatcher's spurious wake-up set the next one.
func TestOrderLazyRearm(t *testing.T) {
	a, _ := rawPair(t, false)
	needOrdered(t, a)
	a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	checkArmed(t, "a deadline set")
	a.Close()
	checkArmed(t, "its Sock closed")
	b, _ := rawPair(t, false)
	start := time.Now()
	b.SetReadDeadline(start.Add(80 * time.Millisecond))
	checkArmed(t, "a later deadline set")
	if r := within(t, goRead(b, 1), "Read past a deadline later than the wake-up"); !errors.Is(r.err, os.ErrDeadlineExceeded) || time.Since(start) < 80*time.Millisecond {
		t.Fatalf("Read: %v after %v; want a timeout after 80ms", r.err, time.Since(start))
	}
	rng := rand.New(rand.NewSource(2))
	var socks []*Sock
	for i := 0; i < 300; i++ {
		if len(socks) > 0 && rng.Intn(3) == 0 {
			j := rng.Intn(len(socks))
			socks[j].Close()
			socks = append(socks[:j], socks[j+1:]...)
			checkArmed(t, "a Sock closed")
			continue
		}
		s, _ := rawPair(t, false)
		s.SetReadDeadline(time.Now().Add(time.Duration(1+rng.Intn(100)) * time.Second))
		socks = append(socks, s)
		checkArmed(t, "a deadline set")
	}
}

// The heap keeps its order and its positions through random pushes,
// changes and removals.
func TestTimerHeap(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	socks := make([]*Sock, 200)
	for i := range socks {
		socks[i] = &Sock{}
	}
	var h timerHeap
	check := func() {
		for i := range h {
			if got := int(h[i].s.timerIdx[h[i].mode]); got != i+1 {
				t.Fatalf("entry %d has position %d recorded", i, got-1)
			}
			if i > 0 && h[(i-1)/2].when > h[i].when {
				t.Fatalf("entry %d earlier than its parent", i)
			}
		}
	}
	for step := 0; step < 5000; step++ {
		s, m := socks[rng.Intn(len(socks))], rng.Intn(2)
		switch i := int(s.timerIdx[m]) - 1; {
		case i < 0:
			h.push(timer{when: rng.Int63n(1000) + 1, s: s, mode: m})
		case rng.Intn(2) == 0:
			h.remove(i)
			if s.timerIdx[m] != 0 {
				t.Fatal("removed entry still has a position")
			}
		default:
			h[i].when = rng.Int63n(1000) + 1
			h.down(i)
			h.up(i)
		}
		check()
	}
	for last := int64(0); len(h) > 0; {
		if h[0].when < last {
			t.Fatal("entries left the heap out of order")
		}
		last = h[0].when
		h.remove(0)
		check()
	}
}

// A descriptor past the poller's table stays on the runtime's poller.
func TestOrderRefusesLargeDescriptors(t *testing.T) {
	s, _ := rawPair(t, false)
	needOrdered(t, s)
	if order.register(&Sock{fd: slotChunks * slotChunk}) {
		t.Fatal("register took a descriptor beyond the slot table")
	}
}

// Many connections in both directions at once, on every P: every byte
// arrives, in order (run with -race).
func TestOrderManyPingPongs(t *testing.T) {
	const conns, rounds = 32, 300
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := 0; c < conns; c++ {
		s, peer := sockPair(t)
		wg.Add(2)
		go func() { // echo on the peer's side
			defer wg.Done()
			buf := make([]byte, 1)
			for i := 0; i < rounds; i++ {
				if _, err := peer.Read(buf); err != nil {
					errs <- err
					return
				}
				if _, err := peer.Write(buf); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 1)
			for i := 0; i < rounds; i++ {
				s.SetReadDeadline(time.Now().Add(time.Minute))
				if _, err := s.Write([]byte{byte(i)}); err != nil {
					errs <- err
					return
				}
				s.WaitRead()
				if _, err := s.Read(buf); err != nil {
					errs <- err
					return
				}
				if buf[0] != byte(i) {
					errs <- errors.New("echo out of order")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// A second goroutine waiting for the same direction is a caller's bug the
// runtime's poller throws on; here it panics rather than spin.
func TestOrderSecondWaiterPanics(t *testing.T) {
	s, peer := rawPair(t, false)
	needOrdered(t, s)
	done := make(chan struct{})
	go func() { s.WaitRead(); close(done) }()
	for atomic.LoadUintptr(&s.park[0]) <= parkWait {
		runtime.Gosched()
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a second WaitRead did not panic")
			}
		}()
		s.WaitRead()
	}()
	syscall.Write(peer, []byte("x"))
	<-done
}

// TestEpollEventLayout checks our struct epoll_event against the syscall
// package's for this architecture: packed on amd64, aligned on arm64, with
// the data (our descriptor and seq) where the kernel puts it.
func TestEpollEventLayout(t *testing.T) {
	var ours epollEvent
	var theirs syscall.EpollEvent
	if unsafe.Sizeof(ours) != unsafe.Sizeof(theirs) || unsafe.Offsetof(ours.fd) != unsafe.Offsetof(theirs.Fd) {
		t.Fatalf("epollEvent: size %d, data at %d; syscall.EpollEvent: size %d, Fd at %d",
			unsafe.Sizeof(ours), unsafe.Offsetof(ours.fd), unsafe.Sizeof(theirs), unsafe.Offsetof(theirs.Fd))
	}
}

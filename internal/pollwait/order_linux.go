//go:build linux && (amd64 || arm64) && go1.26 && !go1.27

package pollwait

import (
	"context"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// The ordered poller: Socks served in the order the kernel reports them
// ready, as nginx's event loop serves its connections.
//
// The runtime's poller hands the goroutines one epoll_wait made ready to
// the scheduler in the reverse of the kernel's order (netpoll builds its
// list by prepending), so under a closed-loop load the connection that
// became ready first is served last, and then, having been answered last,
// sends its next request last and is served first: waits alternate
// between almost nothing and almost two rounds. The mean is the same, the
// tail longer (docs/benchmarks.md, "p99"): nginx's p99 at a lower median.
//
// Here Socks are registered with an epoll instance of our own instead,
// edge-triggered like the runtime's. One goroutine, the dispatcher, waits
// for that epoll descriptor on the runtime poller (it is the only one of
// ours the runtime sees), reads the ready list without blocking, and makes
// each waiting goroutine runnable in the kernel's order. A goroutine made
// ready goes to the scheduler's "run next" slot and pushes the previous
// one to the tail of the run queue, so the dispatcher wakes the first
// event's goroutine last: it takes the slot and runs first, the others
// follow in order. It then parks again, and since the runtime polls only
// when its run queue is empty, the next batch is read once this one has
// run: one round at a time, in order.
//
// Deadlines are timers of the dispatcher's (a heap; lazily kept: a
// deadline moved later keeps its entry, which re-files itself when it
// fires), armed as the read deadline of the dispatcher's own descriptor.
//
// Parking and waking use the runtime's gopark and goready (go:linkname;
// both are kept for outside users, see go.dev/issue/67401) with the
// runtime poller's own protocol on one word per direction: nil, ready,
// wait (about to park) or the parked goroutine.

const orderSupported = true

//go:linkname gopark runtime.gopark
func gopark(unlockf func(uintptr, unsafe.Pointer) bool, lock unsafe.Pointer, reason uint8, traceReason uint8, traceskip int)

//go:linkname goready runtime.goready
func goready(gp uintptr, traceskip int)

// The runtime's waitReasonIOWait and traceBlockNet (Go 1.26, the release
// this file is built for): what a goroutine stack dump and the execution
// tracer show for a parked reader.
const (
	waitReasonIOWait = 2
	traceBlockNet    = 2
)

// casUintptr is a compare-and-swap that the race detector does not
// instrument (cas_amd64.s, cas_arm64.s): commitPark runs on the
// scheduler's stack, where the detector's atomics cannot run.
func casUintptr(addr *uintptr, old, new uintptr) bool

// States of a direction's park word; anything else is a parked *g.
const (
	parkNil   uintptr = 0
	parkReady uintptr = 1
	parkWait  uintptr = 2
)

// commitPark is gopark's unlock function: it publishes the goroutine in
// the park word unless the word left parkWait meanwhile (readiness,
// close or deadline), in which case gopark returns at once.
//
//go:nosplit
//go:norace
func commitPark(gp uintptr, word unsafe.Pointer) bool {
	return casUintptr((*uintptr)(word), parkWait, gp)
}

const (
	epollIn    = 0x1
	epollOut   = 0x4
	epollErr   = 0x8
	epollHup   = 0x10
	epollRdHup = 0x2000
	epollET    = 1 << 31
)

// orderPoller.slots maps a descriptor to its Sock, for the dispatcher: two
// levels of atomic pointers, so lookups take no lock. A descriptor beyond
// it is served by the runtime poller instead.
const (
	slotChunkBits = 12
	slotChunk     = 1 << slotChunkBits
	slotChunks    = 1 << 10 // descriptors below 4 Mi
)

type slotChunkT [slotChunk]atomic.Pointer[Sock]

type orderPoller struct {
	epfd  int
	pd    uintptr // epfd on the runtime poller
	slots [slotChunks]atomic.Pointer[slotChunkT]
	seq   atomic.Uint32 // stamps a Sock: events of a closed descriptor's predecessor are dropped

	mu     sync.Mutex
	timers timerHeap
	armed  int64 // the deadline set on pd (0: none)
}

var (
	order     *orderPoller
	orderOnce sync.Once
	// orderOff is the operator's switch for the runtime's order
	// (UPSTREAMD_POLLWAIT=runtime).
	orderOff = os.Getenv("UPSTREAMD_POLLWAIT") == "runtime"
)

// orderStart makes the poller on first use; nil: not available.
func orderStart() *orderPoller {
	orderOnce.Do(func() {
		if orderOff {
			return
		}
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		pd, errno := pollOpen(fd)
		if errno != 0 {
			syscall.Close(fd)
			return
		}
		order = &orderPoller{epfd: fd, pd: pd}
		go func() {
			// Not the labels of the goroutine that made the first Sock.
			pprof.SetGoroutineLabels(context.Background())
			order.dispatch()
		}()
	})
	return order
}

// register adds s (its fd set) to the poller; false: it cannot, use the
// runtime poller.
func (p *orderPoller) register(s *Sock) bool {
	fd := s.fd
	slot := p.slot(fd, true)
	if slot == nil {
		return false
	}
	s.seq = p.seq.Add(1)
	s.ordered = true
	slot.Store(s)
	ev := epollEvent{events: epollIn | epollOut | epollRdHup | epollET, fd: int32(fd), seq: s.seq}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(p.epfd), syscall.EPOLL_CTL_ADD, uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0); e != 0 {
		slot.CompareAndSwap(s, nil)
		s.ordered = false
		return false
	}
	return true
}

// unregister forgets s before its descriptor is closed (closing removes it
// from the epoll set, unless a copy of the descriptor lives on: its events
// are then dropped by the seq check).
func (p *orderPoller) unregister(s *Sock) {
	if slot := p.slot(s.fd, false); slot != nil {
		slot.CompareAndSwap(s, nil)
	}
	p.dropTimers(s)
}

// slot is fd's place in the table, made if create is set; nil: fd is
// beyond the table (or its chunk is not made).
func (p *orderPoller) slot(fd int, create bool) *atomic.Pointer[Sock] {
	if fd < 0 || fd >= slotChunks*slotChunk {
		return nil
	}
	top := &p.slots[fd>>slotChunkBits]
	c := top.Load()
	if c == nil {
		if !create {
			return nil
		}
		top.CompareAndSwap(nil, new(slotChunkT))
		c = top.Load()
	}
	return &c[fd&(slotChunk-1)]
}

// dispatch is the dispatcher goroutine.
func (p *orderPoller) dispatch() {
	var evs [128]epollEvent
	var socks [len(evs)]*Sock
	var pri, oth [len(evs)]uint8 // indexes into evs
	for {
		// Drain the ready list, waking in order; the first event's
		// goroutine is woken last (see the comment at the top).
		var first *Sock
		var firstEv uint32
		for {
			r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(p.epfd), uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0, 0)
			if e == syscall.EINTR {
				continue
			}
			if e != 0 {
				panic("pollwait: epoll_pwait: " + e.Error())
			}
			n := int(r)
			// Priority Socks and the others alternately, each in the
			// kernel's order.
			np, no := 0, 0
			for i := 0; i < n; i++ {
				socks[i] = p.lookup(int(evs[i].fd), evs[i].seq)
				if s := socks[i]; s != nil {
					if s.priority {
						pri[np] = uint8(i)
						np++
					} else {
						oth[no] = uint8(i)
						no++
					}
				}
			}
			for a, b := 0, 0; a < np || b < no; {
				var i uint8
				if a < np && (b >= no || a <= b) {
					i = pri[a]
					a++
				} else {
					i = oth[b]
					b++
				}
				s := socks[i]
				if first == nil {
					first, firstEv = s, evs[i].events
					continue
				}
				s.ioReady(evs[i].events)
			}
			if n < len(evs) {
				break
			}
		}
		if first != nil {
			first.ioReady(firstEv)
		}
		// A timer due makes this return 2 (before readiness).
		if code := pollWait(p.pd, 'r'); code == 2 {
			p.fire()
		}
	}
}

// lookup is the Sock an event is for, nil for one closed since.
func (p *orderPoller) lookup(fd int, seq uint32) *Sock {
	slot := p.slot(fd, false)
	if slot == nil {
		return nil
	}
	if s := slot.Load(); s != nil && s.seq == seq {
		return s
	}
	return nil
}

// ioReady passes an event to s's waiters.
func (s *Sock) ioReady(ev uint32) {
	if ev&(epollIn|epollRdHup|epollHup|epollErr) != 0 {
		s.makeReady(&s.park[0])
	}
	if ev&(epollOut|epollHup|epollErr) != 0 {
		s.makeReady(&s.park[1])
	}
}

func (s *Sock) makeReady(w *uintptr) {
	for {
		old := atomic.LoadUintptr(w)
		if old == parkReady {
			return
		}
		if atomic.CompareAndSwapUintptr(w, old, parkReady) {
			if old > parkWait {
				goready(old, 0)
			}
			return
		}
	}
}

// unpark wakes a goroutine parked on w without readiness (close or
// deadline: it finds out which itself).
func unpark(w *uintptr) {
	for {
		old := atomic.LoadUintptr(w)
		if old == parkNil || old == parkReady {
			return
		}
		if atomic.CompareAndSwapUintptr(w, old, parkNil) {
			if old != parkWait {
				goready(old, 0)
			}
			return
		}
	}
}

// orderWait waits for mode ('r' or 'w') of s, as the runtime's pollWait
// does: 0 ready, 1 closed, 2 deadline passed. As there, readiness
// that woke us wins over a deadline passing or a Close at the same time.
// The caller holds a reference.
func (s *Sock) orderWait(mode int) int {
	m := 0 // the direction: 0 read, 1 write
	if mode == 'w' {
		m = 1
	}
	w := &s.park[m]
	if code := s.waitErr(m); code != 0 {
		return code
	}
	for {
		if atomic.CompareAndSwapUintptr(w, parkReady, parkNil) {
			return 0
		}
		if atomic.LoadUintptr(w) > parkWait {
			panic("pollwait: two goroutines wait for the same direction of a Sock")
		}
		if !atomic.CompareAndSwapUintptr(w, parkNil, parkWait) {
			continue
		}
		// Close and deadlines store their flag, then look at the word:
		// look at the flags again now that it says we wait.
		if code := s.waitErr(m); code != 0 {
			atomic.CompareAndSwapUintptr(w, parkWait, parkNil)
			return code
		}
		gopark(commitPark, unsafe.Pointer(w), waitReasonIOWait, traceBlockNet, 1)
		if atomic.CompareAndSwapUintptr(w, parkReady, parkNil) {
			return 0
		}
		if code := s.waitErr(m); code != 0 {
			return code
		}
		// Woken for a deadline that was set again since: wait on.
	}
}

// waitErr is what a wait for direction m returns without waiting: 1
// closed, 2 deadline passed, 0 neither.
func (s *Sock) waitErr(m int) int {
	if s.state.Load()&sockClosed != 0 {
		return 1
	}
	if s.dl[m].Load() < 0 {
		return 2
	}
	return 0
}

// orderClose wakes s's waiters: they return closed.
func (s *Sock) orderClose() {
	unpark(&s.park[0])
	unpark(&s.park[1])
}

// Deadlines are kept in nanoseconds since clockBase on the monotonic clock.
var clockBase = time.Now()

func monoNow() int64 { return int64(time.Since(clockBase)) }

// orderSetDeadline sets the deadline of mode ('r', 'w' or 'r'+'w', as
// the runtime's pollSetDeadline): none if t is zero.
func (s *Sock) orderSetDeadline(t time.Time, mode int) {
	var dl int64
	if !t.IsZero() {
		dl = int64(t.Sub(clockBase))
		if dl <= monoNow() {
			dl = -1
		}
	}
	for m := 0; m < 2; m++ { // the direction: 0 read, 1 write
		if m == 0 && mode == 'w' || m == 1 && mode == 'r' {
			continue
		}
		s.dl[m].Store(dl)
		switch {
		case dl < 0:
			unpark(&s.park[m])
		case dl > 0:
			// An entry at or before dl re-files itself when it fires.
			if at := s.timerAt[m].Load(); at == 0 || at > dl {
				order.addTimer(s, m, dl)
			}
		}
	}
}

// timer is a heap entry: the deadline of one direction of a Sock. A Sock
// has at most one per direction, its position in s.timerIdx (+1; 0:
// none), both kept under orderPoller.mu.
type timer struct {
	when int64
	s    *Sock
	mode int
}

type timerHeap []timer

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].s.timerIdx[h[i].mode] = int32(i + 1)
	h[j].s.timerIdx[h[j].mode] = int32(j + 1)
}

func (h timerHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].when <= h[i].when {
			break
		}
		h.swap(parent, i)
		i = parent
	}
}

func (h timerHeap) down(i int) {
	for {
		l, r, min := 2*i+1, 2*i+2, i
		if l < len(h) && h[l].when < h[min].when {
			min = l
		}
		if r < len(h) && h[r].when < h[min].when {
			min = r
		}
		if min == i {
			return
		}
		h.swap(i, min)
		i = min
	}
}

func (h *timerHeap) push(t timer) {
	t.s.timed.Store(true)
	*h = append(*h, t)
	t.s.timerIdx[t.mode] = int32(len(*h))
	h.up(len(*h) - 1)
}

// remove takes out entry i.
func (h *timerHeap) remove(i int) {
	a := *h
	last := len(a) - 1
	a[i].s.timerIdx[a[i].mode] = 0
	if i != last {
		a[i] = a[last]
		a[i].s.timerIdx[a[i].mode] = int32(i + 1)
	}
	a[last] = timer{}
	a = a[:last]
	*h = a
	if i < last {
		a.down(i)
		a.up(i)
	}
}

// addTimer makes s's timer for direction m fire at when, unless it fires
// earlier already (it re-files itself then).
func (p *orderPoller) addTimer(s *Sock, m int, when int64) {
	p.mu.Lock()
	if i := int(s.timerIdx[m]) - 1; i < 0 {
		p.timers.push(timer{when: when, s: s, mode: m})
		s.timerAt[m].Store(when)
	} else if when < p.timers[i].when {
		p.timers[i].when = when
		p.timers.up(i)
		s.timerAt[m].Store(when)
	}
	p.rearm()
	p.mu.Unlock()
}

// dropTimers removes s's timers (it is being closed), so that the heap
// does not keep it.
func (p *orderPoller) dropTimers(s *Sock) {
	if !s.timed.Load() {
		return
	}
	p.mu.Lock()
	for m := 0; m < 2; m++ {
		if i := int(s.timerIdx[m]) - 1; i >= 0 {
			p.timers.remove(i)
			s.timerAt[m].Store(0)
		}
	}
	p.mu.Unlock()
}

// rearm makes the dispatcher wake up no later than the earliest timer.
// p.mu held. A wake-up set earlier than that is left alone (as after
// dropTimers): the dispatcher wakes then for nothing, and fire sets the
// next one. So a connection per request, whose read deadline is the
// earliest timer until it closes, costs no runtime timer update per
// connection, only one spurious wake-up per so many seconds.
func (p *orderPoller) rearm() {
	var next int64
	if len(p.timers) > 0 {
		next = p.timers[0].when
	}
	if p.armed != -1 && (next == 0 || p.armed != 0 && p.armed <= next) {
		return
	}
	p.armed = next
	var d int64 // the runtime's form: 0 none, < 0 passed, else from now
	if next != 0 {
		if d = next - monoNow(); d <= 0 {
			d = -1
		}
	}
	pollSetDeadline(p.pd, d, 'r')
}

// fireLoaded, if set (by a test), runs in fire between its look at a
// deadline and what it does with it.
var fireLoaded atomic.Pointer[func(*Sock)]

// fire handles the timers that are due: a deadline moved later is filed
// again, one that passed wakes its waiter.
func (p *orderPoller) fire() {
	now := monoNow()
	p.mu.Lock()
	for len(p.timers) > 0 && p.timers[0].when <= now {
		s, m := p.timers[0].s, p.timers[0].mode
		// From here a deadline set (earlier than the entry) finds timerAt
		// zero and files itself (addTimer waits for mu), or we see it.
		s.timerAt[m].Store(0)
		dl := s.dl[m].Load()
		if f := fireLoaded.Load(); f != nil {
			(*f)(s)
		}
		if dl > now {
			p.timers[0].when = dl
			s.timerAt[m].Store(dl)
			p.timers.down(0)
			continue
		}
		if dl > 0 && !s.dl[m].CompareAndSwap(dl, -1) {
			continue // set again meanwhile: look again
		}
		p.timers.remove(0)
		if dl > 0 {
			unpark(&s.park[m])
		}
	}
	// The runtime keeps our descriptor's deadline marked passed until it
	// is set again: always set it.
	p.armed = -1
	p.rearm()
	p.mu.Unlock()
}

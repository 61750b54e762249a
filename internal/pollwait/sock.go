package pollwait

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// Sock is a connected non-blocking socket served by the runtime poller
// without the os/net layers around it.
//
// An *os.File or net.Conn costs, per connection, an fcntl(F_GETFL) in
// os.NewFile, a finalizer and two or three allocations; per read or write,
// the descriptor's mutex, a reset of the poller state and the scheduler's
// system call hand-off (entersyscall/exitsyscall), which a read or write on
// a non-blocking socket, one that never blocks, does not need. Sock keeps
// only what a connection needs: a reference count so that Close never
// frees the descriptor under a call still using it, and the runtime's
// poll descriptor for waiting and deadlines.
//
// Its methods may be called concurrently, as a net.Conn's: at most one
// reader and one writer at a time, Close and the deadline setters from
// anywhere. Close makes blocked calls return net.ErrClosed; an expired
// deadline makes them return os.ErrDeadlineExceeded (a net.Error whose
// Timeout() is true).
type Sock struct {
	fd int
	pd uintptr // the runtime's poll descriptor (not ordered)
	// state is sockClosed once Close has begun, plus the number of calls
	// using fd and pd; the last one out after Close releases both.
	state atomic.Uint32

	// On the ordered poller (order_linux.go) instead of the
	// runtime's: per direction (read, write) the park word, the deadline
	// (0 none, -1 passed, else on monoNow's clock) and the timer entry's
	// time; seq tells its events from a closed predecessor's.
	ordered  bool
	priority bool // see InitPrioritySock
	seq      uint32
	park     [2]uintptr
	dl       [2]atomic.Int64
	timerAt  [2]atomic.Int64 // for a look without the poller's lock
	timerIdx [2]int32
	timed    atomic.Bool // it has had a timer
}

const sockClosed = 1 << 31

// ErrSockUnsupported is what NewSock returns where it cannot serve a
// descriptor (another OS or toolchain, or UPSTREAMD_POLLWAIT=off): the
// caller wraps the descriptor in an *os.File instead.
var ErrSockUnsupported = errors.New("pollwait: sockets on the runtime poller are not supported here")

// NewSock registers fd, a connected or connecting non-blocking socket,
// with the runtime poller. Sock owns fd from then on (Close closes it).
// It returns ErrSockUnsupported, leaving fd alone, where SockEnabled is
// false.
func NewSock(fd int) (*Sock, error) { return newSock(fd, false) }

func newSock(fd int, priority bool) (*Sock, error) {
	s := new(Sock)
	if err := s.init(fd, priority); err != nil {
		return nil, err
	}
	return s, nil
}

// InitSock is NewSock on a Sock the caller allocated, so that it can
// share one allocation with the caller's own state (h1's accepted
// connection). s must be a zero Sock, and it must not move or be copied
// afterwards: the poller keeps its address.
func InitSock(s *Sock, fd int) error { return s.init(fd, false) }

// InitPrioritySock is InitSock for a socket whose readiness is passed on
// before that of other Socks the same poll found ready: one on which we
// wait for the answer to a request of ours (the proxy's upstream
// connections). Serving an answer completes a request and frees its
// upstream connection for the new requests that follow (which would
// otherwise open connections of their own).
func InitPrioritySock(s *Sock, fd int) error { return s.init(fd, true) }

func (s *Sock) init(fd int, priority bool) error {
	if !SockEnabled() {
		return ErrSockUnsupported
	}
	s.fd, s.priority = fd, priority
	if p := orderStart(); p != nil && p.register(s) {
		return nil
	}
	pd, errno := pollOpen(fd)
	if errno != 0 {
		return os.NewSyscallError("epoll_ctl", syscall.Errno(errno))
	}
	s.pd = pd
	return nil
}

// SockEnabled reports whether NewSock serves descriptors.
func SockEnabled() bool { return sockSupported && !disabled }

// acquire takes a reference for a call using fd or pd; false: closed.
func (s *Sock) acquire() bool {
	for {
		old := s.state.Load()
		if old&sockClosed != 0 {
			return false
		}
		if s.state.CompareAndSwap(old, old+1) {
			return true
		}
	}
}

// release drops a reference; the last one after Close frees fd and pd.
func (s *Sock) release() {
	if s.state.Add(^uint32(0)) == sockClosed {
		if s.ordered {
			order.unregister(s)
		} else {
			pollClose(s.pd)
		}
		closeFD(s.fd)
	}
}

// closeFD closes a Sock's descriptor (a variable for tests, which count).
var closeFD = closeRaw

// Close wakes any blocked call (it returns net.ErrClosed) and closes the
// socket once no call uses it. A second Close returns net.ErrClosed.
func (s *Sock) Close() error {
	// Our own reference keeps pd alive until it is unblocked: the runtime
	// refuses to free a descriptor that was not.
	if !s.acquire() {
		return net.ErrClosed
	}
	for {
		old := s.state.Load()
		if old&sockClosed != 0 {
			s.release()
			return net.ErrClosed
		}
		if s.state.CompareAndSwap(old, old|sockClosed) {
			break
		}
	}
	if s.ordered {
		s.orderClose()
	} else {
		pollUnblock(s.pd)
	}
	s.release()
	return nil
}

// Read reads into p as read(2) does, waiting on the poller while nothing
// is there; 0 bytes read means io.EOF.
func (s *Sock) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !s.acquire() {
		return 0, net.ErrClosed
	}
	n, err := sockRead(s, p)
	s.release()
	return n, err
}

// Write writes all of p, waiting on the poller while the socket's buffer
// is full. It returns how many bytes the kernel took.
func (s *Sock) Write(p []byte) (int, error) { return s.write(p, true) }

// TryWrite writes as much of p as the socket takes without waiting: n <
// len(p) with a nil error means the rest would have to wait. A caller with
// a send timeout arms it only then, as nginx adds its write timer only
// when a send is left incomplete.
func (s *Sock) TryWrite(p []byte) (int, error) { return s.write(p, false) }

func (s *Sock) write(p []byte, wait bool) (int, error) {
	if !s.acquire() {
		return 0, net.ErrClosed
	}
	n, err := sockWrite(s, p, wait)
	s.release()
	return n, err
}

// WaitRead waits until the socket is readable, without reading: see
// Waiter.Wait. Errors (closed, deadline) are left to the Read that follows.
func (s *Sock) WaitRead() {
	if s.acquire() {
		s.wait('r')
		s.release()
	}
}

// WaitWrite waits until the socket is writable (a connect in progress has
// ended); the wake-up may be spurious.
func (s *Sock) WaitWrite() error {
	if !s.acquire() {
		return net.ErrClosed
	}
	err := waitErr(s.wait('w'))
	s.release()
	return err
}

// Control runs f with the descriptor, which stays open while f runs.
func (s *Sock) Control(f func(fd uintptr)) error {
	if !s.acquire() {
		return net.ErrClosed
	}
	f(uintptr(s.fd))
	s.release()
	return nil
}

// SetDeadline sets the read and write deadlines (zero: none).
func (s *Sock) SetDeadline(t time.Time) error { return s.setDeadline(t, 'r'+'w') }

// SetReadDeadline sets the deadline for Read and WaitRead (zero: none).
func (s *Sock) SetReadDeadline(t time.Time) error { return s.setDeadline(t, 'r') }

// SetWriteDeadline sets the deadline for Write and WaitWrite (zero: none).
func (s *Sock) SetWriteDeadline(t time.Time) error { return s.setDeadline(t, 'w') }

func (s *Sock) setDeadline(t time.Time, mode int) error {
	if !s.acquire() {
		return net.ErrClosed
	}
	if s.ordered {
		s.orderSetDeadline(t, mode)
	} else {
		var d int64 // the runtime's form: 0 none, < 0 passed, else from now
		if !t.IsZero() {
			if d = int64(time.Until(t)); d == 0 {
				d = -1
			}
		}
		pollSetDeadline(s.pd, d, mode)
	}
	s.release()
	return nil
}

// wait waits on the poller for mode ('r' or 'w'), returning the runtime's
// codes (see waitErr). The caller holds a reference.
func (s *Sock) wait(mode int) int {
	if s.ordered {
		return s.orderWait(mode)
	}
	return pollWait(s.pd, mode)
}

// waitErr turns the runtime's wait result into the error os and net give.
func waitErr(code int) error {
	switch code {
	case 0:
		return nil
	case 1:
		return net.ErrClosed
	case 2:
		return os.ErrDeadlineExceeded
	}
	return errors.New("pollwait: descriptor not pollable")
}

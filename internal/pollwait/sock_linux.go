//go:build linux && go1.21 && !go1.27

package pollwait

import (
	"io"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

const sockSupported = true

// The runtime poller's entry points, as internal/poll declares them (see
// runtime_pollWait in pollwait_runtime.go); their signatures have been the
// same since Go 1.9.

//go:linkname runtime_pollServerInit internal/poll.runtime_pollServerInit
func runtime_pollServerInit()

//go:linkname runtime_pollOpen internal/poll.runtime_pollOpen
func runtime_pollOpen(fd uintptr) (uintptr, int)

//go:linkname runtime_pollClose internal/poll.runtime_pollClose
func runtime_pollClose(ctx uintptr)

//go:linkname runtime_pollUnblock internal/poll.runtime_pollUnblock
func runtime_pollUnblock(ctx uintptr)

//go:linkname runtime_pollSetDeadline internal/poll.runtime_pollSetDeadline
func runtime_pollSetDeadline(ctx uintptr, d int64, mode int)

var serverInit sync.Once

func pollOpen(fd int) (uintptr, int) {
	serverInit.Do(runtime_pollServerInit)
	return runtime_pollOpen(uintptr(fd))
}

func pollClose(pd uintptr)                       { runtime_pollClose(pd) }
func pollUnblock(pd uintptr)                     { runtime_pollUnblock(pd) }
func pollSetDeadline(pd uintptr, d int64, m int) { runtime_pollSetDeadline(pd, d, m) }
func pollWait(pd uintptr, mode int) int          { return runtime_pollWait(pd, mode) }

// sockRead and sockWrite call read(2) and write(2) directly (RawSyscall):
// on a non-blocking socket they never block, so the scheduler need not be
// told, which syscall.Read does at a cost of a few hundred instructions.
// Under the race detector they go through syscall.Read and syscall.Write
// instead, whose annotations tell it that data written to a socket and
// read at the other end orders the two goroutines (tests rely on that).

func sockRead(s *Sock, p []byte) (int, error) {
	for {
		n, e := rawRead(s.fd, p)
		switch e {
		case 0:
			if n == 0 {
				return 0, io.EOF
			}
			return int(n), nil
		case syscall.EINTR:
		case syscall.EAGAIN:
			if err := waitErr(s.wait('r')); err != nil {
				return 0, err
			}
		default:
			return 0, os.NewSyscallError("read", e)
		}
	}
}

func sockWrite(s *Sock, p []byte, wait bool) (int, error) {
	written := 0
	for written < len(p) {
		n, e := rawWrite(s.fd, p[written:])
		switch e {
		case 0:
			written += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			if !wait {
				return written, nil
			}
			if err := waitErr(s.wait('w')); err != nil {
				return written, err
			}
		default:
			return written, os.NewSyscallError("write", e)
		}
	}
	return written, nil
}

// closeRaw closes a descriptor without the scheduler hand-off: closing a
// socket without SO_LINGER does not block.
func closeRaw(fd int) error {
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0); e != 0 {
		return e
	}
	return nil
}

func rawRead(fd int, p []byte) (int, syscall.Errno) {
	if raceBuild {
		return errnoOf(syscall.Read(fd, p))
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

func rawWrite(fd int, p []byte) (int, syscall.Errno) {
	if raceBuild {
		return errnoOf(syscall.Write(fd, p))
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

func errnoOf(n int, err error) (int, syscall.Errno) {
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return n, 0
}

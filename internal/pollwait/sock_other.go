//go:build !(linux && go1.21 && !go1.27)

package pollwait

const sockSupported = false

// Never called: NewSock returns ErrSockUnsupported first.

func pollOpen(int) (uintptr, int)         { panic("pollwait: no Sock support") }
func pollClose(uintptr)                   {}
func pollUnblock(uintptr)                 {}
func pollSetDeadline(uintptr, int64, int) {}
func pollWait(uintptr, int) int           { return 0 }
func sockRead(*Sock, []byte) (int, error) { return 0, ErrSockUnsupported }
func sockWrite(*Sock, []byte, bool) (int, error) {
	return 0, ErrSockUnsupported
}
func closeRaw(int) error { return ErrSockUnsupported }

//go:build linux && go1.26 && !go1.27

package pollwait

// epollEvent is struct epoll_event, which arm64 aligns: events, 4 bytes of
// padding, then 8 bytes of data, which are ours: the descriptor and the
// Sock's seq.
type epollEvent struct {
	events uint32
	_      uint32
	fd     int32
	seq    uint32
}

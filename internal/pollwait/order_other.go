//go:build !(linux && (amd64 || arm64) && go1.26 && !go1.27)

package pollwait

import "time"

// The ordered poller needs the runtime's gopark/goready (checked against
// Go 1.26), the layout of struct epoll_event and a compare-and-swap in
// assembly, written for linux/amd64 and linux/arm64 only: elsewhere Socks
// stay on the runtime poller.

const orderSupported = false

type orderPoller struct{}

func orderStart() *orderPoller                  { return nil }
func (*orderPoller) register(*Sock) bool        { return false }
func (*orderPoller) unregister(*Sock)           {}
func (s *Sock) orderWait(int) int               { return 0 }
func (s *Sock) orderClose()                     {}
func (s *Sock) orderSetDeadline(time.Time, int) {}

var order *orderPoller

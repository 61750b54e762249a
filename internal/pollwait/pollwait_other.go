//go:build !(unix && go1.21 && !go1.27)

package pollwait

const supported = false

func newWaiter(any) Waiter { return Waiter{} }

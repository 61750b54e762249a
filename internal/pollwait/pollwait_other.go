//go:build !(unix && go1.21 && !go1.27)

package pollwait

func newWaiter(any) Waiter { return Waiter{} }

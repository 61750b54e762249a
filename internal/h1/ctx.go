package h1

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// connCtx is the context of every request on one connection. net/http
// makes a cancelCtx per request and cancels it when the handler returns;
// here one object lives as long as the connection and is cancelled when
// the connection is found closed (see the package comment). Its Done
// channel is made on first use, and it implements the AfterFunc method
// that context.AfterFunc looks for, so watching it costs no goroutine.
type connCtx struct {
	parent context.Context
	local  net.Addr

	mu    sync.Mutex
	done  chan struct{}
	err   error
	funcs []*afterFunc
}

type afterFunc struct{ f func() }

func (x *connCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

func (x *connCtx) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done == nil {
		x.done = make(chan struct{})
		if x.err != nil {
			close(x.done)
		}
	}
	return x.done
}

func (x *connCtx) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

func (x *connCtx) Value(key any) any {
	if key == http.LocalAddrContextKey {
		return x.local
	}
	return x.parent.Value(key)
}

// AfterFunc arranges for f to run once the context is cancelled
// (context.AfterFunc calls it with a function that starts the user's
// function on its own goroutine).
func (x *connCtx) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	x.mu.Lock()
	if x.err != nil {
		x.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	x.funcs = append(x.funcs, a)
	x.mu.Unlock()
	return func() bool {
		x.mu.Lock()
		defer x.mu.Unlock()
		for i, g := range x.funcs {
			if g == a {
				last := len(x.funcs) - 1
				x.funcs[i] = x.funcs[last]
				x.funcs[last] = nil
				x.funcs = x.funcs[:last]
				return true
			}
		}
		return false
	}
}

// watched reports whether anyone waits on the context: only then is the
// client check worth a syscall.
func (x *connCtx) watched() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err == nil && (x.done != nil || len(x.funcs) > 0)
}

func (x *connCtx) cancel() {
	x.mu.Lock()
	if x.err != nil {
		x.mu.Unlock()
		return
	}
	x.err = context.Canceled
	if x.done != nil {
		close(x.done)
	}
	fs := x.funcs
	x.funcs = nil
	x.mu.Unlock()
	for _, a := range fs {
		a.f()
	}
}

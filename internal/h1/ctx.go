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
	conn   net.Conn // its LocalAddr, asked for when a handler wants it

	mu    sync.Mutex
	done  chan struct{}
	err   error
	funcs []watch
	key   uint64 // the last key handed out; 0 is never used
}

// watch is one registration of AfterFunc or WatchCancel. It is stored by
// value and found again by its key, so registering costs no allocation once
// the slice has grown.
type watch struct {
	key uint64
	f   func()
}

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
		return x.conn.LocalAddr()
	}
	return x.parent.Value(key)
}

// AfterFunc arranges for f to run once the context is cancelled
// (context.AfterFunc calls it with a function that starts the user's
// function on its own goroutine). It costs one allocation, the stop
// function.
func (x *connCtx) AfterFunc(f func()) (stop func() bool) {
	key, ok := x.WatchCancel(f)
	if !ok {
		go f()
		return func() bool { return false }
	}
	return func() bool { return x.UnwatchCancel(key) }
}

// WatchCancel registers f to run when the context is cancelled and returns
// the key that UnwatchCancel takes. It is AfterFunc without allocations,
// for the proxy, which watches the client during every proxied request: f
// runs synchronously on the goroutine that cancels (the connection's own,
// the client check, Close or Shutdown), so it must be quick and must not
// block. If the context is already cancelled, f is not registered and ok
// is false.
func (x *connCtx) WatchCancel(f func()) (key uint64, ok bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.err != nil {
		return 0, false
	}
	x.key++
	x.funcs = append(x.funcs, watch{key: x.key, f: f})
	return x.key, true
}

// UnwatchCancel removes the registration of key. It returns false if the
// cancellation already took it: f has run or is about to run.
func (x *connCtx) UnwatchCancel(key uint64) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, w := range x.funcs {
		if w.key == key {
			last := len(x.funcs) - 1
			x.funcs[i] = x.funcs[last]
			x.funcs[last] = watch{}
			x.funcs = x.funcs[:last]
			return true
		}
	}
	return false
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
	for _, w := range fs {
		w.f()
	}
}

package proxy

import (
	"io"
	"net"
	"testing"
	"time"
)

// pipeConn returns a pooled connection over net.Pipe and a channel closed
// when the pool closes it.
func pipeConn(t *testing.T, addr string) (*pconn, chan struct{}) {
	t.Helper()
	a, b := net.Pipe()
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, b) // returns when a is closed
		b.Close()
		close(closed)
	}()
	t.Cleanup(func() { a.Close() })
	return &pconn{nc: a, addr: addr, requests: 1}, closed
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(5 * time.Second):
		return false
	}
}

func isOpen(ch chan struct{}) bool {
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

func TestPoolLRU(t *testing.T) {
	p := NewPool(2, time.Minute, 0)
	defer p.Close()
	c1, closed1 := pipeConn(t, "a")
	c2, closed2 := pipeConn(t, "b")
	c3, closed3 := pipeConn(t, "a")
	p.put(c1, time.Now())
	p.put(c2, time.Now())
	p.put(c3, time.Now()) // full: evicts c1, the least recently used
	if !isClosed(closed1) {
		t.Fatal("LRU connection not closed")
	}
	if p.Idle() != 2 || !isOpen(closed2) || !isOpen(closed3) {
		t.Fatalf("idle %d", p.Idle())
	}
	if got := p.get("a", time.Now()); got != c3 {
		t.Fatalf("get(a) = %p, want c3", got)
	}
	if got := p.get("a", time.Now()); got != nil {
		t.Fatalf("second get(a) = %p", got)
	}
	if got := p.get("b", time.Now()); got != c2 {
		t.Fatalf("get(b) = %p", got)
	}
	if p.Idle() != 0 {
		t.Fatalf("idle %d", p.Idle())
	}
}

func TestPoolPerAddressLIFO(t *testing.T) {
	p := NewPool(8, time.Minute, 0)
	defer p.Close()
	var cs []*pconn
	for i := 0; i < 4; i++ {
		addr := "a"
		if i%2 == 1 {
			addr = "b"
		}
		c, _ := pipeConn(t, addr)
		cs = append(cs, c)
		p.put(c, time.Now())
	}
	// Most recently idled first, per address.
	for _, want := range []*pconn{cs[2], cs[0]} {
		if got := p.get("a", time.Now()); got != want {
			t.Fatalf("get(a) = %p, want %p", got, want)
		}
	}
	for _, want := range []*pconn{cs[3], cs[1]} {
		if got := p.get("b", time.Now()); got != want {
			t.Fatalf("get(b) = %p, want %p", got, want)
		}
	}
}

func TestPoolExpiry(t *testing.T) {
	p := NewPool(8, time.Minute, 0)
	defer p.Close()
	c, closed := pipeConn(t, "a")
	p.put(c, time.Now())
	p.mu.Lock()
	c.idleAt = time.Now().Add(-2 * time.Minute) // idle longer than keepalive_timeout
	p.mu.Unlock()
	if got := p.get("a", time.Now()); got != nil {
		t.Fatal("expired connection returned")
	}
	if !isClosed(closed) || p.Idle() != 0 {
		t.Fatal("expired connection not closed")
	}
}

func TestPoolSweep(t *testing.T) {
	p := NewPool(8, 20*time.Millisecond, 0)
	defer p.Close()
	c1, closed1 := pipeConn(t, "a")
	c2, closed2 := pipeConn(t, "b")
	p.put(c1, time.Now())
	p.put(c2, time.Now())
	// The timer closes idle connections without any further pool use.
	if !isClosed(closed1) || !isClosed(closed2) {
		t.Fatal("idle connections not closed by the keepalive timeout")
	}
	if p.Idle() != 0 {
		t.Fatalf("idle %d", p.Idle())
	}
	// The timer re-arms for later connections.
	c3, closed3 := pipeConn(t, "a")
	p.put(c3, time.Now())
	if !isClosed(closed3) {
		t.Fatal("timer not re-armed")
	}
}

func TestPoolRequestsAndClose(t *testing.T) {
	p := NewPool(8, time.Minute, 3)
	c, closed := pipeConn(t, "a")
	c.requests = 3 // reached keepalive_requests
	p.put(c, time.Now())
	if !isClosed(closed) || p.Idle() != 0 {
		t.Fatal("connection past keepalive_requests kept")
	}
	c2, closed2 := pipeConn(t, "a")
	p.put(c2, time.Now())
	p.Close()
	if !isClosed(closed2) || p.Idle() != 0 {
		t.Fatal("Close left idle connections")
	}
	c3, closed3 := pipeConn(t, "a")
	p.put(c3, time.Now())
	if !isClosed(closed3) {
		t.Fatal("closed pool kept a connection")
	}
	var nilPool *Pool
	c4, closed4 := pipeConn(t, "a")
	nilPool.put(c4, time.Now())
	if nilPool.get("a", time.Now()) != nil || !isClosed(closed4) {
		t.Fatal("nil pool")
	}
	nilPool.Close()
}

// TestPoolAddrListsBounded: an address's list stays in the pool when it
// empties (no map insert/delete per request), but lists of addresses gone
// from the traffic (peers removed at run time) are pruned.
func TestPoolAddrListsBounded(t *testing.T) {
	p := NewPool(2, time.Minute, 0)
	defer p.Close()
	c, _ := pipeConn(t, "a")
	for i := 0; i < 1000; i++ {
		addr := "10.0.0." + itoa(i)
		c.addr = addr
		p.put(c, time.Now())
		if got := p.get(addr, time.Now()); got != c {
			t.Fatalf("%s: get = %p, want the connection just put", addr, got)
		}
		if p.Idle() != 0 {
			t.Fatalf("%s: idle %d after get", addr, p.Idle())
		}
	}
	p.mu.Lock()
	n := len(p.byAddr)
	p.mu.Unlock()
	if n > 2*2+64 {
		t.Fatalf("%d address lists kept for a pool of 2", n)
	}
	if n == 0 {
		t.Fatal("the last address's list was not kept")
	}
}

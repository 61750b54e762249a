package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"upstreamd/internal/pollwait"
	"upstreamd/internal/testutil"
)

// TestResponseWaitWithoutFailedRead: the first read of a response goes
// through the connection's poll waiter (no read that can only fail), on
// connections from dialRaw and on keepalive reuse; a backend that answers
// late is still waited for, and one that never answers hits the read
// timeout while we wait.
func TestResponseWaitWithoutFailedRead(t *testing.T) {
	release := make(chan struct{})
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/late":
			<-release
		case "/never":
			<-r.Context().Done()
			return
		}
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	u := newUpstream(t, addrOf(srv))
	pool := NewPool(4, time.Minute, 0)
	defer pool.Close()
	tg := Target{Upstream: u, Pool: pool}
	for i := 0; i < 3; i++ {
		rec, _, logs, _ := serve(t, context.Background(), getOut("/"), tg, baseOptions())
		if rec.Code != 200 || rec.Body.String() != "ok /" {
			t.Fatalf("request %d: %d %q %q", i, rec.Code, rec.Body.String(), logs.all())
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d upstream connections, want 1 kept alive", n)
	}
	pc := pool.get(addrOf(srv), time.Now())
	if pc == nil {
		t.Fatal("no idle connection")
	}
	if _, ok := pc.nc.(*pollwait.Sock); ok != pollwait.SockEnabled() {
		t.Fatalf("dialRaw's connection is a %T; pollwait.SockEnabled() = %v", pc.nc, pollwait.SockEnabled())
	} else if !ok && (!pc.waiter.Made() || pc.waiter.Active() != pollwait.Enabled()) {
		t.Fatalf("response read without the poll waiter (made %v, active %v)", pc.waiter.Made(), pc.waiter.Active())
	}
	pool.put(pc, time.Now())

	go func() {
		time.Sleep(50 * time.Millisecond) // the proxy is waiting by then, or about to
		close(release)
	}()
	rec, _, logs, _ := serve(t, context.Background(), getOut("/late"), tg, baseOptions())
	if rec.Code != 200 || rec.Body.String() != "ok /late" {
		t.Fatalf("late response: %d %q %q", rec.Code, rec.Body.String(), logs.all())
	}

	o := baseOptions()
	o.ReadTimeout = 100 * time.Millisecond
	o.NextUpstream = NextOff
	start := time.Now()
	rec, _, logs, _ = serve(t, context.Background(), getOut("/never"), tg, o)
	if rec.Code != 504 || !logs.has("upstream timed out (110: Connection timed out) while reading response header from upstream") {
		t.Fatalf("silent backend: %d %q", rec.Code, logs.all())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("read timeout took %v", d)
	}
}

// TestSendTimeout: a request the upstream does not read times out after
// proxy_send_timeout (armed only once the socket stops taking data).
func TestSendTimeout(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	addr := testutil.TCPServer(t, func(c net.Conn) { <-stop }) // accepts, never reads
	u := newUpstream(t, addr)
	o := baseOptions()
	o.SendTimeout = 150 * time.Millisecond
	o.NextUpstream = NextOff
	out := getOut("/")
	out.Method = "POST"
	out.Body = make([]byte, 32<<20) // more than both socket buffers hold
	start := time.Now()
	rec, _, logs, _ := serve(t, context.Background(), out, Target{Upstream: u}, o)
	if rec.Code != 504 || !logs.has("upstream timed out (110: Connection timed out) while sending request to upstream") {
		t.Fatalf("upstream not reading: %d %q", rec.Code, logs.all())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("send timeout took %v", d)
	}
}

// TestWithoutPollwait: the package's tests pass with UPSTREAMD_POLLWAIT=off
// as well (upstream connections in an *os.File, reads without the wait).
func TestWithoutPollwait(t *testing.T) {
	testutil.RerunWithEnv(t, "UPSTREAMD_POLLWAIT=off")
}

// TestWithRuntimeOrder: the package's tests pass with Socks on the
// runtime's poller instead of pollwait's ordered one
// (UPSTREAMD_POLLWAIT=runtime).
func TestWithRuntimeOrder(t *testing.T) {
	testutil.RerunWithEnv(t, "UPSTREAMD_POLLWAIT=runtime")
}

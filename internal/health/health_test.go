package health

import (
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"upstreamd/internal/config"
	"upstreamd/internal/errlog"
	"upstreamd/internal/testutil"
	"upstreamd/internal/upstream"
)

func TestEvaluate(t *testing.T) {
	re := regexp.MustCompile
	m := &config.Match{Name: "m", Rules: []config.MatchRule{
		{Kind: "status", Codes: [][2]int{{200, 399}}},
		{Kind: "status", Negate: true, Codes: [][2]int{{302, 302}}},
		{Kind: "header", Header: "content-type", Op: "~", Re: re("text/html")},
		{Kind: "header", Header: "X-A", Op: "=", Value: "b"},
		{Kind: "header", Header: "X-C", Op: "!=", Value: "c", Negate: true},
		{Kind: "header", Header: "X-Present"},
		{Kind: "header", Header: "X-Bad", Negate: true},
		{Kind: "body", Op: "~", Re: re("ok")},
		{Kind: "body", Op: "!~", Re: re("err"), Negate: true},
	}}
	good := func() http.Header {
		return http.Header{"Content-Type": {"text/html; charset=utf-8"}, "X-A": {"b"}, "X-C": {"d"}, "X-Present": {""}}
	}
	tests := []struct {
		name   string
		status int
		edit   func(http.Header)
		body   string
		fails  string // the rule reported, "" = passes
	}{
		{"all pass", 200, nil, "all ok", ""},
		{"3xx", 301, nil, "ok", ""},
		{"status out of range", 500, nil, "ok", "status 200-399"},
		{"negated status", 302, nil, "ok", "status ! 302"},
		{"content type", 200, func(h http.Header) { h.Set("Content-Type", "text/plain") }, "ok", "header content-type ~"},
		{"header missing for =", 200, func(h http.Header) { h.Del("X-A") }, "ok", "header X-A ="},
		{"header value differs", 200, func(h http.Header) { h.Set("X-A", "x") }, "ok", "header X-A ="},
		{"!= with equal value", 200, func(h http.Header) { h.Set("X-C", "c") }, "ok", "header X-C !="},
		{"!= needs the header", 200, func(h http.Header) { h.Del("X-C") }, "ok", "header X-C !="},
		{"presence", 200, func(h http.Header) { h.Del("X-Present") }, "ok", "header X-Present"},
		{"absence", 200, func(h http.Header) { h.Set("X-Bad", "1") }, "ok", "header ! X-Bad"},
		{"body lacks", 200, nil, "fine", "body ~"},
		{"body has err", 200, nil, "ok but err", "body !~"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Args are what the messages print; fill them as the config does.
			for i := range m.Rules {
				r := &m.Rules[i]
				r.Args = nil
				if r.Negate && r.Op == "" {
					r.Args = append(r.Args, "!")
				}
				switch r.Kind {
				case "status":
					r.Args = []string{"200-399"}
					if r.Negate {
						r.Args = []string{"!", "302"}
					}
				case "header":
					r.Args = append(r.Args, r.Header)
					if r.Op != "" {
						r.Args = append(r.Args, r.Op)
					}
				case "body":
					r.Args = []string{r.Op}
				}
			}
			h := good()
			if tc.edit != nil {
				tc.edit(h)
			}
			err := Evaluate(m, tc.status, h, []byte(tc.body))
			if tc.fails == "" {
				if err != nil {
					t.Fatalf("unexpected failure: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), `does not match "m": `+tc.fails) {
				t.Fatalf("err %v, want the rule %q", err, tc.fails)
			}
		})
	}
}

// syncBuf is a log sink the test reads while the code under test writes.
type syncBuf = testutil.Buffer

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// backend is an httptest server whose health answer can be switched.
type backend struct {
	*httptest.Server
	status atomic.Int32
	hosts  chan string
}

func newBackend(t *testing.T) *backend {
	b := &backend{hosts: make(chan string, 100)}
	b.status.Store(200)
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case b.hosts <- r.Host + " " + r.URL.RequestURI():
		default:
		}
		w.WriteHeader(int(b.status.Load()))
	}))
	t.Cleanup(b.Close)
	return b
}

func checkConf(hcs ...*config.HealthCheck) *config.Config {
	for _, hc := range hcs {
		if hc.Type == "" {
			hc.Type = "http"
		}
		if hc.URI == "" {
			hc.URI = "/"
		}
		hc.ConnectTimeout, hc.ReadTimeout = time.Second, time.Second
	}
	return &config.Config{HTTP: &config.HTTP{HealthChecks: hcs}}
}

func newUpstream(t *testing.T, addrs ...string) (*upstream.Registry, *upstream.Upstream) {
	var specs []upstream.ServerSpec
	for _, a := range addrs {
		specs = append(specs, upstream.DefaultSpec(a, a))
	}
	u, err := upstream.New(upstream.Options{Name: "backend"}, specs)
	if err != nil {
		t.Fatal(err)
	}
	reg := upstream.NewRegistry()
	_ = reg.Add(u)
	return reg, u
}

// closedAddr is an address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestCheckerFailsAndPasses(t *testing.T) {
	b := newBackend(t)
	addr := b.Listener.Addr().String()
	reg, u := newUpstream(t, addr)
	var logs syncBuf
	stop := Start(checkConf(&config.HealthCheck{Upstream: "backend", Interval: 20 * time.Millisecond,
		Fails: 2, Passes: 3, URI: "/hc", Host: "example.org"}), reg, nil, errlog.New(errlog.Warn, &logs))
	defer stop()
	p := func() *upstream.Peer { return u.Snapshot().Primary[0] }

	if got := <-b.hosts; got != "example.org /hc" {
		t.Fatalf("probe %q, want Host example.org and /hc", got)
	}
	waitFor(t, "first checks", time.Second, func() bool { return p().Health().Checks >= 2 })
	if h := p().Health(); h.State != upstream.HealthHealthy || !h.LastPassed || p().Status() != "up" {
		t.Fatalf("healthy backend: %+v %s", h, p().Status())
	}

	b.status.Store(500)
	waitFor(t, "unhealthy", time.Second, func() bool { return p().Status() == "unhealthy" })
	h := p().Health()
	if h.Fails < 2 || h.Unhealthy != 1 || h.LastPassed {
		t.Fatalf("after failures: %+v", h)
	}
	want := "[warn] "
	if l := logs.String(); !strings.Contains(l, want) ||
		!strings.Contains(l, "peer "+addr+" in upstream backend is unhealthy: status 500 is not 2xx or 3xx") {
		t.Fatalf("log %q", l)
	}

	// Passes are counted in a row: it stays unhealthy until three passes.
	b.status.Store(200)
	checks := p().Health().Checks
	waitFor(t, "healthy", time.Second, func() bool { return p().Status() == "up" })
	if n := p().Health().Checks - checks; n < 3 {
		t.Fatalf("healthy after %d passes, want >= 3", n)
	}
	if !strings.Contains(logs.String(), "peer "+addr+" in upstream backend is healthy") {
		t.Fatalf("log %q", logs.String())
	}
}

func TestCheckerTCPAndPort(t *testing.T) {
	live := newBackend(t)
	_, livePort, _ := net.SplitHostPort(live.Listener.Addr().String())
	dead := closedAddr(t)
	reg, u := newUpstream(t, dead, "127.0.0.1:1")
	// port= sends both checks to the live backend's port: both healthy,
	// although neither peer address listens.
	port, _ := strconv.Atoi(livePort)
	stop := Start(checkConf(&config.HealthCheck{Upstream: "backend", Interval: 20 * time.Millisecond, Fails: 1, Passes: 1,
		Type: "tcp", Port: port, Mandatory: true}), reg, nil, errlog.Discard())
	waitFor(t, "both up", time.Second, func() bool {
		s := u.Snapshot()
		return s.Primary[0].Status() == "up" && s.Primary[1].Status() == "up"
	})
	stop()

	reg, u = newUpstream(t, dead)
	var logs syncBuf
	stop = Start(checkConf(&config.HealthCheck{Upstream: "backend", Interval: 20 * time.Millisecond, Fails: 1, Passes: 1,
		Type: "tcp"}), reg, nil, errlog.New(errlog.Warn, &logs))
	defer stop()
	waitFor(t, "unhealthy", time.Second, func() bool { return u.Snapshot().Primary[0].Status() == "unhealthy" })
	if !strings.Contains(logs.String(), "is unhealthy: connect() failed (") {
		t.Fatalf("log %q", logs.String())
	}
}

func TestCheckerMandatoryAndAddedPeers(t *testing.T) {
	b := newBackend(t)
	dead := closedAddr(t)
	reg, u := newUpstream(t, b.Listener.Addr().String(), dead)
	stop := Start(checkConf(&config.HealthCheck{Upstream: "backend", Interval: 30 * time.Millisecond, Fails: 3, Passes: 3,
		Mandatory: true}), reg, nil, errlog.Discard())
	defer stop()
	// Start declares the checks before it returns: nothing is up yet,
	// unless the first round already finished.
	for _, p := range u.Snapshot().Primary {
		if s := p.Status(); s != "checking" && p.Health().Checks == 0 {
			t.Fatalf("%s: %q before the first check", p.Addr(), s)
		}
	}
	// The first result decides, whatever fails= and passes= say.
	waitFor(t, "first verdicts", time.Second, func() bool {
		s := u.Snapshot()
		return s.Primary[0].Status() == "up" && s.Primary[1].Status() == "unhealthy"
	})
	// A peer added at run time is checking until its first probe.
	b2 := newBackend(t)
	p, err := u.AddPeer(upstream.DefaultSpec(b2.Listener.Addr().String(), ""))
	if err != nil {
		t.Fatal(err)
	}
	if p.Status() != "checking" {
		t.Fatalf("added: %q", p.Status())
	}
	waitFor(t, "added peer up", time.Second, func() bool {
		q, err := u.Snapshot().FindUID(p.UID())
		return err == nil && q.Status() == "up"
	})
}

func TestStopAndPersistent(t *testing.T) {
	good, bad := newBackend(t), newBackend(t)
	bad.status.Store(503)
	addrs := []string{good.Listener.Addr().String(), bad.Listener.Addr().String()}
	hc := func() *config.HealthCheck {
		return &config.HealthCheck{Upstream: "backend", Interval: 20 * time.Millisecond, Fails: 1, Passes: 1,
			Mandatory: true, Persistent: true}
	}
	oldReg, old := newUpstream(t, addrs...)
	stop := Start(checkConf(hc()), oldReg, nil, errlog.Discard())
	waitFor(t, "verdicts", time.Second, func() bool {
		s := old.Snapshot()
		return s.Primary[0].Status() == "up" && s.Primary[1].Status() == "unhealthy"
	})
	stop()
	checks := old.Snapshot().Primary[0].Health().Checks
	time.Sleep(60 * time.Millisecond) // three intervals: a running checker would probe
	if n := old.Snapshot().Primary[0].Health().Checks; n != checks {
		t.Fatalf("checks went on after stop: %d -> %d", checks, n)
	}

	// The new generation: the healthy peer is up at once, the unhealthy
	// one is checking again.
	newReg, cur := newUpstream(t, addrs...)
	cfg := checkConf(hc())
	cfg.HTTP.HealthChecks[0].Interval = time.Hour // only the first round runs
	stop = Start(cfg, newReg, oldReg, errlog.Discard())
	defer stop()
	s := cur.Snapshot()
	if st := s.Primary[0].Status(); st != "up" {
		t.Fatalf("persistent healthy peer: %q", st)
	}
	waitFor(t, "first round", time.Second, func() bool { return s.Primary[1].Health().Checks > 0 })
	if st := s.Primary[1].Status(); st != "unhealthy" {
		t.Fatalf("previously unhealthy peer: %q", st)
	}
}

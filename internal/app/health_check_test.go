package app

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hcBackend is a real backend that can be stopped and restarted on the same
// address. /health answers what the test sets; every other path counts as
// proxied traffic and answers the backend's name.
type hcBackend struct {
	t    *testing.T
	name string
	addr string

	mu     sync.Mutex
	srv    *http.Server
	health func(w http.ResponseWriter)

	traffic atomic.Int64
	probes  atomic.Int64
}

func newHCBackend(t *testing.T, name string) *hcBackend {
	b := &hcBackend{t: t, name: name, health: func(w http.ResponseWriter) { fmt.Fprint(w, "alive") }}
	b.start("127.0.0.1:0")
	t.Cleanup(b.stop)
	return b
}

func (b *hcBackend) start(addr string) {
	b.t.Helper()
	var ln net.Listener
	var err error
	// The port was ours a moment ago; the kernel may take a moment to
	// release it.
	for range 100 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatalf("restart %s on %s: %v", b.name, addr, err)
	}
	b.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			b.probes.Add(1)
			b.mu.Lock()
			h := b.health
			b.mu.Unlock()
			h(w)
			return
		}
		b.traffic.Add(1)
		fmt.Fprint(w, b.name)
	})}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go srv.Serve(ln)
}

func (b *hcBackend) stop() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (b *hcBackend) setHealth(h func(w http.ResponseWriter)) {
	b.mu.Lock()
	b.health = h
	b.mu.Unlock()
}

// hcPeer is a peer of the REST API's upstream object.
type hcPeer struct {
	ID           int
	Server       string
	State        string
	HealthChecks struct {
		Checks, Fails, Unhealthy int
		LastPassed               *bool `json:"last_passed"`
	} `json:"health_checks"`
}

func apiPeers(t *testing.T, base string) map[string]hcPeer {
	t.Helper()
	code, body, _ := get(t, base+"/api/9/http/upstreams/backend")
	if code != 200 {
		t.Fatalf("api: %d %s", code, body)
	}
	var u struct{ Peers []hcPeer }
	if err := json.Unmarshal([]byte(body), &u); err != nil {
		t.Fatalf("api: %v in %s", err, body)
	}
	out := map[string]hcPeer{}
	for _, p := range u.Peers {
		out[p.Server] = p
	}
	return out
}

func stateOf(t *testing.T, base, addr string) string { return apiPeers(t, base)[addr].State }

// waitState polls the REST API until the peer is in state and returns how
// long that took.
func waitState(t *testing.T, base, addr, state string) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, func() bool { return stateOf(t, base, addr) == state })
	return time.Since(start)
}

// hcConfig is the test server: upstream backend over the given backends
// (max_fails=0, so only the active checks take peers out), location / with
// the health_check parameters, the REST API, and a Lua view of the peers.
func hcConfig(hcParams, extra string, addrs ...string) string {
	var servers strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&servers, "        server %s max_fails=0;\n", a)
	}
	return `error_log stderr warn;
events {}
http {
    access_log off;
    upstream backend {
` + servers.String() + `    }
` + extra + `
    server {
        listen LISTEN;
        location / {
            proxy_pass http://backend;
            proxy_read_timeout 2s;
            health_check uri=/health ` + hcParams + `;
        }
        location /api { api write=on; }
        location = /lua {
            content_by_lua_block {
                local upstream = require "ngx.upstream"
                for _, p in ipairs(upstream.get_primary_peers("backend")) do
                    local h = p.health
                    ngx.say(p.name, " ", h.state, " ", h.checks, " ", h.fails, " ", h.unhealthy, " ", tostring(h.last_passed))
                end
            }
        }
    }
}
`
}

// served sends n requests to / and returns who answered them.
func served(t *testing.T, base string, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for range n {
		code, body, _ := get(t, base+"/")
		if code != 200 {
			out[fmt.Sprint(code)]++
			continue
		}
		out[body]++
	}
	return out
}

func TestHealthCheckDeadBackendLeavesAndReturns(t *testing.T) {
	const interval, fails, passes = 100 * time.Millisecond, 2, 3
	a, b := newHCBackend(t, "a"), newHCBackend(t, "b")
	_, base, logs := startServer(t, hcConfig(fmt.Sprintf("interval=100ms fails=%d passes=%d", fails, passes), "", a.addr, b.addr))

	waitFor(t, func() bool { return apiPeers(t, base)[a.addr].HealthChecks.Checks > 0 })
	if got := served(t, base, 10); got["a"] != 5 || got["b"] != 5 {
		t.Fatalf("both healthy: %v", got)
	}

	// a dies: the checks take it out within interval*fails, plus one
	// interval for the round in flight (and slack for a loaded machine).
	a.stop()
	took := waitState(t, base, a.addr, "unhealthy")
	if limit := interval*fails + interval + 400*time.Millisecond; took > limit {
		t.Errorf("unhealthy after %v, want within %v", took, limit)
	}
	if got := served(t, base, 10); got["b"] != 10 {
		t.Fatalf("a unhealthy: %v", got)
	}
	p := apiPeers(t, base)[a.addr]
	if p.HealthChecks.Unhealthy != 1 || p.HealthChecks.Fails < fails || p.HealthChecks.LastPassed == nil || *p.HealthChecks.LastPassed {
		t.Fatalf("health_checks %+v", p.HealthChecks)
	}
	if !strings.Contains(logs.String(), "[warn] ") ||
		!strings.Contains(logs.String(), "peer "+a.addr+" in upstream backend is unhealthy: connect() failed (") {
		t.Fatalf("log:\n%s", logs.String())
	}

	// a comes back on the same address: traffic returns only after
	// `passes` probes in a row.
	a.start(a.addr)
	waitState(t, base, a.addr, "up")
	if n := a.probes.Load(); n < passes {
		t.Fatalf("up after %d probes, want >= %d", n, passes)
	}
	if got := served(t, base, 10); got["a"] == 0 || got["b"] == 0 {
		t.Fatalf("a healthy again: %v", got)
	}
	if !strings.Contains(logs.String(), "peer "+a.addr+" in upstream backend is healthy") {
		t.Fatalf("log:\n%s", logs.String())
	}

	// Lua sees the same state through get_primary_peers.
	code, body, _ := get(t, base+"/lua")
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if code != 200 || len(lines) != 2 || !strings.HasPrefix(lines[0], a.addr+" healthy ") ||
		!strings.HasSuffix(lines[0], " 1 true") || !strings.HasPrefix(lines[1], b.addr+" healthy ") {
		t.Fatalf("lua: %d %q", code, body)
	}
}

func TestHealthCheckMatchBlock(t *testing.T) {
	a, b := newHCBackend(t, "a"), newHCBackend(t, "b")
	match := `    match ok {
        status 200-299;
        status ! 204;
        header Content-Type ~ "^text/plain";
        header X-Mode = live;
        header ! X-Maintenance;
        body ~ "alive";
        body !~ "degraded";
    }`
	respond := func(status int, hdr map[string]string, body string) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("X-Mode", "live")
			for k, v := range hdr {
				if v == "" {
					w.Header().Del(k)
				} else {
					w.Header().Set(k, v)
				}
			}
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		}
	}
	b.setHealth(respond(200, nil, "alive"))
	_, base, _ := startServer(t, hcConfig("interval=50ms match=ok", match, a.addr, b.addr))
	tests := []struct {
		name    string
		status  int
		hdr     map[string]string
		body    string
		healthy bool
	}{
		{"passes", 200, nil, "I am alive", true},
		{"status out of range", 302, nil, "alive", false},
		{"negated status", 204, nil, "", false},
		{"back", 200, nil, "alive", true},
		{"content type regex", 200, map[string]string{"Content-Type": "application/json"}, "alive", false},
		{"header value", 200, map[string]string{"X-Mode": "drain"}, "alive", false},
		{"header missing", 200, map[string]string{"X-Mode": ""}, "alive", false},
		{"forbidden header", 200, map[string]string{"X-Maintenance": "1"}, "alive", false},
		{"body lacks", 200, nil, "hello", false},
		{"body has forbidden", 200, nil, "alive but degraded", false},
		{"all good again", 200, nil, "alive and well", true},
	}
	for _, tc := range tests {
		a.setHealth(respond(tc.status, tc.hdr, tc.body))
		want := "unhealthy"
		if tc.healthy {
			want = "up"
		}
		waitState(t, base, a.addr, want)
		before := a.traffic.Load()
		got := served(t, base, 6)
		switch {
		case tc.healthy && got["a"] == 0:
			t.Errorf("%s: healthy but no traffic: %v", tc.name, got)
		case !tc.healthy && (got["b"] != 6 || a.traffic.Load() != before):
			t.Errorf("%s: unhealthy but served %v", tc.name, got)
		}
	}
}

func TestHealthCheckMandatoryAndManualState(t *testing.T) {
	a, b := newHCBackend(t, "a"), newHCBackend(t, "b")
	// a's first probe hangs until released: a stays "checking".
	release := make(chan struct{})
	a.setHealth(func(w http.ResponseWriter) {
		<-release
		fmt.Fprint(w, "alive")
	})
	var once sync.Once
	defer once.Do(func() { close(release) })
	_, base, _ := startServer(t, hcConfig("interval=1s mandatory", "", a.addr, b.addr))

	waitState(t, base, b.addr, "up")
	if st := stateOf(t, base, a.addr); st != "checking" {
		t.Fatalf("a before its first check: %q", st)
	}
	if got := served(t, base, 6); got["b"] != 6 || a.traffic.Load() != 0 {
		t.Fatalf("checking peer got traffic: %v", got)
	}
	once.Do(func() { close(release) })
	waitState(t, base, a.addr, "up")
	if got := served(t, base, 6); got["a"] != 3 {
		t.Fatalf("after first pass: %v", got)
	}

	// Manual down wins over healthy; up again, health decides.
	patch := func(body string) {
		t.Helper()
		id := apiPeers(t, base)[a.addr].ID
		if code, _, resp := apiDo(t, "PATCH", fmt.Sprintf("%s/api/9/http/upstreams/backend/servers/%d", base, id), body); code != 200 {
			t.Fatalf("PATCH %s: %d %s", body, code, resp)
		}
	}
	patch(`{"down":true}`)
	if st := stateOf(t, base, a.addr); st != "down" {
		t.Fatalf("healthy but down: %q", st)
	}
	before := a.traffic.Load()
	if got := served(t, base, 6); got["b"] != 6 || a.traffic.Load() != before {
		t.Fatalf("down peer got traffic: %v", got)
	}
	// Unhealthy and down: still "down".
	a.setHealth(func(w http.ResponseWriter) { w.WriteHeader(503) })
	waitFor(t, func() bool { return apiPeers(t, base)[a.addr].HealthChecks.Unhealthy == 1 })
	if st := stateOf(t, base, a.addr); st != "down" {
		t.Fatalf("unhealthy and down: %q", st)
	}
	// Up by the operator, but unhealthy: still no traffic.
	patch(`{"down":false}`)
	if st := stateOf(t, base, a.addr); st != "unhealthy" {
		t.Fatalf("up but unhealthy: %q", st)
	}
	before = a.traffic.Load()
	if got := served(t, base, 6); got["b"] != 6 || a.traffic.Load() != before {
		t.Fatalf("unhealthy peer got traffic: %v", got)
	}
}

func TestHealthCheckAddedPeerAndReload(t *testing.T) {
	a, b, c := newHCBackend(t, "a"), newHCBackend(t, "b"), newHCBackend(t, "c")
	c.setHealth(func(w http.ResponseWriter) { w.WriteHeader(500) })
	s, base, _ := startServer(t, hcConfig("interval=100ms mandatory persistent", "", a.addr, c.addr))
	waitState(t, base, a.addr, "up")
	waitState(t, base, c.addr, "unhealthy")

	// A server added through the API is checked before it gets traffic.
	code, _, body := apiDo(t, "POST", base+"/api/9/http/upstreams/backend/servers", `{"server":"`+b.addr+`"}`)
	if code != 201 {
		t.Fatalf("POST: %d %s", code, body)
	}
	waitState(t, base, b.addr, "up")
	if b.probes.Load() == 0 {
		t.Fatal("added peer up without a probe")
	}

	// Reload with every probe hanging: with `persistent`, the healthy peer
	// stays up at once; the unhealthy one is checking again.
	hang := make(chan struct{})
	defer close(hang)
	for _, x := range []*hcBackend{a, c} {
		x.setHealth(func(w http.ResponseWriter) { <-hang })
	}
	old := s.Current()
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	peers := apiPeers(t, base)
	if peers[a.addr].State != "up" || peers[c.addr].State != "checking" {
		t.Fatalf("after reload: a %q, c %q", peers[a.addr].State, peers[c.addr].State)
	}
	// The new generation starts its counters afresh; the old one's checks
	// stopped with the reload.
	oldChecks := old.Upstreams.Get("backend").Snapshot().Primary[0].Health().Checks
	a.setHealth(func(w http.ResponseWriter) { fmt.Fprint(w, "alive") })
	waitFor(t, func() bool { return apiPeers(t, base)[a.addr].HealthChecks.Checks >= 2 })
	if n := old.Upstreams.Get("backend").Snapshot().Primary[0].Health().Checks; n != oldChecks {
		t.Fatalf("old generation kept checking: %d -> %d", oldChecks, n)
	}
}

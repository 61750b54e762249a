package app

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// upAdminLocations drive ngx.upstream on upstream "backend" over HTTP:
// /op?op=...&id=...&v=...&addr=... answers "<result> <err>", and /state
// lists get_servers then get_primary_peers, one line each.
const upAdminLocations = `
        location /op {
            content_by_lua_block {
                local up = require "ngx.upstream"
                local a = ngx.req.get_uri_args()
                local id = tonumber(a.id)
                local r, err
                if a.op == "down" then r, err = up.set_peer_down("backend", false, id, a.v == "1")
                elseif a.op == "drain" then r, err = up.set_peer_drain("backend", false, id, a.v == "1")
                elseif a.op == "weight" then r, err = up.set_peer_weight("backend", false, id, tonumber(a.v))
                elseif a.op == "remove" then r, err = up.remove_server("backend", id or a.addr)
                elseif a.op == "add" then r, err = up.add_server("backend", a.addr, {weight = tonumber(a.w)})
                end
                ngx.say(tostring(r), " ", tostring(err))
            }
        }
        location /state {
            content_by_lua_block {
                local up = require "ngx.upstream"
                local out = {}
                for _, s in ipairs(up.get_servers("backend")) do
                    out[#out+1] = "server " .. s.name .. " w=" .. s.weight .. " down=" .. tostring(s.down) .. " drain=" .. tostring(s.drain)
                end
                for _, p in ipairs(up.get_primary_peers("backend")) do
                    out[#out+1] = "peer " .. p.id .. " " .. p.name .. " w=" .. p.weight .. " down=" .. tostring(p.down) .. " drain=" .. tostring(p.drain)
                end
                ngx.print(table.concat(out, "\n"))
            }
        }
`

func upOp(t *testing.T, base string, args ...string) string {
	t.Helper()
	q := url.Values{}
	for i := 0; i+1 < len(args); i += 2 {
		q.Set(args[i], args[i+1])
	}
	code, body, _ := get(t, base+"/op?"+q.Encode())
	if code != 200 {
		t.Fatalf("/op %v: %d %q", args, code, body)
	}
	return strings.TrimSpace(body)
}

// Fix 1, "one truth": the original changed the flag in the one worker that
// ran set_peer_down; with 4 workers most requests kept reaching the peer
// and get_servers never showed it. Here every request and every read after
// the call sees it.
func TestUpstreamDownIsOneTruthForAllWorkers(t *testing.T) {
	t.Cleanup(func(p int) func() { return func() { runtime.GOMAXPROCS(p) } }(runtime.GOMAXPROCS(0)))
	_, a := backend(t, "a")
	_, b := backend(t, "b")
	_, base, _ := startServer(t, fmt.Sprintf(`
worker_processes 4;
events {}
http {
    upstream backend { server %s; server %s; }
    server {
        listen LISTEN;
        location /p { proxy_pass http://backend; }
%s
    }
}`, a, b, upAdminLocations))
	seen := map[string]bool{}
	for i := 0; i < 4; i++ {
		_, _, h := get(t, base+"/p")
		seen[h.Get("X-Backend")] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("both peers should serve before the change: %v", seen)
	}
	if got := upOp(t, base, "op", "down", "id", "0", "v", "1"); got != "true nil" {
		t.Fatalf("set_peer_down: %q", got)
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan string, 400)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(base + "/p")
			if err != nil {
				errs <- err.Error()
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != "b" {
				errs <- fmt.Sprintf("proxied request: %d from %q", resp.StatusCode, resp.Header.Get("X-Backend"))
			}
			resp, err = client.Get(base + "/state")
			if err != nil {
				errs <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			lines := strings.Split(string(body), "\n")
			if len(lines) != 4 || !strings.HasPrefix(lines[0], "server "+a+" ") || !strings.Contains(lines[0], "down=true") ||
				!strings.HasPrefix(lines[2], "peer 0 "+a+" ") || !strings.Contains(lines[2], "down=true") {
				errs <- fmt.Sprintf("state does not show the peer down:\n%s", body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// Fix 2 and 3: reads show runtime state, and add_server/set_peer_weight/
// remove_server act on traffic at once, with ids that stay put.
func TestUpstreamAPIReadsAndTrafficFollowChanges(t *testing.T) {
	_, a := backend(t, "a")
	_, b := backend(t, "b")
	_, c := backend(t, "c")
	_, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    upstream backend { server %s; server %s; }
    server {
        listen LISTEN;
        location /p { proxy_pass http://backend; }
%s
    }
}`, a, b, upAdminLocations))
	state := func() string { _, body, _ := get(t, base+"/state"); return body }
	picks := func(n int) map[string]int {
		out := map[string]int{}
		for i := 0; i < n; i++ {
			code, body, h := get(t, base+"/p")
			if code != 200 {
				t.Fatalf("proxied request: %d %q", code, body)
			}
			out[h.Get("X-Backend")]++
		}
		return out
	}

	if got := upOp(t, base, "op", "weight", "id", "1", "v", "3"); got != "true nil" {
		t.Fatal(got)
	}
	want := fmt.Sprintf("server %[1]s w=1 down=false drain=false\nserver %[2]s w=3 down=false drain=false\n"+
		"peer 0 %[1]s w=1 down=false drain=false\npeer 1 %[2]s w=3 down=false drain=false", a, b)
	if got := state(); got != want {
		t.Fatalf("state after set_peer_weight:\n%s\nwant\n%s", got, want)
	}
	if got := picks(8); got["a"] != 2 || got["b"] != 6 {
		t.Fatalf("weights 1:3 over 8 requests: %v", got)
	}

	if got := upOp(t, base, "op", "add", "addr", c, "w", "2"); got != "2 nil" {
		t.Fatalf("add_server: %q", got)
	}
	if got := picks(12); got["a"] != 2 || got["b"] != 6 || got["c"] != 4 {
		t.Fatalf("weights 1:3:2 over 12 requests: %v", got)
	}
	// remove a by id: b and c keep ids 1 and 2, and 0 is not reused
	if got := upOp(t, base, "op", "remove", "id", "0"); got != "true nil" {
		t.Fatal(got)
	}
	if got := upOp(t, base, "op", "add", "addr", a); got != "3 nil" {
		t.Fatalf("re-add: %q", got)
	}
	if got := upOp(t, base, "op", "down", "id", "2", "v", "1"); got != "true nil" {
		t.Fatal(got)
	}
	want = fmt.Sprintf("server %[2]s w=3 down=false drain=false\nserver %[3]s w=2 down=true drain=false\nserver %[1]s w=1 down=false drain=false\n"+
		"peer 1 %[2]s w=3 down=false drain=false\npeer 2 %[3]s w=2 down=true drain=false\npeer 3 %[1]s w=1 down=false drain=false", a, b, c)
	if got := state(); got != want {
		t.Fatalf("state:\n%s\nwant\n%s", got, want)
	}
	if got := picks(8); got["a"] != 2 || got["b"] != 6 || got["c"] != 0 {
		t.Fatalf("after remove/re-add/down: %v", got)
	}
	if got := upOp(t, base, "op", "remove", "addr", c); got != "true nil" {
		t.Fatal(got)
	}
	for _, tc := range []struct{ args []string }{
		{[]string{"op", "remove", "addr", c}},
		{[]string{"op", "down", "id", "0", "v", "1"}},
		{[]string{"op", "weight", "id", "1", "v", "0"}},
		{[]string{"op", "add", "addr", "127.0.0.1:99999"}},
	} {
		if got := upOp(t, base, tc.args...); !strings.HasPrefix(got, "nil ") {
			t.Errorf("%v: %q", tc.args, got)
		}
	}
	if got := picks(4); got["a"] != 1 || got["b"] != 3 {
		t.Fatalf("failed calls changed something: %v", got)
	}
}

// gatedBackend holds every request until release is called, so requests
// are provably in flight while the test changes the upstream.
type gatedBackend struct {
	addr          string
	arrived, done atomic.Int64
	gate          chan struct{}
	releaseOnce   sync.Once
}

func newGatedBackend(t *testing.T, name string) *gatedBackend {
	g := &gatedBackend{gate: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.arrived.Add(1)
		<-g.gate
		w.Header().Set("X-Backend", name)
		io.WriteString(w, name)
		g.done.Add(1)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(g.release) // before srv.Close, which waits for handlers
	g.addr = strings.TrimPrefix(srv.URL, "http://")
	return g
}

func (g *gatedBackend) release() { g.releaseOnce.Do(func() { close(g.gate) }) }

// Fix 4: downing, draining or removing a peer that has requests in flight
// fails no client request: those requests finish on it, and no request
// reaches it afterwards.
func TestUpstreamChangesUnderLoadFailNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   func(slowAddr string) []string
	}{
		{"set_peer_down", func(string) []string { return []string{"op", "down", "id", "0", "v", "1"} }},
		{"set_peer_drain", func(string) []string { return []string{"op", "drain", "id", "0", "v", "1"} }},
		{"remove_server by id", func(string) []string { return []string{"op", "remove", "id", "0"} }},
		{"remove_server by address", func(addr string) []string { return []string{"op", "remove", "addr", addr} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slow := newGatedBackend(t, "slow")
			var fastServed atomic.Int64
			fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fastServed.Add(1)
				io.WriteString(w, "fast")
			}))
			t.Cleanup(fast.Close)
			s, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    upstream backend { server %s; server %s; }
    server {
        listen LISTEN;
        location /p { proxy_pass http://backend; }
%s
    }
}`, slow.addr, strings.TrimPrefix(fast.URL, "http://"), upAdminLocations))
			slowPeer := s.Current().Upstreams.Get("backend").Snapshot().Primary[0]

			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			traffic := startLoad(8, func(int) *http.Client { return client }, getOK(base+"/p"))
			defer func() {
				slow.release()
				traffic.Stop()
			}()

			// Every client that lands on the slow peer stays there: wait
			// until several requests are held in flight.
			waitFor(t, func() bool { return slow.arrived.Load() >= 3 })
			if got := upOp(t, base, tc.op(slow.addr)...); got != "true nil" {
				t.Fatalf("%v: %q", tc.op(slow.addr), got)
			}
			inflight := slow.arrived.Load()
			slow.release()
			// Once the peer's picks are all finished nothing can still be
			// on its way to it.
			waitFor(t, func() bool { return slowPeer.Conns() == 0 })
			arrived := slow.arrived.Load()
			if arrived < inflight || slow.done.Load() != arrived {
				t.Fatalf("in-flight requests on the changed peer did not finish: arrived %d, done %d", arrived, slow.done.Load())
			}
			from := fastServed.Load()
			waitFor(t, func() bool { return fastServed.Load() >= from+100 })
			if got := slow.arrived.Load(); got != arrived {
				t.Fatalf("%d new requests reached the peer after the change", got-arrived)
			}
			traffic.Stop()
			if n, examples := traffic.Failures(); n != 0 {
				t.Fatalf("%d client requests failed, e.g. %v", n, examples)
			}
		})
	}
}

package app

import (
	"fmt"
	"strings"
	"testing"
)

// TestAPILuaAndRESTSeeEachOther changes upstream "backend" alternately
// through ngx.upstream (Lua) and the REST API and checks, with no waiting,
// that the other door and the traffic see every change at once.
func TestAPILuaAndRESTSeeEachOther(t *testing.T) {
	_, a := backend(t, "a")
	_, b := backend(t, "b")
	_, c := backend(t, "c")
	_, d := backend(t, "d")
	_, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    access_log off;
    upstream backend { server %s; server %s; }
    server {
        listen LISTEN;
        location /p { proxy_pass http://backend; }
        location /api { api write=on; }
%s
    }
}`, a, b, upAdminLocations))
	api := base + "/api/9/http/upstreams/backend/servers"
	rest := func(method, path, body string, wantStatus int) string {
		t.Helper()
		status, _, out := apiDo(t, method, api+path, body)
		if status != wantStatus {
			t.Fatalf("%s %s %s: %d %s", method, path, body, status, out)
		}
		return out
	}
	lua := func(args ...string) {
		t.Helper()
		if got := upOp(t, base, args...); !strings.HasSuffix(got, " nil") || strings.HasPrefix(got, "nil") {
			t.Fatalf("lua %v: %q", args, got)
		}
	}
	luaState := func() string {
		t.Helper()
		_, body, _ := get(t, base+"/state")
		return body
	}
	picks := func(n int) map[string]int {
		t.Helper()
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
	srv := func(id int, addr string, weight int, down bool, drain string) string {
		return fmt.Sprintf(`{"id":%d,"server":"%s","weight":%d,"max_conns":0,"max_fails":1,"fail_timeout":"10s","slow_start":"0s","route":"","backup":false,"down":%t%s}`,
			id, addr, weight, down, drain)
	}

	// Lua → REST
	lua("op", "down", "id", "0", "v", "1")
	if got, want := rest("GET", "/0", "", 200), srv(0, a, 1, true, ""); got != want {
		t.Fatalf("after set_peer_down: %s, want %s", got, want)
	}
	_, _, up := apiDo(t, "GET", base+"/api/9/http/upstreams/backend", "")
	if !strings.Contains(up, `"id":0,"server":"`+a+`","name":"`+a+`","backup":false,"weight":1,"state":"down"`) {
		t.Fatalf("peer state after set_peer_down: %s", up)
	}
	lua("op", "weight", "id", "1", "v", "3")
	if got, want := rest("GET", "/1", "", 200), srv(1, b, 3, false, ""); got != want {
		t.Fatalf("after set_peer_weight: %s, want %s", got, want)
	}
	lua("op", "add", "addr", c, "w", "2")
	if got, want := rest("GET", "", "", 200), "["+srv(0, a, 1, true, "")+","+srv(1, b, 3, false, "")+","+srv(2, c, 2, false, "")+"]"; got != want {
		t.Fatalf("after add_server:\n%s\nwant\n%s", got, want)
	}
	lua("op", "drain", "id", "2", "v", "1")
	if got, want := rest("GET", "/2", "", 200), srv(2, c, 2, false, `,"drain":true`); got != want {
		t.Fatalf("after set_peer_drain: %s, want %s", got, want)
	}
	lua("op", "remove", "id", "2")
	rest("GET", "/2", "", 404)
	if got := picks(4); got["b"] != 4 {
		t.Fatalf("traffic after the Lua changes: %v", got)
	}

	// REST → Lua and traffic
	rest("PATCH", "/0", `{"down":false}`, 200)
	if got, want := luaState(), fmt.Sprintf("server %[1]s w=1 down=false drain=false\nserver %[2]s w=3 down=false drain=false\n"+
		"peer 0 %[1]s w=1 down=false drain=false\npeer 1 %[2]s w=3 down=false drain=false", a, b); got != want {
		t.Fatalf("Lua after PATCH down=false:\n%s\nwant\n%s", got, want)
	}
	if got := picks(8); got["a"] != 2 || got["b"] != 6 {
		t.Fatalf("1:3 after PATCH down=false: %v", got)
	}
	rest("PATCH", "/1", `{"weight":1}`, 200)
	if got := luaState(); !strings.Contains(got, "peer 1 "+b+" w=1 ") {
		t.Fatalf("Lua after PATCH weight:\n%s", got)
	}
	if got := picks(4); got["a"] != 2 || got["b"] != 2 {
		t.Fatalf("1:1 after PATCH weight: %v", got)
	}
	// The id of the server added through REST continues the sequence
	// (2 was given to c and is never reused).
	if got, want := rest("POST", "", `{"server":"`+d+`","weight":2}`, 201), srv(3, d, 2, false, ""); got != want {
		t.Fatalf("POST: %s, want %s", got, want)
	}
	if got := luaState(); !strings.Contains(got, "server "+d+" w=2 down=false drain=false") || !strings.Contains(got, "peer 3 "+d+" w=2 ") {
		t.Fatalf("Lua after POST:\n%s", got)
	}
	if got := picks(8); got["a"] != 2 || got["b"] != 2 || got["d"] != 4 {
		t.Fatalf("1:1:2 after POST: %v", got)
	}
	rest("PATCH", "/0", `{"drain":true}`, 200)
	if got := luaState(); !strings.Contains(got, "peer 0 "+a+" w=1 down=false drain=true") {
		t.Fatalf("Lua after PATCH drain:\n%s", got)
	}
	if got := picks(6); got["a"] != 0 {
		t.Fatalf("a drained but picked: %v", got)
	}
	rest("PATCH", "/1", `{"down":true}`, 200)
	if got := luaState(); !strings.Contains(got, "server "+b+" w=1 down=true drain=false") {
		t.Fatalf("Lua after PATCH down:\n%s", got)
	}
	if got := picks(4); got["d"] != 4 {
		t.Fatalf("only d should be picked: %v", got)
	}
	rest("DELETE", "/3", "", 200)
	if got := luaState(); strings.Contains(got, d) {
		t.Fatalf("Lua still lists the deleted server:\n%s", got)
	}
	// Every server is now down or draining: nginx answers 502.
	if code, _, _ := get(t, base+"/p"); code != 502 {
		t.Fatalf("no live server left, got %d", code)
	}
	rest("PATCH", "/0", `{"drain":false}`, 200)
	if got := picks(3); got["a"] != 3 {
		t.Fatalf("after undrain: %v", got)
	}
}

package ngxlua

import (
	"strings"
	"testing"
	"time"

	"upstreamd/internal/upstream"
)

func testRegistry(t *testing.T, now func() time.Time) *upstream.Registry {
	t.Helper()
	reg := upstream.NewRegistry()
	foo, err := upstream.New(upstream.Options{Name: "foo.com", Now: now}, []upstream.ServerSpec{
		{Name: "127.0.0.1", Addr: "127.0.0.1:80", Weight: 4, MaxFails: 100, FailTimeout: 53 * time.Second},
		{Name: "multi:81", Addr: "10.0.0.1:81", Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second},
		{Name: "multi:81", Addr: "10.0.0.2:81", Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second},
		{Name: "127.0.0.9:80", Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second, MaxConns: 5, Backup: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	bar, err := upstream.New(upstream.Options{Name: "bar", Now: now}, []upstream.ServerSpec{
		upstream.DefaultSpec("127.0.0.2:80", ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []*upstream.Upstream{foo, bar} {
		if err := reg.Add(u); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

const dumpLua = `
local function dump(v)
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys+1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local out = {}
  for _, k in ipairs(keys) do
    if type(k) == "number" then out[#out+1] = dump(v[k]) else out[#out+1] = k .. "=" .. dump(v[k]) end
  end
  return "{" .. table.concat(out, " ") .. "}"
end
local upstream = require "ngx.upstream"
local function two(a, b) return tostring(a) .. " " .. tostring(b) end
`

func TestNgxUpstream(t *testing.T) {
	reg := testRegistry(t, time.Now)
	e, _ := newTestEngine(t, Options{Upstreams: func() *upstream.Registry { return reg }})
	tests := []struct{ name, src, want string }{
		{"get_upstreams", `ngx.print(dump(upstream.get_upstreams()))`, "{foo.com bar}"},
		// down, drain and backup are always present booleans (the original
		// left false ones out and never showed runtime changes).
		{"get_servers", `ngx.print(dump(upstream.get_servers("foo.com")))`,
			"{{addr=127.0.0.1:80 backup=false down=false drain=false fail_timeout=53 max_fails=100 name=127.0.0.1 weight=4} " +
				"{addr={10.0.0.1:81 10.0.0.2:81} backup=false down=false drain=false fail_timeout=10 max_fails=1 name=multi:81 weight=1} " +
				"{addr=127.0.0.9:80 backup=true down=false drain=false fail_timeout=10 max_conns=5 max_fails=1 name=127.0.0.9:80 weight=1}}"},
		{"not found", `ngx.print(two(upstream.get_servers("nope")), "|", two(upstream.get_primary_peers("nope")), "|", two(upstream.get_backup_peers("nope")))`,
			"nil upstream not found|nil upstream not found|nil upstream not found"},
		{"primary peers", `ngx.print(dump(upstream.get_primary_peers("bar")))`,
			"{{conns=0 current_weight=0 down=false drain=false effective_weight=1 fail_timeout=10 fails=0 id=0 max_fails=1 name=127.0.0.2:80 weight=1}}"},
		{"multi-address peers", `local out = {} for _, p in ipairs(upstream.get_primary_peers("foo.com")) do out[#out+1] = p.id .. "=" .. p.name end ngx.print(table.concat(out, " "))`,
			"0=127.0.0.1:80 1=10.0.0.1:81 2=10.0.0.2:81"},
		{"backup peers", `local p = upstream.get_backup_peers("foo.com") ngx.print(#p, p[1].id, p[1].name, p[1].max_conns, dump(upstream.get_backup_peers("bar")))`, "10127.0.0.9:805{}"},
		{"set_peer_down", `ngx.print(tostring(upstream.set_peer_down("foo.com", false, 0, true)), " ",
dump(upstream.get_primary_peers("foo.com")[1].down), " ", dump(upstream.get_servers("foo.com")[1].down), " ",
two(upstream.set_peer_down("foo.com", false, 9, true)), "|", two(upstream.set_peer_down("bar", true, 0, true)), "|", two(upstream.set_peer_down("x", false, 0, true)))
upstream.set_peer_down("foo.com", false, 0, false)`,
			"true true true nil bad peer id|nil no backup peers|nil upstream not found"},
		// A server entry whose name resolved to several addresses is down
		// in get_servers only when all of them are: it still takes traffic
		// otherwise.
		{"multi-address down", `upstream.set_peer_down("foo.com", false, 1, true)
local a = upstream.get_servers("foo.com")[2].down
upstream.set_peer_down("foo.com", false, 2, true)
local b = upstream.get_servers("foo.com")[2].down
upstream.set_peer_down("foo.com", false, 1, false) upstream.set_peer_down("foo.com", false, 2, false)
ngx.print(tostring(a), " ", tostring(b), " ", tostring(upstream.get_servers("foo.com")[2].down))`,
			"false true false"},
		{"arg errors", `ngx.print(select(2, pcall(upstream.set_peer_down, "foo.com", false)), "|", select(2, pcall(upstream.get_servers)), "|",
select(2, pcall(function() return upstream.set_peer_down("foo.com", false, "x", true) end)))`,
			"content_by_lua(nginx.conf:10):15: exactly 4 arguments expected|content_by_lua(nginx.conf:10):15: exactly one argument expected|content_by_lua(nginx.conf:10):16: bad argument #3 to 'set_peer_down' (number expected, got string)"},
		{"new functions arg counts", `local out = {}
for _, f in ipairs{
  function() return upstream.add_server("bar") end,
  function() return upstream.remove_server("bar") end,
  function() return upstream.set_peer_weight("bar", false, 0) end,
  function() return upstream.set_peer_drain("bar", false, 0) end,
} do local ok, err = pcall(f) out[#out+1] = tostring(ok) .. ":" .. err:gsub("^.-: ", "") end
ngx.print(table.concat(out, "|"))`,
			"false:expecting 2 or 3 arguments|false:expecting 2 or 3 arguments|false:exactly 4 arguments expected|false:exactly 4 arguments expected"},
		{"add/weight/remove", `local id = upstream.add_server("bar", "127.0.0.3:80", {weight = 3, max_fails = 2, fail_timeout = 5, max_conns = 9})
ngx.print(id, " ", tostring(upstream.set_peer_weight("bar", false, id, 7)), " ")
local p = upstream.get_primary_peers("bar")[2]
ngx.print(p.id, " ", p.name, " ", p.weight, " ", p.max_fails, " ", p.fail_timeout, " ", p.max_conns, " ", upstream.get_servers("bar")[2].weight, " ")
local bid = upstream.add_server("bar", "127.0.0.4:80", {backup = true, down = true})
local b = upstream.get_backup_peers("bar")
ngx.print(bid, " ", #b, " ", tostring(b[1].down), " ")
ngx.print(tostring(upstream.remove_server("bar", id)), " ", #upstream.get_primary_peers("bar"), " ", two(upstream.remove_server("bar", id)), " ")
ngx.print(tostring(upstream.remove_server("bar", true, bid)), " ", #upstream.get_backup_peers("bar"))`,
			"1 true 1 127.0.0.3:80 7 2 5 9 7 0 1 true true 1 nil bad peer id true 0"},
		// The original's ids were positions: removing id 1 made id 2 the
		// old id 3. Ours stay.
		{"ids are stable", `local a = upstream.add_server("bar", "127.0.0.10:80")
local b = upstream.add_server("bar", "127.0.0.11:80")
local c = upstream.add_server("bar", "127.0.0.12:80")
upstream.remove_server("bar", b)
assert(upstream.set_peer_down("bar", false, c, true))
local out = {}
for _, p in ipairs(upstream.get_primary_peers("bar")) do out[#out+1] = p.id .. "=" .. p.name .. (p.down and "!" or "") end
local d = upstream.add_server("bar", "127.0.0.13:80")
ngx.print(a, b, c, d, " ", table.concat(out, " "), " ", two(upstream.set_peer_weight("bar", false, b, 2)))
upstream.remove_server("bar", a) upstream.remove_server("bar", c) upstream.remove_server("bar", d)`,
			"2345 0=127.0.0.2:80 2=127.0.0.10:80 4=127.0.0.12:80! nil bad peer id"},
		{"remove by address or name", `upstream.add_server("bar", "127.0.0.20:80")
upstream.add_server("bar", "localhost:8099")
upstream.add_server("bar", "127.0.0.21")
ngx.print(tostring(upstream.remove_server("bar", "127.0.0.20:80")), " ", tostring(upstream.remove_server("bar", "localhost:8099")), " ",
  tostring(upstream.remove_server("bar", "127.0.0.21")), " ", #upstream.get_primary_peers("bar"), " ",
  two(upstream.remove_server("bar", "127.0.0.20:80")), "|", two(upstream.remove_server("foo.com", "multi:81")), " ", #upstream.get_primary_peers("foo.com"))`,
			"true true true 1 nil server not found: 127.0.0.20:80|true nil 1"},
		{"remove ambiguous", `local a = upstream.add_server("bar", "127.0.0.30:80")
local b = upstream.add_server("bar", "127.0.0.30:80")
ngx.print(two(upstream.remove_server("bar", "127.0.0.30:80")), " ", #upstream.get_primary_peers("bar"))
upstream.remove_server("bar", a) upstream.remove_server("bar", b)`,
			"nil ambiguous server: 127.0.0.30:80 matches 2 servers, remove by id 3"},
		{"add_server bad arguments", `local out = {}
for _, c in ipairs{
  {"nope", "127.0.0.1:80"},
  {"bar", ""},
  {"bar", "127.0.0.1:0"},
  {"bar", "127.0.0.1:http"},
  {"bar", "::1"},
  {"bar", 80},
  {"bar", "127.0.0.1:80", "x"},
  {"bar", "127.0.0.1:80", {wieght = 2}},
  {"bar", "127.0.0.1:80", {weight = 0}},
  {"bar", "127.0.0.1:80", {weight = 1.5}},
  {"bar", "127.0.0.1:80", {weight = "2"}},
  {"bar", "127.0.0.1:80", {max_fails = -1}},
  {"bar", "127.0.0.1:80", {fail_timeout = -1}},
  {"bar", "127.0.0.1:80", {backup = "false"}},
  {"bar", "127.0.0.1:80", {max_conns = 2, down = 1}},
} do
  local id, err = upstream.add_server(c[1], c[2], c[3])
  out[#out+1] = tostring(id) .. ":" .. tostring(err)
end
ngx.print(table.concat(out, "\n"), "\n", #upstream.get_primary_peers("bar"))`,
			`nil:upstream not found
nil:bad server address "": empty address
nil:bad server address "127.0.0.1:0": invalid port
nil:bad server address "127.0.0.1:http": invalid port
nil:bad server address "::1": invalid address, host:port expected
nil:bad server address: string expected, got number
nil:bad options: table expected, got string
nil:unknown option "wieght"
nil:bad "weight" option 0: positive integer expected
nil:bad "weight" option 1.5: integer expected
nil:bad "weight" option "2": integer expected
nil:bad "max_fails" option -1: non-negative integer expected
nil:bad "fail_timeout" option -1: non-negative number of seconds expected
nil:bad "backup" option "false": boolean expected
nil:bad "down" option 1: boolean expected
1`},
		{"peer op bad arguments", `local out = {}
for _, r in ipairs{
  {upstream.set_peer_weight("bar", false, 0, 0)},
  {upstream.set_peer_weight("bar", false, 0, "3")},
  {upstream.set_peer_weight("bar", false, -1, 3)},
  {upstream.set_peer_weight("bar", false, 0.5, 3)},
  {upstream.set_peer_weight("bar", true, 0, 3)},
  {upstream.set_peer_weight("nope", false, 0, 3)},
  {upstream.set_peer_drain("bar", false, "0", true)},
  {upstream.set_peer_drain("bar", false, 3, true)},
  {upstream.remove_server("bar", {})},
  {upstream.remove_server("nope", 0)},
  {upstream.remove_server("nope", "127.0.0.2:80")},
} do out[#out+1] = tostring(r[1]) .. ":" .. tostring(r[2]) end
local p = upstream.get_primary_peers("bar")[1]
ngx.print(table.concat(out, "\n"), "\n", p.weight, tostring(p.drain))`,
			`nil:bad weight 0: positive integer expected
nil:bad weight "3": positive integer expected
nil:bad peer id
nil:bad peer id
nil:no backup peers
nil:upstream not found
nil:bad peer id
nil:bad peer id
nil:bad peer id
nil:upstream not found
nil:upstream not found
1false`},
		{"set_peer_drain", `local ok = upstream.set_peer_drain("bar", false, 0, true)
local p, s = upstream.get_primary_peers("bar")[1], upstream.get_servers("bar")[1]
ngx.print(tostring(ok), " ", tostring(p.drain), " ", tostring(p.down), " ", tostring(s.drain), " ")
upstream.set_peer_drain("bar", false, 0, false)
ngx.print(tostring(upstream.get_primary_peers("bar")[1].drain))`,
			"true true false true false"},
		{"current_upstream_name", `ngx.print(tostring(upstream.current_upstream_name()))`, "nil"},
		// t/count.t: the original module table had 6 entries; ours adds
		// add_server, remove_server, set_peer_weight and set_peer_drain.
		{"count", `local c = 0 for _ in pairs(upstream) do c = c + 1 end ngx.print("count: ", c)`, "count: 10"},
	}
	for _, tt := range tests {
		r := newFakeReq()
		if got := runOK(t, e, r, dumpLua+tt.src); got != tt.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tt.name, got, tt.want)
		}
	}
	r := newFakeReq()
	r.upstream = "foo.com"
	if got := runOK(t, e, r, dumpLua+`ngx.print(upstream.current_upstream_name())`); got != "foo.com" {
		t.Fatal(got)
	}
	// set_peer_down is live for the balancer
	runOK(t, e, newFakeReq(), dumpLua+`upstream.set_peer_down("bar", false, 0, true)`)
	if !reg.Get("bar").Snapshot().Primary[0].Spec().Down {
		t.Fatal("not down in registry")
	}
}

// The ngx.upstream functions and the Go API are one state: a change from
// Go is read by Lua and the reverse, with no per-VM copy.
func TestNgxUpstreamSharedAcrossVMs(t *testing.T) {
	reg := testRegistry(t, time.Now)
	e, _ := newTestEngine(t, Options{Upstreams: func() *upstream.Registry { return reg }})
	u := reg.Get("bar")
	id, err := u.Add(upstream.DefaultSpec("127.0.0.5:80", ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := u.SetWeight(false, id, 9); err != nil {
		t.Fatal(err)
	}
	got := runOK(t, e, newFakeReq(), dumpLua+`local s = upstream.get_servers("bar")[2] ngx.print(s.name, " ", s.weight)`)
	if got != "127.0.0.5:80 9" {
		t.Fatal(got)
	}
	runOK(t, e, newFakeReq(), dumpLua+`assert(upstream.set_peer_down("bar", false, 1, true))`)
	if p, _, err := u.Snapshot().Find(false, id); err != nil || !p.Spec().Down {
		t.Fatalf("Go does not see Lua's change: %v", err)
	}
}

func TestNgxUpstreamPeerState(t *testing.T) {
	now := time.Unix(1700000000, 0)
	reg := testRegistry(t, func() time.Time { return now })
	u := reg.Get("foo.com")
	a := u.Begin(upstream.Request{})
	p, err := a.Next()
	if err != nil {
		t.Fatal(err)
	}
	a.Finish(p, true)
	e, _ := newTestEngine(t, Options{Upstreams: func() *upstream.Registry { return reg }})
	got := runOK(t, e, newFakeReq(), dumpLua+`ngx.print(dump(upstream.get_primary_peers("foo.com")))`)
	if !strings.Contains(got, "fails=1") || !strings.Contains(got, "accessed=1700000000") || !strings.Contains(got, "checked=1700000000") {
		t.Fatal(got)
	}
	// no registry: empty
	e2, _ := newTestEngine(t, Options{})
	if got := runOK(t, e2, newFakeReq(), dumpLua+`ngx.print(#upstream.get_upstreams(), select(2, upstream.get_servers("x")))`); got != "0upstream not found" {
		t.Fatal(got)
	}
}

// get_primary_peers/get_backup_peers gain a `health` table when the
// upstream has active health checks, and only then.
func TestNgxUpstreamHealth(t *testing.T) {
	reg := testRegistry(t, time.Now)
	e, _ := newTestEngine(t, Options{Upstreams: func() *upstream.Registry { return reg }})
	foo := reg.Get("foo.com")
	if err := foo.SetHealthChecks(1, 1); err != nil { // mandatory
		t.Fatal(err)
	}
	s := foo.Snapshot()
	s.Primary[0].CountCheck(false)
	s.Primary[0].SetCheckVerdict(0, false)
	s.Primary[1].CountCheck(true)
	s.Primary[1].SetCheckVerdict(0, true)
	_ = foo.SetDown(false, 1, true) // manual down: its own field, health unchanged
	tests := []struct{ name, src, want string }{
		{"primary", `local out = {} for _, p in ipairs(upstream.get_primary_peers("foo.com")) do out[#out+1] = p.name .. (p.down and "(down)" or "") .. dump(p.health) end ngx.print(table.concat(out, " "))`,
			"127.0.0.1:80{checks=1 fails=1 last_passed=false state=unhealthy unhealthy=1} " +
				"10.0.0.1:81(down){checks=1 fails=0 last_passed=true state=healthy unhealthy=0} " +
				"10.0.0.2:81{checks=0 fails=0 state=checking unhealthy=0}"},
		{"backup", `ngx.print(dump(upstream.get_backup_peers("foo.com")[1].health))`, "{checks=0 fails=0 state=checking unhealthy=0}"},
		{"no checks", `ngx.print(tostring(upstream.get_primary_peers("bar")[1].health))`, "nil"},
	}
	for _, tt := range tests {
		if got := runOK(t, e, newFakeReq(), dumpLua+tt.src); got != tt.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

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
		{"get_servers", `ngx.print(dump(upstream.get_servers("foo.com")))`,
			"{{addr=127.0.0.1:80 backup=false down=false fail_timeout=53 max_fails=100 name=127.0.0.1 weight=4} " +
				"{addr={10.0.0.1:81 10.0.0.2:81} backup=false down=false fail_timeout=10 max_fails=1 name=multi:81 weight=1} " +
				"{addr=127.0.0.9:80 backup=true down=false fail_timeout=10 max_conns=5 max_fails=1 name=127.0.0.9:80 weight=1}}"},
		{"not found", `ngx.print(two(upstream.get_servers("nope")), "|", two(upstream.get_primary_peers("nope")))`, "nil upstream not found|nil upstream not found"},
		{"primary peers", `ngx.print(dump(upstream.get_primary_peers("bar")))`,
			"{{conns=0 current_weight=0 down=false effective_weight=1 fail_timeout=10 fails=0 id=0 max_fails=1 name=127.0.0.2:80 weight=1}}"},
		{"backup peers", `local p = upstream.get_backup_peers("foo.com") ngx.print(#p, p[1].id, p[1].name, p[1].max_conns, dump(upstream.get_backup_peers("bar")))`, "10127.0.0.9:805{}"},
		{"set_peer_down", `ngx.print(tostring(upstream.set_peer_down("foo.com", false, 1, true)), " ",
dump(upstream.get_primary_peers("foo.com")[2].down), " ", dump(upstream.get_servers("foo.com")[2].down), " ",
two(upstream.set_peer_down("foo.com", false, 9, true)), "|", two(upstream.set_peer_down("bar", true, 0, true)), "|", two(upstream.set_peer_down("x", false, 0, true)))
upstream.set_peer_down("foo.com", false, 1, false)`,
			"true true true nil bad peer id|nil no backup peers|nil upstream not found"},
		{"arg errors", `ngx.print(select(2, pcall(upstream.set_peer_down, "foo.com", false)), "|", select(2, pcall(upstream.get_servers)), "|",
select(2, pcall(function() return upstream.set_peer_down("foo.com", false, "x", true) end)))`,
			"content_by_lua(nginx.conf:10):15: exactly 4 arguments expected|content_by_lua(nginx.conf:10):15: exactly one argument expected|content_by_lua(nginx.conf:10):16: bad argument #3 to 'set_peer_down' (number expected, got string)"},
		{"add/weight/remove", `local id = upstream.add_server("bar", "127.0.0.3:80", {weight = 3, max_fails = 2, fail_timeout = 5})
ngx.print(id, " ", tostring(upstream.set_peer_weight("bar", false, id, 7)), " ")
local p = upstream.get_primary_peers("bar")[2]
ngx.print(p.name, " ", p.weight, " ", p.max_fails, " ", p.fail_timeout, " ")
local bid = upstream.add_server("bar", "127.0.0.4:80", {backup = true})
ngx.print(bid, " ", #upstream.get_backup_peers("bar"), " ")
ngx.print(tostring(upstream.remove_server("bar", false, id)), " ", #upstream.get_primary_peers("bar"), " ", two(upstream.remove_server("bar", false, 5)))`,
			"1 true 127.0.0.3:80 7 2 5 0 1 true 1 nil bad peer id"},
		{"current_upstream_name", `ngx.print(tostring(upstream.current_upstream_name()))`, "nil"},
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

package app

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// The intent of lua-upstream-nginx-module's t/sanity.t and t/up-down.t,
// written anew against a real server on loopback (t/count.t is
// TestNgxUpstream/count in internal/ngxlua). The original's internet hosts
// are replaced by loopback addresses, and its multi-address DNS cases
// (TEST 5, 6) by TestNgxUpstream/get_servers, since a config cannot resolve
// a name to several loopback addresses portably. "DIFFERS" marks answers
// that differ from the original's by design (docs/upstream-api.md).

// sanityHTTP is the http{}-level config the sanity cases share.
const sanityHTTP = `
    upstream foo.com:1234 {
        server 127.0.0.6 fail_timeout=5 backup;
        server 127.0.0.1 fail_timeout=53 weight=4 max_fails=100;
        server 127.0.0.5:81;
    }
    upstream bar {
        server 127.0.0.2;
        server 127.0.0.3 backup;
        server 127.0.0.4 fail_timeout=23 weight=7 max_fails=200 backup;
    }
`

// luaJSON prints a value as JSON with sorted keys (the original's ljson).
const luaJSON = `
                local cjson = require "cjson"
                local upstream = require "ngx.upstream"
`

func TestUpstreamCompatSanity(t *testing.T) {
	cases := []struct {
		name, http, lua, want string
	}{
		{"TEST 1: get upstream names", sanityHTTP, `
                for _, u in ipairs(upstream.get_upstreams()) do ngx.say(u) end
                ngx.say("done")`,
			"foo.com:1234\nbar\ndone\n"},
		{"TEST 2: get upstream names (no upstream)", "", `
                for _, u in ipairs(upstream.get_upstreams()) do ngx.say(u) end
                ngx.say("done")`,
			"done\n"},
		// DIFFERS: backup, down (and our drain) are always present
		// booleans; the original only had the true ones.
		{"TEST 3: get servers", sanityHTTP, `
                for _, host in ipairs{"foo.com:1234", "bar", "blah"} do
                    local srvs, err = upstream.get_servers(host)
                    if not srvs then ngx.say("failed to get servers: ", err)
                    else ngx.say(host, ": ", cjson.encode(srvs)) end
                end`,
			`foo.com:1234: [{"addr":"127.0.0.1:80","backup":false,"down":false,"drain":false,"fail_timeout":53,"max_fails":100,"name":"127.0.0.1","weight":4},` +
				`{"addr":"127.0.0.5:81","backup":false,"down":false,"drain":false,"fail_timeout":10,"max_fails":1,"name":"127.0.0.5:81","weight":1},` +
				`{"addr":"127.0.0.6:80","backup":true,"down":false,"drain":false,"fail_timeout":5,"max_fails":1,"name":"127.0.0.6","weight":1}]` + "\n" +
				`bar: [{"addr":"127.0.0.2:80","backup":false,"down":false,"drain":false,"fail_timeout":10,"max_fails":1,"name":"127.0.0.2","weight":1},` +
				`{"addr":"127.0.0.3:80","backup":true,"down":false,"drain":false,"fail_timeout":10,"max_fails":1,"name":"127.0.0.3","weight":1},` +
				`{"addr":"127.0.0.4:80","backup":true,"down":false,"drain":false,"fail_timeout":23,"max_fails":200,"name":"127.0.0.4","weight":7}]` + "\n" +
				"failed to get servers: upstream not found\n"},
		// DIFFERS: down and drain always present.
		{"TEST 7: get primary peers", sanityHTTP, `
                for _, u in ipairs(upstream.get_upstreams()) do
                    ngx.say(cjson.encode(upstream.get_primary_peers(u)))
                end`,
			`[{"conns":0,"current_weight":0,"down":false,"drain":false,"effective_weight":4,"fail_timeout":53,"fails":0,"id":0,"max_fails":100,"name":"127.0.0.1:80","weight":4},` +
				`{"conns":0,"current_weight":0,"down":false,"drain":false,"effective_weight":1,"fail_timeout":10,"fails":0,"id":1,"max_fails":1,"name":"127.0.0.5:81","weight":1}]` + "\n" +
				`[{"conns":0,"current_weight":0,"down":false,"drain":false,"effective_weight":1,"fail_timeout":10,"fails":0,"id":0,"max_fails":1,"name":"127.0.0.2:80","weight":1}]` + "\n"},
		{"TEST 8: get backup peers", sanityHTTP, `
                for _, u in ipairs(upstream.get_upstreams()) do
                    ngx.say(cjson.encode(upstream.get_backup_peers(u)))
                end`,
			`[{"conns":0,"current_weight":0,"down":false,"drain":false,"effective_weight":1,"fail_timeout":5,"fails":0,"id":0,"max_fails":1,"name":"127.0.0.6:80","weight":1}]` + "\n" +
				`[{"conns":0,"current_weight":0,"down":false,"drain":false,"effective_weight":1,"fail_timeout":10,"fails":0,"id":0,"max_fails":1,"name":"127.0.0.3:80","weight":1},` +
				`{"conns":0,"current_weight":0,"down":false,"drain":false,"effective_weight":7,"fail_timeout":23,"fails":0,"id":1,"max_fails":200,"name":"127.0.0.4:80","weight":7}]` + "\n"},
		{"TEST 9: set primary peer down (0)", sanityHTTP, `
                local ok, err = upstream.set_peer_down("bar", false, 0, true)
                if not ok then ngx.say("failed to set peer down: ", err) return end
                local p = upstream.get_primary_peers("bar")
                ngx.say(#p, " ", p[1].id, " ", p[1].name, " ", tostring(p[1].down))`,
			"1 0 127.0.0.2:80 true\n"},
		{"TEST 10: set primary peer down (1, bad index)", sanityHTTP, `
                local ok, err = upstream.set_peer_down("bar", false, 1, true)
                if not ok then ngx.say("failed to set peer down: ", err) return end
                ngx.say("set")`,
			"failed to set peer down: bad peer id\n"},
		{"TEST 11: set backup peer down (index 0)", sanityHTTP, `
                assert(upstream.set_peer_down("bar", true, 0, true))
                for _, p in ipairs(upstream.get_backup_peers("bar")) do ngx.say(p.id, " ", p.name, " ", tostring(p.down)) end`,
			"0 127.0.0.3:80 true\n1 127.0.0.4:80 false\n"},
		{"TEST 12: set backup peer down (toggle twice, index 0)", sanityHTTP, `
                assert(upstream.set_peer_down("bar", true, 0, true))
                assert(upstream.set_peer_down("bar", true, 0, false))
                for _, p in ipairs(upstream.get_backup_peers("bar")) do ngx.say(p.id, " ", p.name, " ", tostring(p.down)) end`,
			"0 127.0.0.3:80 false\n1 127.0.0.4:80 false\n"},
		{"TEST 13: set backup peer down (index 1)", sanityHTTP, `
                assert(upstream.set_peer_down("bar", true, 1, true))
                for _, p in ipairs(upstream.get_backup_peers("bar")) do ngx.say(p.id, " ", p.name, " ", tostring(p.down)) end`,
			"0 127.0.0.3:80 false\n1 127.0.0.4:80 true\n"},
		// Not in the original: it had no backup list to complain about.
		{"no backup peers", sanityHTTP, `
                ngx.say(select(2, upstream.set_peer_down("foo.com:1234", true, 1, true)))`,
			"bad peer id\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
%s
    server {
        listen LISTEN;
        location /t {
            content_by_lua_block {
%s
%s
            }
        }
    }
}`, tc.http, luaJSON, tc.lua))
			code, body, _ := get(t, base+"/t")
			if code != 200 || body != tc.want {
				t.Fatalf("status %d\ngot:\n%s\nwant:\n%s", code, body, tc.want)
			}
		})
	}
}

// sanity.t TEST 14: implicit upstreams from proxy_pass are listed under
// "host:port".
func TestUpstreamCompatImplicitNames(t *testing.T) {
	_, base, _ := startServer(t, `
events {}
http {
    server {
        listen LISTEN;
        location /upstream1 { proxy_pass http://127.0.0.1:1190; }
        location /upstream2 { proxy_pass http://127.0.0.2:1110; }
        location /upstream3 { proxy_pass http://127.0.0.1:1130; }
        location /t {
            content_by_lua_block {
                local upstream = require "ngx.upstream"
                for _, u in ipairs(upstream.get_upstreams()) do
                    local s = upstream.get_servers(u)[1]
                    ngx.say(u, ": addr=", s.addr, " name=", s.name, " weight=", s.weight, " max_fails=", s.max_fails, " fail_timeout=", s.fail_timeout)
                end
            }
        }
    }
}`)
	// DIFFERS: the original reported weight=0 max_fails=0 fail_timeout=0
	// and no name for implicit upstreams (fields nginx leaves unset there);
	// ours are the values the balancer really uses.
	want := "127.0.0.1:1190: addr=127.0.0.1:1190 name=127.0.0.1:1190 weight=1 max_fails=1 fail_timeout=10\n" +
		"127.0.0.2:1110: addr=127.0.0.2:1110 name=127.0.0.2:1110 weight=1 max_fails=1 fail_timeout=10\n" +
		"127.0.0.1:1130: addr=127.0.0.1:1130 name=127.0.0.1:1130 weight=1 max_fails=1 fail_timeout=10\n"
	if _, body, _ := get(t, base+"/t"); body != want {
		t.Fatalf("got:\n%s\nwant:\n%s", body, want)
	}
}

// sanity.t TEST 15-18: current_upstream_name in log_by_lua and content_by_lua.
func TestUpstreamCompatCurrentUpstreamName(t *testing.T) {
	_, base, logs := startServer(t, `
error_log stderr info;
events {}
http {
    upstream some_upstream { server LISTEN; }
    server {
        listen LISTEN;
        log_by_lua_block {
            local upstream = require "ngx.upstream"
            ngx.log(ngx.INFO, "upstream = ", tostring(upstream.current_upstream_name()), " for ", ngx.var.uri)
        }
        location /explicit { proxy_pass http://some_upstream/back; }
        location /implicit { proxy_pass http://LISTEN/back; }
        location /back { return 200 "ok"; }
        location /content {
            content_by_lua_block {
                local upstream = require "ngx.upstream"
                ngx.say(upstream.current_upstream_name())
            }
        }
    }
}`)
	listen := strings.TrimPrefix(base, "http://")
	for _, tc := range []struct{ path, body, log string }{
		{"/explicit", "ok", "upstream = some_upstream for /explicit"},
		{"/implicit", "ok", "upstream = " + listen + " for /implicit"},
		{"/back", "ok", "upstream = nil for /back"},
		{"/content", "nil\n", "upstream = nil for /content"},
	} {
		if code, body, _ := get(t, base+tc.path); code != 200 || body != tc.body {
			t.Fatalf("%s: %d %q", tc.path, code, body)
		}
		re := regexp.MustCompile(`\[info\] .*` + regexp.QuoteMeta(tc.log))
		waitFor(t, func() bool { return re.MatchString(logs.String()) })
	}
}

// t/up-down.t: turning a peer up also clears its fails.
func TestUpstreamCompatUpClearsFails(t *testing.T) {
	_, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    upstream foo.com {
        server %s max_fails=3;
        server %s max_fails=3;
    }
    server {
        listen LISTEN;
        location /sub { proxy_pass http://foo.com; }
        location /t {
            content_by_lua_block {
                local upstream = require "ngx.upstream"
                ngx.say(upstream.get_primary_peers("foo.com")[1].fails)
                assert(upstream.set_peer_down("foo.com", false, 0, false))
                ngx.say(upstream.get_primary_peers("foo.com")[1].fails)
            }
        }
    }
}`, deadAddr(t), deadAddr(t)))
	// The original made three subrequests; real requests fail the same way
	// (each one tries both dead peers).
	for i := 0; i < 3; i++ {
		if code, _, _ := get(t, base+"/sub"); code != 502 {
			t.Fatalf("/sub: %d", code)
		}
	}
	if _, body, _ := get(t, base+"/t"); body != "3\n0\n" {
		t.Fatalf("got %q, want \"3\\n0\\n\"", body)
	}
}

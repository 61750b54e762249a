package app

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Shared dicts, time, timers, init_by_lua/init_worker_by_lua and ngx.sleep,
// through real requests.
func TestLuaSharedDictTimeAndTimers(t *testing.T) {
	conf := `
error_log stderr info;
events {}
http {
    lua_shared_dict d 1m;
    lua_shared_dict other 64k;
    init_by_lua_block {
        greeting = "hello from init"
        ngx.shared.d:set("init", "set in init")
    }
    init_worker_by_lua_block {
        ngx.shared.d:set("worker_phase", ngx.get_phase())
        local ok, err = ngx.timer.every(0.01, function(premature)
            ngx.shared.d:incr("ticks", 1, 0)
        end)
        if not ok then ngx.log(ngx.ERR, "timer: ", err) end
    }
    server {
        listen LISTEN;
        default_type text/plain;

        location /dict {
            content_by_lua_block {
                local d = ngx.shared.d
                local out = {}
                local function p(...)
                    local t = {}
                    for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
                    out[#out + 1] = table.concat(t, ",")
                end
                p(d:set("s", "str"))
                p(d:set("n", 1.5, 0, 7))
                p(d:get("n"))
                p(d:get("s"))
                d:set("b", false)
                p(type(d:get("b")), d:get("b"))
                p(d:add("s", "x"))
                p(d:safe_add("new", 1))
                p(d:safe_set("safe", "v"))
                p(d:replace("s", "str2"))
                p(d:get("s"))
                p(d:replace("nope", 1))
                p(d:incr("cnt", 1))
                p(d:incr("cnt", 5, 10))
                p(d:incr("s", 1))
                d:delete("new")
                p(d:get("new"))
                d:set("ttl", "v", 100)
                local ttl = d:ttl("ttl")
                p(ttl > 99 and ttl <= 100)
                p(d:expire("ttl", 0))
                p(d:ttl("ttl"))
                p(d:ttl("missing"))
                p(d:expire("missing", 1))
                d:set("gone", "old", 0.001)
                ngx.sleep(0.01)
                p(d:get("gone"))
                local v, _, stale = d:get_stale("gone")
                p(v, stale)
                p(d:flush_expired())
                -- the init_worker timer adds "ticks" at any moment: leave it out
                local keys = {}
                for _, k in ipairs(d:get_keys(0)) do
                    if k ~= "ticks" then keys[#keys + 1] = k end
                end
                table.sort(keys)
                p(table.concat(keys, " "))
                p(d:capacity(), d:free_space() < d:capacity(), d:free_space() > 0)
                p(d:set("t", {}))
                p(d:get(nil))
                p(ngx.shared.nosuch)
                ngx.say(table.concat(out, "\n"))
            }
        }
        location /dict_flush {
            content_by_lua_block {
                local d = ngx.shared.other
                d:set("a", 1) d:set("b", 2)
                d:flush_all()
                ngx.say(tostring(d:get("a")), " ", #d:get_keys())
            }
        }
        location /dict_dot_call { content_by_lua_block { ngx.shared.d.get("k") } }
        location /incr { content_by_lua_block { ngx.say((ngx.shared.other:incr("hits", 1, 0))) } }
        location /dset_flushed { content_by_lua_block { ngx.shared.d:set("flushed_seen", true) } }
        location /dget {
            content_by_lua_block { ngx.say(tostring(ngx.shared.d:get(ngx.var.arg_k))) }
        }

        location /init {
            content_by_lua_block {
                ngx.say(greeting, "|", ngx.shared.d:get("init"), "|", ngx.shared.d:get("worker_phase"))
                greeting = "changed by a request"
            }
        }
        location /timer_at {
            content_by_lua_block {
                local ok, err = ngx.timer.at(0, function(premature, a, b)
                    ngx.shared.d:set("timer_result", table.concat({tostring(premature), a, b,
                        ngx.get_phase(), tostring(ngx.timer.running_count() >= 1)}, " "))
                end, "arg1", "arg2")
                ngx.say(ok, " ", tostring(err), " ", ngx.timer.pending_count() >= 1)
            }
        }
        location /timer_error {
            content_by_lua_block {
                ngx.timer.at(0, function() error("timer-boom") end)
                ngx.say("armed")
            }
        }
        location /timer_bad { content_by_lua_block { ngx.timer.at(1) } }
        location /timer_bad_delay { content_by_lua_block { ngx.timer.at(-1, function() end) } }
        location /worker {
            content_by_lua_block {
                ngx.say(ngx.worker.id(), " ", ngx.worker.count(), " ", ngx.worker.pid() == tonumber(ngx.var.pid), " ", ngx.worker.exiting())
            }
        }
        location /time {
            content_by_lua_block {
                ngx.update_time()
                local now, t = ngx.now(), ngx.time()
                ngx.say(math.abs(now - t) <= 1, " ", math.abs(t - os.time()) <= 1, " ", type(now))
                ngx.say(ngx.today():match("^%d%d%d%d%-%d%d%-%d%d$") ~= nil, " ",
                        ngx.localtime():match("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$") ~= nil, " ",
                        ngx.utctime():match("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$") ~= nil)
                ngx.say(ngx.http_time(0), "|", ngx.cookie_time(0), "|", ngx.parse_http_time("Thu, 01 Jan 1970 00:00:10 GMT"),
                        "|", tostring(ngx.parse_http_time("garbage")), "|", ngx.parse_http_time(ngx.http_time(1290079655)))
            }
        }
        location /http_time_bad { content_by_lua_block { ngx.http_time("soon") } }
        location /sleep_bad { content_by_lua_block { ngx.sleep(-1) } }
        location /sleep_in_filter {
            content_by_lua_block { ngx.say("x") }
            header_filter_by_lua_block { ngx.sleep(0.001) }
        }
        location /sleeper {
            content_by_lua_block {
                local d = ngx.shared.d
                d:set("sleeping", true)
                local deadline = ngx.now() + 5
                while not d:get("wake") and ngx.now() < deadline do ngx.sleep(0.005) end
                ngx.say("woke ", tostring(d:get("wake")))
            }
        }
        location /flusher {
            content_by_lua_block {
                ngx.say("first")
                ngx.say(ngx.flush(true))
                local deadline = ngx.now() + 5
                while not ngx.shared.d:get("flushed_seen") and ngx.now() < deadline do ngx.sleep(0.005) end
                ngx.say("second")
            }
        }
        location /waker { content_by_lua_block { ngx.shared.d:set("wake", "by waker") ngx.say("waker done") } }
    }
}`
	base, _, logs := startLuaServer(t, conf, nil)

	runLuaCases(t, base, logs, []luaCase{
		{name: "dict operations", path: "/dict", body: strings.Join([]string{
			"true,nil,false", "true,nil,false", "1.5,7", "str", "boolean,false",
			"false,exists,false", "true,nil,false", "true,nil,false", "true,nil,false", "str2",
			"false,not found,false", "nil,not found", "15,nil,false", "nil,not a number", "nil",
			"true", "true", "0", "nil,not found", "nil,not found",
			"nil", "old,true", "1",
			"b cnt init n s safe ttl worker_phase",
			"1048576,true,true", "nil,bad value type", "nil,nil key", "nil",
		}, "\n") + "\n"},
		{name: "flush_all", path: "/dict_flush", body: "nil 0\n"},
		{name: "dict method called with a dot", path: "/dict_dot_call", status: 500, logs: []string{`bad "zone" argument`}},
		{name: "init_by_lua globals and dict", path: "/init", body: "hello from init|set in init|init_worker\n"},
		// Globals set by a request don't leak into the next one.
		{name: "init globals are not changed by requests", path: "/init", body: "hello from init|set in init|init_worker\n"},
		{name: "timer.at", path: "/timer_at", body: "true nil true\n"},
		{name: "timer runtime error", path: "/timer_error", body: "armed\n",
			logs: []string{"lua entry thread aborted: runtime error: ", "timer-boom", "stack traceback:", "context: ngx.timer"}},
		{name: "timer without function", path: "/timer_bad", status: 500,
			logs: []string{"bad argument #2 to 'at' (function expected, got nil)"}},
		{name: "timer negative delay", path: "/timer_bad_delay", status: 500, logs: []string{`bad "delay" argument`}},
		{name: "worker", path: "/worker", body: "0 1 true false\n"},
		{name: "time functions", path: "/time", body: "true true number\ntrue true true\n" +
			"Thu, 01 Jan 1970 00:00:00 GMT|Thu, 01-Jan-70 00:00:00 GMT|10|nil|1290079655\n"},
		{name: "http_time bad argument", path: "/http_time_bad", status: 500,
			logs: []string{"bad argument #1 to 'http_time' (number expected, got string)"}},
		{name: "sleep negative", path: "/sleep_bad", status: 500, logs: []string{"invalid sleep duration"}},
		{name: "sleep in header filter", path: "/sleep_in_filter", status: 500,
			logs: []string{"API disabled in the context of header_filter_by_lua*"}},
	})

	t.Run("shared across requests", func(t *testing.T) {
		for want := 1; want <= 3; want++ {
			if _, body, _ := get(t, base+"/incr"); body != strconv.Itoa(want)+"\n" {
				t.Fatalf("incr %d: %q", want, body)
			}
		}
	})
	t.Run("timer.at result", func(t *testing.T) {
		waitFor(t, func() bool {
			_, body, _ := get(t, base+"/dget?k=timer_result")
			return body == "false arg1 arg2 timer true\n"
		})
	})
	t.Run("init_worker timer.every", func(t *testing.T) {
		waitFor(t, func() bool {
			_, body, _ := get(t, base+"/dget?k=ticks")
			n, _ := strconv.Atoi(strings.TrimSpace(body))
			return n >= 3
		})
	})
	t.Run("flush sends output before the handler ends", func(t *testing.T) {
		resp, err := http.Get(base + "/flusher")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		// The handler is still waiting: only ngx.flush can have sent this.
		if line, err := r.ReadString('\n'); line != "first\n" {
			t.Fatalf("got %q (%v), want first", line, err)
		}
		if code, body, _ := get(t, base+"/dset_flushed"); code != 200 {
			t.Fatalf("dset: %d %q", code, body)
		}
		rest, _ := io.ReadAll(r)
		if string(rest) != "1\nsecond\n" {
			t.Fatalf("rest %q", rest)
		}
	})
	t.Run("sleep does not block other requests", func(t *testing.T) {
		type result struct {
			code int
			body string
		}
		done := make(chan result, 1)
		go func() {
			code, body, _ := doRequestNoFatal(base + "/sleeper")
			done <- result{code, body}
		}()
		waitFor(t, func() bool {
			_, body, _ := get(t, base+"/dget?k=sleeping")
			return body == "true\n"
		})
		// The sleeper is parked in ngx.sleep; other requests are served.
		if _, body, _ := get(t, base+"/waker"); body != "waker done\n" {
			t.Fatalf("waker: %q", body)
		}
		select {
		case r := <-done:
			t.Fatalf("sleeper finished before it was woken: %+v", r)
		default:
		}
		if r := <-done; r.code != 200 || r.body != "woke by waker\n" {
			t.Fatalf("sleeper: %+v", r)
		}
	})
}

package app

import (
	"fmt"
	"testing"
)

// ngx.req.*, ngx.location.capture* and Lua phases around proxy_pass,
// through real requests.
func TestLuaRequestAPI(t *testing.T) {
	echo := echoBackend(t)
	conf := fmt.Sprintf(`
error_log stderr info;
events {}
http {
    upstream echo { server %s; }
    server {
        listen LISTEN;
        default_type text/plain;

        location /method { content_by_lua_block { ngx.say(ngx.req.get_method(), " ", ngx.var.request_method) } }
        location /uri_args {
            content_by_lua_block {
                local a = ngx.req.get_uri_args()
                ngx.say(a.a[1], ",", a.a[2], " ", tostring(a.b), " ", a.c, " ", tostring(a[""]))
                local keys = 0
                local t, err = ngx.req.get_uri_args(2)
                for _ in pairs(t) do keys = keys + 1 end
                ngx.say(keys, " ", err)
            }
        }
        location /uri_args_bad { content_by_lua_block { ngx.req.get_uri_args("x") } }
        location /post_args {
            content_by_lua_block {
                ngx.req.read_body()
                local a = ngx.req.get_post_args()
                ngx.say(a.k[1], ",", a.k[2], " [", a.e, "] ", tostring(a.flag), " ", a.sp)
            }
        }
        location /post_args_unread { content_by_lua_block { ngx.req.get_post_args() } }
        location /headers {
            content_by_lua_block {
                local h = ngx.req.get_headers()
                ngx.say(h["x-one"], " ", h.x_one, " ", h["X-One"], " ", h["x-many"][1], ",", h["x-many"][2])
                local raw = ngx.req.get_headers(0, true)
                ngx.say(raw["X-One"], " ", tostring(raw["x-one"]))
            }
        }
        location /set_header {
            rewrite_by_lua_block {
                ngx.req.set_header("X-Added", "yes")
                ngx.req.set_header("X-Multi-Req", {"1", "2"})
                ngx.req.set_header("X-Num", 7)
                ngx.req.clear_header("X-Remove")
                ngx.req.set_header("X-Also-Removed", nil)
            }
            proxy_pass http://echo;
        }
        location /set_header_bad { content_by_lua_block { ngx.req.set_header("X-F", print) } }
        location /body {
            content_by_lua_block {
                ngx.req.read_body()
                ngx.say("[", tostring(ngx.req.get_body_data()), "]")
            }
        }
        location /body_proxied {
            access_by_lua_block { ngx.req.read_body() ngx.ctx.b = ngx.req.get_body_data() }
            proxy_pass http://echo;
            header_filter_by_lua_block { ngx.header["X-Seen-Body"] = ngx.ctx.b }
        }
        location /set_uri_jump { rewrite_by_lua_block { ngx.req.set_uri("/landing", true) } }
        location /landing { content_by_lua_block { ngx.say("landed ", ngx.var.uri, " ", ngx.var.request_uri) } }
        location /set_uri_proxy {
            rewrite_by_lua_block { ngx.req.set_uri("/rewritten path") }
            proxy_pass http://echo;
        }
        location /set_uri_args {
            rewrite_by_lua_block { ngx.req.set_uri_args({b = 2, a = {1, "x y"}}) }
            proxy_pass http://echo;
        }
        location /set_uri_args_string {
            access_by_lua_block { ngx.req.set_uri_args("s=1") }
            content_by_lua_block { ngx.say(ngx.var.args, " ", ngx.req.get_uri_args().s) }
        }
        location /set_uri_args_bad { content_by_lua_block { ngx.req.set_uri_args(true) } }
        location /set_uri_content_jump { content_by_lua_block { ngx.req.set_uri("/x", true) } }
        location /set_uri_empty { rewrite_by_lua_block { ngx.req.set_uri("") } }
        location /start_time {
            content_by_lua_block {
                local st = ngx.req.start_time()
                ngx.say(type(st), " ", st <= ngx.now(), " ", ngx.now() - st < 5)
            }
        }
        location /http_version { content_by_lua_block { ngx.say(ngx.req.http_version()) } }
        location /set_method {
            rewrite_by_lua_block { ngx.req.set_method(ngx.HTTP_PUT) }
            proxy_pass http://echo;
        }

        location /sub {
            content_by_lua_block {
                ngx.req.read_body()
                ngx.header["X-Sub"] = "s"
                ngx.say(ngx.req.get_method(), " ", ngx.var.uri, " ", ngx.var.args, " ",
                        tostring(ngx.req.get_body_data()), " ", ngx.is_subrequest)
            }
        }
        location /proxied/ { proxy_pass http://echo; }
        location /cap {
            content_by_lua_block {
                local res = ngx.location.capture("/sub?x=1", {args = {y = 2}})
                ngx.print(res.status, " ", res.header["X-Sub"], " ", tostring(res.truncated), " ", res.body)
                ngx.say(ngx.is_subrequest)
            }
        }
        location /cap_post {
            content_by_lua_block {
                local res = ngx.location.capture("/sub", {method = ngx.HTTP_POST, body = "payload"})
                ngx.print(res.body)
            }
        }
        location /cap_forward {
            content_by_lua_block {
                ngx.req.read_body()
                local res = ngx.location.capture("/sub", {method = ngx.HTTP_PUT})
                ngx.print(res.body)
            }
        }
        location /cap_proxy {
            content_by_lua_block {
                local res = ngx.location.capture("/proxied/path?q=1")
                ngx.say(res.status, " ", res.header["X-Backend"], " ", table.concat(res.header["X-Multi"], ","))
                ngx.print(res.body)
            }
        }
        location /cap_multi {
            content_by_lua_block {
                local a, b, c = ngx.location.capture_multi({{"/sub?n=1"}, {"/sub", {args = "n=2"}}, {"/proxied/m"}})
                ngx.print(a.body, b.body, c.status, " ", c.body)
            }
        }
        location /cap_404 {
            content_by_lua_block { ngx.say(ngx.location.capture("/nonexistent").status) }
        }
        location /cap_bad { content_by_lua_block { ngx.location.capture() } }
        location /cap_bad_opts { content_by_lua_block { ngx.location.capture("/sub", "opts") } }
        location /cap_multi_bad { content_by_lua_block { ngx.location.capture_multi({}) } }

        location /up/ {
            proxy_pass http://echo;
            header_filter_by_lua_block {
                ngx.header["X-Filtered"] = ngx.header["X-Backend"] .. "-seen"
                ngx.header["X-Multi-Count"] = #ngx.header["X-Multi"]
                ngx.header.content_length = nil
            }
            body_filter_by_lua_block {
                ngx.arg[1] = string.upper(ngx.arg[1])
                if ngx.arg[2] then ngx.arg[1] = ngx.arg[1] .. "TAIL" end
            }
            log_by_lua_block {
                ngx.log(ngx.INFO, "upstream=", ngx.var.upstream_addr, " status=", ngx.var.status,
                        " upstream_status=", ngx.var.upstream_status, " phase=", ngx.get_phase())
            }
        }
        location /no_upstream {
            content_by_lua_block { ngx.say("local") }
            log_by_lua_block { ngx.log(ngx.INFO, "no-upstream addr=", tostring(ngx.var.upstream_addr)) }
        }
    }
}`, echo)
	base, _, logs := startLuaServer(t, conf, nil)
	runLuaCases(t, base, logs, []luaCase{
		{name: "get_method", method: "POST", path: "/method", reqBody: "x", body: "POST POST\n"},
		{name: "get_uri_args", path: "/uri_args?a=1&a=2&b&c=x%20y+z&=skip", body: "1,2 true x y z nil\n1 truncated\n"},
		{name: "get_uri_args bad max", path: "/uri_args_bad", status: 500,
			logs: []string{"bad argument #1 to 'get_uri_args' (number expected, got string)"}},
		{name: "get_post_args", method: "POST", path: "/post_args", reqBody: "k=v&k=w&e=&flag&sp=a+b%21",
			reqHdr: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: "v,w [] true a b!\n"},
		{name: "get_post_args before read_body", method: "POST", path: "/post_args_unread", reqBody: "k=v", status: 500,
			logs: []string{"no request body found; maybe you should turn on lua_need_request_body?"}},
		{name: "get_headers", path: "/headers", reqHdr: map[string]string{"X-One": "1", "X-Many": "a|b"},
			body: "1 1 1 a,b\n1 nil\n"},
		{name: "set_header and clear_header reach the backend", path: "/set_header",
			reqHdr: map[string]string{"X-Remove": "gone", "X-Also-Removed": "gone", "X-Kept": "kept"},
			has:    []string{"GET /set_header\n", "X-Added: yes\n", "X-Multi-Req: 1,2\n", "X-Num: 7\n", "X-Kept: kept\n"},
			lacks:  []string{"X-Remove", "X-Also-Removed"}},
		{name: "set_header bad value", path: "/set_header_bad", status: 500,
			logs: []string{"bad argument #2 to 'set_header' (string, number, table or nil expected, got function)"}},
		{name: "read_body and get_body_data", method: "POST", path: "/body", reqBody: "hello", body: "[hello]\n"},
		{name: "get_body_data without body", path: "/body", body: "[nil]\n"},
		{name: "read body then proxy it", method: "POST", path: "/body_proxied", reqBody: "pass-me",
			has: []string{"POST /body_proxied\n", "body: pass-me\n"}, hdr: map[string]string{"X-Seen-Body": "pass-me"}},
		{name: "set_uri with jump", path: "/set_uri_jump?k=v", body: "landed /landing /set_uri_jump?k=v\n"},
		{name: "set_uri then proxy", path: "/set_uri_proxy?k=v", has: []string{"GET /rewritten%20path?k=v\n"}},
		{name: "set_uri_args table then proxy", path: "/set_uri_args?old=1", has: []string{"GET /set_uri_args?a=1&a=x%20y&b=2\n"}},
		{name: "set_uri_args string", path: "/set_uri_args_string?old=1", body: "s=1 1\n"},
		{name: "set_uri_args bad", path: "/set_uri_args_bad", status: 500,
			logs: []string{"bad argument #1 to 'set_uri_args' (string, number, or table expected, but got boolean)"}},
		{name: "set_uri jump outside rewrite", path: "/set_uri_content_jump", status: 500,
			logs: []string{"attempt to call ngx.req.set_uri to do location jump in contexts other than rewrite_by_lua and rewrite_by_lua_file"}},
		{name: "set_uri empty", path: "/set_uri_empty", status: 500, logs: []string{"attempt to use zero-length uri"}},
		{name: "start_time", path: "/start_time", body: "number true true\n"},
		{name: "http_version", path: "/http_version", body: "1.1\n"},
		{name: "set_method then proxy", path: "/set_method", has: []string{"PUT /set_method\n"}},

		{name: "capture with args", path: "/cap", body: "200 s false GET /sub x=1&y=2 nil true\nfalse\n"},
		{name: "capture POST with body", path: "/cap_post", body: "POST /sub  payload true\n"},
		{name: "capture forwards the read body for PUT", method: "POST", path: "/cap_forward", reqBody: "fwd",
			body: "PUT /sub  fwd true\n"},
		{name: "capture a proxied location", path: "/cap_proxy", has: []string{"200 echo one,two\nGET /proxied/path?q=1\n"}},
		{name: "capture_multi", path: "/cap_multi", has: []string{"GET /sub n=1 nil true\nGET /sub n=2 nil true\n200 GET /proxied/m\n"}},
		{name: "capture of a missing page", path: "/cap_404", body: "404\n"},
		{name: "capture without uri", path: "/cap_bad", status: 500,
			logs: []string{"bad argument #1 to 'capture' (string expected, got nil)"}},
		{name: "capture bad options", path: "/cap_bad_opts", status: 500,
			logs: []string{"bad argument #2 to 'capture' (table expected"}},
		{name: "capture_multi empty", path: "/cap_multi_bad", status: 500,
			logs: []string{"at least one subrequest should be specified"}},

		{name: "filters on a proxied response", path: "/up/x",
			has:  []string{"GET /UP/X\n", "USER-AGENT: GO-HTTP-CLIENT/1.1\nTAIL"},
			hdr:  map[string]string{"X-Filtered": "echo-seen", "X-Multi-Count": "2", "X-Backend": "echo"},
			logs: []string{"upstream=" + echo + " status=200 upstream_status=200 phase=log"}},
		{name: "upstream variables without upstream", path: "/no_upstream", body: "local\n",
			logs: []string{"no-upstream addr=nil"}},
	})
}

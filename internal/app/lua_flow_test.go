package app

import (
	"fmt"
	"strings"
	"testing"
)

// Output, flow control, headers, ngx.ctx, ngx.var and constants, through
// real requests.
func TestLuaOutputAndFlow(t *testing.T) {
	conf := `
error_log stderr info;
events {}
http {
    server {
        listen LISTEN;
        default_type text/plain;

        location /say {
            content_by_lua_block {
                ngx.say("a", 1, true, nil, ngx.null, {"b", {"c", 2.5}})
                ngx.print("x", {"y"}, 3)
            }
        }
        location /say_hash { content_by_lua_block { ngx.say({a = 1}) } }
        location /print_func { content_by_lua_block { ngx.print("x", print) } }
        location /say_ret {
            content_by_lua_block {
                local ok = ngx.say("x")
                ngx.say(ok, " ", ngx.headers_sent, " ", ngx.get_phase())
            }
        }
        location /eof {
            content_by_lua_block {
                ngx.say("done")
                ngx.eof()
                local ok, err = ngx.say("more")
                ngx.log(ngx.ERR, "after eof: ", tostring(ok), " ", err)
            }
        }
        location /eof_arg { content_by_lua_block { ngx.eof(1) } }

        location /exit_rewrite {
            rewrite_by_lua_block { ngx.exit(403) }
            content_by_lua_block { ngx.say("unreached") }
        }
        location /exit_rewrite_ok {
            rewrite_by_lua_block { ngx.ctx.r = 1 ngx.exit(ngx.OK) ngx.ctx.r = 2 }
            content_by_lua_block { ngx.say("content ", ngx.ctx.r) }
        }
        location /exit_access {
            access_by_lua_block {
                ngx.header["X-Why"] = "denied"
                ngx.exit(ngx.HTTP_UNAUTHORIZED)
            }
            content_by_lua_block { ngx.say("unreached") }
        }
        location /exit_content {
            content_by_lua_block { ngx.say("partial") ngx.exit(ngx.OK) ngx.say("unreached") }
        }
        location /exit_content_201 { content_by_lua_block { ngx.exit(201) } }
        location /exit_content_404 { content_by_lua_block { ngx.exit(ngx.HTTP_NOT_FOUND) } }
        location /exit_after_output {
            content_by_lua_block { ngx.say("sent") ngx.flush() ngx.exit(500) }
        }
        location /exit_header_filter {
            content_by_lua_block { ngx.say("hf") }
            header_filter_by_lua_block { ngx.header["X-A"] = "1" ngx.exit(ngx.OK) ngx.header["X-B"] = "2" }
        }
        location /exit_body_filter {
            content_by_lua_block { ngx.say("bf") }
            body_filter_by_lua_block { ngx.exit(ngx.OK) }
        }
        location /exit_log {
            content_by_lua_block { ngx.say("logged") }
            log_by_lua_block { ngx.exit(200) }
        }
        location /exit_bad { content_by_lua_block { ngx.exit("soon") } }

        location /exec_uri {
            rewrite_by_lua_block { ngx.ctx.lost = "yes" }
            content_by_lua_block { ngx.exec("/target?a=1", {b = 2}) }
        }
        location /exec_named { access_by_lua_block { ngx.exec("@named") } }
        location @named { content_by_lua_block { ngx.say("named ", ngx.var.uri) } }
        location /target {
            content_by_lua_block { ngx.say("target ", ngx.var.uri, "?", ngx.var.args, " ctx=", tostring(ngx.ctx.lost)) }
        }
        location /exec_empty { content_by_lua_block { ngx.exec("") } }
        location /exec_badargs { content_by_lua_block { ngx.exec("/target", true) } }
        location /exec_after_output { content_by_lua_block { ngx.say("x") ngx.flush() ngx.exec("/target") } }

        location /redirect { content_by_lua_block { ngx.redirect("/new?x=1", ngx.HTTP_MOVED_PERMANENTLY) } }
        location /redirect_default { rewrite_by_lua_block { ngx.redirect("http://example.com/") } }
        location /redirect_bad { content_by_lua_block { ngx.redirect("/x", 200) } }

        location /status {
            content_by_lua_block { ngx.status = 202 ngx.say(ngx.status) }
        }
        location /status_bad { content_by_lua_block { ngx.status = {} } }
        location /status_late {
            content_by_lua_block { ngx.say("a") ngx.flush() ngx.status = 404 ngx.say(ngx.status) }
        }

        location /headers {
            content_by_lua_block {
                ngx.header["X-Multi"] = {"a", "b"}
                ngx.header.content_type = "text/x-lua"
                ngx.header.x_under = "u"
                ngx.header["X-Gone"] = "g"
                ngx.header["X-Gone"] = nil
                ngx.header["X-Num"] = 42
                local m = ngx.header["x-multi"]
                ngx.say(type(m), " ", #m, " ", m[2], " ", ngx.header.content_type, " ", ngx.header["X-Under"], " ", tostring(ngx.header.x_gone))
            }
        }
        location /header_bad { content_by_lua_block { ngx.header["X-F"] = print } }
        location /header_late {
            content_by_lua_block { ngx.say("x") ngx.flush() ngx.header["X-Late"] = "1" }
        }

        location /ctx {
            rewrite_by_lua_block { ngx.ctx.trail = "rewrite" }
            access_by_lua_block { ngx.ctx.trail = ngx.ctx.trail .. ",access" }
            content_by_lua_block { ngx.ctx.trail = ngx.ctx.trail .. ",content" ngx.say(ngx.ctx.trail) }
            header_filter_by_lua_block { ngx.header["X-Trail"] = ngx.ctx.trail .. ",header" }
            body_filter_by_lua_block { if ngx.arg[2] then ngx.ctx.trail = ngx.ctx.trail .. ",body" end }
            log_by_lua_block { ngx.log(ngx.INFO, "ctx trail: ", ngx.ctx.trail, ",log") }
        }
        location /ctx_replace {
            content_by_lua_block { ngx.ctx = {v = "new"} ngx.say(ngx.ctx.v) }
        }
        location /ctx_bad { content_by_lua_block { ngx.ctx = 1 } }

        location /vars {
            content_by_lua_block {
                local v = ngx.var
                ngx.say(v.uri, "|", v.args, "|", v.arg_x, "|", v.request_uri, "|", v.request_method, "|",
                        v.host, "|", v.remote_addr, "|", v.server_port == ngx.var.SERVER_PORT, "|",
                        v.http_x_test, "|", tostring(v.http_x_missing), "|", tostring(v.arg_missing), "|",
                        tostring(v.no_such_variable), "|", v.scheme, "|", v.is_args)
            }
        }
        location /var_args {
            rewrite_by_lua_block { ngx.var.args = "x=changed" }
            content_by_lua_block { ngx.say(ngx.var.arg_x, " ", ngx.var.args, " ", ngx.req.get_uri_args().x) }
        }
        location /var_uri_write { content_by_lua_block { ngx.var.uri = "/x" } }
        location /var_unknown_write { content_by_lua_block { ngx.var.nosuch = "x" } }
        location /var_bad_value { content_by_lua_block { ngx.var.args = {} } }

        location /constants {
            content_by_lua_block {
                ngx.say(ngx.OK, " ", ngx.ERROR, " ", ngx.AGAIN, " ", ngx.DONE, " ", ngx.DECLINED)
                ngx.say(ngx.HTTP_OK, " ", ngx.HTTP_CREATED, " ", ngx.HTTP_MOVED_TEMPORARILY, " ", ngx.HTTP_NOT_FOUND, " ",
                        ngx.HTTP_INTERNAL_SERVER_ERROR, " ", ngx.HTTP_SERVICE_UNAVAILABLE, " ", ngx.HTTP_GATEWAY_TIMEOUT)
                ngx.say(ngx.HTTP_GET, " ", ngx.HTTP_HEAD, " ", ngx.HTTP_POST, " ", ngx.HTTP_PUT, " ", ngx.HTTP_DELETE)
                ngx.say(ngx.STDERR, ngx.EMERG, ngx.ALERT, ngx.CRIT, ngx.ERR, ngx.WARN, ngx.NOTICE, ngx.INFO, ngx.DEBUG)
                ngx.say(tostring(ngx.null), " ", type(ngx.null), " ", ngx.null == ngx.null)
            }
        }
        location /by_lua_string { content_by_lua 'ngx.say("inline ", ngx.var.uri)'; }
    }
}`
	base, _, logs := startLuaServer(t, conf, nil)
	runLuaCases(t, base, logs, []luaCase{
		{name: "say and print nested tables", path: "/say", body: "a1truenilnullbc2.5\nxy3"},
		{name: "say hash table", path: "/say_hash", status: 500,
			logs: []string{"[error]", "bad argument #1 to 'say' (non-array table found)", "stack traceback:"}},
		{name: "print function", path: "/print_func", status: 500,
			logs: []string{"bad argument #2 to 'print' (string, number, boolean, nil, ngx.null, or array table expected, got function)"}},
		{name: "say returns 1", path: "/say_ret", body: "x\n1 true content\n"},
		{name: "eof", path: "/eof", body: "done\n", logs: []string{"after eof: nil seen eof"}},
		{name: "eof with argument", path: "/eof_arg", status: 500, logs: []string{"no argument is expected"}},

		{name: "exit 403 in rewrite", path: "/exit_rewrite", status: 403, has: []string{"403 Forbidden"}},
		{name: "exit OK in rewrite goes on", path: "/exit_rewrite_ok", body: "content 1\n"},
		{name: "exit 401 in access keeps headers", path: "/exit_access", status: 401,
			has: []string{"401 Authorization Required"}, hdr: map[string]string{"X-Why": "denied"}},
		{name: "exit OK in content", path: "/exit_content", body: "partial\n"},
		{name: "exit 201 in content", path: "/exit_content_201", status: 201, body: "<empty>"},
		{name: "exit 404 in content", path: "/exit_content_404", status: 404, has: []string{"404 Not Found"}},
		{name: "exit after output", path: "/exit_after_output", body: "sent\n",
			logs: []string{"attempt to set status 500 via ngx.exit after sending out the response status 200"}},
		{name: "exit in header filter", path: "/exit_header_filter", body: "hf\n",
			hdr: map[string]string{"X-A": "1", "X-B": ""}},
		{name: "exit in body filter", path: "/exit_body_filter",
			logs: []string{"failed to run body_filter_by_lua*: ", "API disabled in the context of body_filter_by_lua*"}},
		{name: "exit in log", path: "/exit_log", body: "logged\n",
			logs: []string{"failed to run log_by_lua*: ", "API disabled in the context of log_by_lua*"}},
		{name: "exit bad argument", path: "/exit_bad", status: 500,
			logs: []string{"bad argument #1 to 'exit' (number expected, got string)"}},

		{name: "exec to uri with args", path: "/exec_uri", body: "target /target?a=1&b=2 ctx=nil\n"},
		{name: "exec to named location", path: "/exec_named", body: "named /exec_named\n"},
		{name: "exec empty uri", path: "/exec_empty", status: 500, logs: []string{"The uri argument is empty"}},
		{name: "exec bad args", path: "/exec_badargs", status: 500,
			logs: []string{"bad argument #2 to 'exec' (string, number, or table expected, but got boolean)"}},
		{name: "exec after output", path: "/exec_after_output", body: "x\n",
			logs: []string{"attempt to call ngx.exec after sending out response headers"}},

		{name: "redirect 301", path: "/redirect", status: 301, has: []string{"301 Moved Permanently"},
			hdr: map[string]string{"Location": "/new?x=1"}},
		{name: "redirect default 302", path: "/redirect_default", status: 302,
			hdr: map[string]string{"Location": "http://example.com/"}},
		{name: "redirect bad status", path: "/redirect_bad", status: 500,
			logs: []string{"only ngx.HTTP_MOVED_TEMPORARILY, ngx.HTTP_MOVED_PERMANENTLY, ngx.HTTP_PERMANENT_REDIRECT, ngx.HTTP_SEE_OTHER, and ngx.HTTP_TEMPORARY_REDIRECT are allowed"}},

		{name: "status", path: "/status", status: 202, body: "202\n"},
		{name: "status bad type", path: "/status_bad", status: 500, logs: []string{"number expected, got table"}},
		{name: "status after headers sent", path: "/status_late", body: "a\n200\n",
			logs: []string{"attempt to set ngx.status after sending out response headers"}},

		{name: "headers read and write", path: "/headers", body: "table 2 b text/x-lua u nil\n",
			hdr: map[string]string{"X-Multi": "a|b", "Content-Type": "text/x-lua", "X-Under": "u", "X-Gone": "", "X-Num": "42"}},
		{name: "header bad value", path: "/header_bad", status: 500,
			logs: []string{"attempt to set header X-F with invalid value type function"}},
		{name: "header after headers sent", path: "/header_late", body: "x\n", hdr: map[string]string{"X-Late": ""},
			logs: []string{"attempt to set ngx.header.HEADER after sending out response headers"}},

		{name: "ctx across phases", path: "/ctx", body: "rewrite,access,content\n",
			hdr:  map[string]string{"X-Trail": "rewrite,access,content,header"},
			logs: []string{"ctx trail: rewrite,access,content,body,log"}},
		{name: "ctx replaced", path: "/ctx_replace", body: "new\n"},
		{name: "ctx bad value", path: "/ctx_bad", status: 500, logs: []string{"table expected, got number"}},

		{name: "variables", path: "/vars?x=1&y=2", reqHdr: map[string]string{"X-Test": "hdr", "Host": "example.org:81"},
			body: "/vars|x=1&y=2|1|/vars?x=1&y=2|GET|example.org|127.0.0.1|true|hdr|nil|nil|nil|http|?\n"},
		{name: "write $args", path: "/var_args?x=orig", body: "changed x=changed changed\n"},
		{name: "write $uri", path: "/var_uri_write", status: 500, logs: []string{`variable "uri" not changeable`}},
		{name: "write unknown variable", path: "/var_unknown_write", status: 500,
			logs: []string{`variable "nosuch" not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use "set $nosuch '';" in the config file to define it first`}},
		{name: "write bad value", path: "/var_bad_value", status: 500, logs: []string{"bad variable value"}},

		{name: "constants", path: "/constants",
			body: "0 -1 -2 -4 -5\n200 201 302 404 500 503 504\n2 4 8 16 32\n012345678\nuserdata: NULL userdata true\n"},
		{name: "by_lua string form", path: "/by_lua_string", body: "inline /by_lua_string\n"},
	})
	// After all those errors the server still serves.
	if code, body, _ := get(t, base+"/say"); code != 200 || !strings.HasPrefix(body, "a1") {
		t.Fatalf("server not serving after errors: %d %q", code, body)
	}
}

// ngx.log honours the error_log level and reports the Lua position as
// "[lua] chunk:line: [func(): ]"; a runtime error answers 500 and logs the
// message with a stack traceback; the server keeps serving.
func TestLuaLogAndRuntimeErrors(t *testing.T) {
	conf := `
error_log stderr warn;
events {}
http {
    server {
        listen LISTEN;
        location /log {
            content_by_lua_block {
                ngx.log(ngx.ERR, "err-marker ", 1, " ", true, " ", nil, " ", ngx.null)
                ngx.log(ngx.WARN, "warn-marker")
                ngx.log(ngx.NOTICE, "notice-marker")
                ngx.log(ngx.INFO, "info-marker")
                ngx.log(ngx.DEBUG, "debug-marker")
                print("print-marker")
                local function helper() ngx.log(ngx.CRIT, "crit-in-func") end
                helper()
                ngx.log(ngx.ALERT, setmetatable({}, {__tostring = function() return "tostring-marker" end}))
                ngx.say("logged")
            }
        }
        location /log_bad_level { content_by_lua_block { ngx.log(100, "x") } }
        location /log_bad_arg { content_by_lua_block { ngx.log(ngx.ERR, {}) } }
        location /log_file { content_by_lua_file conf/logger.lua; }
        location /error {
            content_by_lua_block {
                local t = nil
                local x = t.field
            }
        }
        location /error_call {
            content_by_lua_block {
                local function inner() error("boom-marker") end
                inner()
            }
        }
        location /error_after_output {
            content_by_lua_block { ngx.say("first") ngx.flush() error("late-marker") }
        }
        location /error_rewrite { rewrite_by_lua_block { error("rewrite-marker") } }
        location /error_header_filter {
            content_by_lua_block { ngx.say("body") }
            header_filter_by_lua_block { error("hf-marker") }
        }
        location /error_log_phase {
            content_by_lua_block { ngx.say("ok") }
            log_by_lua_block { error("log-marker") }
        }
        location /pcall {
            content_by_lua_block {
                local ok, err = pcall(function() error("caught", 0) end)
                local ok2, err2 = pcall(function() ngx.say({x = 1}) end)
                ngx.say(ok, " ", err, " ", ok2, " ", err2)
            }
        }
        location /ok { content_by_lua_block { ngx.say("still serving") } }
    }
}`
	files := map[string]string{"conf/logger.lua": "-- a file chunk\nngx.log(ngx.ERR, \"from-file\")\nngx.say(\"file\")\n"}
	base, _, logs := startLuaServer(t, conf, files)
	logLine := lineOf(t, conf, "location /log {") + 1 // the content_by_lua_block line
	pos := func(marker string) string {
		return fmt.Sprintf("content_by_lua(nginx.conf:%d):%d: ", logLine, lineOf(t, conf, marker)-logLine+1)
	}
	errLine := lineOf(t, conf, "location /error {") + 1
	runLuaCases(t, base, logs, []luaCase{
		{name: "levels and position", path: "/log", body: "logged\n",
			logs: []string{
				"[error] ", "[lua] " + pos(`"err-marker "`) + "err-marker 1 true nil null",
				"[warn] ", "[lua] " + pos(`"warn-marker"`) + "warn-marker",
				"[crit] ", "[lua] " + pos(`"crit-in-func"`) + "helper(): crit-in-func",
				"[alert] ", "tostring-marker",
				", client: 127.0.0.1, server: , request: \"GET /log HTTP/1.1\", host: ",
			},
			noLogs: []string{"notice-marker", "info-marker", "debug-marker", "print-marker"}},
		{name: "bad level", path: "/log_bad_level", status: 500, logs: []string{"bad argument #1 to 'log' (bad log level: 100)"}},
		{name: "table without __tostring", path: "/log_bad_arg", status: 500,
			logs: []string{"bad argument #2 to 'log' (expected table to have __tostring metamethod)"}},
		{name: "file chunk position is the base name", path: "/log_file", body: "file\n", logs: []string{"[lua] logger.lua:2: from-file"}},
		{name: "runtime error", path: "/error", status: 500, has: []string{"500 Internal Server Error"},
			logs: []string{
				"[error] ",
				fmt.Sprintf("lua entry thread aborted: runtime error: content_by_lua(nginx.conf:%d):3: attempt to index", errLine),
				"stack traceback:\ncoroutine 0:\n\t",
				fmt.Sprintf("content_by_lua(nginx.conf:%d):3: in main chunk", errLine),
			}},
		{name: "error() in a function", path: "/error_call", status: 500,
			logs: []string{"boom-marker", "in function 'inner'", "in main chunk"}},
		{name: "error after output", path: "/error_after_output", body: "first\n", logs: []string{"late-marker"}},
		{name: "error in rewrite", path: "/error_rewrite", status: 500,
			logs: []string{"lua entry thread aborted: runtime error: rewrite_by_lua(nginx.conf:", "rewrite-marker"}},
		{name: "error in header filter", path: "/error_header_filter", status: 500, body: "body\n",
			logs: []string{"failed to run header_filter_by_lua*: header_filter_by_lua(nginx.conf:", "hf-marker"}},
		{name: "error in log phase", path: "/error_log_phase", body: "ok\n",
			logs: []string{"failed to run log_by_lua*: log_by_lua(nginx.conf:", "log-marker"}},
		{name: "pcall catches errors", path: "/pcall",
			has: []string{"false caught false ", "bad argument #1 to 'say' (non-array table found)\n"}},
		{name: "still serving", path: "/ok", body: "still serving\n"},
	})
}

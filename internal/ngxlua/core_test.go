package ngxlua

import (
	"strings"
	"testing"
)

func TestSayPrint(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"say", `ngx.say("hello world")`, "hello world\n"},
		{"print", `ngx.print("a", 1, " ", 2.5)`, "a1 2.5"},
		{"multi", `ngx.say("a", "b") ngx.say("c")`, "ab\nc\n"},
		{"nil bool", `ngx.say(nil, true, false)`, "niltruefalse\n"},
		{"null", `ngx.say("ngx.null: ", ngx.null)`, "ngx.null: null\n"},
		{"nested", `ngx.print({"hello, ", {"world: ", true, " or ", false, {": ", ngx.null}}})`, "hello, world: true or false: null"},
		{"empty", `ngx.say()`, "\n"},
		{"return value", `local ok, err = ngx.say("x") ngx.say(ok, err)`, "x\n1nil\n"},
		{"integer float", `ngx.say(10, " ", 1e15, " ", 0.1, " ", 1/3, " ", -7)`, "10 1e+15 0.1 0.33333333333333 -7\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newTestEngine(t, Options{})
			r := newFakeReq()
			if got := runOK(t, e, r, tt.src); got != tt.want {
				t.Fatalf("got %q want %q", got, tt.want)
			}
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
		})
	}
}

func TestSayErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{`ngx.say({a = 1})`, "bad argument #1 to 'say' (non-array table found)"},
		{`ngx.print("x", function() end)`, "bad argument #2 to 'print' (string, number, boolean, nil, ngx.null, or array table expected, got function)"},
	}
	for _, tt := range tests {
		e, _ := newTestEngine(t, Options{})
		r := newFakeReq()
		out, err := run(t, e, r, tt.src)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("%s: err %v, want %q", tt.src, err, tt.want)
		}
		if out.Action != ActionSpecial || out.Status != 500 {
			t.Fatalf("outcome %+v", out)
		}
	}
}

func TestRuntimeErrorTraceback(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	_, err := run(t, e, r, "\nlocal x = 1\nerror(\"boom\")\n")
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	want := "lua entry thread aborted: runtime error: content_by_lua(nginx.conf:10):3: boom\nstack traceback:\ncoroutine 0:\n\t[C]: in function 'error'\n\tcontent_by_lua(nginx.conf:10):3: in main chunk"
	if msg != want {
		t.Fatalf("got\n%s\nwant\n%s", msg, want)
	}
	// nested functions
	_, err = run(t, e, r, "local function bar()\n  return lua_concat(3)\nend\nlocal function foo()\n  bar()\nend\nfoo()\n")
	msg = err.Error()
	for _, s := range []string{":2: attempt to call a non-function object", "in function 'bar'", ":5: in function 'foo'", ":7: in main chunk"} {
		if !strings.Contains(msg, s) {
			t.Fatalf("missing %q in\n%s", s, msg)
		}
	}
	// header filter phase prefix
	h := compile(t, e, `error("hf")`)
	_, err = e.Run(h, PhaseHeaderFilter, newFakeReq(), NewRequestState())
	if err == nil || !strings.HasPrefix(err.Error(), "failed to run header_filter_by_lua*: content_by_lua(nginx.conf:10):1: hf") {
		t.Fatalf("header filter err: %v", err)
	}
}

func TestSyntaxError(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	_, err := e.Compile(Code{Source: "\nlocal x = \n", ChunkName: "content_by_lua(nginx.conf:5)"})
	if err == nil || !strings.HasPrefix(err.Error(), "content_by_lua(nginx.conf:5):") {
		t.Fatalf("err %v", err)
	}
	_, err = e.Compile(Code{Source: "ngx.say(", ChunkName: "x"})
	if err == nil {
		t.Fatal("expected syntax error")
	}
}

func TestLog(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	runOK(t, e, r, "\nngx.log(ngx.ERR, \"hello \", 1, nil, true, ngx.null)\nlocal function foo() ngx.log(ngx.WARN, \"in foo\") end\nfoo()\nprint(\"printed\")\n")
	want := "[error] [lua] content_by_lua(nginx.conf:10):2: hello 1niltruenull\n" +
		"[warn] [lua] content_by_lua(nginx.conf:10):3: foo(): in foo\n" +
		"[notice] [lua] content_by_lua(nginx.conf:10):5: printed"
	if got := r.logText(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	_, err := run(t, e, r, `ngx.log(ngx.ERR, {})`)
	if err == nil || !strings.Contains(err.Error(), "expected table to have __tostring metamethod") {
		t.Fatalf("err %v", err)
	}
	_, err = run(t, e, r, `ngx.log(100, "x")`)
	if err == nil || !strings.Contains(err.Error(), "bad log level") {
		t.Fatalf("err %v", err)
	}
	r2 := newFakeReq()
	runOK(t, e, r2, `ngx.log(ngx.INFO, setmetatable({}, {__tostring = function() return "TS" end}))`)
	if !strings.Contains(r2.logText(), "[info] [lua] content_by_lua(nginx.conf:10):1: TS") {
		t.Fatalf("log %q", r2.logText())
	}
}

func TestExit(t *testing.T) {
	tests := []struct {
		name   string
		phase  Phase
		src    string
		action Action
		status int
		body   string
	}{
		{"content ok", PhaseContent, `ngx.say("a") ngx.exit(ngx.OK) ngx.say("b")`, ActionFinish, 0, "a\n"},
		{"content 200 after say", PhaseContent, `ngx.say("a") ngx.exit(200)`, ActionFinish, 200, "a\n"},
		{"content 404", PhaseContent, `ngx.exit(404)`, ActionSpecial, 404, ""},
		{"content 500 in pcall", PhaseContent, `pcall(ngx.exit, 500) ngx.say("not reached")`, ActionSpecial, 500, ""},
		{"pcall wrapping fn", PhaseContent, `local ok = pcall(function() ngx.exit(403) end) ngx.say("not reached")`, ActionSpecial, 403, ""},
		{"xpcall", PhaseContent, `xpcall(function() ngx.exit(401) end, function(e) return e end) ngx.say("no")`, ActionSpecial, 401, ""},
		{"coroutine", PhaseContent, `local co = coroutine.create(function() ngx.exit(410) end) coroutine.resume(co) ngx.say("no")`, ActionSpecial, 410, ""},
		{"access ok continues", PhaseAccess, `ngx.exit(ngx.OK)`, ActionContinue, 0, ""},
		{"access 403", PhaseAccess, `ngx.exit(ngx.HTTP_FORBIDDEN)`, ActionSpecial, 403, ""},
		{"rewrite normal", PhaseRewrite, `local x = 1`, ActionContinue, 0, ""},
		{"access sent output", PhaseAccess, `ngx.say("hi")`, ActionFinish, 0, "hi\n"},
		{"error", PhaseContent, `ngx.exit(ngx.ERROR)`, ActionAbort, 0, ""},
		{"444", PhaseContent, `ngx.exit(444)`, ActionAbort, 0, ""},
		{"content normal", PhaseContent, `ngx.say("x")`, ActionContinue, 0, "x\n"},
		{"404 after headers sent", PhaseContent, `ngx.say("x") ngx.exit(404)`, ActionFinish, 0, "x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newTestEngine(t, Options{})
			r := newFakeReq()
			out, err := e.Run(compile(t, e, tt.src), tt.phase, r, NewRequestState())
			if err != nil {
				t.Fatal(err)
			}
			if out.Action != tt.action || out.Status != tt.status {
				t.Fatalf("outcome %+v, want %v/%d", out, tt.action, tt.status)
			}
			if r.out.String() != tt.body {
				t.Fatalf("body %q", r.out.String())
			}
		})
	}
	// log line for exit after headers sent
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	runOK(t, e, r, `ngx.say("x") ngx.exit(404)`)
	if !strings.Contains(r.logText(), "attempt to set status 404 via ngx.exit after sending out the response status 200") {
		t.Fatalf("log %q", r.logText())
	}
}

func TestRedirectExec(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	out, err := run(t, e, r, `ngx.redirect("/foo?a=1") ngx.say("no")`)
	if err != nil || out.Action != ActionSpecial || out.Status != 302 || r.respHeader.Get("Location") != "/foo?a=1" {
		t.Fatalf("%+v %v %v", out, err, r.respHeader)
	}
	r = newFakeReq()
	out, _ = run(t, e, r, `ngx.redirect("http://x/", ngx.HTTP_MOVED_PERMANENTLY)`)
	if out.Status != 301 || r.status != 301 {
		t.Fatalf("%+v", out)
	}
	r = newFakeReq()
	_, err = run(t, e, r, `ngx.redirect("/", 200)`)
	if err == nil || !strings.Contains(err.Error(), "only ngx.HTTP_MOVED_TEMPORARILY") {
		t.Fatalf("err %v", err)
	}
	r = newFakeReq()
	out, err = run(t, e, r, `ngx.exec("/other?x=1", {y = 2}) ngx.say("no")`)
	if err != nil || out.Action != ActionExec || out.ExecURI != "/other" || out.ExecArgs != "x=1&y=2" {
		t.Fatalf("%+v %v", out, err)
	}
	r = newFakeReq()
	out, _ = run(t, e, r, `ngx.exec("@named")`)
	if out.Action != ActionExec || out.ExecURI != "@named" {
		t.Fatalf("%+v", out)
	}
	r = newFakeReq()
	_, err = run(t, e, r, `ngx.say(1) ngx.exec("/x")`)
	if err == nil || !strings.Contains(err.Error(), "attempt to call ngx.exec after sending out response headers") {
		t.Fatalf("err %v", err)
	}
}

func TestStatusAndHeaders(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	body := runOK(t, e, r, `
ngx.status = 201
ngx.header.content_type = "text/plain"
ngx.header["X-Multi"] = {"a", "b"}
ngx.header.x_num = 5
ngx.header["X-Gone"] = "x"
ngx.header["X-Gone"] = nil
ngx.say(ngx.status, " ", ngx.header["Content-Type"], " ", type(ngx.header.x_multi), " ", ngx.header.X_NUM, " ", tostring(ngx.header.x_gone))
ngx.header.late = "1"
ngx.status = 500
`)
	if body != "201 text/plain table 5 nil\n" {
		t.Fatalf("body %q", body)
	}
	if r.status != 201 || r.respHeader.Get("Content-Type") != "text/plain" || len(r.respHeader["X-Multi"]) != 2 || r.respHeader.Get("X-Num") != "5" {
		t.Fatalf("status %d headers %v", r.status, r.respHeader)
	}
	if r.respHeader.Get("Late") != "" {
		t.Fatal("header set after send")
	}
	logs := r.logText()
	if !strings.Contains(logs, "[error] attempt to set ngx.header.HEADER after sending out response headers") ||
		!strings.Contains(logs, "[error] attempt to set ngx.status after sending out response headers") {
		t.Fatalf("logs %q", logs)
	}
	r = newFakeReq()
	runOK(t, e, r, `ngx.header["X-Inj"] = "a\r\nb"`)
	if r.respHeader.Get("X-Inj") != "a%0D%0Ab" {
		t.Fatalf("%q", r.respHeader.Get("X-Inj"))
	}
}

func TestVar(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	r.args = "a=1&b=2"
	r.writable["foo"] = true
	r.header.Set("User-Agent", "curl")
	body := runOK(t, e, r, `
ngx.say(ngx.var.uri, " ", ngx.var.arg_b, " ", ngx.var.http_user_agent, " ", tostring(ngx.var.nope))
ngx.var.foo = "bar"
`)
	if !strings.HasPrefix(body, "/t 2 curl nil\n") {
		t.Fatalf("body %q", body)
	}
	if r.vars["foo"] != "bar" {
		t.Fatal("not set")
	}
	_, err := run(t, e, newFakeReq(), `ngx.var.uri = "/x"`)
	if err == nil || !strings.Contains(err.Error(), `variable "uri" not changeable`) {
		t.Fatalf("err %v", err)
	}
}

func TestCtxAcrossPhases(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	st := NewRequestState()
	h1 := compile(t, e, `ngx.ctx.foo = "bar"; ngx.ctx.n = 1`)
	h2 := compile(t, e, `ngx.ctx.n = ngx.ctx.n + 1`)
	h3 := compile(t, e, `ngx.say(ngx.ctx.foo, ngx.ctx.n)`)
	for _, step := range []struct {
		h *Handler
		p Phase
	}{{h1, PhaseRewrite}, {h2, PhaseAccess}, {h3, PhaseContent}} {
		if _, err := e.Run(step.h, step.p, r, st); err != nil {
			t.Fatal(err)
		}
	}
	if r.out.String() != "bar2\n" {
		t.Fatalf("%q", r.out.String())
	}
	// a different request doesn't see it
	r2 := newFakeReq()
	runOK(t, e, r2, `ngx.say(tostring(ngx.ctx.foo))`)
	if r2.out.String() != "nil\n" {
		t.Fatalf("%q", r2.out.String())
	}
	// assignment
	r3 := newFakeReq()
	runOK(t, e, r3, `ngx.ctx = {x = 1} ngx.say(ngx.ctx.x)`)
	if r3.out.String() != "1\n" {
		t.Fatalf("%q", r3.out.String())
	}
}

func TestGlobalsIsolated(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	runOK(t, e, r, `counter = (counter or 0) + 1 ngx.say(counter)`)
	r2 := newFakeReq()
	runOK(t, e, r2, `counter = (counter or 0) + 1 ngx.say(counter)`)
	if r2.out.String() != "1\n" {
		t.Fatalf("globals leaked: %q", r2.out.String())
	}
}

func TestConstants(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	body := runOK(t, e, r, `ngx.say(ngx.OK, ngx.ERROR, ngx.AGAIN, ngx.DONE, ngx.DECLINED, " ",
ngx.HTTP_OK, ngx.HTTP_CREATED, ngx.HTTP_MOVED_PERMANENTLY, ngx.HTTP_MOVED_TEMPORARILY, ngx.HTTP_NOT_MODIFIED,
ngx.HTTP_BAD_REQUEST, ngx.HTTP_UNAUTHORIZED, ngx.HTTP_FORBIDDEN, ngx.HTTP_NOT_FOUND, ngx.HTTP_NOT_ALLOWED,
ngx.HTTP_INTERNAL_SERVER_ERROR, ngx.HTTP_BAD_GATEWAY, ngx.HTTP_SERVICE_UNAVAILABLE, ngx.HTTP_GATEWAY_TIMEOUT, " ",
ngx.HTTP_GET, ngx.HTTP_HEAD, ngx.HTTP_POST, ngx.HTTP_PUT, ngx.HTTP_DELETE, " ",
ngx.STDERR, ngx.EMERG, ngx.ALERT, ngx.CRIT, ngx.ERR, ngx.WARN, ngx.NOTICE, ngx.INFO, ngx.DEBUG, " ", type(ngx.null))`)
	want := "0-1-2-4-5 200201301302304400401403404405500502503504 2481632 012345678 userdata\n"
	if body != want {
		t.Fatalf("got %q want %q", body, want)
	}
}

func TestPhaseRestrictions(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	h := compile(t, e, `ngx.say("x")`)
	_, err := e.Run(h, PhaseLog, newFakeReq(), NewRequestState())
	if err == nil || !strings.Contains(err.Error(), "API disabled in the context of log_by_lua*") {
		t.Fatalf("err %v", err)
	}
	h = compile(t, e, `ngx.sleep(0.001)`)
	_, err = e.Run(h, PhaseHeaderFilter, newFakeReq(), NewRequestState())
	if err == nil || !strings.Contains(err.Error(), "API disabled in the context of header_filter_by_lua*") {
		t.Fatalf("err %v", err)
	}
	h = compile(t, e, `ngx.say(ngx.get_phase())`)
	r := newFakeReq()
	if _, err := e.Run(h, PhaseAccess, r, NewRequestState()); err != nil || r.out.String() != "access\n" {
		t.Fatal(err, r.out.String())
	}
}

func TestBodyFilter(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	h := compile(t, e, `
local chunk, eof = ngx.arg[1], ngx.arg[2]
ngx.arg[1] = string.upper(chunk)
if eof then ngx.arg[1] = ngx.arg[1] .. "!" end
`)
	r := newFakeReq()
	st := NewRequestState()
	out, eof, err := e.RunBodyFilter(h, r, st, []byte("abc"), false)
	if err != nil || string(out) != "ABC" || eof {
		t.Fatal(string(out), eof, err)
	}
	out, eof, err = e.RunBodyFilter(h, r, st, []byte("d"), true)
	if err != nil || string(out) != "D!" || !eof {
		t.Fatal(string(out), eof, err)
	}
	h = compile(t, e, `ngx.arg[1] = nil ngx.arg[2] = true`)
	out, eof, err = e.RunBodyFilter(h, r, st, []byte("abc"), false)
	if err != nil || len(out) != 0 || !eof {
		t.Fatal(string(out), eof, err)
	}
	h = compile(t, e, `error("bf")`)
	_, _, err = e.RunBodyFilter(h, r, st, []byte("abc"), false)
	if err == nil || !strings.HasPrefix(err.Error(), "failed to run body_filter_by_lua*: ") {
		t.Fatal(err)
	}
}

func TestFlushEOF(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	out, err := run(t, e, r, `ngx.say("a") ngx.flush(true) ngx.eof() local ok, err = ngx.say("b") ngx.log(ngx.ERR, tostring(ok), err)`)
	if err != nil || out.Action != ActionFinish || r.out.String() != "a\n" || r.flushes < 2 {
		t.Fatalf("%+v %v %q %d", out, err, r.out.String(), r.flushes)
	}
	if !strings.Contains(r.logText(), "nilseen eof") {
		t.Fatal(r.logText())
	}
	r = newFakeReq()
	r.writeErr = errTest
	runOK(t, e, r, `local ok, err = ngx.say("x") ngx.log(ngx.ERR, tostring(ok), " ", err)`)
	if !strings.Contains(r.logText(), "nil test error") {
		t.Fatal(r.logText())
	}
}

func TestRequire(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/mymod.lua", `local _M = {} function _M.hi() return "hi from mod" end return _M`)
	e, _ := newTestEngine(t, Options{PackagePath: dir + "/?.lua;"})
	r := newFakeReq()
	if body := runOK(t, e, r, `ngx.say(require("mymod").hi())`); body != "hi from mod\n" {
		t.Fatal(body)
	}
	// default path includes <prefix>/?.lua
	e2, _ := newTestEngine(t, Options{Prefix: dir})
	r = newFakeReq()
	if body := runOK(t, e2, r, `ngx.say(require("mymod").hi())`); body != "hi from mod\n" {
		t.Fatal(body)
	}
}

func TestFileHandlerAndCodeCacheOff(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/h.lua", `ngx.say("v1 ", require("m").v)`)
	writeFile(t, dir+"/m.lua", `return {v = "m1"}`)
	e, err := NewEngine(Options{Prefix: dir, CodeCache: false})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	h, err := e.Compile(Code{File: "h.lua"})
	if err != nil {
		t.Fatal(err)
	}
	r := newFakeReq()
	if _, err := e.Run(h, PhaseContent, r, NewRequestState()); err != nil || r.out.String() != "v1 m1\n" {
		t.Fatal(err, r.out.String())
	}
	writeFile(t, dir+"/h.lua", `ngx.say("v2 ", require("m").v)`)
	writeFile(t, dir+"/m.lua", `return {v = "m2"}`)
	r = newFakeReq()
	if _, err := e.Run(h, PhaseContent, r, NewRequestState()); err != nil || r.out.String() != "v2 m2\n" {
		t.Fatal(err, r.out.String())
	}
	// with code cache on, the file is read once
	e2, _ := newTestEngine(t, Options{Prefix: dir})
	h2, err := e2.Compile(Code{File: dir + "/h.lua"})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir+"/h.lua", `ngx.say("v3")`)
	r = newFakeReq()
	if _, err := e2.Run(h2, PhaseContent, r, NewRequestState()); err != nil || r.out.String() != "v2 m2\n" {
		t.Fatal(err, r.out.String())
	}
	// file errors use the path as chunk name
	writeFile(t, dir+"/bad.lua", "\nerror('x')")
	h3, _ := e2.Compile(Code{File: dir + "/bad.lua"})
	_, err = e2.Run(h3, PhaseContent, newFakeReq(), NewRequestState())
	if err == nil || !strings.Contains(err.Error(), dir+"/bad.lua:2: x") {
		t.Fatal(err)
	}
	if _, err := e2.Compile(Code{File: dir + "/missing.lua"}); err == nil {
		t.Fatal("missing file compiled")
	}
}

func TestInitAndInitWorker(t *testing.T) {
	e, buf := newTestEngine(t, Options{SharedDicts: map[string]int64{"d": 1 << 20}})
	hi, err := e.Compile(Code{Source: `
cfg = {greeting = "hey"}
ngx.shared.d:set("boot", 1)
ngx.log(ngx.NOTICE, "init ran")`, ChunkName: "init_by_lua(nginx.conf:3)"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.RunInit(hi); err != nil {
		t.Fatal(err)
	}
	hw := compile(t, e, `ngx.shared.d:incr("boot", 10)`)
	if err := e.RunInitWorker(hw); err != nil {
		t.Fatal(err)
	}
	// requests see globals from init, and new VMs replaying init don't reset the dict
	for i := 0; i < 3; i++ {
		r := newFakeReq()
		runOK(t, e, r, `ngx.say(cfg.greeting, " ", ngx.shared.d:get("boot"))`)
		if r.out.String() != "hey 11\n" {
			t.Fatalf("%q", r.out.String())
		}
	}
	if n := strings.Count(buf.String(), "init ran"); n != 1 {
		t.Fatalf("init log lines %d: %s", n, buf.String())
	}
	bad, _ := e.Compile(Code{Source: `error("bad init")`, ChunkName: "init_by_lua(nginx.conf:3)"})
	if err := e.RunInit(bad); err == nil || !strings.HasPrefix(err.Error(), "init_by_lua error: init_by_lua(nginx.conf:3):1: bad init") {
		t.Fatal(err)
	}
}

func TestRunSetAndNullToString(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	h := compile(t, e, `return ngx.arg[1] .. "+" .. ngx.arg[2] .. "=" .. (tonumber(ngx.arg[1]) + tonumber(ngx.arg[2]))`)
	res, err := e.RunSet(h, newFakeReq(), NewRequestState(), []string{"1", "2"})
	if err != nil || res != "1+2=3" {
		t.Fatal(res, err)
	}
	h = compile(t, e, `return nil`)
	if res, err := e.RunSet(h, newFakeReq(), NewRequestState(), nil); err != nil || res != "" {
		t.Fatal(res, err)
	}
	h = compile(t, e, `error("x")`)
	if _, err := e.RunSet(h, newFakeReq(), NewRequestState(), nil); err == nil || !strings.HasPrefix(err.Error(), "failed to run set_by_lua*: ") {
		t.Fatal(err)
	}
	r := newFakeReq()
	if body := runOK(t, e, r, `ngx.print(tostring(ngx.null))`); body != "userdata: NULL" {
		t.Fatal(body)
	}
}

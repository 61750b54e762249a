package ngxlua

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestReqBasics(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	r.method = "POST"
	r.version = 1.0
	body := runOK(t, e, r, `ngx.say(ngx.req.get_method(), " ", ngx.req.http_version(), " ", ngx.req.start_time(), " ", tostring(ngx.req.is_internal()))
ngx.req.set_method(ngx.HTTP_PUT)
ngx.say(ngx.req.get_method())`)
	if body != "POST 1 1700000000.123 false\nPUT\n" {
		t.Fatalf("%q", body)
	}
	_, err := run(t, e, newFakeReq(), `ngx.req.set_method(3)`)
	if err == nil || !strings.Contains(err.Error(), "unsupported HTTP method: 3") {
		t.Fatal(err)
	}
}

func TestGetURIArgs(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	r.args = "a=1&b=x%20y&a=2&flag&empty=&c=d+e&=skipped&&"
	body := runOK(t, e, r, `local args = ngx.req.get_uri_args()
local keys = {}
for k in pairs(args) do keys[#keys+1] = k end
table.sort(keys)
for _, k in ipairs(keys) do
  local v = args[k]
  if type(v) == "table" then v = table.concat(v, ",") end
  ngx.say(k, "=", tostring(v))
end`)
	want := "a=1,2\nb=x y\nc=d e\nempty=\nflag=true\n"
	if body != want {
		t.Fatalf("got %q want %q", body, want)
	}
	r = newFakeReq()
	r.args = "a=1&b=2&c=3"
	body = runOK(t, e, r, `local args, err = ngx.req.get_uri_args(2)
local n = 0 for _ in pairs(args) do n = n + 1 end
ngx.say(n, " ", err)`)
	if body != "2 truncated\n" {
		t.Fatalf("%q", body)
	}
	r = newFakeReq()
	body = runOK(t, e, r, `ngx.req.set_uri_args({b = "x y", a = {1, 2}, t = true})
ngx.say(ngx.var.args)
ngx.req.set_uri_args("z=1")
ngx.say(ngx.var.args)`)
	if body != "a=1&a=2&b=x%20y&t\nz=1\n" {
		t.Fatalf("%q", body)
	}
}

func TestGetHeaders(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	r.header.Set("Foo-Bar", "baz")
	r.header.Add("X-Multi", "1")
	r.header.Add("X-Multi", "2")
	body := runOK(t, e, r, `local h = ngx.req.get_headers()
ngx.say(h["foo-bar"], " ", h.foo_bar, " ", h["Foo-Bar"], " ", table.concat(h["x-multi"], ","))
local raw = ngx.req.get_headers(0, true)
ngx.say(raw["Foo-Bar"], " ", tostring(raw["foo-bar"]))
ngx.req.set_header("X-New", "v")
ngx.req.set_header("Foo-Bar", nil)
ngx.req.clear_header("X-Multi")
ngx.req.set_header("X-List", {"a", "b"})`)
	if body != "baz baz baz 1,2\nbaz nil\n" {
		t.Fatalf("%q", body)
	}
	if r.header.Get("X-New") != "v" || r.header.Get("Foo-Bar") != "" || r.header.Get("X-Multi") != "" || len(r.header["X-List"]) != 2 {
		t.Fatalf("%v", r.header)
	}
}

func TestReadBody(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	r.body = []byte("a=1&b=2&b=3")
	st := NewRequestState()
	h := compile(t, e, `
ngx.say(tostring(ngx.req.get_body_data()))
local ok, err = pcall(ngx.req.get_post_args)
ngx.say(tostring(ok))
ngx.req.read_body()
ngx.req.read_body()
ngx.say(ngx.req.get_body_data())
local args = ngx.req.get_post_args()
ngx.say(args.a, " ", table.concat(args.b, ","))`)
	if _, err := e.Run(h, PhaseContent, r, st); err != nil {
		t.Fatal(err)
	}
	if r.out.String() != "nil\nfalse\na=1&b=2&b=3\n1 2,3\n" {
		t.Fatalf("%q", r.out.String())
	}
	if r.bodyReads != 1 {
		t.Fatalf("reads %d", r.bodyReads)
	}
}

func TestSetURI(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	out, err := e.Run(compile(t, e, `ngx.req.set_uri("/new", true) ngx.say("no")`), PhaseRewrite, r, NewRequestState())
	if err != nil || out.Action != ActionRematch || r.uri != "/new" {
		t.Fatalf("%+v %v %q", out, err, r.uri)
	}
	r = newFakeReq()
	out, err = e.Run(compile(t, e, `ngx.req.set_uri("/plain") ngx.say(ngx.var.uri)`), PhaseContent, r, NewRequestState())
	if err != nil || out.Action != ActionContinue || r.out.String() != "/plain\n" {
		t.Fatalf("%+v %v", out, err)
	}
	_, err = e.Run(compile(t, e, `ngx.req.set_uri("/x", true)`), PhaseAccess, newFakeReq(), NewRequestState())
	if err == nil || !strings.Contains(err.Error(), "attempt to call ngx.req.set_uri to do location jump in contexts other than rewrite_by_lua and rewrite_by_lua_file") {
		t.Fatal(err)
	}
}

func TestCapture(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	r.header.Set("X-Parent", "1")
	var inflight, maxInflight atomic.Int32
	r.capture = func(method, uri, args string, body []byte, h http.Header) (int, http.Header, []byte, error) {
		n := inflight.Add(1)
		for {
			m := maxInflight.Load()
			if n <= m || maxInflight.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		inflight.Add(-1)
		if uri == "/trunc" {
			return 200, http.Header{}, []byte("part"), errTest
		}
		if uri == "/fail" {
			return 0, nil, nil, errTest
		}
		hdr := http.Header{"X-Sub": {"a"}, "X-Two": {"1", "2"}}
		return 201, hdr, []byte(method + " " + uri + "?" + args + " body=" + string(body) + " parent=" + h.Get("X-Parent")), nil
	}
	body := runOK(t, e, r, `
local res = ngx.location.capture("/sub?x=1", {method = ngx.HTTP_POST, body = "hello", args = {y = 2}})
ngx.say(res.status, " ", res.body, " ", res.header["X-Sub"], " ", #res.header["X-Two"], " ", tostring(res.truncated))
local r1, r2, r3 = ngx.location.capture_multi({{"/a"}, {"/trunc"}, {"/fail"}})
ngx.say(r1.status, " ", r1.body)
ngx.say(r2.status, " ", r2.body, " ", tostring(r2.truncated))
ngx.say(r3.status)`)
	want := "201 POST /sub?x=1&y=2 body=hello parent=1 a 2 false\n201 GET /a? body= parent=1\n200 part true\n500\n"
	if body != want {
		t.Fatalf("got %q want %q", body, want)
	}
	if maxInflight.Load() < 2 {
		t.Fatalf("capture_multi not concurrent: %d", maxInflight.Load())
	}
}

func TestEncoding(t *testing.T) {
	tests := []struct{ src, want string }{
		{`ngx.print(ngx.escape_uri('a 你'))`, "a%20%E4%BD%A0"},
		{`ngx.print(ngx.escape_uri('a+b'))`, "a%2Bb"},
		{`ngx.print(ngx.escape_uri('"a/b={}:<>;&[]\\^'))`, "%22a%2Fb%3D%7B%7D%3A%3C%3E%3B%26%5B%5D%5C%5E"},
		{`ngx.print("[", ngx.escape_uri(nil), "]", ngx.escape_uri(32))`, "[]32"},
		{`ngx.print(ngx.escape_uri("/a b?c", 0))`, "/a%20b%3Fc"},
		{`ngx.print(ngx.unescape_uri('a%20%e4%bd%a0'))`, "a 你"},
		{`ngx.print(ngx.unescape_uri("b%20r56+7"), ngx.unescape_uri("%zz%"))`, "b r56 7%zz%"},
		{`ngx.print(ngx.md5("hello"))`, "5d41402abc4b2a76b9719d911017c592"},
		{`ngx.print(#ngx.md5_bin("hello"), " ", #ngx.sha1_bin("hello"))`, "16 20"},
		{`ngx.print(ngx.encode_base64(ngx.sha1_bin("hello")))`, "qvTGHdzF6KLavt4PO0gs2a6pQ00="},
		{`ngx.print(ngx.encode_base64(ngx.hmac_sha1("key", "The quick brown fox jumps over the lazy dog")))`, "3nybhbi3iqa8ino29wqQcBydtNk="},
		{`ngx.print(ngx.crc32_short("hello"), " ", ngx.crc32_long("hello"))`, "907060870 907060870"},
		{`ngx.print(ngx.encode_base64("hello"), " ", ngx.encode_base64("hello", true))`, "aGVsbG8= aGVsbG8"},
		{`ngx.print(ngx.decode_base64("aGVsbG8="), " ", ngx.decode_base64("aGVsbG8"), " ", tostring(ngx.decode_base64("!!")))`, "hello hello nil"},
		{`ngx.print(ngx.encode_args({foo = 3, ["b r"] = "hello world"}))`, "b%20r=hello%20world&foo=3"},
		{`ngx.print(ngx.encode_args({baz = {32, "hello"}}), " ", ngx.encode_args({a = true, b = 1, c = false}))`, "baz=32&baz=hello a&b=1"},
		{`local a = ngx.decode_args("a=1&b=x+y&a=2&c") ngx.print(a.a[1], a.a[2], a.b, tostring(a.c))`, "12x ytrue"},
		{`ngx.print(ngx.quote_sql_str("it's \"q\"\n\\"))`, `'it\'s \"q\"\n\\'`},
	}
	e, _ := newTestEngine(t, Options{})
	for _, tt := range tests {
		r := newFakeReq()
		if got := runOK(t, e, r, tt.src); got != tt.want {
			t.Errorf("%s: got %q want %q", tt.src, got, tt.want)
		}
	}
}

func TestTimeFunctions(t *testing.T) {
	now := time.Date(2010, 11, 18, 11, 27, 35, 250e6, time.UTC)
	e, _ := newTestEngine(t, Options{Now: func() time.Time { return now }})
	r := newFakeReq()
	body := runOK(t, e, r, `
ngx.say(ngx.now(), " ", ngx.time())
ngx.say(ngx.utctime())
ngx.say(ngx.http_time(1290079655))
ngx.say(ngx.cookie_time(1290079655))
ngx.say(ngx.cookie_time(2500000000))
ngx.say(ngx.parse_http_time("Thu, 18 Nov 2010 11:27:35 GMT"), " ", tostring(ngx.parse_http_time("junk")))
ngx.update_time()
ngx.say(#ngx.today(), " ", #ngx.localtime())`)
	want := "1290079655.25 1290079655\n2010-11-18 11:27:35\nThu, 18 Nov 2010 11:27:35 GMT\nThu, 18-Nov-10 11:27:35 GMT\nMon, 22-Mar-2049 04:26:40 GMT\n1290079655 nil\n10 19\n"
	if body != want {
		t.Fatalf("got %q want %q", body, want)
	}
}

func TestSleep(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	start := time.Now()
	runOK(t, e, r, `ngx.sleep(0.05) ngx.say("done")`)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("slept %v", d)
	}
	// other requests are not blocked by a sleeping one
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := newFakeReq()
		h := compile(t, e, `ngx.sleep(0.3)`)
		e.Run(h, PhaseContent, r, NewRequestState())
	}()
	time.Sleep(10 * time.Millisecond)
	start = time.Now()
	runOK(t, e, newFakeReq(), `ngx.say("fast")`)
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("blocked for %v", d)
	}
	<-done
	_, err := run(t, e, newFakeReq(), `ngx.sleep(-1)`)
	if err == nil || !strings.Contains(err.Error(), "invalid sleep duration") {
		t.Fatal(err)
	}
}

func TestSleepCancelled(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	ctx, cancel := context.WithCancel(context.Background())
	r.ctx = ctx
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	start := time.Now()
	out, err := run(t, e, r, `ngx.sleep(5) ngx.say("not reached")`)
	if err != nil || out.Action != ActionAbort || time.Since(start) > 2*time.Second || r.out.Len() != 0 {
		t.Fatalf("%+v %v %v", out, err, time.Since(start))
	}
}

func TestRespAndRawHeader(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	r := newFakeReq()
	r.header.Set("Host", "example.com")
	r.respHeader.Set("X-A", "1")
	body := runOK(t, e, r, `local resp = require "ngx.resp"
resp.add_header("X-A", "2")
local h = ngx.resp.get_headers()
ngx.print(table.concat(h.x_a, ","), "|", ngx.req.raw_header(), "|", ngx.req.raw_header(true), "|", select(2, ngx.on_abort(function() end)))`)
	want := "1,2|GET /t HTTP/1.1\r\nHost: example.com\r\n\r\n|Host: example.com\r\n\r\n|lua_check_client_abort is off"
	if body != want {
		t.Fatalf("got %q want %q", body, want)
	}
}

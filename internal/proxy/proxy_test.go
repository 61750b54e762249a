package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"upstreamd/internal/errlog"
	"upstreamd/internal/upstream"
)

func TestPassThrough(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		resp       string
		closeAfter bool
		status     int
		body       string
		header     http.Header // must be present (exact values)
		absent     []string    // must be absent
		log        string      // expected error-log substring
	}{
		{
			name:   "content-length",
			resp:   "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\nX-A: 1\r\n\r\nhello",
			status: 200, body: "hello",
			header: http.Header{"Content-Type": {"text/plain"}, "X-A": {"1"}, "Content-Length": {"5"}},
		},
		{
			name:   "chunked",
			resp:   "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
			status: 201, body: "hello world",
			absent: []string{"Transfer-Encoding", "X-Trailer", "Content-Length"},
		},
		{
			name:   "close-delimited",
			resp:   "HTTP/1.0 200 OK\r\nX-B: 2\r\n\r\nuntil the end",
			status: 200, body: "until the end", closeAfter: true,
			header: http.Header{"X-B": {"2"}},
		},
		{
			name: "hop-by-hop and hidden headers",
			resp: "HTTP/1.1 200 OK\r\nConnection: close\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n" +
				"TE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nServer: backend/1.0\r\n" +
				"X-Accel-Redirect: /internal\r\ncontent-type: text/html\r\nx-multi: a\r\nX-MULTI: b\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n" +
				"Content-Length: 2\r\n\r\nok",
			status: 200, body: "ok",
			header: http.Header{"Content-Type": {"text/html"}, "X-Multi": {"a", "b"}, "Set-Cookie": {"a=1", "b=2"}},
			absent: []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Date", "Server", "X-Accel-Redirect"},
		},
		{
			name:   "interim 100 continue skipped",
			resp:   "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok",
		},
		{
			name:   "204 has no body",
			resp:   "HTTP/1.1 204 No Content\r\nX-C: 3\r\n\r\n",
			status: 204, body: "",
			header: http.Header{"X-C": {"3"}},
		},
		{
			name:   "304 has no body",
			resp:   "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 10\r\n\r\n",
			status: 304, body: "",
			header: http.Header{"Etag": {`"x"`}},
		},
		{
			name:   "HEAD keeps Content-Length, reads no body",
			method: "HEAD",
			resp:   "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
			status: 200, body: "",
			header: http.Header{"Content-Length": {"100"}},
		},
		{
			name:   "LF-only line ends",
			resp:   "HTTP/1.1 200 OK\nContent-Length: 3\nX-D: 4\n\nabc",
			status: 200, body: "abc",
			header: http.Header{"X-D": {"4"}},
		},
		{
			name:   "invalid header",
			resp:   "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
			status: 502, log: `[error] upstream sent invalid header: "Bad\x20..." while reading response header from upstream`,
		},
		{
			name:   "invalid status line",
			resp:   "HTPT/1.1 200 OK\r\n\r\n",
			status: 502, log: "upstream sent no valid HTTP/1.0 header while reading response header from upstream",
		},
		{
			name: "empty response",
			resp: "", closeAfter: true,
			status: 502, log: "[error] upstream prematurely closed connection while reading response header from upstream",
		},
		{
			name: "truncated header",
			resp: "HTTP/1.1 200 OK\r\nContent", closeAfter: true,
			status: 502, log: "upstream prematurely closed connection while reading response header from upstream",
		},
		{
			name:   "too big header",
			resp:   "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("x", 5000) + "\r\n\r\n",
			status: 502, log: "upstream sent too big header while reading response header from upstream",
		},
		{
			name:   "content-length and chunked",
			resp:   "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
			status: 502, log: `upstream sent "Content-Length" and "Transfer-Encoding" headers at the same time`,
		},
		{
			name:   "unknown transfer-encoding",
			resp:   "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
			status: 502, log: `upstream sent unknown "Transfer-Encoding": "gzip"`,
		},
		{
			name:   "bad content-length",
			resp:   "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
			status: 502, log: `upstream sent invalid "Content-Length" header`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newRaw(t, canned(tc.resp, tc.closeAfter))
			u := newUpstream(t, b.addr)
			out := getOut("/path?q=1")
			if tc.method != "" {
				out.Method = tc.method
			}
			rec, res, logs, aborted := serve(t, context.Background(), out, Target{Upstream: u}, baseOptions())
			if aborted {
				t.Fatal("aborted")
			}
			checkResult(t, res)
			if rec.Code != tc.status || res.Status != tc.status {
				t.Fatalf("status: recorder %d, result %d, want %d (logs %q)", rec.Code, res.Status, tc.status, logs.all())
			}
			if tc.status != 502 && rec.Body.String() != tc.body {
				t.Errorf("body %q, want %q", rec.Body.String(), tc.body)
			}
			for k, v := range tc.header {
				if got := rec.Header()[k]; !reflect.DeepEqual(got, v) {
					t.Errorf("header %s = %q, want %q (all %v)", k, got, v, rec.Header())
				}
			}
			for _, k := range tc.absent {
				if _, ok := rec.Header()[k]; ok {
					t.Errorf("header %s present: %q", k, rec.Header()[k])
				}
			}
			if tc.log != "" && !logs.has(tc.log) {
				t.Errorf("log lines %q lack %q", logs.all(), tc.log)
			}
			if tc.log != "" && !logs.has(`upstream: "http://`+b.addr+`/path?q=1"`) {
				t.Errorf("log lines %q lack the upstream URL", logs.all())
			}
			if tc.log == "" && len(logs.all()) > 0 {
				t.Errorf("unexpected log lines %q", logs.all())
			}
		})
	}
}

func TestRequestFormat(t *testing.T) {
	got := make(chan string, 1)
	b := newRaw(t, func(c net.Conn, br *bufio.Reader) {
		req, _ := readReq(br)
		got <- req
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	})
	u := newUpstream(t, b.addr)
	out := &Out{
		Method: "POST", URI: "/a%20b?x=1", Host: "example.com", HTTPVersion: "1.0",
		Header: http.Header{
			"X-Real-Ip":         {"10.0.0.1"},
			"Connection":        {"close"},
			"X-Empty":           {""},                 // proxy_set_header X-Empty "": not sent
			"Content-Length":    {"999"},              // ignored, computed from Body
			"X-Evil":            {"a\r\nInjected: 1"}, // cannot split the head
			"Transfer-Encoding": {"chunked"},          // ignored
		},
		Body: []byte("body!"),
	}
	rec, res, _, _ := serve(t, context.Background(), out, Target{Upstream: u}, baseOptions())
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	req := <-got
	head, body, _ := strings.Cut(req, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	if lines[0] != "POST /a%20b?x=1 HTTP/1.0" || lines[1] != "Host: example.com" {
		t.Fatalf("request starts %q", lines[:2])
	}
	want := map[string]bool{"X-Real-Ip: 10.0.0.1": true, "Connection: close": true, "Content-Length: 5": true, "X-Evil: a  Injected: 1": true}
	for _, l := range lines[2:] {
		if !want[l] {
			t.Errorf("unexpected request line %q", l)
		}
		delete(want, l)
	}
	if len(want) > 0 {
		t.Errorf("missing request lines %v", want)
	}
	if body != "body!" {
		t.Errorf("body %q", body)
	}
	if res.BytesSent != int64(len(req)) {
		t.Errorf("BytesSent %d, want %d", res.BytesSent, len(req))
	}
	if res.BytesReceived != int64(len("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) {
		t.Errorf("BytesReceived %d", res.BytesReceived)
	}
}

func TestLargeRequestBody(t *testing.T) {
	body := strings.Repeat("0123456789", 50_000) // 500 KB: sent separately from the head
	b := newRaw(t, func(c net.Conn, br *bufio.Reader) {
		req, err := readReq(br)
		if err != nil || !strings.HasSuffix(req, body) {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	u := newUpstream(t, b.addr)
	out := getOut("/")
	out.Method, out.Body = "PUT", []byte(body)
	rec, _, logs, _ := serve(t, context.Background(), out, Target{Upstream: u}, baseOptions())
	if rec.Code != 200 || rec.Body.String() != "ok" {
		t.Fatalf("got %d %q, logs %q", rec.Code, rec.Body.String(), logs.all())
	}
}

func TestRetryDeadPeer(t *testing.T) {
	live, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "live")
	}))
	dead := deadAddr(t)
	u := newUpstream(t, dead, addrOf(live))
	rec, res, logs, _ := serve(t, context.Background(), getOut("/x"), Target{Upstream: u}, baseOptions())
	checkResult(t, res)
	if rec.Code != 200 || rec.Body.String() != "live" {
		t.Fatalf("got %d %q", rec.Code, rec.Body.String())
	}
	if !reflect.DeepEqual(res.Addrs, []string{dead, addrOf(live)}) || !reflect.DeepEqual(res.Statuses, []int{502, 200}) {
		t.Fatalf("addrs %v statuses %v", res.Addrs, res.Statuses)
	}
	if res.ConnectTimes[0] >= 0 || res.HeaderTimes[0] >= 0 || res.ResponseTimes[0] < 0 {
		t.Errorf("failed try times: connect %v header %v response %v", res.ConnectTimes[0], res.HeaderTimes[0], res.ResponseTimes[0])
	}
	want := `[error] connect() failed (111: Connection refused) while connecting to upstream, upstream: "http://` + dead + `/x"`
	if !logs.has(want) {
		t.Errorf("logs %q lack %q", logs.all(), want)
	}
	if !logs.has("[warn] upstream server temporarily disabled while connecting to upstream") {
		t.Errorf("logs %q lack the disabled warning", logs.all())
	}
	if st := peerOf(t, u, dead).State(); st.Fails != 1 || st.Conns != 0 {
		t.Errorf("dead peer state %+v", st)
	}
	if st := peerOf(t, u, addrOf(live)).State(); st.Fails != 0 || st.Conns != 0 {
		t.Errorf("live peer state %+v", st)
	}
}

// statusServer answers every request with the given status and body.
func statusServer(t *testing.T, status int, body string) *httptest.Server {
	srv, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-From", body)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	return srv
}

func TestNextUpstreamHTTPStatus(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		next      NextUpstream
		wantCode  int
		wantBody  string
		statuses  []int
		firstFail int
	}{
		{"502 retried when enabled", 502, DefaultNextUpstream | NextHTTP502, 200, "B", []int{502, 200}, 1},
		{"502 passed through when not enabled", 502, DefaultNextUpstream, 502, "A", []int{502}, 0},
		{"503 retried when enabled", 503, NextHTTP503, 200, "B", []int{503, 200}, 1},
		{"500 not retried with only http_502", 500, NextHTTP502, 500, "A", []int{500}, 0},
		{"404 retried, never a failure", 404, NextHTTP404, 200, "B", []int{404, 200}, 0},
		{"403 retried, never a failure", 403, NextHTTP403, 200, "B", []int{403, 200}, 0},
		{"429 retried, a failure", 429, NextHTTP429, 200, "B", []int{429, 200}, 1},
		{"off disables retries", 502, NextHTTP502 | NextOff, 502, "A", []int{502}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := statusServer(t, tc.status, "A")
			b := statusServer(t, 200, "B")
			u := newUpstream(t, addrOf(a), addrOf(b))
			o := baseOptions()
			o.NextUpstream = tc.next
			rec, res, _, _ := serve(t, context.Background(), getOut("/"), Target{Upstream: u}, o)
			checkResult(t, res)
			if rec.Code != tc.wantCode || rec.Body.String() != tc.wantBody || rec.Header().Get("X-From") != tc.wantBody {
				t.Fatalf("got %d %q (X-From %q)", rec.Code, rec.Body.String(), rec.Header().Get("X-From"))
			}
			if !reflect.DeepEqual(res.Statuses, tc.statuses) {
				t.Errorf("statuses %v, want %v", res.Statuses, tc.statuses)
			}
			if st := peerOf(t, u, addrOf(a)).State(); st.Fails != tc.firstFail || st.Conns != 0 {
				t.Errorf("first peer state %+v, want fails %d", st, tc.firstFail)
			}
		})
	}
}

// TestHTTPStatusLastTryFails: an enabled http_502 that cannot switch (no
// tries left) still marks the peer failed, as nginx does.
func TestHTTPStatusLastTryFails(t *testing.T) {
	a := statusServer(t, 502, "A")
	b := statusServer(t, 502, "B")
	u := newUpstream(t, addrOf(a), addrOf(b))
	o := baseOptions()
	o.NextUpstream = NextHTTP502
	rec, res, _, _ := serve(t, context.Background(), getOut("/"), Target{Upstream: u}, o)
	if rec.Code != 502 || rec.Body.String() != "B" || !reflect.DeepEqual(res.Statuses, []int{502, 502}) {
		t.Fatalf("got %d %q %v", rec.Code, rec.Body.String(), res.Statuses)
	}
	for _, srv := range []*httptest.Server{a, b} {
		if st := peerOf(t, u, addrOf(srv)).State(); st.Fails != 1 {
			t.Errorf("peer %s state %+v", addrOf(srv), st)
		}
	}
}

func TestNonIdempotent(t *testing.T) {
	// hangup reads the request and closes without answering.
	hangup := func(c net.Conn, br *bufio.Reader) { readReq(br) }
	tests := []struct {
		name     string
		method   string
		first    string // "hangup" or "dead"
		next     NextUpstream
		wantCode int
		tries    int
	}{
		{"POST not retried after being sent", "POST", "hangup", DefaultNextUpstream, 502, 1},
		{"PATCH not retried after being sent", "PATCH", "hangup", DefaultNextUpstream, 502, 1},
		{"POST retried with non_idempotent", "POST", "hangup", DefaultNextUpstream | NextNonIdempotent, 200, 2},
		{"POST retried on connect failure", "POST", "dead", DefaultNextUpstream, 200, 2},
		{"GET retried after being sent", "GET", "hangup", DefaultNextUpstream, 200, 2},
		{"PUT retried after being sent", "PUT", "hangup", DefaultNextUpstream, 200, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var first string
			if tc.first == "dead" {
				first = deadAddr(t)
			} else {
				first = newRaw(t, hangup).addr
			}
			good := statusServer(t, 200, "ok")
			u := newUpstream(t, first, addrOf(good))
			o := baseOptions()
			o.NextUpstream = tc.next
			out := getOut("/")
			out.Method, out.Body = tc.method, []byte("data")
			rec, res, logs, _ := serve(t, context.Background(), out, Target{Upstream: u}, o)
			checkResult(t, res)
			if rec.Code != tc.wantCode || len(res.Addrs) != tc.tries {
				t.Fatalf("got %d after %d tries (%v), want %d after %d; logs %q", rec.Code, len(res.Addrs), res.Addrs, tc.wantCode, tc.tries, logs.all())
			}
			if tc.first == "hangup" && !logs.has("upstream prematurely closed connection while reading response header from upstream") {
				t.Errorf("logs %q", logs.all())
			}
			if st := peerOf(t, u, first).State(); st.Fails != 1 {
				t.Errorf("first peer state %+v", st)
			}
		})
	}
}

func TestTriesAndTimeoutLimits(t *testing.T) {
	t.Run("next_upstream_tries", func(t *testing.T) {
		addrs := []string{deadAddr(t), deadAddr(t), deadAddr(t), deadAddr(t)}
		u := newUpstream(t, addrs...)
		o := baseOptions()
		o.NextUpstreamTries = 2
		rec, res, logs, _ := serve(t, context.Background(), getOut("/"), Target{Upstream: u}, o)
		if rec.Code != 502 || !reflect.DeepEqual(res.Addrs, addrs[:2]) || !reflect.DeepEqual(res.Statuses, []int{502, 502}) {
			t.Fatalf("got %d, addrs %v statuses %v", rec.Code, res.Addrs, res.Statuses)
		}
		if n := strings.Count(strings.Join(logs.all(), "\n"), "connect() failed"); n != 2 {
			t.Errorf("%d connect failures logged: %q", n, logs.all())
		}
		if !strings.Contains(rec.Body.String(), "<title>502 Bad Gateway</title>") {
			t.Errorf("body %q", rec.Body.String())
		}
	})
	t.Run("all peers tried by default", func(t *testing.T) {
		addrs := []string{deadAddr(t), deadAddr(t), deadAddr(t)}
		u := newUpstream(t, addrs...)
		rec, res, _, _ := serve(t, context.Background(), getOut("/"), Target{Upstream: u}, baseOptions())
		if rec.Code != 502 || len(res.Addrs) != 3 {
			t.Fatalf("got %d, addrs %v", rec.Code, res.Addrs)
		}
	})
	t.Run("next_upstream_timeout", func(t *testing.T) {
		b1 := newRaw(t, stallAfter(""))
		b2 := statusServer(t, 200, "ok")
		u := newUpstream(t, b1.addr, addrOf(b2))
		o := baseOptions()
		o.ReadTimeout = 100 * time.Millisecond
		o.NextUpstreamTimeout = 50 * time.Millisecond // elapsed by the time the first try times out
		rec, res, logs, _ := serve(t, context.Background(), getOut("/"), Target{Upstream: u}, o)
		if rec.Code != 504 || len(res.Addrs) != 1 || !reflect.DeepEqual(res.Statuses, []int{504}) {
			t.Fatalf("got %d, addrs %v statuses %v", rec.Code, res.Addrs, res.Statuses)
		}
		if !logs.has("[error] upstream timed out (110: Connection timed out) while reading response header from upstream") {
			t.Errorf("logs %q", logs.all())
		}
		// Without the limit the second peer is tried.
		o.NextUpstreamTimeout = 0
		rec, res, _, _ = serve(t, context.Background(), getOut("/"), Target{Upstream: newUpstream(t, b1.addr, addrOf(b2))}, o)
		if rec.Code != 200 || len(res.Addrs) != 2 {
			t.Fatalf("got %d, addrs %v", rec.Code, res.Addrs)
		}
	})
}

// stallAfter returns a handler that reads the request, writes prefix and
// then waits until the client side closes.
func stallAfter(prefix string) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		io.WriteString(c, prefix)
		io.Copy(io.Discard, br) // returns when the proxy closes the connection
	}
}

func TestFinalStatus(t *testing.T) {
	tests := []struct {
		name     string
		handlers []func(net.Conn, *bufio.Reader) // nil: dead address
		next     NextUpstream
		code     int
		statuses []int
		log      string
	}{
		{"error: 502", []func(net.Conn, *bufio.Reader){nil, nil}, DefaultNextUpstream, 502, []int{502, 502}, "connect() failed"},
		{"timeout: 504", []func(net.Conn, *bufio.Reader){stallAfter(""), stallAfter("")}, DefaultNextUpstream, 504, []int{504, 504},
			"upstream timed out (110: Connection timed out) while reading response header from upstream"},
		{"timeout mid-header: 504", []func(net.Conn, *bufio.Reader){stallAfter("HTTP/1.1 200 OK\r\nX-A: 1\r\n")}, DefaultNextUpstream, 504, []int{504},
			"upstream timed out (110: Connection timed out) while reading response header from upstream"},
		{"error then timeout: 504", []func(net.Conn, *bufio.Reader){nil, stallAfter("")}, DefaultNextUpstream, 504, []int{502, 504}, "upstream timed out"},
		{"timeout then error: 502", []func(net.Conn, *bufio.Reader){stallAfter(""), nil}, DefaultNextUpstream, 502, []int{504, 502}, "connect() failed"},
		{"timeout not retried without timeout", []func(net.Conn, *bufio.Reader){stallAfter(""), nil}, NextError, 504, []int{504}, "upstream timed out"},
		{"invalid header not retried by default", []func(net.Conn, *bufio.Reader){canned("HTTP/1.1 200 OK\r\n\x00\r\n\r\n", true), nil}, DefaultNextUpstream, 502, []int{502}, "upstream sent invalid header"},
		{"invalid header retried when enabled", []func(net.Conn, *bufio.Reader){canned("junk\r\n\r\n", true), canned("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true)},
			NextInvalidHeader, 200, []int{502, 200}, "upstream sent no valid HTTP/1.0 header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var addrs []string
			for _, h := range tc.handlers {
				if h == nil {
					addrs = append(addrs, deadAddr(t))
				} else {
					addrs = append(addrs, newRaw(t, h).addr)
				}
			}
			u := newUpstream(t, addrs...)
			o := baseOptions()
			o.ReadTimeout = 100 * time.Millisecond
			o.NextUpstream = tc.next
			rec, res, logs, _ := serve(t, context.Background(), getOut("/"), Target{Upstream: u}, o)
			checkResult(t, res)
			if rec.Code != tc.code || res.Status != tc.code || !reflect.DeepEqual(res.Statuses, tc.statuses) {
				t.Fatalf("got %d (result %d), statuses %v; want %d %v; logs %q", rec.Code, res.Status, res.Statuses, tc.code, tc.statuses, logs.all())
			}
			if !logs.has(tc.log) {
				t.Errorf("logs %q lack %q", logs.all(), tc.log)
			}
			for _, a := range addrs {
				if st := peerOf(t, u, a).State(); st.Conns != 0 {
					t.Errorf("peer %s conns %d", a, st.Conns)
				}
			}
		})
	}
}

func TestConnectTimeout(t *testing.T) {
	// A listener with a full backlog does not complete handshakes; instead
	// of relying on that, use a non-routable address (TEST-NET-1) when the
	// network lets the SYN hang, and skip when it fails fast.
	u := newUpstream(t, "192.0.2.1:81")
	o := baseOptions()
	o.ConnectTimeout = 100 * time.Millisecond
	rec, res, logs, _ := serve(t, context.Background(), getOut("/"), Target{Upstream: u}, o)
	if rec.Code == 502 {
		t.Skipf("connect to TEST-NET failed fast here: %q", logs.all())
	}
	if rec.Code != 504 || !logs.has("upstream timed out (110: Connection timed out) while connecting to upstream") {
		t.Fatalf("got %d %v, logs %q", rec.Code, res.Statuses, logs.all())
	}
}

func TestNoLiveUpstreams(t *testing.T) {
	spec := upstream.DefaultSpec("127.0.0.1:1", "127.0.0.1:1")
	spec.Down = true
	u, err := upstream.New(upstream.Options{Name: "backend"}, []upstream.ServerSpec{spec})
	if err != nil {
		t.Fatal(err)
	}
	rec, res, logs, _ := serve(t, context.Background(), getOut("/p"), Target{Upstream: u}, baseOptions())
	checkResult(t, res)
	if rec.Code != 502 || res.Status != 502 {
		t.Fatalf("got %d", rec.Code)
	}
	if !reflect.DeepEqual(res.Addrs, []string{"backend"}) || !reflect.DeepEqual(res.Statuses, []int{502}) {
		t.Errorf("addrs %v statuses %v", res.Addrs, res.Statuses)
	}
	if res.ConnectTimes[0] >= 0 || res.HeaderTimes[0] >= 0 || res.ResponseTimes[0] != 0 {
		t.Errorf("times %v %v %v", res.ConnectTimes, res.HeaderTimes, res.ResponseTimes)
	}
	if !logs.has(`[error] no live upstreams while connecting to upstream, upstream: "http://backend/p"`) {
		t.Errorf("logs %q", logs.all())
	}
}

func TestErrorPageHook(t *testing.T) {
	u := newUpstream(t, deadAddr(t))
	o := baseOptions()
	var got int
	o.ErrorPage = func(w http.ResponseWriter, status int) bool {
		got = status
		w.WriteHeader(599)
		return true
	}
	rec, res, _, _ := serve(t, context.Background(), getOut("/"), Target{Upstream: u}, o)
	if got != 502 || rec.Code != 599 || res.Status != 0 || !reflect.DeepEqual(res.Statuses, []int{502}) {
		t.Fatalf("hook got %d, code %d, result %+v", got, rec.Code, res)
	}
}

func TestInterceptErrors(t *testing.T) {
	srv, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", "Basic realm=x")
		w.WriteHeader(401)
		io.WriteString(w, "upstream body")
	}))
	for _, take := range []bool{true, false} {
		u := newUpstream(t, addrOf(srv))
		o := baseOptions()
		o.InterceptErrors = true
		var auth []string
		o.ErrorPage = func(w http.ResponseWriter, status int) bool {
			auth = w.Header()["Www-Authenticate"]
			if take {
				w.WriteHeader(status)
				io.WriteString(w, "page")
			}
			return take
		}
		rec, res, _, _ := serve(t, context.Background(), getOut("/"), Target{Upstream: u}, o)
		if !reflect.DeepEqual(auth, []string{"Basic realm=x"}) {
			t.Errorf("take=%v: WWW-Authenticate seen by the hook %q", take, auth)
		}
		wantBody, wantStatus := "page", 0
		if !take {
			wantBody, wantStatus = "upstream body", 401
		}
		if rec.Code != 401 || rec.Body.String() != wantBody || res.Status != wantStatus {
			t.Errorf("take=%v: got %d %q status %d", take, rec.Code, rec.Body.String(), res.Status)
		}
		if got := rec.Header()["Www-Authenticate"]; len(got) != 1 {
			t.Errorf("take=%v: WWW-Authenticate %q", take, got)
		}
	}
}

func TestHeaderFilter(t *testing.T) {
	srv := statusServer(t, 200, "x")
	u := newUpstream(t, addrOf(srv))
	o := baseOptions()
	o.HeaderFilter = func(w http.ResponseWriter, status int) int {
		if w.Header().Get("X-From") != "x" {
			t.Errorf("upstream header not visible to the filter")
		}
		w.Header().Del("X-From")
		w.Header().Set("X-Added", "1")
		return 203
	}
	rec, res, _, _ := serve(t, context.Background(), getOut("/"), Target{Upstream: u}, o)
	if rec.Code != 203 || res.Status != 203 || res.Statuses[0] != 200 || rec.Header().Get("X-Added") != "1" || rec.Header().Get("X-From") != "" {
		t.Fatalf("got %d, result %+v, header %v", rec.Code, res, rec.Header())
	}
}

// frontend runs Serve behind a real HTTP server, for streaming and abort
// behaviour that a ResponseRecorder cannot show.
func frontend(t *testing.T, tg Target, o *Options, out func(r *http.Request) *Out) (*httptest.Server, chan *Result) {
	t.Helper()
	results := make(chan *Result, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := &Result{}
		defer func() { results <- res }()
		logs := &logRec{}
		defer func() { t.Logf("frontend logs: %q", logs.all()) }()
		Serve(r.Context(), w, out(r), tg, o, res, logs.logf)
	}))
	t.Cleanup(srv.Close)
	return srv, results
}

func TestStreaming(t *testing.T) {
	for _, buffering := range []bool{false, true} {
		name := "buffering off"
		if buffering {
			name = "buffering on"
		}
		t.Run(name, func(t *testing.T) {
			// Unbuffered: a small first piece must arrive on its own.
			// Buffered: writes may accumulate (as in nginx, a partly
			// filled buffer waits), so the first piece is large and the
			// client must get most of it.
			first := "first chunk\n"
			want := len(first)
			if buffering {
				first = strings.Repeat("a", 256<<10)
				want = 200 << 10
			}
			release := make(chan struct{})
			backend, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, first)
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "second chunk\n")
			}))
			u := newUpstream(t, addrOf(backend))
			o := baseOptions()
			o.Buffering = buffering
			front, _ := frontend(t, Target{Upstream: u}, o, func(r *http.Request) *Out { return getOut("/") })

			resp, err := http.Get(front.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got := make(chan error, 1)
			go func() {
				buf := make([]byte, want)
				_, err := io.ReadFull(resp.Body, buf)
				if err == nil && string(buf) != first[:want] {
					err = io.ErrUnexpectedEOF
				}
				got <- err
			}()
			select {
			case err := <-got:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				close(release)
				t.Fatal("first chunk not streamed before the backend sent the second")
			}
			close(release)
			rest, err := io.ReadAll(resp.Body)
			if err != nil || string(rest) != first[want:]+"second chunk\n" {
				t.Fatalf("rest %d bytes, %v", len(rest), err)
			}
		})
	}
}

func TestXAccelBufferingNo(t *testing.T) {
	release := make(chan struct{})
	backend, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Accel-Buffering", "no")
		io.WriteString(w, "tick\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	u := newUpstream(t, addrOf(backend))
	o := baseOptions() // buffering on
	front, _ := frontend(t, Target{Upstream: u}, o, func(r *http.Request) *Out { return getOut("/") })
	defer close(release)
	resp, err := http.Get(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("X-Accel-Buffering") != "" {
		t.Errorf("X-Accel-Buffering passed to the client")
	}
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 5)
		io.ReadFull(resp.Body, buf)
		got <- string(buf)
	}()
	select {
	case s := <-got:
		if s != "tick\n" {
			t.Fatalf("got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not streamed")
	}
}

func TestMidBodyFailure(t *testing.T) {
	tests := []struct {
		name string
		resp string
		log  string
	}{
		{"short content-length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
			"[error] upstream prematurely closed connection while reading upstream"},
		{"truncated chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n",
			"[error] upstream prematurely closed connection while reading upstream"},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\nzz\r\n",
			"[error] upstream sent invalid chunked response while reading upstream"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newRaw(t, canned(tc.resp, true))
			u := newUpstream(t, b.addr)
			rec, res, logs, aborted := serve(t, context.Background(), getOut("/"), Target{Upstream: u}, baseOptions())
			if !aborted {
				t.Fatal("client connection not aborted")
			}
			if rec.Code != 200 || rec.Body.String() != "0123456789" || res.Status != 200 || !reflect.DeepEqual(res.Statuses, []int{200}) {
				t.Fatalf("got %d %q, result %+v", rec.Code, rec.Body.String(), res)
			}
			if !logs.has(tc.log) {
				t.Errorf("logs %q lack %q", logs.all(), tc.log)
			}
			if st := peerOf(t, u, b.addr).State(); st.Fails != 0 || st.Conns != 0 {
				t.Errorf("peer state %+v", st)
			}
			if res.ResponseTimes[0] < 0 {
				t.Errorf("response time %v", res.ResponseTimes[0])
			}
		})
	}
	// Through a real server the client sees a truncated body.
	b := newRaw(t, canned(tests[0].resp, true))
	front, _ := frontend(t, Target{Upstream: newUpstream(t, b.addr)}, baseOptions(), func(r *http.Request) *Out { return getOut("/") })
	resp, err := http.Get(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || string(body) != "0123456789" {
		t.Fatalf("client read %q, %v; want the 10 bytes and an error", body, err)
	}
}

func TestReadTimeoutMidBody(t *testing.T) {
	b := newRaw(t, stallAfter("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"))
	u := newUpstream(t, b.addr)
	o := baseOptions()
	o.ReadTimeout = 100 * time.Millisecond
	rec, _, logs, aborted := serve(t, context.Background(), getOut("/"), Target{Upstream: u}, o)
	if !aborted || rec.Body.String() != "abc" {
		t.Fatalf("aborted %v body %q", aborted, rec.Body.String())
	}
	if !logs.has("upstream timed out (110: Connection timed out) while reading upstream") {
		t.Errorf("logs %q", logs.all())
	}
}

func TestClientCancel(t *testing.T) {
	gotReq := make(chan struct{})
	b := newRaw(t, func(c net.Conn, br *bufio.Reader) {
		readReq(br)
		close(gotReq)
		io.Copy(io.Discard, br)
	})
	u := newUpstream(t, b.addr)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-gotReq; cancel() }()
	o := baseOptions()
	o.ReadTimeout = time.Minute
	rec, res, logs, _ := serve(t, ctx, getOut("/"), Target{Upstream: u}, o)
	if res.Status != 499 || rec.Body.Len() != 0 || len(res.Addrs) != 1 || res.Statuses[0] != 0 {
		t.Fatalf("result %+v, body %q", res, rec.Body.String())
	}
	if !logs.has("[info] client prematurely closed connection while reading response header from upstream") {
		t.Errorf("logs %q", logs.all())
	}
	if st := peerOf(t, u, b.addr).State(); st.Fails != 0 || st.Conns != 0 {
		t.Errorf("peer state %+v", st)
	}
}

func TestKeepalive(t *testing.T) {
	tests := []struct {
		name      string
		pool      *Pool
		version   string
		conn      string // request Connection header
		wantConns int32
	}{
		{"keepalive reuses one connection", NewPool(8, time.Minute, 0), "1.1", "", 1},
		{"no pool: a connection per request", nil, "1.1", "", 5},
		{"keepalive 0: a connection per request", NewPool(0, time.Minute, 0), "1.1", "", 5},
		{"Connection: close is honoured", NewPool(8, time.Minute, 0), "1.1", "close", 5},
		{"HTTP/1.0 without keep-alive", NewPool(8, time.Minute, 0), "1.0", "", 5},
		{"HTTP/1.0 with keep-alive", NewPool(8, time.Minute, 0), "1.0", "keep-alive", 1},
		{"keepalive_requests", NewPool(8, time.Minute, 2), "1.1", "", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "hello")
			}))
			u := newUpstream(t, addrOf(srv))
			defer tc.pool.Close()
			for i := 0; i < 5; i++ {
				out := getOut("/")
				out.HTTPVersion = tc.version
				if tc.conn != "" {
					out.Header.Set("Connection", tc.conn)
				}
				rec, res, logs, _ := serve(t, context.Background(), out, Target{Upstream: u, Pool: tc.pool}, baseOptions())
				if rec.Code != 200 || rec.Body.String() != "hello" {
					t.Fatalf("request %d: %d %q %q", i, rec.Code, rec.Body.String(), logs.all())
				}
				if tc.wantConns == 1 && i > 0 && res.ConnectTimes[0] != 0 {
					t.Errorf("request %d: reused connection has connect time %v", i, res.ConnectTimes[0])
				}
				if i == 0 && res.ConnectTimes[0] <= 0 {
					t.Errorf("new connection has connect time %v", res.ConnectTimes[0])
				}
			}
			if got := conns.Load(); got != tc.wantConns {
				t.Errorf("backend accepted %d connections, want %d", got, tc.wantConns)
			}
		})
	}
}

// TestKeepaliveChunkedAndHead: connections are reused after chunked
// responses and HEAD requests, but not after close-delimited ones.
func TestKeepaliveBodyKinds(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
		case "/empty":
			w.WriteHeader(204)
		default:
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "ok")
		}
	}))
	pool := NewPool(4, time.Minute, 0)
	defer pool.Close()
	u := newUpstream(t, addrOf(srv))
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/chunked", "ab"}, {"HEAD", "/x", ""}, {"GET", "/empty", ""}, {"GET", "/x", "ok"}, {"GET", "/chunked", "ab"},
	} {
		out := getOut(c.path)
		out.Method = c.method
		rec, _, logs, _ := serve(t, context.Background(), out, Target{Upstream: u, Pool: pool}, baseOptions())
		if rec.Body.String() != c.body {
			t.Fatalf("%s %s: %q, logs %q", c.method, c.path, rec.Body.String(), logs.all())
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections", n)
	}
	if pool.Idle() != 1 {
		t.Errorf("%d idle", pool.Idle())
	}

	// A close-delimited response is never reused.
	b := newRaw(t, canned("HTTP/1.1 200 OK\r\n\r\nbody", true))
	u2 := newUpstream(t, b.addr)
	for i := 0; i < 2; i++ {
		rec, _, _, _ := serve(t, context.Background(), getOut("/"), Target{Upstream: u2, Pool: pool}, baseOptions())
		if rec.Body.String() != "body" {
			t.Fatalf("body %q", rec.Body.String())
		}
	}
	if n := b.accepted.Load(); n != 2 {
		t.Errorf("%d connections for close-delimited responses", n)
	}
}

// TestStaleKeepalive: the peer closes an idle keepalive connection; the
// next request is repeated on a new connection without a failure or an
// extra try.
func TestStaleKeepalive(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			closed := make(chan struct{}, 4)
			b := newRaw(t, func(c net.Conn, br *bufio.Reader) {
				if _, err := readReq(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				// Keep-alive response, then the server drops the
				// connection as if its idle timeout had passed.
				c.Close()
				closed <- struct{}{}
			})
			u := newUpstream(t, b.addr)
			pool := NewPool(4, time.Minute, 0)
			defer pool.Close()
			for i := 0; i < 3; i++ {
				out := getOut("/")
				out.Method = method
				if method == "POST" {
					out.Body = []byte("x")
				}
				rec, res, logs, _ := serve(t, context.Background(), out, Target{Upstream: u, Pool: pool}, baseOptions())
				if rec.Code != 200 || rec.Body.String() != "ok" || len(res.Addrs) != 1 || len(logs.all()) != 0 {
					t.Fatalf("request %d: %d %q, result %+v, logs %q", i, rec.Code, rec.Body.String(), res, logs.all())
				}
				<-closed
			}
			if st := peerOf(t, u, b.addr).State(); st.Fails != 0 || st.Conns != 0 {
				t.Errorf("peer state %+v", st)
			}
			if n := b.accepted.Load(); n != 3 {
				t.Errorf("%d connections", n)
			}
		})
	}
}

func TestResultTimes(t *testing.T) {
	srv := statusServer(t, 200, "x")
	u := newUpstream(t, addrOf(srv))
	res := &Result{Addrs: []string{"earlier"}, Statuses: []int{200}, ResponseTimes: []time.Duration{1}, ConnectTimes: []time.Duration{1}, HeaderTimes: []time.Duration{1}}
	rec := httptest.NewRecorder()
	Serve(context.Background(), rec, getOut("/"), Target{Upstream: u}, baseOptions(), res, (&logRec{}).logf)
	checkResult(t, res)
	if len(res.Addrs) != 2 || res.Addrs[0] != "earlier" || res.Addrs[1] != addrOf(srv) {
		t.Fatalf("addrs %v: Serve must append", res.Addrs)
	}
	ct, ht, rt := res.ConnectTimes[1], res.HeaderTimes[1], res.ResponseTimes[1]
	if !(ct > 0 && ct <= ht && ht <= rt) {
		t.Errorf("times connect %v header %v response %v", ct, ht, rt)
	}
	if res.BytesReceived <= 0 || res.BytesSent <= 0 || res.Status != 200 {
		t.Errorf("result %+v", res)
	}
}

func TestUpgrade(t *testing.T) {
	b := newRaw(t, func(c net.Conn, br *bufio.Reader) {
		req, err := readReq(br)
		if err != nil || !strings.Contains(req, "Upgrade: websocket") {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: abc\r\n\r\nhello")
		io.Copy(c, br) // echo
	})
	u := newUpstream(t, b.addr)
	results := make(chan *Result, 1)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := getOut("/ws")
		out.Header.Set("Upgrade", r.Header.Get("Upgrade"))
		out.Header.Set("Connection", "upgrade")
		res := &Result{}
		Serve(r.Context(), w, out, Target{Upstream: u}, baseOptions(), res, (&logRec{}).logf)
		results <- res
	}))
	defer front.Close()
	c, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-Websocket-Accept") != "abc" || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q %v", buf, err)
	}
	io.WriteString(c, "ping")
	buf = buf[:4]
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q %v", buf, err)
	}
	c.Close()
	res := <-results
	if res.Status != 101 || !reflect.DeepEqual(res.Statuses, []int{101}) {
		t.Fatalf("result %+v", res)
	}
}

func TestUnexpected101(t *testing.T) {
	b := newRaw(t, canned("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", true))
	u := newUpstream(t, b.addr)
	rec, _, logs, _ := serve(t, context.Background(), getOut("/"), Target{Upstream: u}, baseOptions())
	if rec.Code != 502 || !logs.has(`upstream sent unexpected "101 Switching Protocols"`) {
		t.Fatalf("got %d, logs %q", rec.Code, logs.all())
	}
}

func TestAttemptLogLevel(t *testing.T) {
	// The balancer's warning reaches logf at warn level with the context.
	u := newUpstream(t, deadAddr(t), deadAddr(t))
	_, _, logs, _ := serve(t, context.Background(), getOut("/"), Target{Upstream: u}, baseOptions())
	n := 0
	for _, l := range logs.all() {
		if strings.HasPrefix(l, "["+errlog.Warn.String()+"] upstream server temporarily disabled while connecting to upstream") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("logs %q", logs.all())
	}
}

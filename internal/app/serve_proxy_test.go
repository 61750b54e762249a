package app

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"upstreamd/internal/testutil"
)

// echoLine returns the value of key in an svEcho answer.
func echoLine(body, key string) string {
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v
		}
	}
	return "<absent>"
}

func TestServeProxyPassURI(t *testing.T) {
	echo := svEcho(t)
	_, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    upstream backend { server %[1]s; }
    server {
        listen LISTEN;
        location / { proxy_pass http://backend; }
        location /pre/ { proxy_pass http://backend/new/; }
        location /slash/ { proxy_pass http://backend/; }
        location /noslash { proxy_pass http://backend/x; }
        location = /exact { proxy_pass http://backend/target; }
        location ~ ^/re/ { proxy_pass http://backend; }
        location /enc/ { proxy_pass http://backend/dec/; }
        location /implicit/ { proxy_pass http://%[1]s; }
        location /setorig/ {
            rewrite_by_lua_block { ngx.req.set_uri("/changed/x") }
            proxy_pass http://backend/ignored/;
        }
        location /setnouri/ {
            rewrite_by_lua_block { ngx.req.set_uri("/changed/y z") }
            proxy_pass http://backend;
        }
        location /setargs/ {
            rewrite_by_lua_block { ngx.req.set_uri_args("b=2") }
            proxy_pass http://backend/args/;
        }
        location /exec/ { rewrite_by_lua_block { ngx.exec("/pre/from-exec", "e=1") } }
        location /errpage { error_page 404 = /pre/ep; return 404; }
    }
}`, echo))
	tests := []struct{ path, uri, host string }{
		{"/a/b?x=1", "/a/b?x=1", "backend"},
		{"/a/%7Eb%2F?x=%20", "/a/%7Eb%2F?x=%20", "backend"}, // unchanged URI goes as received
		{"/a//b/../c", "/a//b/../c", "backend"},
		{"/pre/t?q=2", "/new/t?q=2", "backend"},
		{"/pre/", "/new/", "backend"},
		{"/slash/a/b", "/a/b", "backend"},
		{"/noslash/y", "/x/y", "backend"},
		{"/noslashy", "/xy", "backend"},
		{"/exact?a=1", "/target?a=1", "backend"},
		{"/re/%41b", "/re/%41b", "backend"},
		{"/enc/a%20b", "/dec/a%20b", "backend"},         // decoded, mapped, encoded again
		{"/pre/a/../b", "/new/b", "backend"},            // mapped from the normalized $uri
		{"/implicit/p?q", "/implicit/p?q", echo},        // implicit upstream: Host is host:port
		{"/setorig/p?k=v", "/changed/x?k=v", "backend"}, // changed without a new search: URI part ignored
		{"/setnouri/p", "/changed/y%20z", "backend"},    // the changed $uri, escaped
		{"/setargs/p?a=1", "/args/p?b=2", "backend"},    // new args, mapping kept
		{"/exec/z", "/new/from-exec?e=1", "backend"},    // internal redirect: a new location search
		{"/errpage?o=1", "/new/ep", "backend"},          // error_page redirect drops the args
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := svParse(t, svRaw(t, svHostPort(base), "GET "+tc.path+" HTTP/1.0\r\n\r\n"))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %q", resp.StatusCode, body)
			}
			if got := echoLine(body, "uri"); got != tc.uri {
				t.Errorf("upstream URI %q, want %q", got, tc.uri)
			}
			if got := echoLine(body, "host"); got != tc.host {
				t.Errorf("upstream Host %q, want %q", got, tc.host)
			}
		})
	}
}

func TestServeProxyRequestHeaders(t *testing.T) {
	echo := svEcho(t)
	_, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    upstream backend { server %[1]s; }
    server {
        listen LISTEN;
        location /default { proxy_pass http://backend; }
        location /set {
            proxy_set_header Host $host:$server_port;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Drop "";
            proxy_set_header X-Uri "u=$uri";
            proxy_pass http://backend;
        }
        location /twice {
            proxy_set_header X-Twice one;
            proxy_set_header X-Twice two;
            proxy_pass http://backend;
        }
        location /v11 {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://backend;
        }
    }
}`, echo))
	port := svPort(base)
	client := []svOpt{
		svHeader("X-Custom", "c1"), svHeader("X-Custom", "c2"), svHeader("X-Drop", "d"),
		svHeader("X-Forwarded-For", "10.0.0.1"), svHeader("TE", "trailers"), svHeader("Upgrade", "foo"),
		svHeader("Keep-Alive", "300"), svHeader("User-Agent", "ua/1"), svHost("client.test"),
	}
	tests := []struct {
		name, path, method, body string
		want                     map[string]string
	}{
		{"defaults", "/default", "GET", "", map[string]string{
			"host": "backend", "proto": "HTTP/1.0", "h:Connection": "close", "h:X-Custom": "c1,c2",
			"h:User-Agent": "ua/1", "h:Te": "<absent>", "h:Upgrade": "<absent>", "h:Keep-Alive": "<absent>",
			"h:X-Forwarded-For": "10.0.0.1", "h:X-Drop": "d", "h:Content-Length": "<absent>",
		}},
		{"proxy_set_header", "/set", "GET", "", map[string]string{
			"host": "client.test:" + port, "h:X-Forwarded-For": "10.0.0.1, 127.0.0.1", "h:X-Real-Ip": "127.0.0.1",
			"h:X-Drop": "<absent>", "h:X-Uri": "u=/set", "h:X-Custom": "c1,c2", "h:Connection": "close",
		}},
		// Values without variables are shared between requests: the
		// second request must get the same two, not a third.
		{"one name twice", "/twice", "GET", "", map[string]string{"h:X-Twice": "one,two", "h:Connection": "close"}},
		{"one name twice, again", "/twice", "GET", "", map[string]string{"h:X-Twice": "one,two", "h:Connection": "close"}},
		{"POST body", "/default", "POST", "payload=1", map[string]string{
			"method": "POST", "body": "payload=1", "h:Content-Length": "9",
		}},
		{"HTTP/1.1 without Connection", "/v11", "PUT", "b", map[string]string{
			"method": "PUT", "proto": "HTTP/1.1", "h:Connection": "<absent>", "body": "b",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := svDo(t, tc.method, base+tc.path, tc.body, client...)
			if code != 200 {
				t.Fatalf("status %d %q", code, body)
			}
			for k, v := range tc.want {
				if got := echoLine(body, k); got != v {
					t.Errorf("%s = %q, want %q\n%s", k, got, v, body)
				}
			}
		})
	}
}

func TestServeProxyResponseHeaders(t *testing.T) {
	be, _ := svBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", "Mon, 01 Jan 2001 00:00:00 GMT")
		w.Header().Set("Server", "backend-srv")
		w.Header().Set("X-Backend", "yes")
		w.Header().Set("Connection", "keep-alive")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.WriteHeader(201)
		io.WriteString(w, "created")
	})
	_, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    server {
        listen LISTEN;
        location / { add_header X-Added a; proxy_pass http://%s; }
    }
}`, be))
	code, body, hdr := svDo(t, "GET", base+"/", "")
	if code != 201 || body != "created" {
		t.Fatalf("%d %q", code, body)
	}
	if got := hdr.Get("Server"); !strings.HasPrefix(got, "upstreamd") {
		t.Errorf("Server %q: the upstream's must be replaced", got)
	}
	if d, err := http.ParseTime(hdr.Get("Date")); err != nil || time.Since(d) > time.Hour {
		t.Errorf("Date %q: the upstream's must be replaced", hdr.Get("Date"))
	}
	if hdr.Get("X-Backend") != "yes" || hdr.Get("X-Added") != "a" || len(hdr["Set-Cookie"]) != 2 {
		t.Errorf("headers %v", hdr)
	}
}

func TestServeProxyUpstreamKeepalive(t *testing.T) {
	kaAddr, kaConns := svBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ka") })
	plainAddr, plainConns := svBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "plain") })
	_, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    upstream ka { server %s; keepalive 4; }
    upstream plain { server %s; keepalive 4; }
    server {
        listen LISTEN;
        location /ka { proxy_pass http://ka; proxy_http_version 1.1; proxy_set_header Connection ""; }
        location /plain { proxy_pass http://plain; }
    }
}`, kaAddr, plainAddr))
	const n = 10
	for i := 0; i < n; i++ {
		if code, body, _ := svDo(t, "GET", base+"/ka", ""); code != 200 || body != "ka" {
			t.Fatalf("ka: %d %q", code, body)
		}
		if code, body, _ := svDo(t, "GET", base+"/plain", ""); code != 200 || body != "plain" {
			t.Fatalf("plain: %d %q", code, body)
		}
	}
	if got := kaConns.Load(); got != 1 {
		t.Errorf("keepalive upstream: %d connections for %d requests, want 1", got, n)
	}
	// HTTP/1.0 with "Connection: close" (the defaults) cannot be kept alive.
	if got := plainConns.Load(); got != n {
		t.Errorf("HTTP/1.0 upstream: %d connections for %d requests, want %d", got, n, n)
	}
}

func TestServeProxyNextUpstream(t *testing.T) {
	bad := func(name string) string {
		addr, _ := svBackend(t, func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(502)
			io.WriteString(w, name)
		})
		return addr
	}
	// hangup reads the request and closes the connection without answering.
	hangup, _ := svBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	})
	good := svNamed(t, "good")
	dead := deadAddr(t)
	names := map[string]string{
		"GOOD": good, "DEAD": dead, "HANGUP": hangup,
		"BAD502": bad("bad502"), "BAD": bad("bad"), "T1": bad("t1"), "T2": bad("t2"),
	}
	s, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    log_format up '$uri $status "$upstream_addr" "$upstream_status"';
    access_log logs/up.log up;
    upstream u_default { server %[1]s; server %[2]s; }
    upstream u_502 { server %[3]s; server %[2]s; }
    upstream u_off { server %[4]s; server %[2]s; }
    upstream u_post { server %[5]s; server %[2]s; }
    upstream u_postni { server %[5]s; server %[2]s; }
    upstream u_postdead { server %[4]s; server %[2]s; }
    upstream u_get { server %[5]s; server %[2]s; }
    upstream u_tries { server %[6]s; server %[7]s; server %[2]s; }
    server {
        listen LISTEN;
        location /default { proxy_pass http://u_default; }
        location /http502 { proxy_next_upstream error timeout http_502; proxy_pass http://u_502; }
        location /off { proxy_next_upstream off; proxy_pass http://u_off; }
        location /post { proxy_pass http://u_post; }
        location /postni { proxy_next_upstream error timeout non_idempotent; proxy_pass http://u_postni; }
        location /postdead { proxy_pass http://u_postdead; }
        location /get { proxy_pass http://u_get; }
        location /tries { proxy_next_upstream http_502; proxy_next_upstream_tries 2; proxy_pass http://u_tries; }
    }
}`, names["BAD"], good, names["BAD502"], dead, hangup, names["T1"], names["T2"]))
	logPath := svPrefix(s, "logs/up.log")
	tests := []struct {
		name, method, path string
		code               int
		body               string
		log                string // the access log line
	}{
		{"502 passed through by default", "GET", "/default", 502, "bad", `/default 502 "BAD" "502"`},
		{"http_502 tries the next peer", "GET", "/http502", 200, "good", `/http502 200 "BAD502, GOOD" "502, 200"`},
		{"off: no retry after a refused connection", "GET", "/off", 502, "502 Bad Gateway", `/off 502 "DEAD" "502"`},
		{"POST not retried once sent", "POST", "/post", 502, "502 Bad Gateway", `/post 502 "HANGUP" "502"`},
		{"POST retried with non_idempotent", "POST", "/postni", 200, "good", `/postni 200 "HANGUP, GOOD" "502, 200"`},
		{"POST retried when never sent", "POST", "/postdead", 200, "good", `/postdead 200 "DEAD, GOOD" "502, 200"`},
		{"GET retried after an error", "GET", "/get", 200, "good", `/get 200 "HANGUP, GOOD" "502, 200"`},
		{"proxy_next_upstream_tries", "GET", "/tries", 502, "t2", `/tries 502 "T1, T2" "502, 502"`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := svDo(t, tc.method, base+tc.path, "x")
			if code != tc.code || !strings.Contains(body, tc.body) {
				t.Fatalf("%d %q, want %d with %q", code, body, tc.code, tc.body)
			}
			lines := svLogLines(t, logPath, i+1)
			// Longest names first: "BAD502" before "BAD".
			want := strings.NewReplacer("BAD502", names["BAD502"], "BAD", names["BAD"], "GOOD", good,
				"DEAD", dead, "HANGUP", hangup, "T1", names["T1"], "T2", names["T2"]).Replace(tc.log)
			if lines[i] != want {
				t.Fatalf("access log %q, want %q", lines[i], want)
			}
		})
	}
}

func TestServeProxyReadTimeout(t *testing.T) {
	slow, _ := svBackend(t, func(w http.ResponseWriter, r *http.Request) {
		// Answer only when the proxy gives up (or the test ends).
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	_, base, logs := startServer(t, fmt.Sprintf(`
error_log stderr;
events {}
http {
    server {
        listen LISTEN;
        server_name to.test;
        location /slow { proxy_read_timeout 100ms; proxy_pass http://%s; }
    }
}`, slow))
	code, body, _ := svDo(t, "GET", base+"/slow?a=1", "", svHost("to.test"))
	if code != 504 || !strings.Contains(body, "<title>504 Gateway Time-out</title>") {
		t.Fatalf("%d %q", code, body)
	}
	svWaitLog(t, logs, `^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[error\] \d+#0: \*\d+ upstream timed out \(110: Connection timed out\) while reading response header from upstream, client: 127\.0\.0\.1, server: to\.test, request: "GET /slow\?a=1 HTTP/1\.1", upstream: "http://`+slow+`/slow\?a=1", host: "to\.test"$`)
}

func TestServeProxyStreamingUnbuffered(t *testing.T) {
	release := make(chan struct{})
	be, _ := svBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, "second\n")
	})
	_, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    server {
        listen LISTEN;
        location / { proxy_buffering off; proxy_pass http://%s; }
    }
}`, be))
	resp, err := svClient.Get(base + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	// The first chunk arrives while the backend still holds the second.
	done := make(chan string, 1)
	go func() {
		line, _ := rd.ReadString('\n')
		done <- line
	}()
	select {
	case line := <-done:
		if line != "first\n" {
			t.Fatalf("first chunk %q", line)
		}
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("first chunk not delivered before the backend sent the rest")
	}
	close(release)
	rest, err := io.ReadAll(rd)
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

func TestServeBalancing(t *testing.T) {
	// Each backend blocks on /block until released, so least_conn can see a
	// busy peer.
	release := make(chan struct{})
	entered := make(chan string, 1)
	blocking := func(name string) string {
		addr, _ := svBackend(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/lc/block" {
				entered <- name
				select {
				case <-release:
				case <-time.After(10 * time.Second):
				}
			}
			io.WriteString(w, name)
		})
		return addr
	}
	a, b := blocking("a"), blocking("b")
	h1, h2, h3 := svNamed(t, "h1"), svNamed(t, "h2"), svNamed(t, "h3")
	i1, i2 := svNamed(t, "i1"), svNamed(t, "i2")
	_, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    upstream lc { least_conn; server %s; server %s; }
    upstream iph { ip_hash; server %s; server %s; }
    upstream hsh { hash $request_uri consistent; server %s; server %s; server %s; }
    server {
        listen LISTEN;
        location /lc/ { proxy_pass http://lc; }
        location /ip/ { proxy_pass http://iph; }
        location /hash/ { proxy_pass http://hsh; }
    }
}`, a, b, i1, i2, h1, h2, h3))

	t.Run("least_conn avoids the busy peer", func(t *testing.T) {
		busy := make(chan string, 1)
		go func() {
			resp, err := svClient.Get(base + "/lc/block")
			if err != nil {
				busy <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			busy <- string(b)
		}()
		var busyPeer string
		select {
		case busyPeer = <-entered:
		case <-time.After(5 * time.Second):
			t.Fatal("blocking request never reached a backend")
		}
		idle := map[string]string{"a": "b", "b": "a"}[busyPeer]
		for i := 0; i < 6; i++ {
			if _, body, _ := svDo(t, "GET", base+"/lc/x", ""); body != idle {
				t.Fatalf("request %d went to %q while %q is busy", i, body, busyPeer)
			}
		}
		close(release)
		if got := <-busy; got != busyPeer {
			t.Fatalf("blocking request answered by %q, want %q", got, busyPeer)
		}
	})

	t.Run("ip_hash sticks to one peer per /24", func(t *testing.T) {
		_, first, _ := svDo(t, "GET", base+"/ip/0", "")
		for i := 1; i < 8; i++ {
			if _, body, _ := svDo(t, "GET", fmt.Sprintf("%s/ip/%d", base, i), ""); body != first {
				t.Fatalf("request %d: %q, then %q", i, first, body)
			}
		}
		// Other client networks spread over both peers.
		seen := map[string]bool{}
		for n := 0; n < 16; n++ {
			local := fmt.Sprintf("127.0.%d.1", n)
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
				DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext}}
			resp, err := c.Get(base + "/ip/x")
			if err != nil {
				t.Fatalf("from %s: %v", local, err)
			}
			seen[svReadAll(t, resp)] = true
			resp.Body.Close()
		}
		if len(seen) != 2 {
			t.Fatalf("16 client networks reached %v", seen)
		}
	})

	t.Run("hash $request_uri consistent", func(t *testing.T) {
		first := map[string]string{}
		seen := map[string]bool{}
		for round := 0; round < 3; round++ {
			for i := 0; i < 12; i++ {
				uri := fmt.Sprintf("/hash/key%d", i)
				_, body, _ := svDo(t, "GET", base+uri, "")
				if round == 0 {
					first[uri] = body
					seen[body] = true
				} else if body != first[uri] {
					t.Fatalf("%s: %q then %q", uri, first[uri], body)
				}
			}
		}
		if len(seen) < 2 {
			t.Fatalf("12 keys all on %v", seen)
		}
	})
}

func TestServeMaxFails(t *testing.T) {
	good := svNamed(t, "good")
	dead1, dead2 := deadAddr(t), deadAddr(t)
	s, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    log_format up '$uri "$upstream_addr"';
    upstream one { server %[1]s max_fails=1 fail_timeout=30s; server %[3]s; }
    upstream two { server %[2]s max_fails=2 fail_timeout=30s; server %[3]s; }
    upstream never { server %[1]s max_fails=0; server %[3]s; }
    server {
        listen LISTEN;
        access_log logs/up.log up;
        location /one { proxy_pass http://one; }
        location /two { proxy_pass http://two; }
        location /never { proxy_pass http://never; }
    }
}`, dead1, dead2, good))
	logPath := svPrefix(s, "logs/up.log")
	var want []string
	check := func(path string, tried ...string) {
		t.Helper()
		code, body, _ := svDo(t, "GET", base+path, "")
		if code != 200 || body != "good" {
			t.Fatalf("%s: %d %q", path, code, body)
		}
		want = append(want, path+` "`+strings.Join(tried, ", ")+`"`)
		lines := svLogLines(t, logPath, len(want))
		if got := lines[len(want)-1]; got != want[len(want)-1] {
			t.Fatalf("request %d: %q, want %q", len(want), got, want[len(want)-1])
		}
	}
	// max_fails=1: after one failure the dead peer is skipped.
	check("/one", dead1, good)
	for i := 0; i < 4; i++ {
		check("/one", good)
	}
	// max_fails=2: the dead peer is tried until it failed twice.
	check("/two", dead2, good)
	check("/two", good) // round-robin: the other peer's turn
	check("/two", dead2, good)
	for i := 0; i < 4; i++ {
		check("/two", good)
	}
	// max_fails=0: never marked unavailable.
	check("/never", dead1, good)
	check("/never", good)
	check("/never", dead1, good)
}

// cannedBackend answers every request with the response its path names in
// responses, then closes the connection.
func cannedBackend(t *testing.T, responses map[string]string) string {
	t.Helper()
	return testutil.TCPServer(t, func(c net.Conn) {
		if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			io.WriteString(c, responses[req.URL.Path])
		}
	})
}

// TestServeProxyReasonPhrase: the upstream's status line text is passed on,
// as nginx does, unless the status changed on the way or the text cannot
// be sent as it is.
func TestServeProxyReasonPhrase(t *testing.T) {
	be := cannedBackend(t, map[string]string{
		"/custom":  "HTTP/1.1 429 Slow Down\r\nContent-Length: 2\r\n\r\nno",
		"/found":   "HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n",
		"/none":    "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
		"/ctl":     "HTTP/1.1 200 A\x01B\r\nContent-Length: 2\r\n\r\nok",
		"/lua":     "HTTP/1.1 200 Fine\r\nContent-Length: 2\r\n\r\nok",
		"/unknown": "HTTP/1.1 599 Network Connect Timeout\r\nContent-Length: 0\r\n\r\n",
		"/http10":  "HTTP/1.0 200 Fine Thanks\r\nContent-Length: 2\r\n\r\nok",
		"/ok":      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	})
	_, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    server {
        listen LISTEN;
        location / { proxy_pass http://%[1]s; }
        location /lua {
            proxy_pass http://%[1]s;
            header_filter_by_lua_block { ngx.status = 201 }
        }
    }
}`, be))
	tests := []struct{ path, statusLine string }{
		{"/custom", "HTTP/1.1 429 Slow Down"},
		{"/found", "HTTP/1.1 302 Found"},
		{"/none", "HTTP/1.1 200 OK"},
		{"/ctl", "HTTP/1.1 200 OK"},
		{"/lua", "HTTP/1.1 201 Created"},
		{"/unknown", "HTTP/1.1 599 Network Connect Timeout"},
		{"/http10", "HTTP/1.1 200 Fine Thanks"},
		{"/ok", "HTTP/1.1 200 OK"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			raw := svRaw(t, svHostPort(base), "GET "+tt.path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if line, _, _ := strings.Cut(raw, "\r\n"); line != tt.statusLine {
				t.Fatalf("status line %q, want %q", line, tt.statusLine)
			}
		})
	}
	t.Run("not carried to the next request on the connection", func(t *testing.T) {
		raw := svRaw(t, svHostPort(base), "GET /custom HTTP/1.1\r\nHost: x\r\n\r\nGET /none HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if n := strings.Count(raw, "HTTP/1.1 "); n != 2 || !strings.HasPrefix(raw, "HTTP/1.1 429 Slow Down\r\n") || !strings.Contains(raw, "\r\n\r\nnoHTTP/1.1 200 OK\r\n") {
			t.Fatalf("responses %q", raw)
		}
	})
}

// TestServeProxyFieldOrder: the upstream's fields keep its order, as in
// nginx (after the fields nginx's header filter places itself), a field
// sent on several lines included, and what add_header adds follows them.
func TestServeProxyFieldOrder(t *testing.T) {
	be := cannedBackend(t, map[string]string{
		"/": "HTTP/1.1 200 OK\r\nX-Zulu: 1\r\nContent-Type: text/plain\r\nX-Alpha: 2\r\nSet-Cookie: a=1\r\n" +
			"X-Mike: 3\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nok",
	})
	_, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    server {
        listen LISTEN;
        location / { add_header X-Added yes; proxy_pass http://%s; }
    }
}`, be))
	raw := svRaw(t, svHostPort(base), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	head, _, _ := strings.Cut(raw, "\r\n\r\n")
	var names []string
	for _, line := range strings.Split(head, "\r\n")[1:] {
		name, value, _ := strings.Cut(line, ": ")
		if name == "Set-Cookie" {
			name += "=" + value
		}
		names = append(names, name)
	}
	want := "Server Date Content-Type Content-Length Connection X-Zulu X-Alpha Set-Cookie=a=1 X-Mike Set-Cookie=b=2 X-Added"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("fields %q\nwant    %q\nhead %q", got, want, head)
	}
}

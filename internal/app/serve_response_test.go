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
)

func TestServeReturn(t *testing.T) {
	_, base, _ := startServer(t, `
events {}
http {
    server {
        listen LISTEN;
        server_name ret.test;
        location /text { return 200 "uri=$uri args=$args"; }
        location /typed { default_type application/json; return 201 '{"a":1}'; }
        location /empty { return 204; }
        location /empty200 { return 200; }
        location /moved { return 301 /new$is_args$args; }
        location /found { return 302 "/f?x=$arg_x"; }
        location /abs { return 302 http://elsewhere.test/p; }
        location /url { return https://elsewhere.test$request_uri; }
        location /nf { return 404; }
        location /nftext { return 404 "custom not found"; }
        location /teapot { return 418 "tea"; }
        location /close { return 444; }
    }
    server {
        listen LISTEN;
        server_name srvret.test;
        return 403;
        location / { return 200 "never"; }
    }
}`)
	port := svPort(base)
	tests := []struct {
		name, path, host string
		code             int
		body             string // substring
		header           map[string]string
	}{
		{"text with variables", "/text?a=1", "", 200, "uri=/text args=a=1", map[string]string{"Content-Type": "text/plain"}},
		{"default_type", "/typed", "", 201, `{"a":1}`, map[string]string{"Content-Type": "application/json", "Content-Length": "7"}},
		{"204", "/empty", "", 204, "", nil},
		{"200 without text", "/empty200", "", 200, "", map[string]string{"Content-Length": "0", "Content-Type": "text/plain"}},
		{"301 relative", "/moved?q=1", "", 301, "<title>301 Moved Permanently</title>",
			map[string]string{"Location": "http://127.0.0.1:" + port + "/new?q=1", "Content-Type": "text/html"}},
		{"301 Host without port", "/moved", "ret.test", 301, "301 Moved Permanently",
			map[string]string{"Location": "http://ret.test:" + port + "/new"}},
		{"302 with variable", "/found?x=9", "RET.test:" + port, 302, "<center><h1>302 Found</h1></center>",
			map[string]string{"Location": "http://ret.test:" + port + "/f?x=9"}},
		{"302 absolute", "/abs", "", 302, "302 Found", map[string]string{"Location": "http://elsewhere.test/p"}},
		{"URL alone is 302", "/url/x?y=1", "", 302, "302 Found", map[string]string{"Location": "https://elsewhere.test/url/x?y=1"}},
		{"404 page", "/nf", "", 404, "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>",
			map[string]string{"Content-Type": "text/html"}},
		{"404 with text", "/nftext", "", 404, "custom not found", map[string]string{"Content-Type": "text/plain"}},
		{"unusual code with text", "/teapot", "", 418, "tea", nil},
		{"server-level return", "/anything", "srvret.test", 403, "403 Forbidden", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts []svOpt
			if tc.host != "" {
				opts = append(opts, svHost(tc.host))
			}
			code, body, hdr := svDo(t, "GET", base+tc.path, "", opts...)
			if code != tc.code || !strings.Contains(body, tc.body) {
				t.Fatalf("%d %q, want %d with %q", code, body, tc.code, tc.body)
			}
			if tc.body == "" && body != "" {
				t.Fatalf("body %q, want none", body)
			}
			for k, v := range tc.header {
				if got := hdr.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if got := hdr.Get("Server"); !strings.HasPrefix(got, "upstreamd") {
				t.Errorf("Server: %q", got)
			}
		})
	}

	// 444 closes the connection without sending anything.
	if got := svRaw(t, svHostPort(base), "GET /close HTTP/1.1\r\nHost: ret.test\r\n\r\n"); got != "" {
		t.Fatalf("444 sent %q", got)
	}
	// HEAD gets the headers of the error page, no body.
	code, body, hdr := svDo(t, "HEAD", base+"/nf", "")
	if code != 404 || body != "" || hdr.Get("Content-Length") == "" {
		t.Fatalf("HEAD 404: %d %q %v", code, body, hdr)
	}
}

func TestServeStaticFiles(t *testing.T) {
	s, base, logs := startServer(t, `
error_log stderr;
events {}
http {
    server {
        listen LISTEN;
        server_name static.test;
        location / { }
        location /bin/ { default_type application/octet-stream; }
        location /idx/ { index first.html second.html; }
        location /types/ { types { text/x-custom cst; } default_type text/x-dflt; }
    }
}`)
	html := svPrefix(s, "html")
	svWriteFile(t, html+"/index.html", "<p>index</p>")
	svWriteFile(t, html+"/a.css", "body{}")
	svWriteFile(t, html+"/pic.PNG", "png")
	svWriteFile(t, html+"/noext", "plain")
	svWriteFile(t, html+"/bin/blob", "blob")
	svWriteFile(t, html+"/dir/index.html", "dir index")
	svWriteFile(t, html+"/noindex/file", "x")
	svWriteFile(t, html+"/idx/second.html", "second")
	svWriteFile(t, html+"/types/a.cst", "custom")
	svWriteFile(t, html+"/types/a.css", "css")
	port := svPort(base)

	tests := []struct {
		name, method, path string
		code               int
		body               string
		header             map[string]string
	}{
		{"index at root", "GET", "/", 200, "<p>index</p>", map[string]string{"Content-Type": "text/html", "Content-Length": "12"}},
		{"css type", "GET", "/a.css", 200, "body{}", map[string]string{"Content-Type": "text/css"}},
		{"extension case-insensitive", "GET", "/pic.PNG", 200, "png", map[string]string{"Content-Type": "image/png"}},
		{"no extension: default_type", "GET", "/noext", 200, "plain", map[string]string{"Content-Type": "text/plain"}},
		{"location default_type", "GET", "/bin/blob", 200, "blob", map[string]string{"Content-Type": "application/octet-stream"}},
		{"directory index", "GET", "/dir/", 200, "dir index", nil},
		{"second index file", "GET", "/idx/", 200, "second", nil},
		{"location types", "GET", "/types/a.cst", 200, "custom", map[string]string{"Content-Type": "text/x-custom"}},
		{"location types replace http types", "GET", "/types/a.css", 200, "css", map[string]string{"Content-Type": "text/x-dflt"}},
		{"directory without slash", "GET", "/dir?a=b", 301, "301 Moved Permanently",
			map[string]string{"Location": "http://static.test:" + port + "/dir/?a=b"}},
		{"HEAD", "HEAD", "/a.css", 200, "", map[string]string{"Content-Length": "6", "Content-Type": "text/css"}},
		{"missing file", "GET", "/missing.txt", 404, "404 Not Found", nil},
		{"missing directory", "GET", "/nodir/", 404, "404 Not Found", nil},
		{"directory without index", "GET", "/noindex/", 403, "403 Forbidden", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, hdr := svDo(t, tc.method, base+tc.path, "", svHost("static.test"))
			if code != tc.code || (tc.body == "" && body != "") || !strings.Contains(body, tc.body) {
				t.Fatalf("%d %q, want %d with %q", code, body, tc.code, tc.body)
			}
			for k, v := range tc.header {
				if got := hdr.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if tc.code == 200 && hdr.Get("Last-Modified") == "" {
				t.Errorf("no Last-Modified")
			}
		})
	}
	svWaitLog(t, logs, `^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[error\] \d+#0: \*\d+ open\(\) "`+html+`/missing\.txt" failed \(2: No such file or directory\), client: 127\.0\.0\.1, server: static\.test, request: "GET /missing\.txt HTTP/1\.1", host: "static\.test"$`)
	svWaitLog(t, logs, `\[error\] .*"`+html+`/nodir/index\.html" is not found \(2: No such file or directory\), client: 127\.0\.0\.1, server: static\.test, request: "GET /nodir/ HTTP/1\.1"`)
	svWaitLog(t, logs, `\[error\] .*directory index of "`+html+`/noindex/" is forbidden, client: 127\.0\.0\.1`)
}

func TestServeAddHeader(t *testing.T) {
	_, base, _ := startServer(t, `
events {}
http {
    add_header X-Http http;
    server {
        listen LISTEN;
        add_header X-Server "srv $host";
        location /inherit { return 200 "a"; }
        location /own {
            add_header X-Loc "loc $uri";
            add_header X-Loc2 two;
            return 200 "b";
        }
        location /error { return 500 "e"; }
        location /always {
            add_header X-Not not;
            add_header X-Always yes always;
            return 404;
        }
        location /redirect { add_header X-R r; return 302 /x; }
        location /created { add_header X-C c; return 201 "c"; }
        location /empty { add_header X-Empty $arg_none; return 200 "e"; }
        location /outer {
            add_header X-Outer o;
            location /outer/inner { return 200 "inner"; }
            location /outer/own { add_header X-Inner i; return 200 "own"; }
        }
    }
    server {
        listen LISTEN;
        server_name nohdr.test;
        location / { return 200 "h"; }
    }
}`)
	tests := []struct {
		path, host string
		code       int
		want       map[string]string // "" = absent
	}{
		{"/inherit", "", 200, map[string]string{"X-Server": "srv 127.0.0.1", "X-Http": ""}},
		{"/own", "", 200, map[string]string{"X-Loc": "loc /own", "X-Loc2": "two", "X-Server": ""}},
		{"/error", "", 500, map[string]string{"X-Server": ""}},
		{"/always", "", 404, map[string]string{"X-Always": "yes", "X-Not": ""}},
		{"/redirect", "", 302, map[string]string{"X-R": "r"}},
		{"/created", "", 201, map[string]string{"X-C": "c"}},
		{"/empty", "", 200, map[string]string{"X-Empty": ""}},
		{"/outer/inner", "", 200, map[string]string{"X-Outer": "o", "X-Server": ""}},
		{"/outer/own", "", 200, map[string]string{"X-Inner": "i", "X-Outer": ""}},
		{"/", "nohdr.test", 200, map[string]string{"X-Http": "http"}},
	}
	for _, tc := range tests {
		t.Run(tc.path+tc.host, func(t *testing.T) {
			var opts []svOpt
			if tc.host != "" {
				opts = append(opts, svHost(tc.host))
			}
			code, _, hdr := svDo(t, "GET", base+tc.path, "", opts...)
			if code != tc.code {
				t.Fatalf("status %d, want %d", code, tc.code)
			}
			for k, v := range tc.want {
				_, present := hdr[http.CanonicalHeaderKey(k)]
				if got := hdr.Get(k); got != v || (v == "" && present) {
					t.Errorf("%s: %q (present %v), want %q", k, got, present, v)
				}
			}
		})
	}
}

func TestServeErrorPage(t *testing.T) {
	_, dead := backend(t, "unused")
	_ = dead
	s, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    server {
        listen LISTEN;
        server_name ep.test;
        error_page 404 /custom404.html;
        error_page 500 502 =200 /fallback;
        error_page 403 = /dynamic;
        error_page 410 @named;
        error_page 401 http://login.test/?from=x;
        error_page 409 =301 http://moved.test/;
        location / { }
        location = /fallback { return 200 "fallback $uri"; }
        location = /dynamic { return 202 "dynamic"; }
        location @named { add_header X-Named yes always; return 200 "named $uri"; }
        location /gone { return 410; }
        location /forbidden { return 403; }
        location /auth { return 401; }
        location /conflict { return 409; }
        location /broken { proxy_pass http://%s; }
        location /local {
            error_page 404 /local-page;
            return 404;
        }
        location = /local-page { return 200 "local page"; }
        location /loop {
            error_page 404 /missing-too;
            return 404;
        }
    }
}`, deadAddr(t)))
	svWriteFile(t, svPrefix(s, "html/custom404.html"), "custom 404 page")
	tests := []struct {
		name, method, path string
		code               int
		body               string
		header             map[string]string
	}{
		{"internal redirect keeps 404", "GET", "/nothing", 404, "custom 404 page", map[string]string{"Content-Type": "text/html"}},
		{"HEAD keeps HEAD", "HEAD", "/nothing", 404, "", nil},
		{"POST becomes GET", "POST", "/nothing", 404, "custom 404 page", nil},
		{"=200", "GET", "/broken", 200, "fallback /fallback", nil},
		{"= takes the target's code", "GET", "/forbidden", 202, "dynamic", nil},
		{"named location", "GET", "/gone", 410, "named /gone", map[string]string{"X-Named": "yes"}},
		{"external URL is 302", "GET", "/auth", 302, "302 Found", map[string]string{"Location": "http://login.test/?from=x"}},
		{"=301 external", "GET", "/conflict", 301, "301 Moved Permanently", map[string]string{"Location": "http://moved.test/"}},
		{"location-level error_page", "GET", "/local", 404, "local page", nil},
		{"not recursive", "GET", "/loop", 404, "<title>404 Not Found</title>", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.method == "POST" {
				body = "x"
			}
			code, got, hdr := svDo(t, tc.method, base+tc.path, body)
			if code != tc.code || (tc.body == "" && got != "") || !strings.Contains(got, tc.body) {
				t.Fatalf("%d %q, want %d with %q", code, got, tc.code, tc.body)
			}
			for k, v := range tc.header {
				if g := hdr.Get(k); g != v {
					t.Errorf("%s: %q, want %q", k, g, v)
				}
			}
		})
	}
}

func TestServeClientMaxBodySize(t *testing.T) {
	echo := svEcho(t)
	_, base, logs := startServer(t, fmt.Sprintf(`
error_log stderr;
events {}
http {
    client_max_body_size 10;
    server {
        listen LISTEN;
        location /p { proxy_pass http://%s; }
        location /r { return 200 "r"; }
        location /big { client_max_body_size 0; proxy_pass http://%s; }
        location /small { client_max_body_size 2; error_page 413 /too-big; proxy_pass http://%s; }
        location = /too-big { return 200 "too big"; }
    }
}`, echo, echo, echo))
	big := strings.Repeat("x", 11)
	tests := []struct {
		name, path, body string
		chunked          bool
		code             int
		want             string
	}{
		{"at the limit", "/p", strings.Repeat("x", 10), false, 200, "body=xxxxxxxxxx"},
		{"over the limit", "/p", big, false, 413, "413 Request Entity Too Large"},
		{"over the limit, chunked", "/p", big, true, 413, "413 Request Entity Too Large"},
		{"checked before return", "/r", big, false, 413, "413"},
		{"0 is unlimited", "/big", strings.Repeat("y", 5000), false, 200, "body=yyy"},
		{"error_page 413", "/small", "abc", false, 413, "too big"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", base+tc.path, strings.NewReader(tc.body))
			if tc.chunked {
				req.ContentLength = -1
				req.Body = io.NopCloser(struct{ io.Reader }{strings.NewReader(tc.body)})
				req.TransferEncoding = []string{"chunked"}
			}
			resp, err := svClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b := svReadAll(t, resp)
			if resp.StatusCode != tc.code || !strings.Contains(b, tc.want) {
				t.Fatalf("%d %q, want %d with %q", resp.StatusCode, b, tc.code, tc.want)
			}
		})
	}
	svWaitLog(t, logs, `\[error\] \d+#0: \*\d+ client intended to send too large body: 11 bytes, client: 127\.0\.0\.1, server: , request: "POST /p HTTP/1\.1", host: "`)
}

func TestServeKeepalive(t *testing.T) {
	_, base, _ := startServer(t, `
events {}
http {
    keepalive_requests 2;
    keepalive_timeout 30s 25;
    server {
        listen LISTEN;
        location /ka { return 200 "ka"; }
        location /noka { keepalive_timeout 0; return 200 "noka"; }
    }
}`)
	addr := svHostPort(base)
	// keepalive_timeout 0 closes after the response.
	got := svRaw(t, addr, "GET /noka HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := svParse(t, got)
	if body != "noka" || !resp.Close {
		t.Fatalf("keepalive_timeout 0: %q", got)
	}
	// keepalive_requests 2: the second request on a connection is the last;
	// the third is never answered. The header timeout is announced.
	got = svRaw(t, addr, "GET /ka HTTP/1.1\r\nHost: x\r\n\r\nGET /ka HTTP/1.1\r\nHost: x\r\n\r\nGET /ka HTTP/1.1\r\nHost: x\r\n\r\n")
	if n := strings.Count(got, "HTTP/1.1 200"); n != 2 {
		t.Fatalf("%d responses on one connection, want 2:\n%s", n, got)
	}
	first, _, _ := strings.Cut(got, "\r\n\r\n")
	if !strings.Contains(first, "Keep-Alive: timeout=25") || strings.Contains(first, "Connection: close") {
		t.Fatalf("first response head:\n%s", first)
	}
	if !strings.Contains(got, "Connection: close") {
		t.Fatalf("last response not Connection: close:\n%s", got)
	}
}

// An idle keepalive connection is closed after keepalive_timeout.
func TestServeKeepaliveIdleTimeout(t *testing.T) {
	_, base, _ := startServer(t, `
events {}
http {
    keepalive_timeout 300ms;
    server { listen LISTEN; location / { return 200 "ok"; } }
}`)
	c, err := net.Dial("tcp", svHostPort(base))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(c)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body := svReadAll(t, resp); body != "ok" || resp.Close {
		t.Fatalf("%q close=%v", body, resp.Close)
	}
	// The server closes the idle connection; the deadline only bounds a
	// failing test.
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(10 * time.Second))
	if n, err := rd.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection: read %d, %v; want EOF", n, err)
	}
}

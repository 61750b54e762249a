package app

import (
	"fmt"
	"strings"
	"testing"
)

func TestServeServerSelection(t *testing.T) {
	other := freeAddr(t)
	_, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    server { listen LISTEN; server_name first.test; return 200 "first"; }
    server { listen LISTEN; server_name exact.test *.wild.test; return 200 "exact-or-leading"; }
    server { listen LISTEN; server_name .dot.test; return 200 "dot"; }
    server { listen LISTEN; server_name www.wild.*; return 200 "trailing"; }
    server { listen LISTEN; server_name ~^re\d+\.example\.org$; return 200 "regex1"; }
    server { listen LISTEN; server_name ~^re; return 200 "regex2"; }
    server { listen LISTEN default_server; server_name dflt.test; return 200 "default $server_name"; }
    server { listen %s; server_name exact.test; return 200 "other"; }
    server { listen %s; server_name b.test; return 200 "other-b"; }
}`, other, other))
	tests := []struct {
		base, host, want string
	}{
		{base, "exact.test", "exact-or-leading"},
		{base, "EXACT.Test:8080", "exact-or-leading"}, // case and port do not matter
		{base, "exact.test.", "exact-or-leading"},     // nor a trailing dot
		{base, "a.wild.test", "exact-or-leading"},
		{base, "www.wild.test", "exact-or-leading"}, // leading wildcard before trailing
		{base, "www.wild.org", "trailing"},
		{base, "dot.test", "dot"},
		{base, "x.y.dot.test", "dot"},
		{base, "re1.example.org", "regex1"}, // the first matching regex in config order
		{base, "rex.example.org", "regex2"},
		{base, "first.test", "first"},
		{base, "unknown.test", "default dflt.test"},
		{base, "127.0.0.1", "default dflt.test"},
		{"http://" + other, "first.test", "other"}, // names of another address do not count
		{"http://" + other, "b.test", "other-b"},
		{"http://" + other, "nope", "other"}, // first server of the address is its default
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			code, body, _ := svDo(t, "GET", tc.base+"/", "", svHost(tc.host))
			if code != 200 || body != tc.want {
				t.Fatalf("Host %q: %d %q, want %q", tc.host, code, body, tc.want)
			}
		})
	}

	// HTTP/1.0 without Host goes to the default server.
	resp, body := svParse(t, svRaw(t, svHostPort(base), "GET / HTTP/1.0\r\n\r\n"))
	if resp.StatusCode != 200 || body != "default dflt.test" {
		t.Fatalf("no Host: %d %q", resp.StatusCode, body)
	}
	// HTTP/1.1 without Host is a client error, as in nginx.
	resp, _ = svParse(t, svRaw(t, svHostPort(base), "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"))
	if resp.StatusCode != 400 {
		t.Fatalf("HTTP/1.1 without Host: %d, want 400", resp.StatusCode)
	}
}

func TestServeLocationSelection(t *testing.T) {
	_, base, _ := startServer(t, `
events {}
http {
    server {
        listen LISTEN;
        location = / { return 200 "exact-root"; }
        location / { return 200 "root-prefix"; }
        location /docs/ {
            return 200 "docs";
            location /docs/inner/ { return 200 "inner"; }
            location ~ \.md$ { return 200 "nested-regex"; }
        }
        location /docs/long/prefix/ { return 200 "longest"; }
        location ^~ /static/ { return 200 "noregex"; }
        location ~ \.(png|jpg)$ { return 200 "regex-img"; }
        location ~ ^/docs/.*\.txt$ { return 200 "outer-regex"; }
        location ~ \.txt$ { return 200 "second-regex"; }
        location ~* \.PDF$ { return 200 "regex-ci"; }
        location = /exact { return 200 "exact"; }
        location /exact { return 200 "exact-prefix"; }
    }
}`)
	tests := []struct{ path, want string }{
		{"/", "exact-root"},
		{"/x", "root-prefix"},
		{"/docs/a", "docs"},
		{"/docs/inner/a", "inner"},
		{"/docs/a.md", "nested-regex"},
		{"/docs/inner/a.md", "nested-regex"}, // nested regex of /docs/ beats nested prefix
		{"/docs/a.txt", "outer-regex"},       // regexes in config order
		{"/other/a.txt", "second-regex"},
		{"/docs/long/prefix/a", "longest"},
		{"/docs/long/prefix/a.png", "regex-img"}, // a regex beats the longest prefix
		{"/static/a.png", "noregex"},             // ^~ stops the regex search
		{"/img/a.png", "regex-img"},
		{"/a.pdf", "regex-ci"},
		{"/a.Pdf", "regex-ci"},
		{"/a.PNG", "root-prefix"}, // ~ is case-sensitive
		{"/exact", "exact"},
		{"/exact/", "exact-prefix"},
		{"/exactly", "exact-prefix"},
		{"/%64ocs/a", "docs"},        // decoded before matching
		{"//docs///a", "docs"},       // merged slashes
		{"/x/../docs/a", "docs"},     // dot segments resolved
		{"/docs/./inner/a", "inner"}, // dot segments resolved
		{"/static/../img/a.png", "regex-img"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			// Raw, so that the client does not clean the path itself.
			resp, body := svParse(t, svRaw(t, svHostPort(base), "GET "+tc.path+" HTTP/1.0\r\n\r\n"))
			if resp.StatusCode != 200 || body != tc.want {
				t.Fatalf("%s: %d %q, want %q", tc.path, resp.StatusCode, body, tc.want)
			}
		})
	}
}

// A request whose Host names no server, or whose method nginx does not
// know, still gets a sane answer.
func TestServeOddRequests(t *testing.T) {
	_, be := backend(t, "be")
	s, base, logs := startServer(t, fmt.Sprintf(`
error_log stderr info;
events {}
http {
    server {
        listen LISTEN;
        server_name only.test;
        location /static/ { }
        location /proxy/ { proxy_pass http://%s; }
        location /ret { return 200 "ret $request_method"; }
    }
}`, be))
	svWriteFile(t, svPrefix(s, "html/static/f.txt"), "file")
	tests := []struct {
		name, request string
		code          int
		body          string
	}{
		{"unknown host", "GET /ret HTTP/1.0\r\nHost: nobody.test\r\n\r\n", 200, "ret GET"},
		{"unknown method to return", "FOO /ret HTTP/1.0\r\n\r\n", 200, "ret FOO"},
		{"unknown method to static", "FOO /static/f.txt HTTP/1.0\r\n\r\n", 405, "405 Not Allowed"},
		{"POST to static file", "POST /static/f.txt HTTP/1.0\r\nContent-Length: 1\r\n\r\nx", 405, "405 Not Allowed"},
		{"POST to missing file", "POST /static/none HTTP/1.0\r\nContent-Length: 1\r\n\r\nx", 404, "404 Not Found"},
		{"unknown method proxied", "FOO /proxy/x HTTP/1.0\r\n\r\n", 200, "be FOO /proxy/x"},
		{"TRACE", "TRACE /ret HTTP/1.0\r\n\r\n", 405, "405 Not Allowed"},
		{"absolute URI", "GET http://only.test/ret?a=1 HTTP/1.0\r\n\r\n", 200, "ret GET"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := svParse(t, svRaw(t, svHostPort(base), tc.request))
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.body) {
				t.Fatalf("%d %q, want %d containing %q", resp.StatusCode, body, tc.code, tc.body)
			}
		})
	}
	svWaitLog(t, logs, `\[info\] \d+#0: \*\d+ client sent TRACE method, client: 127\.0\.0\.1, server: only\.test, request: "TRACE /ret HTTP/1\.0"$`)

	// A malformed request line is refused before any server is chosen.
	resp, _ := svParse(t, svRaw(t, svHostPort(base), "GET\r\n\r\n"))
	if resp.StatusCode != 400 {
		t.Fatalf("bad request line: %d", resp.StatusCode)
	}
}

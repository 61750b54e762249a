package app

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func TestServeAccessLog(t *testing.T) {
	echo := svEcho(t)
	dead := deadAddr(t)
	s, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    log_format up '$remote_addr "$request" $status $body_bytes_sent $request_time '
                  'ua="$upstream_addr" us="$upstream_status" urt=$upstream_response_time arg=$arg_a';
    log_format js escape=json '{"ua":"$http_user_agent","x":"$arg_x"}';
    log_format raw escape=none '$http_user_agent';
    upstream pair { server %[2]s; server %[1]s; }
    server {
        listen LISTEN;
        access_log logs/access.log;
        location /combined { return 200 "hello"; }
        location /up {
            access_log logs/up.log up;
            proxy_pass http://pair;
        }
        location /esc {
            access_log logs/esc.log;
            access_log logs/js.log js;
            access_log logs/raw.log raw;
            return 204;
        }
        location /cond {
            access_log logs/cond.log up if=$arg_log;
            return 200;
        }
        location /off { access_log off; return 200; }
        location /close { return 444; }
    }
}`, echo, dead))
	ts := `\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]`

	svDo(t, "GET", base+"/combined?a=1", "", svHeader("User-Agent", "ua/1"), svHeader("Referer", "http://ref.test/"))
	svDo(t, "GET", base+"/off", "")
	svDo(t, "HEAD", base+"/combined", "", svHeader("User-Agent", ""))
	svRaw(t, svHostPort(base), "GET /close HTTP/1.0\r\n\r\n")
	lines := svLogLines(t, svPrefix(s, "logs/access.log"), 3)
	wantRe := []string{
		`^127\.0\.0\.1 - - ` + ts + ` "GET /combined\?a=1 HTTP/1\.1" 200 5 "http://ref\.test/" "ua/1"$`,
		`^127\.0\.0\.1 - - ` + ts + ` "HEAD /combined HTTP/1\.1" 200 0 "-" "-"$`,
		`^127\.0\.0\.1 - - ` + ts + ` "GET /close HTTP/1\.0" 444 0 "-" "-"$`,
	}
	if len(lines) != len(wantRe) {
		t.Fatalf("access.log has %d lines, want %d:\n%s", len(lines), len(wantRe), strings.Join(lines, "\n"))
	}
	for i, re := range wantRe {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("line %d %q\ndoes not match %s", i, lines[i], re)
		}
	}

	// Two requests through the upstream: the first fails over from the dead
	// peer, the second goes to the live one directly (max_fails=1).
	svDo(t, "GET", base+"/up/x?a=v", "")
	svDo(t, "POST", base+"/up/y", "body")
	lines = svLogLines(t, svPrefix(s, "logs/up.log"), 2)
	upRe := []string{
		`^127\.0\.0\.1 "GET /up/x\?a=v HTTP/1\.1" 200 \d+ \d+\.\d{3} ua="` + regexp.QuoteMeta(dead+", "+echo) + `" us="502, 200" urt=\d+\.\d{3}, \d+\.\d{3} arg=v$`,
		`^127\.0\.0\.1 "POST /up/y HTTP/1\.1" 200 \d+ \d+\.\d{3} ua="` + regexp.QuoteMeta(echo) + `" us="200" urt=\d+\.\d{3} arg=-$`,
	}
	for i, re := range upRe {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("up line %d %q\ndoes not match %s", i, lines[i], re)
		}
	}
	// $body_bytes_sent is the body only.
	_, body, _ := svDo(t, "GET", base+"/up/z", "")
	lines = svLogLines(t, svPrefix(s, "logs/up.log"), 3)
	if want := fmt.Sprintf(`" 200 %d `, len(body)); !strings.Contains(lines[2], want) {
		t.Errorf("%q lacks %q", lines[2], want)
	}

	// Escaping.
	svRaw(t, svHostPort(base), "GET /esc?x=a%22b HTTP/1.0\r\nUser-Agent: q\"b\\s\tt\xc3\xa9\r\n\r\n")
	esc := svLogLines(t, svPrefix(s, "logs/esc.log"), 1)[0]
	if want := `"q\x22b\x5Cs\x09t\xC3\xA9"`; !strings.HasSuffix(esc, want) {
		t.Errorf("default escape: %q, want suffix %q", esc, want)
	}
	if got, want := svLogLines(t, svPrefix(s, "logs/js.log"), 1)[0], `{"ua":"q\"b\\s\tté","x":"a%22b"}`; got != want {
		t.Errorf("json escape: %q, want %q", got, want)
	}
	if got, want := svLogLines(t, svPrefix(s, "logs/raw.log"), 1)[0], "q\"b\\s\tt\u00e9"; got != want {
		t.Errorf("escape=none: %q, want %q", got, want)
	}

	// if=: lines only when the condition is neither empty nor "0".
	svDo(t, "GET", base+"/cond?log=0", "")
	svDo(t, "GET", base+"/cond", "")
	svDo(t, "GET", base+"/cond?log=1&a=yes", "")
	lines = svLogLines(t, svPrefix(s, "logs/cond.log"), 1)
	if len(lines) != 1 || !strings.Contains(lines[0], "arg=yes") {
		t.Errorf("if= lines: %q", lines)
	}
}

func TestServeErrorLogFormat(t *testing.T) {
	dead := deadAddr(t)
	_, base, logs := startServer(t, fmt.Sprintf(`
error_log stderr;
events {}
http {
    server {
        listen LISTEN;
        server_name main.test alias.test;
        location / { proxy_pass http://%s; }
    }
}`, dead))
	code, _, _ := svDo(t, "GET", base+"/path?q=1", "", svHost("alias.test:8080"))
	if code != http.StatusBadGateway {
		t.Fatalf("status %d", code)
	}
	// server: is the server's first name, host: the Host header as sent.
	svWaitLog(t, logs, `^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[error\] \d+#0: \*\d+ connect\(\) failed \(111: Connection refused\) while connecting to upstream, client: 127\.0\.0\.1, server: main\.test, request: "GET /path\?q=1 HTTP/1\.1", upstream: "http://`+regexp.QuoteMeta(dead)+`/path\?q=1", host: "alias\.test:8080"$`)
}

func TestServeVariables(t *testing.T) {
	tests := []struct {
		expr string // the return text
		path string // after /v/N
		opts []svOpt
		want string // PORT is replaced by the listen port
	}{
		{"$uri", "/a%20b/./c?x=1", nil, "/v/0/a b/c"},
		{"$document_uri", "/d", nil, "/v/1/d"},
		{"[$args]", "?a=1&b=%20", nil, "[a=1&b=%20]"},
		{"[$args]", "", nil, "[]"},
		{"[$is_args]", "?q", nil, "[?]"},
		{"[$is_args]", "", nil, "[]"},
		{"$arg_x|$arg_Y|$arg_none|", "?x=1&y=two&x=3", nil, "1|two||"},
		{"$request_uri", "/p%20q?z=1", nil, "/v/7/p%20q?z=1"},
		{"$host", "", []svOpt{svHost("Vars.TEST:81")}, "vars.test"},
		{"$http_host", "", []svOpt{svHost("Vars.TEST:81")}, "Vars.TEST:81"},
		{"$remote_addr", "", nil, "127.0.0.1"},
		{"$server_port", "", nil, "PORT"},
		{"$server_addr", "", nil, "127.0.0.1"},
		{"$server_name", "", nil, "vars.test"},
		{"$http_x_y|$http_user_agent", "", []svOpt{svHeader("X-Y", "xy"), svHeader("User-Agent", "ua")}, "xy|ua"},
		{"$cookie_a|$cookie_b|$cookie_c", "", []svOpt{svHeader("Cookie", "a=1; b=two")}, "1|two|"},
		{"$scheme", "", nil, "http"},
		{"$request_method", "", []svOpt{func(r *http.Request) { r.Method = "DELETE" }}, "DELETE"},
		{"$server_protocol", "", nil, "HTTP/1.1"},
		{"$request", "?a=b", nil, "GET /v/19?a=b HTTP/1.1"},
		{"$content_length|$content_type", "", []svOpt{svHeader("Content-Type", "text/x")}, "|text/x"},
		{"${uri}x", "", nil, "/v/21x"},
		{"$connection_requests", "", nil, "1"},
		{"$nginx_version", "", nil, "1.25.0"},
	}
	var conf strings.Builder
	for i, tc := range tests {
		fmt.Fprintf(&conf, "        location /v/%d { return 200 \"%s\"; }\n", i, tc.expr)
	}
	_, base, _ := startServer(t, `
events {}
http {
    server {
        listen LISTEN;
        server_name vars.test;
`+conf.String()+`
    }
}`)
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%d %s", i, tc.expr), func(t *testing.T) {
			code, body, _ := svDo(t, "GET", fmt.Sprintf("%s/v/%d%s", base, i, tc.path), "", tc.opts...)
			want := strings.ReplaceAll(tc.want, "PORT", svPort(base))
			if code != 200 || body != want {
				t.Fatalf("%d %q, want %q", code, body, want)
			}
		})
	}
}

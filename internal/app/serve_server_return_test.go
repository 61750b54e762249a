package app

import (
	"strings"
	"testing"
)

// A server-level return goes through the server-level error_page, as in
// nginx: a named location serves (skipping the server rewrite phase), a URL
// redirects, and a URI is answered by the same return again (nginx restarts
// an internal redirect at the server rewrite phase), so with error_page
// followed once, nginx's own page for the code goes out.
func TestServeServerReturnErrorPage(t *testing.T) {
	_, base, _ := startServer(t, `
events {}
http {
    server {
        listen LISTEN;
        server_name named.test;
        return 403;
        error_page 403 @denied;
        location @denied { return 200 "denied page"; }
    }
    server {
        listen LISTEN;
        server_name namedcode.test;
        return 404;
        error_page 404 =410 @gone;
        location @gone { return 200 "gone page"; }
    }
    server {
        listen LISTEN;
        server_name url.test;
        return 503;
        error_page 503 http://status.example/down;
    }
    server {
        listen LISTEN;
        server_name uri.test;
        return 404;
        error_page 404 =200 /404.html;
        location = /404.html { return 200 "never served"; }
    }
    server {
        listen LISTEN;
        server_name nomatch.test;
        return 404;
        error_page 500 @other;
        location @other { return 200 "other"; }
    }
}`)
	tests := []struct {
		host, body, location string
		code                 int
	}{
		{"named.test", "denied page", "", 403},
		{"namedcode.test", "gone page", "", 410},
		{"url.test", "302 Found", "http://status.example/down", 302},
		{"uri.test", "404 Not Found", "", 404},
		{"nomatch.test", "404 Not Found", "", 404},
	}
	for _, tt := range tests {
		code, body, hdr := svDo(t, "GET", base+"/x", "", svHost(tt.host))
		if code != tt.code || !strings.Contains(body, tt.body) || hdr.Get("Location") != tt.location {
			t.Errorf("%s: %d %q Location=%q, want %d %q Location=%q", tt.host, code, body, hdr.Get("Location"), tt.code, tt.body, tt.location)
		}
	}
}

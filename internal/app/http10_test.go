package app

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// An HTTP/1.0 client (no Host, no keepalive) gets an HTTP/1.0-compatible
// answer: Lua sees version 1.0, the body is not chunked, and the
// connection closes after the response, as nginx does.
func TestHTTP10Request(t *testing.T) {
	_, base, _ := startServer(t, `
events {}
http {
    access_log off;
    server {
        listen LISTEN;
        location /v {
            default_type text/plain;
            content_by_lua_block { ngx.say("version ", ngx.req.http_version(), " ", ngx.var.server_protocol) }
        }
    }
}`)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET /v HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// ReadAll ends only if the server closes the connection.
	raw, err := io.ReadAll(bufio.NewReader(conn))
	if err != nil {
		t.Fatalf("reading until close: %v", err)
	}
	resp := string(raw)
	head, body, _ := strings.Cut(resp, "\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 200 OK") || strings.Contains(strings.ToLower(head), "transfer-encoding: chunked") {
		t.Fatalf("response head:\n%s", head)
	}
	if body != "version 1 HTTP/1.0\n" {
		t.Fatalf("body %q", body)
	}
}

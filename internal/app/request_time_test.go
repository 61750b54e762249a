package app

import (
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// $request_time and ngx.req.start_time count from the first bytes read
// from the client, as nginx's do: a client that takes 300 ms to send its
// head has a request time of at least that.
func TestRequestTimeFromFirstByte(t *testing.T) {
	s, base, _ := startServer(t, `
events {}
http {
    log_format t '$request_time';
    server {
        listen LISTEN;
        access_log logs/t.log t;
        location / {
            content_by_lua_block {
                ngx.say(string.format("%.3f", ngx.now() - ngx.req.start_time()))
            }
        }
    }
}`)
	c, err := net.DialTimeout("tcp", svHostPort(base), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a slow client, not synchronisation
	if _, err := io.WriteString(c, "Host: t\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	body := string(resp[len(resp)-6:])
	if v, err := strconv.ParseFloat(body[:5], 64); err != nil || v < 0.299 {
		t.Fatalf("Lua saw %q since ngx.req.start_time(), want ≥ 0.300 (response %q)", body, resp)
	}
	lines := svLogLines(t, svPrefix(s, "logs/t.log"), 1)
	if v, err := strconv.ParseFloat(lines[0], 64); err != nil || v < 0.299 {
		t.Fatalf("$request_time %q, want ≥ 0.300", lines[0])
	}
}

package httpd

import (
	"net/http"
	"strconv"
	"testing"
)

// $bytes_sent is computed when read (responseWriter.headerBytes), not in
// WriteHeader: check that it still counts the header as sent (status line,
// every field, the blank line) plus the body, and no header before the
// header went out.
func TestBytesSentVariable(t *testing.T) {
	h := testHandler(t, `
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:8080;
        location = /b {
            default_type text/plain;
            add_header X-Added yes;
            content_by_lua_block {
                ngx.header["X-Before"] = ngx.var.bytes_sent
                ngx.say("hello")
            }
        }
    }
}
`)
	req := benchRequest(t, "/b")
	w := &benchWriter{h: http.Header{}}
	r := getRequest(h, w, req)
	h.serveRequest(r, req, h.tableFor("127.0.0.1:8080", req))
	if got := w.h.Get("X-Before"); got != "0" {
		t.Errorf("$bytes_sent before the header: %q, want 0", got)
	}
	want := estimateHeaderBytes(200, w.h) + int64(len("hello\n"))
	got, _ := r.variable("bytes_sent")
	if got != strconv.FormatInt(want, 10) {
		t.Errorf("$bytes_sent = %s, want %d (header %v)", got, want, w.h)
	}
	// "HTTP/1.1 200 OK\r\n" + fields + "\r\n", by hand for this header.
	n := int64(len("HTTP/1.1 200 OK\r\n") + 2)
	for k, vs := range w.h {
		for _, v := range vs {
			n += int64(len(k) + 2 + len(v) + 2)
		}
	}
	if n+6 != want {
		t.Errorf("estimate %d, by hand %d", want, n+6)
	}
	r.release()
}

package app

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// $upstream_http_NAME is the upstream's own response header, as nginx
// exposes it to add_header and log_format.
func TestUpstreamHTTPVariable(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App-Version", "7.1")
		fmt.Fprint(w, "ok")
	}))
	defer be.Close()
	_, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    access_log off;
    upstream app { server %s; }
    server {
        listen LISTEN;
        location / {
            proxy_pass http://app;
            add_header X-Seen "version=$upstream_http_x_app_version";
        }
    }
}`, strings.TrimPrefix(be.URL, "http://")))
	code, body, h := get(t, base+"/")
	if code != 200 || body != "ok" {
		t.Fatalf("%d %q", code, body)
	}
	if got := h.Get("X-Seen"); got != "version=7.1" {
		t.Fatalf("X-Seen = %q, want version=7.1", got)
	}
}

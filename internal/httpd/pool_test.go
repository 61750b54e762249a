package httpd

import (
	"net/http"
	"strings"
	"testing"
)

// Requests are pooled (getRequest/release): these tests run different
// requests alternately on one goroutine, so that the same request struct
// serves them in turn, and check that nothing of one request shows in the
// next: response headers, variables, ngx.ctx, upstream results, status.

const poolConf = `
events {}
http {
    access_log off;
    upstream backend {
        server %A%;
        keepalive 8;
    }
    server {
        listen 127.0.0.1:8080;
        default_type text/plain;
        location = /dirty {
            add_header X-Added yes;
            rewrite_by_lua_block {
                ngx.ctx.leak = "ctx"
                ngx.var.args = "changed=1"
                ngx.status = 201
                ngx.header["X-Dirty"] = "1"
                ngx.header["Content-Type"] = "application/x-dirty"
            }
            content_by_lua_block {
                ngx.say("dirty ", ngx.ctx.leak, " ", ngx.var.args)
            }
        }
        location = /proxy {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-From $uri;
            header_filter_by_lua_block {
                ngx.header["X-Up-Type"] = ngx.var.upstream_http_content_type
                ngx.ctx.proxied = true
            }
        }
        location = /clean {
            content_by_lua_block {
                ngx.say(tostring(ngx.ctx.leak), " ", tostring(ngx.ctx.proxied), " ",
                    tostring(ngx.var.args), " ", tostring(ngx.var.upstream_addr), " ",
                    tostring(ngx.var.upstream_http_content_type), " ", ngx.status, " ",
                    tostring(ngx.header["X-Dirty"]), " ", tostring(ngx.var.sent_http_x_added))
            }
        }
        location = /return {
            return 200 "ret $uri $args";
        }
    }
}
`

func TestPooledRequestsDoNotLeak(t *testing.T) {
	h := testHandler(t, strings.ReplaceAll(poolConf, "%A%", rawBackend(t)))
	serve := func(target string) *benchWriter {
		t.Helper()
		w := &benchWriter{h: http.Header{}}
		h.ServeAddr("127.0.0.1:8080", w, benchRequest(t, target))
		return w
	}
	for i := 0; i < 20; i++ {
		w := serve("/dirty?x=1")
		if w.status != 201 || w.body.String() != "dirty ctx changed=1\n" || w.h.Get("X-Dirty") != "1" || w.h.Get("X-Added") != "yes" {
			t.Fatalf("/dirty: %d %q %v", w.status, w.body.String(), w.h)
		}

		w = serve("/proxy")
		if w.status != 200 || w.body.String() != "ok\n" || w.h.Get("X-Up-Type") != "text/plain" ||
			w.h.Get("X-Dirty") != "" || w.h.Get("Content-Type") != "text/plain" {
			t.Fatalf("/proxy: %d %q %v", w.status, w.body.String(), w.h)
		}

		w = serve("/clean")
		want := "nil nil  nil nil 0 nil nil\n" // $args is "", not nil
		if w.status != 200 || w.body.String() != want || w.h.Get("X-Dirty") != "" ||
			w.h.Get("Content-Type") != "text/plain" || w.h.Get("Server") != ServerHeader {
			t.Fatalf("/clean after /dirty and /proxy: %d %q %v, want body %q", w.status, w.body.String(), w.h, want)
		}

		w = serve("/return?a=b")
		if w.status != 200 || w.body.String() != "ret /return a=b" || w.h.Get("X-Up-Type") != "" {
			t.Fatalf("/return: %d %q %v", w.status, w.body.String(), w.h)
		}
	}
}

// TestPooledRequestUpstreamVars: a request's $upstream_* describe its own
// proxying only, also when the pooled request proxied before.
func TestPooledRequestUpstreamVars(t *testing.T) {
	backend := rawBackend(t)
	h := testHandler(t, strings.ReplaceAll(poolConf, "%A%", backend))
	for i := 0; i < 10; i++ {
		w := &benchWriter{h: http.Header{}}
		req := benchRequest(t, "/proxy")
		h.ServeAddr("127.0.0.1:8080", w, req)
		if w.status != 200 {
			t.Fatalf("status %d", w.status)
		}
		r := getRequest(h, w, req)
		if len(r.upstream.Addrs) != 0 || r.upstreamHeader != nil || r.lua != nil || r.out.Host != "" || len(r.out.Header) != 0 {
			t.Fatalf("a released request kept state: %+v", r.upstream)
		}
		r.release()
	}
}

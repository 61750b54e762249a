package httpd

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"upstreamd/internal/config"
	"upstreamd/internal/errlog"
	"upstreamd/internal/nginxconf"
	"upstreamd/internal/ngxlua"
	"upstreamd/internal/proxy"
	"upstreamd/internal/upstream"
)

// End-to-end benchmarks of the bench/ scenarios (b), (c) and (d) through
// Handler.ServeAddr, with the real upstream, proxy and ngxlua packages and a
// raw loopback backend that allocates nothing per request, so that B/op and
// allocs/op are the server's own (net/http's server is not involved: it is
// being replaced separately).

// rawBackend answers every request on a keepalive connection with a fixed
// response, like the bench kit's nginx `return 200 "ok\n"`. It handles
// requests without a body only.
func rawBackend(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	resp := []byte("HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Wed, 25 Nov 2026 12:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReaderSize(c, 4096)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) <= 2 { // the empty line ends the head
						if _, err := c.Write(resp); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

const benchConf = `
events {}
http {
    access_log off;
    keepalive_requests 1000000;
    upstream backend {
        server %A%;
        server %B%;
        keepalive 32;
    }
    upstream nokeepalive {
        server %A%;
        server %B%;
    }
    server {
        listen 127.0.0.1:8080;
        location = /nokeepalive {
            proxy_pass http://nokeepalive;
        }
        location = /proxy {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location = /lua {
            default_type text/plain;
            content_by_lua_block {
                ngx.say("hello world")
            }
        }
        location = /proxylua {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            header_filter_by_lua_block {
                ngx.header["X-A"] = "1"
            }
        }
    }
}
`

// testHandler builds a Handler from configuration text the way
// internal/app's build does (which httpd cannot import): upstreams, one
// keepalive pool per upstream, a Lua engine.
func testHandler(tb testing.TB, conf string) *Handler {
	tb.Helper()
	tree, err := nginxconf.Parse("nginx.conf", []byte(conf))
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	cfg, err := config.Build(config.Options{Prefix: dir, ConfFile: dir + "/nginx.conf"}, tree)
	if err != nil {
		tb.Fatal(err)
	}
	reg := upstream.NewRegistry()
	pools := map[string]*proxy.Pool{}
	for _, u := range cfg.HTTP.Upstreams {
		var specs []upstream.ServerSpec
		for _, s := range u.Servers {
			for _, addr := range s.Addrs {
				specs = append(specs, upstream.ServerSpec{Name: s.Name, Addr: addr, Weight: s.Weight,
					MaxFails: s.MaxFails, FailTimeout: s.FailTimeout, MaxConns: s.MaxConns, Backup: s.Backup, Down: s.Down})
			}
		}
		up, err := upstream.New(upstream.Options{Name: u.Name, Method: upstream.Method(u.Method)}, specs)
		if err != nil {
			tb.Fatal(err)
		}
		if err := reg.Add(up); err != nil {
			tb.Fatal(err)
		}
		p := proxy.NewPool(u.Keepalive, u.KeepaliveTimeout, u.KeepaliveRequests)
		pools[u.Name] = p
		tb.Cleanup(p.Close)
	}
	e, err := ngxlua.NewEngine(ngxlua.Options{CodeCache: cfg.HTTP.Lua.CodeCache, Upstreams: func() *upstream.Registry { return reg }, Prefix: cfg.Prefix})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(e.Close)
	logs := NewLogFiles()
	tb.Cleanup(logs.Close)
	h, err := New(cfg, Deps{Upstreams: reg, Pools: pools, Log: errlog.Discard(), Lua: e, Logs: logs})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func benchHandler(tb testing.TB) *Handler {
	a, b := rawBackend(tb), rawBackend(tb)
	conf := strings.NewReplacer("%A%", a, "%B%", b).Replace(benchConf)
	return testHandler(tb, conf)
}

// benchWriter is a reusable http.ResponseWriter that keeps the status, the
// header and the body.
type benchWriter struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *benchWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}
func (w *benchWriter) Flush() {}

func (w *benchWriter) reset() {
	clear(w.h)
	w.status = 0
	w.body.Reset()
}

// benchRequest is a request as the server hands it over: a cancelable
// context (so the proxy watches it) carrying the connection state and the
// local address.
func benchRequest(tb testing.TB, target string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Host = "localhost"
	req.Header.Set("User-Agent", "wrk")
	req.Header.Set("Accept", "*/*")
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	ctx = ConnContext(ctx, nil)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080})
	return req.WithContext(ctx)
}

func benchServe(b *testing.B, target, wantBody, wantHeader string) {
	h := benchHandler(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := benchRequest(b, target)
		w := &benchWriter{h: http.Header{}}
		for pb.Next() {
			w.reset()
			h.ServeAddr("127.0.0.1:8080", w, req)
			if w.status != 200 || w.body.String() != wantBody || (wantHeader != "" && w.h.Get(wantHeader) == "") {
				b.Errorf("status %d, body %q, header %v", w.status, w.body.String(), w.h)
				return
			}
		}
	})
}

// BenchmarkServeProxy is scenario (b): proxy_pass to an upstream of two
// peers with keepalive.
func BenchmarkServeProxy(b *testing.B) { benchServe(b, "/proxy", "ok\n", "") }

// BenchmarkServeProxyNoKeepalive is scenario (g): nginx's proxy defaults,
// a new upstream connection per request.
func BenchmarkServeProxyNoKeepalive(b *testing.B) { benchServe(b, "/nokeepalive", "ok\n", "") }

// BenchmarkServeLua is scenario (c): content_by_lua_block { ngx.say("hello world") }.
func BenchmarkServeLua(b *testing.B) { benchServe(b, "/lua", "hello world\n", "") }

// BenchmarkServeProxyHeaderFilter is scenario (d): (b) with a
// header_filter_by_lua_block setting a response header.
func BenchmarkServeProxyHeaderFilter(b *testing.B) { benchServe(b, "/proxylua", "ok\n", "X-A") }

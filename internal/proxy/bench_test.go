package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"upstreamd/internal/errlog"
)

// discardWriter is a minimal http.ResponseWriter for benchmarks.
type discardWriter struct {
	h      http.Header
	status int
	n      int64
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(status int)      { d.status = status }
func (d *discardWriter) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }
func (d *discardWriter) Flush()                      {}

func (d *discardWriter) reset() {
	clear(d.h)
	d.status, d.n = 0, 0
}

func benchBackend(b *testing.B, size int) *httptest.Server {
	body := strings.Repeat("x", size)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func nopLog(errlog.Level, string, string) {}

// BenchmarkServe proxies GET requests to an httptest backend over keepalive
// connections.
func BenchmarkServe(b *testing.B) {
	for _, size := range []int{100, 64 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			srv := benchBackend(b, size)
			u := newUpstream(b, addrOf(srv))
			pool := NewPool(32, time.Minute, 0)
			defer pool.Close()
			o := baseOptions()
			tg := Target{Upstream: u, Pool: pool}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				out := &Out{Method: "GET", URI: "/bench?x=1", Host: "backend", HTTPVersion: "1.1",
					Header: http.Header{"X-Real-Ip": {"127.0.0.1"}, "User-Agent": {"bench"}}}
				var res Result
				for pb.Next() {
					w.reset()
					res = Result{Addrs: res.Addrs[:0], Statuses: res.Statuses[:0], ResponseTimes: res.ResponseTimes[:0],
						ConnectTimes: res.ConnectTimes[:0], HeaderTimes: res.HeaderTimes[:0]}
					Serve(context.Background(), w, out, tg, o, &res, nopLog)
					if w.status != 200 || w.n != int64(size) {
						b.Fatalf("status %d, %d bytes", w.status, w.n)
					}
				}
			})
		})
	}
}

// BenchmarkReverseProxy is the same with net/http/httputil, for reference.
func BenchmarkReverseProxy(b *testing.B) {
	for _, size := range []int{100, 64 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			srv := benchBackend(b, size)
			target, _ := url.Parse(srv.URL)
			rp := httputil.NewSingleHostReverseProxy(target)
			rp.Transport = &http.Transport{MaxIdleConnsPerHost: 32}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				req := httptest.NewRequest("GET", "/bench?x=1", nil)
				req.Header.Set("X-Real-Ip", "127.0.0.1")
				req.Header.Set("User-Agent", "bench")
				for pb.Next() {
					w.reset()
					rp.ServeHTTP(w, req)
					if w.status != 200 || w.n != int64(size) {
						b.Fatalf("status %d, %d bytes", w.status, w.n)
					}
				}
			})
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return itoa(n>>10) + "KiB"
	}
	return itoa(n) + "B"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

package h1

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
)

// BenchmarkServe: hello world over loopback keepalive connections, h1
// against net/http's server (allocs/op include the raw client's, which are
// none).
//
//	go test -run '^$' -bench Serve -benchmem -count 10 ./internal/h1
func BenchmarkServe(b *testing.B) {
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello world\n")
	})
	servers := []struct {
		name  string
		serve func(net.Listener) (stop func())
	}{
		{"h1", func(ln net.Listener) func() {
			s := &Server{Handler: hello}
			go s.Serve(ln)
			return func() { s.Close() }
		}},
		{"net-http", func(ln net.Listener) func() {
			s := &http.Server{Handler: hello}
			go s.Serve(ln)
			return func() { s.Close() }
		}},
	}
	for _, sv := range servers {
		b.Run(sv.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			stop := sv.serve(ln)
			defer stop()
			addr := ln.Addr().String()
			req := []byte("GET /hello HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			b.ReportAllocs()
			// Enough connections that the server, not the round trip, is the limit.
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				buf := make([]byte, 4096)
				for pb.Next() {
					if _, err := c.Write(req); err != nil {
						b.Error(err)
						return
					}
					if err := readOne(c, buf); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// readOne reads one response with a Content-Length body into buf.
func readOne(c net.Conn, buf []byte) error {
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			return err
		}
		n += m
		head := bytes.Index(buf[:n], []byte("\r\n\r\n"))
		if head < 0 {
			continue
		}
		i := bytes.Index(buf[:head], []byte("Content-Length: "))
		if i < 0 {
			return io.ErrUnexpectedEOF
		}
		j := bytes.IndexByte(buf[i:head+2], '\r')
		cl, err := strconv.Atoi(string(buf[i+16 : i+j]))
		if err != nil {
			return err
		}
		if n >= head+4+cl {
			return nil
		}
	}
}

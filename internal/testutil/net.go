package testutil

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FreeAddr returns a loopback address nothing listens on: the port was
// free a moment ago, and the test is expected to bind it itself.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// NameBackend starts an HTTP server that answers every request with name,
// stopped when the test ends, and returns its host:port.
func NameBackend(t testing.TB, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TCPServer listens on a loopback port until the test ends and runs handle
// for every connection, each in its own goroutine, closing the connection
// when handle returns. It returns the host:port.
func TCPServer(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

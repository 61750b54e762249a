package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"upstreamd/internal/errlog"
	"upstreamd/internal/upstream"
)

// logRec records error-log lines as "[level] msg, upstream: "url"".
type logRec struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRec) logf(level errlog.Level, url, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf("[%s] %s, upstream: %q", level, msg, url))
}

func (l *logRec) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func (l *logRec) has(sub string) bool {
	for _, line := range l.all() {
		if strings.Contains(line, sub) {
			return true
		}
	}
	return false
}

func newUpstream(t testing.TB, addrs ...string) *upstream.Upstream {
	t.Helper()
	var specs []upstream.ServerSpec
	for _, a := range addrs {
		specs = append(specs, upstream.DefaultSpec(a, a))
	}
	u, err := upstream.New(upstream.Options{Name: "backend"}, specs)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func peerOf(t testing.TB, u *upstream.Upstream, addr string) *upstream.Peer {
	t.Helper()
	for _, p := range u.Snapshot().Primary {
		if p.Addr() == addr {
			return p
		}
	}
	t.Fatalf("no peer %s", addr)
	return nil
}

// deadAddr returns a local address nobody listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// rawBackend is a TCP server whose connections are handled by a test
// function, for byte-exact responses and misbehaviour.
type rawBackend struct {
	ln       net.Listener
	addr     string
	accepted atomic.Int32
	stop     chan struct{} // closed at cleanup: stalled handlers return
	wg       sync.WaitGroup
}

func newRaw(t testing.TB, handle func(c net.Conn, br *bufio.Reader)) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{ln: ln, addr: ln.Addr().String(), stop: make(chan struct{})}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepted.Add(1)
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
		close(b.stop)
		ln.Close()
		b.wg.Wait()
	})
	return b
}

// readReq reads one request (head and Content-Length body) and returns it.
func readReq(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	clen := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return sb.String(), err
		}
		sb.WriteString(line)
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Length") {
			clen, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, clen)
	if _, err := io.ReadFull(br, body); err != nil {
		return sb.String(), err
	}
	sb.Write(body)
	return sb.String(), nil
}

// canned returns a handler that answers every request on a connection with
// resp, closing the connection after the response when closeAfter is set.
func canned(resp string, closeAfter bool) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := readReq(br); err != nil {
				return
			}
			if _, err := io.WriteString(c, resp); err != nil || closeAfter {
				return
			}
		}
	}
}

// countingServer is an httptest server that counts accepted connections.
func countingServer(t testing.TB, h http.Handler) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			n.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

func addrOf(srv *httptest.Server) string { return srv.Listener.Addr().String() }

func baseOptions() *Options {
	return &Options{
		ConnectTimeout: 2 * time.Second,
		SendTimeout:    2 * time.Second,
		ReadTimeout:    2 * time.Second,
		NextUpstream:   DefaultNextUpstream,
		Buffering:      true,
	}
}

func getOut(uri string) *Out {
	return &Out{Method: "GET", URI: uri, Host: "backend", HTTPVersion: "1.1", Header: http.Header{}}
}

// serve runs Serve into a recorder, recovering http.ErrAbortHandler.
func serve(t testing.TB, ctx context.Context, out *Out, tg Target, o *Options) (rec *httptest.ResponseRecorder, res *Result, logs *logRec, aborted bool) {
	t.Helper()
	rec = httptest.NewRecorder()
	res = &Result{}
	logs = &logRec{}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if r != http.ErrAbortHandler {
					panic(r)
				}
				aborted = true
			}
		}()
		Serve(ctx, rec, out, tg, o, res, logs.logf)
	}()
	return
}

// checkResult verifies the per-try slices have matching lengths.
func checkResult(t testing.TB, res *Result) {
	t.Helper()
	n := len(res.Addrs)
	if len(res.Statuses) != n || len(res.ResponseTimes) != n || len(res.ConnectTimes) != n || len(res.HeaderTimes) != n {
		t.Fatalf("result slices differ in length: %+v", res)
	}
}

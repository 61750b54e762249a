package app

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// svClient is a client that shows redirects instead of following them
// and opens a connection per request, so tests do not share state through
// pooled client connections.
var svClient = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{DisableKeepAlives: true},
	Timeout:       10 * time.Second,
}

// svOpt adjusts a request built by do.
type svOpt func(*http.Request)

func svHost(h string) svOpt { return func(r *http.Request) { r.Host = h } }

func svHeader(k, v string) svOpt { return func(r *http.Request) { r.Header.Add(k, v) } }

// do sends one request and returns status, body and header.
func svDo(t *testing.T, method, url, body string, opts ...svOpt) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := svClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// raw writes a raw request to addr (host:port) and returns everything the
// server sends until it closes the connection.
func svRaw(t *testing.T, addr, request string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading raw response: %v (got %q)", err, b)
	}
	return string(b)
}

// rawResponse parses the first response of a raw exchange.
func svParse(t *testing.T, s string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(s)), nil)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func svHostPort(base string) string { return strings.TrimPrefix(base, "http://") }

func svPort(base string) string {
	_, p, _ := net.SplitHostPort(svHostPort(base))
	return p
}

// prefixPath is a path under the server's prefix.
func svPrefix(s *Server, rel string) string { return filepath.Join(s.opts.Prefix, rel) }

func svWriteFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// logLines waits until the file holds at least n lines and returns them
// (the access log is written after the response went out).
func svLogLines(t *testing.T, name string, n int) []string {
	t.Helper()
	var lines []string
	waitFor(t, func() bool {
		b, _ := os.ReadFile(name)
		lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(b) == 0 {
			lines = nil
		}
		return len(lines) >= n
	})
	return lines
}

// waitLog waits until the error log output matches re and returns the
// matching line.
func svWaitLog(t *testing.T, logs interface{ String() string }, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, l := range strings.Split(logs.String(), "\n") {
			if rx.MatchString(l) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no error log line matches %s in:\n%s", re, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// svEcho answers with the request it received, one "key=value" line
// each: method, uri, host, proto, body, then every header as "h:Name=v".
func svEcho(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var b strings.Builder
		fmt.Fprintf(&b, "method=%s\nuri=%s\nhost=%s\nproto=%s\nbody=%s\n", r.Method, r.RequestURI, r.Host, r.Proto, body)
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "h:%s=%s\n", k, strings.Join(r.Header[k], ","))
		}
		if r.Close {
			b.WriteString("h:Connection=close\n")
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, b.String())
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func svReadAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

// svBackend runs h on loopback and returns its address and a counter of
// the connections it accepted.
func svBackend(t *testing.T, h http.HandlerFunc) (addr string, conns *atomic.Int64) {
	t.Helper()
	conns = new(atomic.Int64)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), conns
}

// svNamed is a backend answering "name" for every request.
func svNamed(t *testing.T, name string) string {
	t.Helper()
	addr, _ := svBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, name)
	})
	return addr
}

package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"upstreamd/internal/testutil"
)

// startServer writes conf into a fresh prefix and runs it on loopback.
// "LISTEN" in conf is replaced by a free loopback address, whose URL is
// returned.
func startServer(t *testing.T, conf string) (*Server, string, *syncBuffer) {
	t.Helper()
	s, base, _, logs := startServerWithFiles(t, conf, nil)
	return s, base, logs
}

// startServerWithFiles is startServer with files (paths relative to the
// prefix) written before the configuration is loaded, since
// *_by_lua_file, require and state files are read at load time.
func startServerWithFiles(t *testing.T, conf string, files map[string]string) (s *Server, base, prefix string, logs *syncBuffer) {
	t.Helper()
	listen := freeAddr(t)
	prefix = t.TempDir()
	confPath := filepath.Join(prefix, "conf", "nginx.conf")
	writeFile(t, confPath, strings.ReplaceAll(conf, "LISTEN", listen))
	for name, body := range files {
		writeFile(t, filepath.Join(prefix, name), body)
	}
	logs = &syncBuffer{}
	opts := Options{Prefix: prefix + "/", ConfFile: confPath, Stderr: logs}
	g, err := Load(opts)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	s = NewServer(opts, g)
	if err := s.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s.Shutdown(ctx)
	})
	return s, "http://" + listen, prefix, logs
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a log sink the test reads while the code under test writes.
type syncBuffer = testutil.Buffer

// backend is an httptest server answering with its name.
func backend(t *testing.T, name string) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		fmt.Fprintf(w, "%s %s %s host=%s", name, r.Method, r.RequestURI, r.Host)
	}))
	t.Cleanup(srv.Close)
	return srv, strings.TrimPrefix(srv.URL, "http://")
}

// freeAddr is a loopback address that was free a moment ago, for a server
// the test is about to start.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// deadAddr is a loopback address that refuses connections for the whole
// test: a socket bound but never listening holds the port, so no server of
// a parallel test can take it over (a closed listener's port can be handed
// out again at once).
func deadAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func TestProxyRoundRobinAndURIRules(t *testing.T) {
	_, a := backend(t, "a")
	_, b := backend(t, "b")
	_, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    upstream backend { server %s; server %s; }
    server {
        listen LISTEN;
        location / { proxy_pass http://backend; }
        location /prefix/ { proxy_pass http://backend/new/; }
        location = /exact { return 200 "exact $arg_x"; }
    }
}`, a, b))
	var seq []string
	for i := 0; i < 4; i++ {
		code, body, _ := get(t, base+"/x?y=1")
		if code != 200 {
			t.Fatalf("status %d body %q", code, body)
		}
		seq = append(seq, body)
	}
	want := []string{"a GET /x?y=1 host=backend", "b GET /x?y=1 host=backend", "a GET /x?y=1 host=backend", "b GET /x?y=1 host=backend"}
	if strings.Join(seq, "|") != strings.Join(want, "|") {
		t.Fatalf("sequence %q, want %q", seq, want)
	}
	_, body, _ := get(t, base+"/prefix/tail?q=2")
	if !strings.Contains(body, "GET /new/tail?q=2") {
		t.Fatalf("URI part not replaced: %q", body)
	}
	code, body, _ := get(t, base+"/exact?x=7")
	if code != 200 || body != "exact 7" {
		t.Fatalf("return: %d %q", code, body)
	}
}

func TestRetryNextPeerOnDeadBackend(t *testing.T) {
	_, live := backend(t, "live")
	dead := deadAddr(t)
	_, base, logs := startServer(t, fmt.Sprintf(`
error_log stderr info;
events {}
http {
    upstream backend { server %s; server %s; }
    server { listen LISTEN; location / { proxy_pass http://backend; } }
}`, dead, live))
	for i := 0; i < 6; i++ {
		code, body, _ := get(t, base+"/")
		if code != 200 || !strings.HasPrefix(body, "live") {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	if !strings.Contains(logs.String(), "connect() failed") {
		t.Fatalf("no connect() failure logged:\n%s", logs.String())
	}
}

func TestBackupTakesOverAnd502WhenAllDown(t *testing.T) {
	_, backup := backend(t, "backup")
	_, base, logs := startServer(t, fmt.Sprintf(`
error_log stderr;
events {}
http {
    upstream withbackup { server %s; server %s backup; }
    upstream alldown { server %s down; }
    server {
        listen LISTEN;
        location /b { proxy_pass http://withbackup; }
        location /d { proxy_pass http://alldown; }
    }
}`, deadAddr(t), backup, deadAddr(t)))
	for i := 0; i < 3; i++ {
		code, body, _ := get(t, base+"/b")
		if code != 200 || !strings.HasPrefix(body, "backup") {
			t.Fatalf("backup not used: %d %q", code, body)
		}
	}
	code, body, _ := get(t, base+"/d")
	if code != http.StatusBadGateway || !strings.Contains(body, "502 Bad Gateway") {
		t.Fatalf("all down: %d %q", code, body)
	}
	if !strings.Contains(logs.String(), "no live upstreams") {
		t.Fatalf("missing [error] no live upstreams:\n%s", logs.String())
	}
}

func TestReloadUnderTrafficLosesNothing(t *testing.T) {
	_, a := backend(t, "a")
	_, b := backend(t, "b")
	confFor := func(addr string) string {
		return fmt.Sprintf(`
events {}
http {
    upstream backend { server %s; }
    server { listen LISTEN; location / { proxy_pass http://backend; } }
}`, addr)
	}
	s, base, _ := startServer(t, confFor(a))
	confPath := s.opts.ConfFile
	listen := strings.TrimPrefix(base, "http://")

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	traffic := startLoad(4, func(int) *http.Client { return client }, getOK(base+"/"))
	defer traffic.Stop()
	for i := 0; i < 6; i++ {
		next := a
		if i%2 == 0 {
			next = b
		}
		if err := os.WriteFile(confPath, []byte(strings.ReplaceAll(confFor(next), "LISTEN", listen)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := s.Reload(); err != nil {
			t.Fatalf("reload: %v", err)
		}
		waitFor(t, func() bool {
			_, body, _ := get(t, base+"/")
			return strings.HasPrefix(body, map[string]string{a: "a", b: "b"}[next])
		})
	}
	traffic.Stop()
	if n, examples := traffic.Failures(); n != 0 {
		t.Fatalf("%d of %d requests failed during reloads, e.g. %v", n, traffic.total.Load(), examples)
	}
	if traffic.total.Load() == 0 {
		t.Fatal("no traffic was sent")
	}
}

func TestInvalidReloadKeepsOldConfig(t *testing.T) {
	_, a := backend(t, "a")
	s, base, logs := startServer(t, fmt.Sprintf(`
error_log stderr;
events {}
http {
    upstream backend { server %s; }
    server { listen LISTEN; location / { proxy_pass http://backend; } }
}`, a))
	if err := os.WriteFile(s.opts.ConfFile, []byte("events {}\nhttp { bogus_directive; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := s.Reload()
	if err == nil || !strings.Contains(err.Error(), `unknown directive "bogus_directive"`) {
		t.Fatalf("reload error = %v", err)
	}
	if !strings.Contains(logs.String(), "[emerg]") {
		t.Fatalf("reload error not logged:\n%s", logs.String())
	}
	if code, body, _ := get(t, base+"/"); code != 200 || !strings.HasPrefix(body, "a") {
		t.Fatalf("old config not serving: %d %q", code, body)
	}
}

func TestRuntimeDownSurvivesReload(t *testing.T) {
	_, a := backend(t, "a")
	_, b := backend(t, "b")
	s, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    upstream backend { server %s; server %s; }
    server { listen LISTEN; location / { proxy_pass http://backend; } }
}`, a, b))
	if err := s.Current().Upstreams.Get("backend").SetDown(false, 0, true); err != nil {
		t.Fatal(err)
	}
	// The same file again: the upstream is rebuilt from the config.
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if _, body, _ := get(t, base+"/"); !strings.HasPrefix(body, "b") {
			t.Fatalf("downed peer served after reload: %q", body)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// traffic sends requests from several goroutines until Stop, counting every
// request and keeping a few failures as examples: the reload, runtime-change
// and API tests assert that traffic running through a change saw none.
type traffic struct {
	stop     atomic.Bool
	wg       sync.WaitGroup
	total    atomic.Int64
	mu       sync.Mutex
	failed   int
	examples []string
}

// startLoad starts n clients; client(i) builds the i-th client and send
// makes one request, returning an error for anything but a good answer.
func startLoad(n int, client func(i int) *http.Client, send func(*http.Client) error) *traffic {
	l := &traffic{}
	for i := 0; i < n; i++ {
		c := client(i)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer c.CloseIdleConnections()
			for !l.stop.Load() {
				err := send(c)
				l.total.Add(1)
				if err != nil {
					l.mu.Lock()
					l.failed++
					if len(l.examples) < 20 {
						l.examples = append(l.examples, err.Error())
					}
					l.mu.Unlock()
				}
			}
		}()
	}
	return l
}

// Stop ends the load and waits for the clients; it may be called again.
func (l *traffic) Stop() {
	if !l.stop.Swap(true) {
		l.wg.Wait()
	}
}

// Failures is the number of failed requests and some of their errors.
func (l *traffic) Failures() (int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed, l.examples
}

// getOK is a send for startLoad: GET url must answer 200.
func getOK(url string) func(*http.Client) error {
	return func(c *http.Client) error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		return nil
	}
}

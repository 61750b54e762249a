package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"upstreamd/internal/testutil"
)

// waitFor bounds every poll; generous, since it only matters when a test is
// about to fail anyway.
const waitFor = 15 * time.Second

// proxyConf is a configuration listening on listen and proxying to
// upstream, with an info-level error log under the prefix. /ready answers
// without the backend; locations are added to the server.
func proxyConf(listen, upstream string, locations ...string) string {
	return fmt.Sprintf(`error_log logs/error.log info;
events {}
http {
    access_log off;
    upstream backend {
        server %s;
    }
    server {
        listen %s;
        location / {
            proxy_pass http://backend;
        }
        location = /ready {
            return 200 ready;
        }
%s
    }
}
`, upstream, listen, strings.Join(locations, "\n"))
}

// syncBuffer is a log sink the test reads while the code under test writes.
type syncBuffer = testutil.Buffer

// daemon is a running upstreamd.
type daemon struct {
	t      *testing.T
	prefix string
	url    string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's result, set before done closes
}

// startDaemon runs upstreamd -p prefix in the foreground and waits until
// it answers /ready on listen.
func startDaemon(t *testing.T, prefix, listen string) *daemon {
	t.Helper()
	d := spawnDaemon(t, prefix, listen)
	d.waitReady()
	return d
}

// spawnDaemon starts upstreamd -p prefix without waiting for it.
func spawnDaemon(t *testing.T, prefix, listen string) *daemon {
	t.Helper()
	d := &daemon{t: t, prefix: prefix, url: "http://" + listen, stderr: &syncBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(binPath, "-p", prefix)
	d.cmd.Env = binEnv()
	d.cmd.Stdout, d.cmd.Stderr = d.stderr, d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		if !d.exited() {
			d.cmd.Process.Kill()
			<-d.done
		}
		checkNoRace(t, d.stderr.String())
	})
	return d
}

func (d *daemon) waitReady() {
	d.t.Helper()
	client := &http.Client{Timeout: time.Second}
	d.poll("the server to answer", func() bool {
		if d.exited() {
			d.t.Fatalf("upstreamd exited (%v):\n%s", d.err, d.stderr.String())
		}
		code, _, err := get(client, d.url+"/ready")
		return err == nil && code == 200
	})
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// poll calls cond until it holds, failing the test after waitFor.
func (d *daemon) poll(what string, cond func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			d.t.Fatalf("timed out waiting for %s; upstreamd stderr:\n%s", what, d.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (d *daemon) signal(sig syscall.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
}

// wait waits for the process to exit and returns its exit status.
func (d *daemon) wait() int {
	d.t.Helper()
	select {
	case <-d.done:
	case <-time.After(waitFor):
		d.t.Fatalf("upstreamd did not exit; stderr:\n%s", d.stderr.String())
	}
	var exit *exec.ExitError
	if errors.As(d.err, &exit) {
		return exit.ExitCode()
	}
	if d.err != nil {
		d.t.Fatal(d.err)
	}
	return 0
}

func (d *daemon) errorLog() string {
	data, _ := os.ReadFile(filepath.Join(d.prefix, "logs", "error.log"))
	return string(data)
}

// get fetches path and returns status and body.
func get(client *http.Client, url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// waitBody polls until a request answers 200 with body.
func (d *daemon) waitBody(body string) {
	d.t.Helper()
	client := &http.Client{Timeout: time.Second}
	d.poll("a response from "+body, func() bool {
		code, got, err := get(client, d.url+"/")
		return err == nil && code == 200 && got == body
	})
}

// TestReloadUnderTraffic reloads (SIGHUP) back and forth between two
// backends while clients keep sending requests, on kept-alive and on new
// connections, and while one request is held by a slow backend across every
// reload: not one request may fail, and each reload must take effect.
func TestReloadUnderTraffic(t *testing.T) {
	t.Parallel()
	listen := testutil.FreeAddr(t)
	a, b := testutil.NameBackend(t, "A"), testutil.NameBackend(t, "B")
	slow, entered, release := slowBackend(t)
	slowLoc := "location /slow { proxy_pass http://" + slow + "; }"
	prefix := newPrefix(t, proxyConf(listen, a, slowLoc))
	d := startDaemon(t, prefix, listen)
	d.waitBody("A")
	held := inFlight(t, d.url+"/slow", entered)

	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		total    atomic.Int64
		mu       sync.Mutex
		failures []string
	)
	for i := range 6 {
		// Half the clients reuse connections, half open one per request,
		// so both kept-alive connections and new accepts cross reloads.
		tr := &http.Transport{DisableKeepAlives: i%2 == 1}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer tr.CloseIdleConnections()
			for !stop.Load() {
				code, body, err := get(client, d.url+"/")
				total.Add(1)
				if err != nil || code != 200 || (body != "A" && body != "B") {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%d %q %v", code, body, err))
					mu.Unlock()
				}
			}
		}()
	}

	const reloads = 6
	for i := range reloads {
		name, addr := "B", b
		if i%2 == 1 {
			name, addr = "A", a
		}
		// Let traffic run before each reload so that requests are in
		// flight when it happens.
		before := total.Load()
		d.poll("traffic", func() bool { return total.Load() >= before+50 })
		writeConf(t, prefix, proxyConf(listen, addr, slowLoc))
		d.signal(syscall.SIGHUP)
		d.waitBody(name)
		// Each reload logs once it serves; waiting for it keeps the next
		// SIGHUP from being merged with this one.
		d.poll("reload log line", func() bool {
			return strings.Count(d.errorLog(), "reconfiguring: generation") == i+1
		})
	}
	stop.Store(true)
	wg.Wait()

	// The request held since the first generation finishes on it.
	release()
	if r := <-held; r.err != nil || r.code != 200 || r.body != "slow done" {
		t.Errorf("request in flight across reloads: %d %q %v; want 200 \"slow done\"", r.code, r.body, r.err)
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed across reloads, e.g. %s", len(failures), total.Load(), failures[0])
	}
	t.Logf("%d requests across %d reloads", total.Load(), reloads)
	if strings.Contains(d.errorLog(), "[emerg]") {
		t.Errorf("error log has [emerg]:\n%s", d.errorLog())
	}
}

// TestInvalidReload sends SIGHUP with a broken configuration: the old one
// keeps serving and the error is logged, as nginx does. A later -s reload
// through the pid file then applies a valid one.
func TestInvalidReload(t *testing.T) {
	t.Parallel()
	listen := testutil.FreeAddr(t)
	a, b := testutil.NameBackend(t, "A"), testutil.NameBackend(t, "B")
	prefix := newPrefix(t, proxyConf(listen, a))
	d := startDaemon(t, prefix, listen)
	d.waitBody("A")

	conf := filepath.Join(prefix, "conf", "nginx.conf")
	writeConf(t, prefix, strings.Replace(proxyConf(listen, b), "events {}", "events {}\nbogus_directive on;", 1))
	d.signal(syscall.SIGHUP)
	want := `[emerg] ` // then "PID#0: "
	wantMsg := `unknown directive "bogus_directive" in ` + conf + `:3`
	d.poll("the [emerg] line in the error log", func() bool {
		for _, line := range strings.Split(d.errorLog(), "\n") {
			if strings.Contains(line, want) && strings.HasSuffix(line, "#0: "+wantMsg) {
				return true
			}
		}
		return false
	})
	client := &http.Client{Timeout: 5 * time.Second}
	for range 5 {
		if code, body, err := get(client, d.url+"/"); err != nil || code != 200 || body != "A" {
			t.Fatalf("after an invalid reload: %d %q %v; want 200 \"A\"", code, body, err)
		}
	}
	if d.exited() {
		t.Fatalf("upstreamd exited after an invalid reload:\n%s", d.stderr.String())
	}

	// -s reload finds the process through its pid file.
	writeConf(t, prefix, proxyConf(listen, b))
	if _, stderr, code := runBin(t, "-p", prefix, "-s", "reload"); code != 0 || stderr != "" {
		t.Fatalf("-s reload: exit %d, stderr %q", code, stderr)
	}
	d.waitBody("B")
}

// TestPidFile checks the pid file's life: written at start with the
// process's pid, moved when a reload changes the pid directive (as nginx
// does), and removed at exit; -s stop reaches the process through it.
func TestPidFile(t *testing.T) {
	t.Parallel()
	listen := testutil.FreeAddr(t)
	a := testutil.NameBackend(t, "A")
	prefix := newPrefix(t, proxyConf(listen, a))
	d := startDaemon(t, prefix, listen)
	pid := d.cmd.Process.Pid
	// The pid file is written once the listeners are open, so it may
	// trail the first answer.
	oldPid := filepath.Join(prefix, "logs", "nginx.pid")
	d.poll("the pid file", func() bool { return readPID(oldPid) == pid })

	newPid := filepath.Join(prefix, "run", "upstreamd.pid")
	writeConf(t, prefix, "pid run/upstreamd.pid;\n"+proxyConf(listen, a))
	d.signal(syscall.SIGHUP)
	d.poll("the pid file to move", func() bool {
		_, err := os.Stat(oldPid)
		return readPID(newPid) == pid && errors.Is(err, os.ErrNotExist)
	})

	if _, stderr, code := runBin(t, "-p", prefix, "-s", "stop"); code != 0 || stderr != "" {
		t.Fatalf("-s stop: exit %d, stderr %q", code, stderr)
	}
	if code := d.wait(); code != 0 {
		t.Errorf("exit status %d after -s stop", code)
	}
	if _, err := os.Stat(newPid); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after exit: %v", err)
	}
}

// TestEarlyReload sends SIGHUP the moment the pid file appears, as a
// script running "upstreamd & upstreamd -s reload" might: it must reload,
// not kill the process (SIGHUP's default action).
func TestEarlyReload(t *testing.T) {
	t.Parallel()
	listen := testutil.FreeAddr(t)
	prefix := newPrefix(t, proxyConf(listen, testutil.NameBackend(t, "A")))
	d := spawnDaemon(t, prefix, listen)
	pidFile := filepath.Join(prefix, "logs", "nginx.pid")
	deadline := time.Now().Add(waitFor)
	for {
		if _, err := os.Stat(pidFile); err == nil {
			break
		}
		if d.exited() || time.Now().After(deadline) {
			t.Fatalf("no pid file; stderr:\n%s", d.stderr.String())
		}
		time.Sleep(time.Millisecond)
	}
	d.signal(syscall.SIGHUP)
	d.waitReady()
	d.poll("the reload", func() bool { return strings.Contains(d.errorLog(), "reconfiguring: generation 2") })
}

// slowBackend holds every request until release is called; entered gets
// one value per request that arrived.
func slowBackend(t *testing.T) (addr string, entered chan struct{}, release func()) {
	t.Helper()
	entered, held := make(chan struct{}, 16), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-held
		io.WriteString(w, "slow done")
	}))
	var once sync.Once
	release = func() { once.Do(func() { close(held) }) }
	t.Cleanup(func() {
		release()
		srv.Close()
	})
	return srv.Listener.Addr().String(), entered, release
}

type result struct {
	code int
	body string
	err  error
}

// inFlight starts a request and waits until the backend holds it.
func inFlight(t *testing.T, url string, entered chan struct{}) chan result {
	t.Helper()
	res := make(chan result, 1)
	go func() {
		code, body, err := get(&http.Client{Timeout: waitFor}, url)
		res <- result{code, body, err}
	}()
	select {
	case <-entered:
	case r := <-res:
		t.Fatalf("request ended before reaching the backend: %+v", r)
	case <-time.After(waitFor):
		t.Fatal("the request never reached the backend")
	}
	return res
}

// TestGracefulQuit sends SIGQUIT while a request is in flight: new
// connections are refused at once, the in-flight request still completes,
// and the process then exits 0.
func TestGracefulQuit(t *testing.T) {
	t.Parallel()
	listen := testutil.FreeAddr(t)
	slow, entered, release := slowBackend(t)
	prefix := newPrefix(t, proxyConf(listen, slow))
	d := startDaemon(t, prefix, listen)
	res := inFlight(t, d.url+"/slow", entered)

	d.signal(syscall.SIGQUIT)
	d.poll("new connections to be refused", func() bool {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err != nil {
			return errors.Is(err, syscall.ECONNREFUSED)
		}
		c.Close()
		return false
	})
	if d.exited() {
		t.Fatalf("exited with a request in flight:\n%s", d.stderr.String())
	}
	release()
	r := <-res
	if r.err != nil || r.code != 200 || r.body != "slow done" {
		t.Errorf("in-flight request: %d %q %v; want 200 \"slow done\"", r.code, r.body, r.err)
	}
	if code := d.wait(); code != 0 {
		t.Errorf("exit status %d after SIGQUIT; stderr:\n%s", code, d.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(prefix, "logs", "nginx.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after exit: %v", err)
	}
}

// TestFastStop sends SIGTERM or SIGINT while a request is held by its
// backend: the process exits 0 without waiting for it, and removes its pid
// file.
func TestFastStop(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			listen := testutil.FreeAddr(t)
			slow, entered, release := slowBackend(t)
			prefix := newPrefix(t, proxyConf(listen, slow))
			d := startDaemon(t, prefix, listen)
			res := inFlight(t, d.url+"/", entered)

			d.signal(sig)
			// The backend still holds the request, so only a fast
			// shutdown can end the process now.
			if code := d.wait(); code != 0 {
				t.Errorf("exit status %d", code)
			}
			if r := <-res; r.err == nil && r.code == 200 {
				t.Errorf("the held request succeeded: %+v", r)
			}
			release()
			if _, err := os.Stat(filepath.Join(prefix, "logs", "nginx.pid")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pid file after exit: %v", err)
			}
		})
	}
}

// TestTermDuringQuit: as in nginx, SIGTERM during a graceful shutdown makes
// it fast.
func TestTermDuringQuit(t *testing.T) {
	t.Parallel()
	listen := testutil.FreeAddr(t)
	slow, entered, _ := slowBackend(t)
	prefix := newPrefix(t, proxyConf(listen, slow))
	d := startDaemon(t, prefix, listen)
	inFlight(t, d.url+"/", entered)
	d.signal(syscall.SIGQUIT)
	d.poll("the graceful shutdown to start", func() bool {
		return strings.Contains(d.errorLog(), "gracefully shutting down")
	})
	d.signal(syscall.SIGTERM)
	if code := d.wait(); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// TestStartErrors: failing to bind or to write the pid file stops the
// start with nginx's message on stderr and exit status 1.
func TestStartErrors(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	a := testutil.NameBackend(t, "A")
	prefix := newPrefix(t, proxyConf(busy.Addr().String(), a))
	_, stderr, code := runBin(t, "-p", prefix)
	want := fmt.Sprintf("upstreamd: [emerg] bind() to %s failed (98: Address already in use)\n", busy.Addr())
	if code != 1 || stderr != want {
		t.Errorf("bind: exit %d, stderr %q; want exit 1, stderr %q", code, stderr, want)
	}

	// A pid file below a regular file cannot be created.
	listen := testutil.FreeAddr(t)
	writeConf(t, prefix, "pid conf/nginx.conf/x.pid;\n"+proxyConf(listen, a))
	_, stderr, code = runBin(t, "-p", prefix)
	want = fmt.Sprintf("upstreamd: [emerg] open() \"%s\" failed (20: Not a directory)\n", filepath.Join(prefix, "conf", "nginx.conf", "x.pid"))
	if code != 1 || stderr != want {
		t.Errorf("pid: exit %d, stderr %q; want exit 1, stderr %q", code, stderr, want)
	}
	// It must not have left the port bound.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Errorf("port still bound after a failed start: %v", err)
	} else {
		ln.Close()
	}
}

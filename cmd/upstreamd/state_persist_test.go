package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"upstreamd/internal/testutil"

	"upstreamd/internal/statefile"
)

// stateConf has upstream "backend" kept in a state file (its path relative
// to the prefix), upstream "plain" without one, and the API.
func stateConf(listen, plainServers string) string {
	return fmt.Sprintf(`error_log logs/error.log info;
events {}
http {
    access_log off;
    upstream backend {
        state state/backend.state;
    }
    upstream plain {
%s
    }
    server {
        listen %s;
        location / { proxy_pass http://backend; }
        location /plain { proxy_pass http://plain; }
        location = /ready { return 200 ready; }
        location /api { api write=on; allow 127.0.0.1; deny all; }
    }
}
`, plainServers, listen)
}

// apiCall sends one API request; err is a transport failure.
func apiCall(client *http.Client, method, url, body string) (int, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), err
}

// stateServer is the part of a server the persistence test changes.
type stateServer struct {
	addr   string
	weight int
	down   bool
}

func (s stateServer) String() string { return fmt.Sprintf("%s w=%d down=%t", s.addr, s.weight, s.down) }

// stateChange is one API change and its effect on the model.
type stateChange struct {
	method, addr, body string
	apply              func([]stateServer) []stateServer
}

func fromFile(t *testing.T, path string) []stateServer {
	t.Helper()
	servers, err := statefile.Read(path)
	if err != nil {
		data, _ := os.ReadFile(path)
		t.Fatalf("state file unreadable: %v\n%s", err, data)
	}
	out := []stateServer{}
	for _, s := range servers {
		out = append(out, stateServer{s.Addr, s.Weight, s.Down})
	}
	return out
}

// TestStatePersistsAcrossSIGKILL streams changes through the API of a real
// upstreamd and SIGKILLs it at random moments, ten times: after every
// restart the state file is readable and holds every acknowledged change
// (and at most the one change that was in flight), and the restarted
// server serves exactly what the file holds.
func TestStatePersistsAcrossSIGKILL(t *testing.T) {
	t.Parallel()
	listen := testutil.FreeAddr(t)
	prefix := newPrefix(t, stateConf(listen, "server "+testutil.NameBackend(t, "plain")+";"))
	path := filepath.Join(prefix, "state", "backend.state")
	api := "http://" + listen + "/api/9/http/upstreams/backend/servers"
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))

	model := []stateServer{}
	nextPort := 20000
	// next makes the next change from the model: mostly additions, with
	// weight changes, downs and removals mixed in.
	next := func(n int) stateChange {
		switch {
		case len(model) > 2 && n%5 == 4:
			victim := model[rng.IntN(len(model))].addr
			return stateChange{"DELETE", victim, "", func(m []stateServer) []stateServer {
				return slices.DeleteFunc(slices.Clone(m), func(s stateServer) bool { return s.addr == victim })
			}}
		case len(model) > 0 && n%5 == 2:
			target, w := model[rng.IntN(len(model))].addr, 1+rng.IntN(9)
			return stateChange{"PATCH", target, fmt.Sprintf(`{"weight":%d}`, w), func(m []stateServer) []stateServer {
				m = slices.Clone(m)
				for i := range m {
					if m[i].addr == target {
						m[i].weight = w
					}
				}
				return m
			}}
		case len(model) > 0 && n%5 == 3:
			target := model[rng.IntN(len(model))].addr
			var down bool
			for _, s := range model {
				if s.addr == target {
					down = !s.down
				}
			}
			return stateChange{"PATCH", target, fmt.Sprintf(`{"down":%t}`, down), func(m []stateServer) []stateServer {
				m = slices.Clone(m)
				for i := range m {
					if m[i].addr == target {
						m[i].down = down
					}
				}
				return m
			}}
		}
		nextPort++
		addr := fmt.Sprintf("127.0.0.1:%d", nextPort)
		return stateChange{"POST", addr, `{"server":"` + addr + `"}`, func(m []stateServer) []stateServer {
			return append(slices.Clone(m), stateServer{addr, 1, false})
		}}
	}

	totalAcked := 0
	for round := 0; round < 10; round++ {
		d := startDaemon(t, prefix, listen)
		// The restarted server serves exactly what the file holds.
		code, body, err := apiCall(client, "GET", api+"?fields=id,server,weight,down", "")
		if err != nil || code != 200 {
			t.Fatalf("round %d: GET servers: %d %v %s", round, code, err, body)
		}
		var listed []struct {
			ID     int
			Server string
			Weight int
			Down   bool
		}
		if err := json.Unmarshal([]byte(body), &listed); err != nil {
			t.Fatal(err)
		}
		ids := map[string]int{}
		var served []stateServer
		for _, s := range listed {
			ids[s.Server] = s.ID
			served = append(served, stateServer{s.Server, s.Weight, s.Down})
		}
		if fmt.Sprint(served) != fmt.Sprint(model) && !(len(served) == 0 && len(model) == 0) {
			t.Fatalf("round %d: restarted with\n%v\nwant\n%v", round, served, model)
		}

		// Stream changes; SIGKILL once a random number were acknowledged.
		killAfter := 1 + rng.IntN(25)
		var (
			mu      sync.Mutex
			acked   = model
			pending *stateChange // sent, not acknowledged
			nAcked  int
			done    = make(chan struct{})
		)
		go func() {
			defer close(done)
			for n := 0; ; n++ {
				mu.Lock()
				ch := next(n)
				pending = &ch
				mu.Unlock()
				url := api
				if ch.method != "POST" {
					url += fmt.Sprintf("/%d", ids[ch.addr])
				}
				code, body, err := apiCall(client, ch.method, url, ch.body)
				if err != nil {
					return // killed
				}
				if code < 200 || code > 299 {
					t.Errorf("round %d: %s %s %s: %d %s", round, ch.method, url, ch.body, code, body)
					return
				}
				if ch.method == "POST" {
					var obj struct{ ID int }
					if err := json.Unmarshal([]byte(body), &obj); err != nil {
						t.Errorf("POST answer: %v: %s", err, body)
						return
					}
					ids[ch.addr] = obj.ID
				}
				mu.Lock()
				acked = ch.apply(acked)
				model = acked
				pending = nil
				nAcked++
				mu.Unlock()
			}
		}()
		d.poll("acknowledged changes", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return nAcked >= killAfter
		})
		d.signal(syscall.SIGKILL)
		d.wait()
		select {
		case <-done:
		case <-time.After(waitFor):
			t.Fatal("the change stream did not end after SIGKILL")
		}
		if t.Failed() {
			return
		}
		totalAcked += nAcked

		got := fromFile(t, path)
		want := fmt.Sprint(acked)
		if fmt.Sprint(got) == want || (len(got) == 0 && len(acked) == 0) {
			model = acked
		} else if pending != nil && fmt.Sprint(got) == fmt.Sprint(pending.apply(acked)) {
			// written before the kill, not yet acknowledged: allowed
			model = pending.apply(acked)
		} else {
			data, _ := os.ReadFile(path)
			t.Fatalf("round %d: after %d acknowledged changes the file holds\n%v\nwant\n%v\n(pending %v)\nfile:\n%s",
				round, nAcked, got, acked, pending, data)
		}
	}
	if totalAcked < 10 {
		t.Fatalf("only %d changes acknowledged", totalAcked)
	}
	t.Logf("%d acknowledged changes over 10 kills; %d servers at the end", totalAcked, len(model))
}

// TestStateFileRules covers the other state-file behaviours through the
// binary: `server` lines next to `state` fail -t, a missing file starts the
// upstream empty and the first POST creates it, and a SIGHUP reload keeps
// the state upstream as saved.
func TestStateFileRules(t *testing.T) {
	t.Parallel()
	t.Run("server lines with state", func(t *testing.T) {
		t.Parallel()
		prefix := newPrefix(t, "events {}\nhttp {\n    upstream backend {\n        state backend.state;\n        server 127.0.0.1:1;\n    }\n}\n")
		conf := filepath.Join(prefix, "conf", "nginx.conf")
		stdout, stderr, code := runBin(t, "-p", prefix, "-t")
		want := `upstreamd: [emerg] "server" directive is not allowed in upstream with "state" (the servers come from ` +
			filepath.Join(prefix, "backend.state") + `) in ` + conf + ":5\n" +
			"upstreamd: configuration file " + conf + " test failed\n"
		if code != 1 || stdout != "" || stderr != want {
			t.Errorf("exit %d, stdout %q, stderr\n%s\nwant\n%s", code, stdout, stderr, want)
		}
	})
	t.Run("missing file starts empty", func(t *testing.T) {
		t.Parallel()
		listen := testutil.FreeAddr(t)
		prefix := newPrefix(t, stateConf(listen, "server "+testutil.NameBackend(t, "plain")+";"))
		path := filepath.Join(prefix, "state", "backend.state")
		d := startDaemon(t, prefix, listen)
		client := &http.Client{Timeout: 10 * time.Second}
		defer client.CloseIdleConnections()
		api := d.url + "/api/9/http/upstreams/backend/servers"
		if code, body, err := apiCall(client, "GET", api, ""); err != nil || code != 200 || body != "[]" {
			t.Fatalf("GET servers: %d %q %v", code, body, err)
		}
		if code, _, err := get(client, d.url+"/"); err != nil || code != 502 {
			t.Fatalf("empty upstream: %d %v", code, err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("state file exists before any change: %v", err)
		}
		addr := testutil.NameBackend(t, "B")
		if code, body, err := apiCall(client, "POST", api, `{"server":"`+addr+`","weight":3}`); err != nil || code != 201 {
			t.Fatalf("POST: %d %q %v", code, body, err)
		}
		data, err := os.ReadFile(path)
		if err != nil || string(data) != "server "+addr+" weight=3;\n" {
			t.Fatalf("state file after POST: %q %v", data, err)
		}
		if code, body, err := get(client, d.url+"/"); err != nil || code != 200 || body != "B" {
			t.Fatalf("after POST: %d %q %v", code, body, err)
		}
		// A reload loads the upstream from the file again: same servers.
		d.signal(syscall.SIGHUP)
		d.poll("the reload", func() bool {
			_, body, _ := apiCall(client, "GET", d.url+"/api/9/nginx?fields=generation", "")
			return body == `{"generation":2}`
		})
		if code, body, _ := apiCall(client, "GET", api+"?fields=server,weight", ""); code != 200 || body != `[{"server":"`+addr+`","weight":3}]` {
			t.Fatalf("after SIGHUP: %d %s", code, body)
		}
	})
}

// TestRuntimeChangesAcrossSIGHUP checks the rule for upstreams without a
// state file: a reload rebuilds them from the configuration, keeping the
// down, drain and weight set at run time on servers that are still in the
// configuration (same name and address); servers added at run time, and
// those no longer configured, are gone.
func TestRuntimeChangesAcrossSIGHUP(t *testing.T) {
	t.Parallel()
	listen := testutil.FreeAddr(t)
	x, y, z, w := testutil.NameBackend(t, "X"), testutil.NameBackend(t, "Y"), testutil.NameBackend(t, "Z"), testutil.NameBackend(t, "W")
	prefix := newPrefix(t, stateConf(listen, "server "+x+";\nserver "+y+";\nserver "+z+";"))
	d := startDaemon(t, prefix, listen)
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	api := d.url + "/api/9/http/upstreams/plain/servers"
	for _, c := range []struct{ method, path, body string }{
		{"PATCH", "/0", `{"down":true}`},
		{"PATCH", "/1", `{"weight":3,"max_fails":5}`},
		{"PATCH", "/2", `{"drain":true}`},
		{"POST", "", `{"server":"` + w + `"}`},
	} {
		if code, body, err := apiCall(client, c.method, api+c.path, c.body); err != nil || code/100 != 2 {
			t.Fatalf("%s %s %s: %d %s %v", c.method, c.path, c.body, code, body, err)
		}
	}
	reload := func(gen int, plain string) {
		t.Helper()
		writeConf(t, prefix, stateConf(listen, plain))
		d.signal(syscall.SIGHUP)
		d.poll("the reload", func() bool {
			_, body, _ := apiCall(client, "GET", d.url+"/api/9/nginx?fields=generation", "")
			return body == fmt.Sprintf(`{"generation":%d}`, gen)
		})
	}
	servers := func() string {
		t.Helper()
		_, body, err := apiCall(client, "GET", api+"?fields=id,server,weight,max_fails,down", "")
		if err != nil {
			t.Fatal(err)
		}
		return body
	}

	// The same configuration: runtime down/drain/weight stay, the added
	// server and the max_fails change do not.
	reload(2, "server "+x+";\nserver "+y+";\nserver "+z+";")
	want := fmt.Sprintf(`[{"id":0,"server":"%s","weight":1,"max_fails":1,"down":true},{"id":1,"server":"%s","weight":3,"max_fails":1,"down":false},{"id":2,"server":"%s","weight":1,"max_fails":1,"down":false}]`, x, y, z)
	if got := servers(); got != want {
		t.Fatalf("after reload:\n%s\nwant\n%s", got, want)
	}
	if _, body, _ := apiCall(client, "GET", api+"/2", ""); !strings.Contains(body, `"drain":true`) {
		t.Fatalf("drain not kept: %s", body)
	}
	for i := 0; i < 4; i++ {
		if code, body, _ := get(client, d.url+"/plain"); code != 200 || body != "Y" {
			t.Fatalf("X is down and Z draining, got %d %q", code, body)
		}
	}

	// A new configuration: y is gone, w is configured now. x keeps its
	// runtime down (matched by address, whatever its new id); w starts as
	// configured although w was added and removed at run time before.
	reload(3, "server "+w+";\nserver "+x+";")
	want = fmt.Sprintf(`[{"id":0,"server":"%s","weight":1,"max_fails":1,"down":false},{"id":1,"server":"%s","weight":1,"max_fails":1,"down":true}]`, w, x)
	if got := servers(); got != want {
		t.Fatalf("after the second reload:\n%s\nwant\n%s", got, want)
	}
	for i := 0; i < 3; i++ {
		if code, body, _ := get(client, d.url+"/plain"); code != 200 || body != "W" {
			t.Fatalf("only W is up, got %d %q", code, body)
		}
	}
}

// TestConfigEditWinsOverUnchangedRuntimeValue: a parameter edited in the
// configuration must take effect on reload when it was not changed at run
// time (only runtime changes are carried over).
func TestConfigEditWinsOverUnchangedRuntimeValue(t *testing.T) {
	t.Parallel()
	listen := testutil.FreeAddr(t)
	x, y := testutil.NameBackend(t, "X"), testutil.NameBackend(t, "Y")
	prefix := newPrefix(t, stateConf(listen, "server "+x+" down;\nserver "+y+";"))
	d := startDaemon(t, prefix, listen)
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	writeConf(t, prefix, stateConf(listen, "server "+x+";\nserver "+y+" weight=2;"))
	d.signal(syscall.SIGHUP)
	d.poll("the reload", func() bool {
		_, body, _ := apiCall(client, "GET", d.url+"/api/9/nginx?fields=generation", "")
		return body == `{"generation":2}`
	})
	_, got, _ := apiCall(client, "GET", d.url+"/api/9/http/upstreams/plain/servers?fields=weight,down", "")
	if want := `[{"weight":1,"down":false},{"weight":2,"down":false}]`; got != want {
		t.Fatalf("after editing the configuration: %s, want %s", got, want)
	}
}

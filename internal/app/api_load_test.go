package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAPIChangesUnderLoad sends requests continuously from several clients
// while a loop adds, drains, downs, re-weights and removes servers through
// the REST API: not one client request may fail, every answer comes from a
// live backend, and the upstream ends as it started.
func TestAPIChangesUnderLoad(t *testing.T) {
	var hits sync.Map // backend name -> *atomic.Int64
	mk := func(name string) string {
		n := new(atomic.Int64)
		hits.Store(name, n)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			io.WriteString(w, name)
		}))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	s1, s2 := mk("s1"), mk("s2")
	extras := map[string]string{} // addr -> name
	var extraAddrs []string
	for i := 0; i < 4; i++ {
		name := fmt.Sprintf("e%d", i)
		addr := mk(name)
		extras[addr] = name
		extraAddrs = append(extraAddrs, addr)
	}
	_, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    access_log off;
    upstream backend { server %s; server %s; }
    server {
        listen LISTEN;
        location /p { proxy_pass http://backend; }
        location /api { api write=on; allow 127.0.0.1; deny all; }
    }
}`, s1, s2))
	api := base + "/api/9/http/upstreams/backend/servers"
	initial := func() string {
		_, _, body := apiDo(t, "GET", api, "")
		return body
	}()

	traffic := startLoad(6, func(i int) *http.Client {
		// half the clients keep connections alive, half do not
		tr := &http.Transport{DisableKeepAlives: i%2 == 1, MaxIdleConnsPerHost: 4}
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}, func(c *http.Client) error {
		resp, err := c.Get(base + "/p")
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if _, live := hits.Load(string(body)); err != nil || resp.StatusCode != 200 || !live {
			return fmt.Errorf("%d %q %v", resp.StatusCode, body, err)
		}
		return nil
	})
	total := &traffic.total
	defer traffic.Stop()

	change := func(method, path, body string, want int) map[string]any {
		status, _, out := apiDo(t, method, api+path, body)
		if status != want {
			t.Fatalf("%s %s %s: %d %s", method, path, body, status, out)
		}
		var obj map[string]any
		if method != "DELETE" {
			if err := json.Unmarshal([]byte(out), &obj); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, out)
			}
		}
		return obj
	}
	// Wait for the clients to be under way, so every change meets traffic.
	waitFor(t, func() bool { return total.Load() >= 50 })

	deadline := time.Now().Add(2 * time.Second)
	rounds := 0
	for rounds < 200 && (rounds < 5 || time.Now().Before(deadline)) {
		var ids []string
		for _, addr := range extraAddrs {
			obj := change("POST", "", `{"server":"`+addr+`","weight":2}`, 201)
			ids = append(ids, fmt.Sprint(obj["id"]))
		}
		// the configured servers take turns being drained or down, never
		// both at once, so a live server always remains
		stable := fmt.Sprint(rounds % 2)
		change("PATCH", "/"+stable, `{"drain":true}`, 200)
		for i, id := range ids {
			switch i % 4 {
			case 0:
				change("PATCH", "/"+id, `{"drain":true}`, 200)
			case 1:
				change("PATCH", "/"+id, `{"down":true}`, 200)
			case 2:
				change("PATCH", "/"+id, `{"weight":5}`, 200)
			case 3:
				change("PATCH", "/"+id, `{"down":true}`, 200)
				change("PATCH", "/"+id, `{"down":false}`, 200)
			}
		}
		change("PATCH", "/"+stable, `{"drain":false}`, 200)
		change("PATCH", "/"+stable, `{"down":true}`, 200)
		for _, id := range ids {
			change("DELETE", "/"+id, "", 200)
		}
		change("PATCH", "/"+stable, `{"down":false}`, 200)
		rounds++
	}
	// a few requests after the last change
	after := total.Load()
	waitFor(t, func() bool { return total.Load() >= after+50 })
	traffic.Stop()

	if n, examples := traffic.Failures(); n > 0 {
		t.Fatalf("%d of %d client requests failed during %d rounds of changes, e.g.:\n%s",
			n, total.Load(), rounds, strings.Join(examples, "\n"))
	}
	var extraHits int64
	for _, name := range extras {
		v, _ := hits.Load(name)
		extraHits += v.(*atomic.Int64).Load()
	}
	if extraHits == 0 {
		t.Errorf("the added servers never got traffic (%d requests, %d rounds)", total.Load(), rounds)
	}
	t.Logf("%d requests, %d rounds of changes, %d served by added servers", total.Load(), rounds, extraHits)

	// Final state: the configured servers as they were, none of the added
	// ones, and no more traffic to those.
	if _, _, got := apiDo(t, "GET", api, ""); got != initial {
		t.Fatalf("final servers:\n%s\nwant\n%s", got, initial)
	}
	_, _, up := apiDo(t, "GET", base+"/api/9/http/upstreams/backend?fields=peers,zombies", "")
	var u struct {
		Peers []struct {
			ID    int
			State string
		}
		Zombies int
	}
	if err := json.Unmarshal([]byte(up), &u); err != nil {
		t.Fatal(err)
	}
	if len(u.Peers) != 2 || u.Peers[0].State != "up" || u.Peers[1].State != "up" {
		t.Fatalf("final peers: %s", up)
	}
	waitFor(t, func() bool {
		_, _, up := apiDo(t, "GET", base+"/api/9/http/upstreams/backend?fields=zombies", "")
		return up == `{"zombies":0}`
	})
	for i := 0; i < 10; i++ {
		if code, body, _ := get(t, base+"/p"); code != 200 || (body != "s1" && body != "s2") {
			t.Fatalf("after the changes: %d %q", code, body)
		}
	}
	var extraAfter int64
	for _, name := range extras {
		v, _ := hits.Load(name)
		extraAfter += v.(*atomic.Int64).Load()
	}
	if extraAfter != extraHits {
		t.Fatalf("removed servers still got %d requests", extraAfter-extraHits)
	}
}

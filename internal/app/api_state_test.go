package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAPIStateFileFollowsEveryDoor checks that an upstream's state file is
// rewritten by changes from Lua and from the REST API alike, before they
// are answered, and that a failed save answers 500 StateNotSaved, keeps the
// change, and is repaired by the next successful save.
func TestAPIStateFileFollowsEveryDoor(t *testing.T) {
	_, a := backend(t, "a")
	_, b := backend(t, "b")
	_, c := backend(t, "c")
	s, base, logs := startServer(t, `
error_log stderr info;
events {}
http {
    access_log off;
    upstream backend { state state/backend.state; }
    server {
        listen LISTEN;
        location /p { proxy_pass http://backend; }
        location /api { api write=on; }
`+upAdminLocations+`
    }
}`)
	dir := filepath.Join(s.opts.Prefix, "state")
	path := filepath.Join(dir, "backend.state")
	api := base + "/api/9/http/upstreams/backend/servers"
	file := func() string {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}

	// A missing file is an empty upstream, and stays missing until a change.
	if status, _, body := apiDo(t, "GET", api, ""); status != 200 || body != "[]" {
		t.Fatalf("empty upstream: %d %s", status, body)
	}
	if code, _, _ := get(t, base+"/p"); code != 502 {
		t.Fatalf("empty upstream served %d", code)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("state file before any change: %v", err)
	}

	if got := upOp(t, base, "op", "add", "addr", a); got != "0 nil" {
		t.Fatalf("add_server: %q", got)
	}
	if got, want := file(), "server "+a+";\n"; got != want {
		t.Fatalf("after Lua add_server: %q, want %q", got, want)
	}
	if status, _, body := apiDo(t, "POST", api, `{"server":"`+b+`","weight":2,"max_fails":3,"fail_timeout":"30s"}`); status != 201 {
		t.Fatalf("POST: %d %s", status, body)
	}
	if got, want := file(), "server "+a+";\nserver "+b+" weight=2 max_fails=3 fail_timeout=30s;\n"; got != want {
		t.Fatalf("after POST: %q, want %q", got, want)
	}
	if status, _, body := apiDo(t, "PATCH", api+"/0", `{"down":true}`); status != 200 {
		t.Fatalf("PATCH: %d %s", status, body)
	}
	if got := upOp(t, base, "op", "drain", "id", "1", "v", "1"); got != "true nil" {
		t.Fatalf("set_peer_drain: %q", got)
	}
	if got, want := file(), "server "+a+" down;\nserver "+b+" weight=2 max_fails=3 fail_timeout=30s drain;\n"; got != want {
		t.Fatalf("after PATCH and set_peer_drain: %q, want %q", got, want)
	}

	// Make saving impossible (even for root): a file where the directory
	// should be.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("blocker"), 0o644); err != nil {
		t.Fatal(err)
	}
	status, hdr, body := apiDo(t, "POST", api, `{"server":"`+c+`"}`)
	checkAPIError(t, "POST while the file cannot be written", status, hdr, body, 500, "StateNotSaved")
	// The change stays applied: visible and serving.
	if _, _, got := apiDo(t, "GET", api+"?fields=id,server", ""); got != fmt.Sprintf(`[{"id":0,"server":"%s"},{"id":1,"server":"%s"},{"id":2,"server":"%s"}]`, a, b, c) {
		t.Fatalf("after the failed save: %s", got)
	}
	if code, body, _ := get(t, base+"/p"); code != 200 || !strings.HasPrefix(body, "c ") {
		t.Fatalf("the unsaved server does not serve: %d %q", code, body)
	}
	if !strings.Contains(logs.String(), `could not save state of upstream "backend" to `+path) {
		t.Fatalf("failed save not logged:\n%s", logs.String())
	}

	// The next successful save writes the whole upstream.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if status, _, body := apiDo(t, "PATCH", api+"/2", `{"weight":4}`); status != 200 {
		t.Fatalf("PATCH after repair: %d %s", status, body)
	}
	if got, want := file(), "server "+a+" down;\nserver "+b+" weight=2 max_fails=3 fail_timeout=30s drain;\nserver "+c+" weight=4;\n"; got != want {
		t.Fatalf("after repair: %q, want %q", got, want)
	}

	// A reload loads the upstream from the file: the same servers.
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, _, got := apiDo(t, "GET", api+"?fields=server,weight,down", ""); got != fmt.Sprintf(`[{"server":"%s","weight":1,"down":true},{"server":"%s","weight":2,"down":false},{"server":"%s","weight":4,"down":false}]`, a, b, c) {
		t.Fatalf("after reload: %s", got)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"upstreamd/internal/testutil"

	"golang.org/x/crypto/bcrypt"

	"upstreamd/internal/app"
)

// liveServer runs a real upstreamd (in-process, on loopback) with conf,
// where LISTEN stands for its address; files are written into its conf
// directory first. It returns the server's base URL.
func liveServer(t *testing.T, conf string, files map[string]string) string {
	t.Helper()
	listen := testutil.FreeAddr(t)
	prefix := t.TempDir()
	confPath := filepath.Join(prefix, "conf", "nginx.conf")
	if err := os.MkdirAll(filepath.Dir(confPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(confPath, []byte(strings.ReplaceAll(conf, "LISTEN", listen)), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(prefix, "conf", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := app.Options{Prefix: prefix + "/", ConfFile: confPath, Stderr: io.Discard}
	g, err := app.Load(opts)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	s := app.NewServer(opts, g)
	if err := s.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s.Shutdown(ctx)
	})
	return "http://" + listen
}

// ctl runs upstreamctl with args and the environment env.
func ctl(env map[string]string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}

// table splits a table into rows of whitespace-separated cells.
func table(s string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		rows = append(rows, strings.Fields(line))
	}
	return rows
}

func rowsString(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r, " "))
		b.WriteString("\n")
	}
	return b.String()
}

// TestLiveCommands runs every command against a real upstreamd and checks
// both the output and, through the API and the traffic, the effect.
func TestLiveCommands(t *testing.T) {
	a, b, c, d, e := testutil.NameBackend(t, "A"), testutil.NameBackend(t, "B"), testutil.NameBackend(t, "C"), testutil.NameBackend(t, "D"), testutil.NameBackend(t, "E")
	base := liveServer(t, fmt.Sprintf(`
events {}
http {
    access_log off;
    upstream backend { server %s; server %s; server %s backup; }
    upstream other { server %s; }
    server {
        listen LISTEN;
        location /p { proxy_pass http://backend; }
        location /api { api write=on; allow 127.0.0.1; deny all; }
    }
}`, a, b, c, a), nil)
	env := map[string]string{"UPSTREAMCTL_API": base + "/api"}
	ok := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := ctl(env, args...)
		if code != 0 || stderr != "" {
			t.Fatalf("upstreamctl %v: exit %d, stderr %q", args, code, stderr)
		}
		return stdout
	}
	apiGet := func(path string) string {
		t.Helper()
		resp, err := http.Get(base + "/api/9/http/upstreams/backend" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	traffic := func(n int) map[string]int {
		t.Helper()
		out := map[string]int{}
		for i := 0; i < n; i++ {
			resp, err := http.Get(base + "/p")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("proxied: %d %q", resp.StatusCode, body)
			}
			out[string(body)]++
		}
		return out
	}

	if got, want := rowsString(table(ok("upstreams"))), "NAME PEERS UP DOWN DRAINING UNHEALTHY ZONE\n"+
		"backend 3 3 0 0 0 backend\nother 1 1 0 0 0 other\n"; got != want {
		t.Fatalf("upstreams:\n%s\nwant\n%s", got, want)
	}
	if got, want := rowsString(table(ok("servers", "backend"))), "ID SERVER WEIGHT STATE BACKUP ACTIVE REQUESTS FAILS\n"+
		"0 "+a+" 1 up no 0 0 0\n1 "+b+" 1 up no 0 0 0\n2 "+c+" 1 up yes 0 0 0\n"; got != want {
		t.Fatalf("servers:\n%s\nwant\n%s", got, want)
	}

	if got := ok("add", "backend", d, "--weight", "3", "--max-fails", "2", "--fail-timeout", "1m", "--slow-start", "30"); got != "3\n" {
		t.Fatalf("add: %q", got)
	}
	if got, want := apiGet("/servers/3"), `{"id":3,"server":"`+d+`","weight":3,"max_conns":0,"max_fails":2,"fail_timeout":"60s","slow_start":"30s","route":"","backup":false,"down":false}`; got != want {
		t.Fatalf("added server:\n%s\nwant\n%s", got, want)
	}
	if got := ok("add", "--backup", "backend", e, "--down"); got != "4\n" {
		t.Fatalf("add --backup --down: %q", got)
	}
	if got := apiGet("/servers/4?fields=backup,down"); got != `{"backup":true,"down":true}` {
		t.Fatalf("added backup: %s", got)
	}
	if got := traffic(10); got["A"] != 2 || got["B"] != 2 || got["D"] != 6 {
		t.Fatalf("1:1:3 after add: %v", got)
	}

	if got := ok("down", "backend", "0"); got != "backend: server 0 ("+a+") marked down\n" {
		t.Fatalf("down: %q", got)
	}
	if got := ok("drain", "backend", "1"); got != "backend: server 1 ("+b+") set to drain\n" {
		t.Fatalf("drain: %q", got)
	}
	if got := traffic(4); got["D"] != 4 {
		t.Fatalf("A down and B draining: %v", got)
	}
	if got, want := rowsString(table(ok("servers", "backend")))[len("ID SERVER WEIGHT STATE BACKUP ACTIVE REQUESTS FAILS\n"):],
		"0 "+a+" 1 down no 0 2 0\n1 "+b+" 1 draining no 0 2 0\n2 "+c+" 1 up yes 0 0 0\n3 "+d+" 3 up no 0 10 0\n4 "+e+" 1 down yes 0 0 0\n"; got != want {
		t.Fatalf("servers after down/drain:\n%s\nwant\n%s", got, want)
	}
	if got, want := rowsString(table(ok("upstreams")))[len("NAME PEERS UP DOWN DRAINING UNHEALTHY ZONE\n"):], "backend 5 2 2 1 0 backend\nother 1 1 0 0 0 other\n"; got != want {
		t.Fatalf("upstreams after down/drain:\n%s\nwant\n%s", got, want)
	}
	if got := ok("up", "backend", "0"); got != "backend: server 0 ("+a+") marked up\n" {
		t.Fatalf("up: %q", got)
	}
	if got := ok("weight", "backend", "3", "1"); got != "backend: server 3 ("+d+") weight set to 1\n" {
		t.Fatalf("weight: %q", got)
	}
	if got := traffic(4); got["A"] != 2 || got["D"] != 2 {
		t.Fatalf("A up, D weight 1: %v", got)
	}
	if got := ok("undrain", "backend", "1"); got != "backend: server 1 ("+b+") taken out of drain\n" {
		t.Fatalf("undrain: %q", got)
	}
	if got := traffic(4); got["B"] != 1 {
		t.Fatalf("B back in rotation after undrain: %v", got)
	}
	if got := ok("remove", "backend", "4"); got != "backend: server 4 removed\n" {
		t.Fatalf("remove: %q", got)
	}
	if got := apiGet("/servers?fields=id"); got != `[{"id":0},{"id":1},{"id":3},{"id":2}]` {
		t.Fatalf("after remove: %s", got)
	}

	// --json prints the API's own JSON, indented.
	var u struct {
		Peers []struct {
			ID    int
			State string
		}
		Zone string
	}
	out := ok("servers", "backend", "--json")
	if err := json.Unmarshal([]byte(out), &u); err != nil || len(u.Peers) != 4 || u.Zone != "backend" || u.Peers[1].State != "up" {
		t.Fatalf("servers --json: %v %+v\n%s", err, u, out)
	}
	if !strings.HasPrefix(out, "{\n  \"peers\": [") {
		t.Fatalf("servers --json not indented: %q", out)
	}
	var ups map[string]json.RawMessage
	if err := json.Unmarshal([]byte(ok("--json", "upstreams")), &ups); err != nil || len(ups) != 2 {
		t.Fatalf("upstreams --json: %v %v", err, ups)
	}
	var s struct {
		ID     int
		Server string
		Weight int
	}
	if err := json.Unmarshal([]byte(ok("--json", "add", "backend", e, "--weight", "2")), &s); err != nil || s.ID != 5 || s.Server != e || s.Weight != 2 {
		t.Fatalf("add --json: %v %+v", err, s)
	}
	if err := json.Unmarshal([]byte(ok("--json", "up", "backend", "1")), &s); err != nil || s.ID != 1 || s.Server != b {
		t.Fatalf("up --json: %v %+v", err, s)
	}
	var rest []struct{ ID int }
	if err := json.Unmarshal([]byte(ok("--json", "remove", "backend", "5")), &rest); err != nil || len(rest) != 4 {
		t.Fatalf("remove --json: %v %+v", err, rest)
	}
}

// TestLiveErrors checks messages and exit codes of failures against a
// real upstreamd: API errors exit 1, an unreachable API 3, 401/403 4; and
// nothing is printed on stdout.
func TestLiveErrors(t *testing.T) {
	a := testutil.NameBackend(t, "A")
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	base := liveServer(t, fmt.Sprintf(`
events {}
http {
    access_log off;
    upstream backend { server %s; }
    upstream hashed { hash $uri; server %s; }
    server {
        listen LISTEN;
        location /api { api write=on; }
        location /ro { api; }
        location /closed { api write=on; allow 10.0.0.1; deny all; }
        location /auth { api write=on; auth_basic "API"; auth_basic_user_file htpasswd; }
    }
}`, a, a), map[string]string{"htpasswd": "ops:" + string(hash) + "\n"})
	dead := "http://" + testutil.FreeAddr(t) + "/api"
	for _, tc := range []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stderr string
		stdout string
	}{
		{name: "unknown upstream", args: []string{"--api", base + "/api", "servers", "nope"}, code: 1,
			stderr: "upstreamctl: upstream not found (404 UpstreamNotFound)\n"},
		{name: "unknown upstream on add", args: []string{"--api", base + "/api", "add", "nope", "127.0.0.1:9"}, code: 1,
			stderr: "upstreamctl: upstream not found (404 UpstreamNotFound)\n"},
		{name: "unknown server", args: []string{"--api", base + "/api", "remove", "backend", "99"}, code: 1,
			stderr: "upstreamctl: server with ID \"99\" does not exist (404 UpstreamServerNotFound)\n"},
		{name: "unknown server on down", args: []string{"--api", base + "/api", "--json", "down", "backend", "7"}, code: 1,
			stderr: "upstreamctl: server with ID \"7\" does not exist (404 UpstreamServerNotFound)\n"},
		{name: "bad weight", args: []string{"--api", base + "/api", "weight", "backend", "0", "0"}, code: 1,
			stderr: "upstreamctl: invalid \"weight\" (400 UpstreamBadWeight)\n"},
		{name: "duplicate", args: []string{"--api", base + "/api", "add", "backend", a}, code: 1,
			stderr: "upstreamctl: server \"" + a + "\" already exists (409 EntryExists)\n"},
		{name: "backup in hash upstream", args: []string{"--api", base + "/api", "add", "hashed", "127.0.0.1:9", "--backup"}, code: 1,
			stderr: "upstreamctl: upstream \"hashed\" has no backup (balancing method hash) (400 UpstreamNoBackup)\n"},
		{name: "write=off", args: []string{"--api", base + "/ro", "down", "backend", "0"}, code: 1,
			stderr: "upstreamctl: method disabled (405 MethodDisabled)\n"},
		{name: "write=off allows reads", args: []string{"--api", base + "/ro", "--json", "servers", "backend"}, code: 0},
		{name: "unknown version", args: []string{"--api", base + "/api/10", "upstreams"}, code: 1,
			stderr: "upstreamctl: unknown version (404 UnknownVersion)\n"},
		{name: "unreachable", args: []string{"--api", dead, "upstreams"}, code: 3,
			stderr: "upstreamctl: cannot reach " + dead + ": connection refused\n"},
		{name: "unreachable on change", args: []string{"--api", dead, "remove", "backend", "0"}, code: 3,
			stderr: "upstreamctl: cannot reach " + dead + ": connection refused\n"},
		{name: "denied", args: []string{"--api", base + "/closed", "upstreams"}, code: 4,
			stderr: "upstreamctl: access denied (403 Forbidden)\n"},
		{name: "no credentials", args: []string{"--api", base + "/auth", "upstreams"}, code: 4,
			stderr: "upstreamctl: authentication required (401 Unauthorized): use --user or $UPSTREAMCTL_USER\n"},
		{name: "wrong password", args: []string{"--api", base + "/auth", "--user", "ops:nope", "down", "backend", "0"}, code: 4,
			stderr: "upstreamctl: authentication failed (401 Unauthorized)\n"},
		{name: "credentials", args: []string{"--api", base + "/auth", "--user", "ops:s3cret", "--json", "servers", "backend"}, code: 0},
		{name: "credentials from the environment", env: map[string]string{"UPSTREAMCTL_USER": "ops:s3cret", "UPSTREAMCTL_API": base + "/auth"},
			args: []string{"weight", "backend", "0", "4"}, code: 0, stdout: "backend: server 0 (" + a + ") weight set to 4\n"},
		{name: "credentials in the URL", args: []string{"--api", strings.Replace(base, "http://", "http://ops:s3cret@", 1) + "/auth", "up", "backend", "0"}, code: 0,
			stdout: "backend: server 0 (" + a + ") marked up\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := ctl(tc.env, append([]string{"--timeout", "5s"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			if tc.code != 0 || tc.stderr != "" {
				if stderr != tc.stderr {
					t.Errorf("stderr %q, want %q", stderr, tc.stderr)
				}
			}
			switch {
			case tc.code != 0 && stdout != "":
				t.Errorf("stdout on failure: %q", stdout)
			case tc.stdout != "" && stdout != tc.stdout:
				t.Errorf("stdout %q, want %q", stdout, tc.stdout)
			case tc.code == 0 && tc.stdout == "" && !json.Valid([]byte(stdout)):
				t.Errorf("stdout is not JSON: %q", stdout)
			}
		})
	}
	// The failed and denied changes changed nothing; the allowed ones did.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/api/9/http/upstreams/backend/servers?fields=id,weight,down")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != `[{"id":0,"weight":4,"down":false}]` {
		t.Fatalf("servers at the end: %s", body)
	}
}

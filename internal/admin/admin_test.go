package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"upstreamd/internal/upstream"
)

const testRequestID = "0123456789abcdef0123456789abcdef"

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a handler over a real registry:
//
//	backend (round robin): 0 127.0.0.1:8081 weight=2 max_conns=5
//	                       1 127.0.0.1:8082 down
//	                       2 127.0.0.1:8083 backup
//	hashed (hash):         0 10.0.0.1:80, 1 10.0.0.2:80
type fixture struct {
	reg     *upstream.Registry
	h       http.Handler
	changes []string
	saveErr error
	mu      sync.Mutex
}

func newFixture(t *testing.T, write bool) *fixture {
	t.Helper()
	clock := func() time.Time { return testNow }
	spec := func(addr string, mod func(*upstream.ServerSpec)) upstream.ServerSpec {
		s := upstream.DefaultSpec(addr, addr)
		if mod != nil {
			mod(&s)
		}
		return s
	}
	backend, err := upstream.New(upstream.Options{Name: "backend", Now: clock}, []upstream.ServerSpec{
		spec("127.0.0.1:8081", func(s *upstream.ServerSpec) { s.Weight, s.MaxConns = 2, 5 }),
		spec("127.0.0.1:8082", func(s *upstream.ServerSpec) { s.Down = true }),
		spec("127.0.0.1:8083", func(s *upstream.ServerSpec) { s.Backup = true }),
	})
	if err != nil {
		t.Fatal(err)
	}
	hashed, err := upstream.New(upstream.Options{Name: "hashed", Method: upstream.Hash, Now: clock},
		[]upstream.ServerSpec{spec("10.0.0.1:80", nil), spec("10.0.0.2:80", nil)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{reg: upstream.NewRegistry()}
	for _, u := range []*upstream.Upstream{backend, hashed} {
		if err := f.reg.Add(u); err != nil {
			t.Fatal(err)
		}
	}
	f.h = New(Options{
		Upstreams: func() *upstream.Registry { return f.reg },
		Write:     write,
		Prefix:    "/api",
		Nginx: func() NginxInfo {
			return NginxInfo{Version: "1.27.4", Build: "upstreamd", Address: "127.0.0.1", Generation: 2,
				LoadTimestamp: testNow.Add(-time.Hour), PID: 42, PPID: 1}
		},
		OnChange: func(name string) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.changes = append(f.changes, name)
			return f.saveErr
		},
		RequestID: func(*http.Request) string { return testRequestID },
		Now:       clock,
	})
	return f
}

func (f *fixture) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequest(method, path, rd))
	if ct := rec.Header().Get("Content-Type"); rec.Body.Len() > 0 && ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return rec.Code, rec.Body.String()
}

func (f *fixture) upstream(name string) *upstream.Upstream { return f.reg.Get(name) }

func apiErr(status int, code, text string) string {
	b, _ := json.Marshal(text)
	return fmt.Sprintf(`{"error":{"status":%d,"text":%s,"code":"%s"},"request_id":"%s","href":"https://nginx.org/en/docs/http/ngx_http_api_module.html"}`,
		status, b, code, testRequestID)
}

// zeroStats are a peer's statistics before any traffic.
const zeroStats = `"requests":0,"responses":{"1xx":0,"2xx":0,"3xx":0,"4xx":0,"5xx":0,"codes":{},"total":0},` +
	`"sent":0,"received":0,"fails":0,"unavail":0,"health_checks":{"checks":0,"fails":0,"unhealthy":0},"downtime":0`

const (
	server0 = `{"id":0,"server":"127.0.0.1:8081","weight":2,"max_conns":5,"max_fails":1,"fail_timeout":"10s","slow_start":"0s","route":"","backup":false,"down":false}`
	server1 = `{"id":1,"server":"127.0.0.1:8082","weight":1,"max_conns":0,"max_fails":1,"fail_timeout":"10s","slow_start":"0s","route":"","backup":false,"down":true}`
	server2 = `{"id":2,"server":"127.0.0.1:8083","weight":1,"max_conns":0,"max_fails":1,"fail_timeout":"10s","slow_start":"0s","route":"","backup":true,"down":false}`

	peers = `[` +
		`{"id":0,"server":"127.0.0.1:8081","name":"127.0.0.1:8081","backup":false,"weight":2,"state":"up","active":0,"max_conns":5,` + zeroStats + `},` +
		`{"id":1,"server":"127.0.0.1:8082","name":"127.0.0.1:8082","backup":false,"weight":1,"state":"down","active":0,` + zeroStats + `},` +
		`{"id":2,"server":"127.0.0.1:8083","name":"127.0.0.1:8083","backup":true,"weight":1,"state":"up","active":0,` + zeroStats + `}]`
	backendObj = `{"peers":` + peers + `,"keepalive":0,"zombies":0,"zone":"backend"}`
)

func TestReadEndpoints(t *testing.T) {
	f := newFixture(t, false)
	tests := []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/api", 200, `[1,2,3,4,5,6,7,8,9]`},
		{"GET", "/api/", 200, `[1,2,3,4,5,6,7,8,9]`},
		{"HEAD", "/api/", 200, `[1,2,3,4,5,6,7,8,9]`},
		{"GET", "/api/9", 200, `["nginx","http"]`},
		{"GET", "/api/9/", 200, `["nginx","http"]`},
		{"GET", "/api/1/", 200, `["nginx","http"]`},
		{"GET", "/api/9/http", 200, `["upstreams"]`},
		{"GET", "/api/9/http/", 200, `["upstreams"]`},
		{"GET", "/api/9/nginx", 200, `{"version":"1.27.4","build":"upstreamd","address":"127.0.0.1","generation":2,` +
			`"load_timestamp":"2025-03-01T11:00:00.000Z","timestamp":"2025-03-01T12:00:00.000Z","pid":42,"ppid":1}`},
		{"GET", "/api/9/nginx?fields=version,build", 200, `{"version":"1.27.4","build":"upstreamd"}`},
		{"GET", "/api/9/nginx?fields=", 200, `{}`},
		{"GET", "/api/9/http/upstreams/backend", 200, backendObj},
		{"GET", "/api/9/http/upstreams/backend/", 200, backendObj},
		{"GET", "/api/7/http/upstreams/backend", 200, backendObj},
		{"GET", "/api/9/http/upstreams/backend?fields=zone,zombies", 200, `{"zombies":0,"zone":"backend"}`},
		{"GET", "/api/9/http/upstreams?fields=zone", 200, `{"backend":{"zone":"backend"},"hashed":{"zone":"hashed"}}`},
		{"GET", "/api/9/http/upstreams/?fields=", 200, `{"backend":{},"hashed":{}}`},
		{"GET", "/api/9/http/upstreams/backend/servers", 200, `[` + server0 + `,` + server1 + `,` + server2 + `]`},
		{"GET", "/api/9/http/upstreams/backend/servers/", 200, `[` + server0 + `,` + server1 + `,` + server2 + `]`},
		{"GET", "/api/9/http/upstreams/backend/servers?fields=id,down", 200, `[{"id":0,"down":false},{"id":1,"down":true},{"id":2,"down":false}]`},
		{"GET", "/api/9/http/upstreams/backend/servers/0", 200, server0},
		{"GET", "/api/9/http/upstreams/backend/servers/2", 200, server2},
		{"GET", "/api/9/http/upstreams/backend/servers/2?fields=backup", 200, `{"backup":true}`},

		{"GET", "/api/0/", 404, apiErr(404, "UnknownVersion", "unknown version")},
		{"GET", "/api/10/", 404, apiErr(404, "UnknownVersion", "unknown version")},
		{"GET", "/api/v9/nginx", 404, apiErr(404, "UnknownVersion", "unknown version")},
		{"GET", "/api/9/stream/", 404, apiErr(404, "PathNotFound", "path not found")},
		{"GET", "/api/9/nginx/x", 404, apiErr(404, "PathNotFound", "path not found")},
		{"GET", "/api/9/http/caches", 404, apiErr(404, "PathNotFound", "path not found")},
		{"GET", "/api/9/http/upstreams/backend/peers", 404, apiErr(404, "PathNotFound", "path not found")},
		{"GET", "/api/9/http/upstreams/backend/servers/0/x", 404, apiErr(404, "PathNotFound", "path not found")},
		{"GET", "/apix", 404, apiErr(404, "PathNotFound", "path not found")},
		{"GET", "/other", 404, apiErr(404, "PathNotFound", "path not found")},
		{"GET", "/api/9/http/upstreams/nope", 404, apiErr(404, "UpstreamNotFound", "upstream not found")},
		{"GET", "/api/9/http/upstreams/nope/servers", 404, apiErr(404, "UpstreamNotFound", "upstream not found")},
		{"GET", "/api/9/http/upstreams/nope/servers/0", 404, apiErr(404, "UpstreamNotFound", "upstream not found")},
		{"GET", "/api/9/http/upstreams/backend/servers/3", 404, apiErr(404, "UpstreamServerNotFound", `server with ID "3" does not exist`)},
		{"GET", "/api/9/http/upstreams/backend/servers/x1", 400, apiErr(400, "UpstreamBadServerId", "invalid server ID")},
		{"GET", "/api/9/http/upstreams/backend/servers/-1", 400, apiErr(400, "UpstreamBadServerId", "invalid server ID")},
		{"PUT", "/api/9/http/upstreams/backend/servers/0", 405, apiErr(405, "MethodNotSupported", "method not supported")},
		{"POST", "/api/9/nginx", 405, apiErr(405, "MethodNotSupported", "method not supported")},
		{"PATCH", "/api/9/http/upstreams/backend/servers", 405, apiErr(405, "MethodNotSupported", "method not supported")},
		{"DELETE", "/api/", 405, apiErr(405, "MethodNotSupported", "method not supported")},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			status, body := f.do(t, tt.method, tt.path, "")
			if tt.method == "HEAD" {
				body = tt.body // httptest.ResponseRecorder keeps the body; only status matters
			}
			if status != tt.status || body != tt.body {
				t.Errorf("got %d %s\nwant %d %s", status, body, tt.status, tt.body)
			}
		})
	}
}

func TestNginxAddressFromRequest(t *testing.T) {
	h := New(Options{Prefix: "/api", Now: func() time.Time { return testNow }})
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/api/9/nginx?fields=address,timestamp,generation")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := `{"address":"127.0.0.1","generation":0,"timestamp":"2025-03-01T12:00:00.000Z"}`; string(b) != want {
		t.Fatalf("got %s want %s", b, want)
	}
}

func TestMethodNotSupportedAllowHeader(t *testing.T) {
	f := newFixture(t, true)
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, httptest.NewRequest("PUT", "/api/9/http/upstreams/backend/servers/0", nil))
	if got := rec.Header().Get("Allow"); got != "GET, HEAD, PATCH, DELETE" {
		t.Fatalf("Allow %q", got)
	}
}

func TestWriteDisabled(t *testing.T) {
	f := newFixture(t, false)
	disabled := apiErr(405, "MethodDisabled", "method disabled")
	for _, tt := range []struct{ method, path, body string }{
		{"POST", "/api/9/http/upstreams/backend/servers", `{"server":"127.0.0.1:9000"}`},
		{"POST", "/api/9/http/upstreams/nope/servers/", `{"a":"1"}`}, // before the upstream lookup, as NGINX Plus
		{"PATCH", "/api/9/http/upstreams/backend/servers/0", `{"down":true}`},
		{"DELETE", "/api/9/http/upstreams/backend/servers/0", ""},
		{"DELETE", "/api/9/http/upstreams/backend", ""},
	} {
		status, body := f.do(t, tt.method, tt.path, tt.body)
		if status != 405 || body != disabled {
			t.Errorf("%s %s: %d %s", tt.method, tt.path, status, body)
		}
	}
	if v := f.upstream("backend").Snapshot().Version; v != 1 {
		t.Fatalf("read-only API changed the upstream: version %d", v)
	}
	if len(f.changes) != 0 {
		t.Fatalf("OnChange called: %v", f.changes)
	}
}

func TestPostServer(t *testing.T) {
	tests := []struct {
		name     string
		upstream string
		body     string
		status   int
		want     string
	}{
		{"defaults", "backend", `{"server":"127.0.0.1:9000"}`, 201,
			`{"id":3,"server":"127.0.0.1:9000","weight":1,"max_conns":0,"max_fails":1,"fail_timeout":"10s","slow_start":"0s","route":"","backup":false,"down":false}`},
		{"every parameter", "backend", `{"server":"127.0.0.1:9001","weight":3,"max_conns":10,"max_fails":2,"fail_timeout":"1m","slow_start":30,"route":"r1","backup":true,"down":true,"drain":true}`, 201,
			`{"id":3,"server":"127.0.0.1:9001","weight":3,"max_conns":10,"max_fails":2,"fail_timeout":"60s","slow_start":"30s","route":"r1","backup":true,"down":true,"drain":true}`},
		{"host name, default port", "backend", `{"server":"localhost"}`, 201,
			`{"id":3,"server":"localhost:80","weight":1,"max_conns":0,"max_fails":1,"fail_timeout":"10s","slow_start":"0s","route":"","backup":false,"down":false}`},
		{"ipv6", "hashed", `{"server":"[::1]:81"}`, 201,
			`{"id":2,"server":"[::1]:81","weight":1,"max_conns":0,"max_fails":1,"fail_timeout":"10s","slow_start":"0s","route":"","backup":false,"down":false}`},
		{"duplicate address", "backend", `{"server":"127.0.0.1:8082"}`, 409, apiErr(409, "EntryExists", `server "127.0.0.1:8082" already exists`)},
		{"duplicate of a backup", "backend", `{"server":"127.0.0.1:8083","backup":false}`, 409, apiErr(409, "EntryExists", `server "127.0.0.1:8083" already exists`)},
		{"not JSON", "backend", `server=127.0.0.1:9000`, 415, apiErr(415, "JsonError", "json error: invalid character 's' looking for beginning of value")},
		{"empty body", "backend", ``, 415, apiErr(415, "JsonError", "json error: EOF")},
		{"trailing data", "backend", `{"server":"127.0.0.1:9000"} {}`, 415, apiErr(415, "JsonError", "json error: data after the JSON value")},
		{"not an object", "backend", `["127.0.0.1:9000"]`, 400, apiErr(400, "UpstreamConfFormatError", "JSON object expected")},
		{"missing server", "backend", `{"weight":2}`, 400, apiErr(400, "UpstreamConfFormatError", `missing "server" argument`)},
		{"unknown parameter", "backend", `{"server":"127.0.0.1:9000","wieght":2}`, 400, apiErr(400, "UpstreamConfFormatError", `unknown parameter "wieght"`)},
		{"service", "backend", `{"server":"a.example","service":"http"}`, 400, apiErr(400, "UpstreamConfFormatError", `unknown parameter "service"`)},
		{"nested", "backend", `{"server":{"addr":"127.0.0.1:9000"}}`, 400, apiErr(400, "UpstreamConfFormatError", "nested object or list")},
		{"list", "backend", `{"server":"127.0.0.1:9000","weight":[1]}`, 400, apiErr(400, "UpstreamConfFormatError", "nested object or list")},
		{"weight string", "backend", `{"server":"127.0.0.1:9000","weight":"2"}`, 400, apiErr(400, "UpstreamConfFormatError", `invalid "weight" value`)},
		{"weight fraction", "backend", `{"server":"127.0.0.1:9000","weight":1.5}`, 400, apiErr(400, "UpstreamConfFormatError", `invalid "weight" value`)},
		{"weight zero", "backend", `{"server":"127.0.0.1:9000","weight":0}`, 400, apiErr(400, "UpstreamBadWeight", `invalid "weight"`)},
		{"weight huge", "backend", `{"server":"127.0.0.1:9000","weight":99999999999999999999}`, 400, apiErr(400, "UpstreamBadWeight", `invalid "weight"`)},
		{"max_conns negative", "backend", `{"server":"127.0.0.1:9000","max_conns":-1}`, 400, apiErr(400, "UpstreamBadMaxConns", `invalid "max_conns"`)},
		{"max_fails negative", "backend", `{"server":"127.0.0.1:9000","max_fails":-1}`, 400, apiErr(400, "UpstreamBadMaxFails", `invalid "max_fails"`)},
		{"fail_timeout syntax", "backend", `{"server":"127.0.0.1:9000","fail_timeout":"10ms"}`, 400, apiErr(400, "UpstreamBadFailTimeout", `invalid "fail_timeout"`)},
		{"fail_timeout bool", "backend", `{"server":"127.0.0.1:9000","fail_timeout":true}`, 400, apiErr(400, "UpstreamConfFormatError", `invalid "fail_timeout" value`)},
		{"slow_start units out of order", "backend", `{"server":"127.0.0.1:9000","slow_start":"30s1m"}`, 400, apiErr(400, "UpstreamBadSlowStart", `invalid "slow_start"`)},
		{"slow_start with hash", "hashed", `{"server":"10.0.0.3:80","slow_start":"10s"}`, 400, apiErr(400, "UpstreamBadSlowStart", `invalid "slow_start": not supported by balancing method hash`)},
		{"backup with hash", "hashed", `{"server":"10.0.0.3:80","backup":true}`, 400, apiErr(400, "UpstreamNoBackup", `upstream "hashed" has no backup (balancing method hash)`)},
		{"route too long", "backend", `{"server":"127.0.0.1:9000","route":"` + strings.Repeat("r", 33) + `"}`, 400, apiErr(400, "UpstreamBadRoute", "route is too long")},
		{"down not bool", "backend", `{"server":"127.0.0.1:9000","down":"true"}`, 400, apiErr(400, "UpstreamConfFormatError", `invalid "down" value`)},
		{"id", "backend", `{"server":"127.0.0.1:9000","id":7}`, 400, apiErr(400, "UpstreamConfFormatError", `parameter "id" cannot be set, it is assigned`)},
		{"bad port", "backend", `{"server":"127.0.0.1:0"}`, 400, apiErr(400, "UpstreamBadAddress", `invalid port while parsing "127.0.0.1:0"`)},
		{"bad address", "backend", `{"server":"a b:80"}`, 400, apiErr(400, "UpstreamBadAddress", `invalid host while parsing "a b:80"`)},
		{"empty address", "backend", `{"server":""}`, 400, apiErr(400, "UpstreamBadAddress", `empty address while parsing ""`)},
		{"too large", "backend", `{"server":"127.0.0.1:9000","route":"` + strings.Repeat(" ", maxBody) + `"}`, 413, apiErr(413, "RequestEntityTooLarge", "request entity too large")},
		{"upstream not found", "nope", `{"server":"127.0.0.1:9000"}`, 404, apiErr(404, "UpstreamNotFound", "upstream not found")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, true)
			var before uint64
			if u := f.upstream(tt.upstream); u != nil {
				before = u.Snapshot().Version
			}
			status, body := f.do(t, "POST", "/api/9/http/upstreams/"+tt.upstream+"/servers", tt.body)
			if status != tt.status || body != tt.want {
				t.Fatalf("got %d %s\nwant %d %s", status, body, tt.status, tt.want)
			}
			u := f.upstream(tt.upstream)
			if status != 201 {
				if u != nil && u.Snapshot().Version != before {
					t.Fatal("a failed POST changed the upstream")
				}
				if len(f.changes) != 0 {
					t.Fatalf("OnChange called on failure: %v", f.changes)
				}
				return
			}
			if len(f.changes) != 1 || f.changes[0] != tt.upstream {
				t.Fatalf("OnChange calls %v", f.changes)
			}
			// the created server is what GET shows under its id
			var created struct{ ID int }
			if err := json.Unmarshal([]byte(body), &created); err != nil {
				t.Fatal(err)
			}
			if _, got := f.do(t, "GET", fmt.Sprintf("/api/9/http/upstreams/%s/servers/%d", tt.upstream, created.ID), ""); got != body {
				t.Fatalf("GET after POST: %s", got)
			}
		})
	}
}

func TestPatchServer(t *testing.T) {
	tests := []struct {
		name   string
		id     string
		body   string
		status int
		want   string
	}{
		{"several at once", "0", `{"weight":5,"max_conns":0,"max_fails":3,"fail_timeout":"30s","slow_start":"1m","route":"x","drain":true}`, 200,
			`{"id":0,"server":"127.0.0.1:8081","weight":5,"max_conns":0,"max_fails":3,"fail_timeout":"30s","slow_start":"60s","route":"x","backup":false,"down":false,"drain":true}`},
		{"up", "1", `{"down":false}`, 200, strings.Replace(server1, `"down":true`, `"down":false`, 1)},
		{"backup server", "2", `{"down":true}`, 200, strings.Replace(server2, `"down":false`, `"down":true`, 1)},
		{"empty", "0", `{}`, 200, server0},
		{"a GET result sent back", "0", server0, 200, server0},
		{"server by address unchanged", "0", `{"server":"127.0.0.1:8081","weight":1}`, 200, strings.Replace(server0, `"weight":2`, `"weight":1`, 1)},
		{"backup changed", "0", `{"backup":true}`, 400, apiErr(400, "UpstreamServerImmutable", `server "0" backup is immutable`)},
		{"address changed", "0", `{"server":"127.0.0.1:9999"}`, 400, apiErr(400, "UpstreamServerImmutable", `server "0" address is immutable`)},
		{"id changed", "0", `{"id":1}`, 400, apiErr(400, "UpstreamServerImmutable", `server "0" ID is immutable`)},
		// atomicity: the valid members before and after the bad one are not applied
		{"one bad member", "0", `{"down":true,"weight":-1,"max_fails":9}`, 400, apiErr(400, "UpstreamBadWeight", `invalid "weight"`)},
		{"unknown member", "0", `{"down":true,"weigth":3}`, 400, apiErr(400, "UpstreamConfFormatError", `unknown parameter "weigth"`)},
		{"wrong type", "0", `{"down":1}`, 400, apiErr(400, "UpstreamConfFormatError", `invalid "down" value`)},
		{"not JSON", "0", `{"down":`, 415, apiErr(415, "JsonError", "json error: unexpected EOF")},
		{"not found", "7", `{"down":true}`, 404, apiErr(404, "UpstreamServerNotFound", `server with ID "7" does not exist`)},
		{"bad id", "zero", `{"down":true}`, 400, apiErr(400, "UpstreamBadServerId", "invalid server ID")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, true)
			before := f.upstream("backend").Snapshot().Version
			status, body := f.do(t, "PATCH", "/api/9/http/upstreams/backend/servers/"+tt.id, tt.body)
			if status != tt.status || body != tt.want {
				t.Fatalf("got %d %s\nwant %d %s", status, body, tt.status, tt.want)
			}
			if status != 200 {
				if f.upstream("backend").Snapshot().Version != before || len(f.changes) != 0 {
					t.Fatal("a failed PATCH changed something")
				}
				return
			}
			if _, got := f.do(t, "GET", "/api/9/http/upstreams/backend/servers/"+tt.id, ""); got != body {
				t.Fatalf("GET after PATCH: %s", got)
			}
			if len(f.changes) != 1 {
				t.Fatalf("OnChange calls %v", f.changes)
			}
		})
	}
}

func TestPatchHashUpstream(t *testing.T) {
	f := newFixture(t, true)
	status, body := f.do(t, "PATCH", "/api/9/http/upstreams/hashed/servers/1", `{"slow_start":"10s"}`)
	if want := apiErr(400, "UpstreamBadSlowStart", `invalid "slow_start": not supported by balancing method hash`); status != 400 || body != want {
		t.Fatalf("%d %s", status, body)
	}
	status, body = f.do(t, "PATCH", "/api/9/http/upstreams/hashed/servers/1", `{"weight":4,"slow_start":"0s"}`)
	if status != 200 || !strings.Contains(body, `"weight":4`) {
		t.Fatalf("%d %s", status, body)
	}
}

func TestDeleteServer(t *testing.T) {
	f := newFixture(t, true)
	status, body := f.do(t, "DELETE", "/api/9/http/upstreams/backend/servers/1", "")
	if want := `[` + server0 + `,` + server2 + `]`; status != 200 || body != want {
		t.Fatalf("got %d %s", status, body)
	}
	// the id is gone for good: not found now, and not reused by the next POST
	status, body = f.do(t, "DELETE", "/api/9/http/upstreams/backend/servers/1", "")
	if want := apiErr(404, "UpstreamServerNotFound", `server with ID "1" does not exist`); status != 404 || body != want {
		t.Fatalf("second DELETE: %d %s", status, body)
	}
	_, body = f.do(t, "POST", "/api/9/http/upstreams/backend/servers", `{"server":"127.0.0.1:8082"}`)
	if !strings.HasPrefix(body, `{"id":3,`) {
		t.Fatalf("re-added server: %s", body)
	}
	// removing the backup, then every primary, is allowed
	for _, id := range []string{"2", "0", "3"} {
		if status, body := f.do(t, "DELETE", "/api/9/http/upstreams/backend/servers/"+id, ""); status != 200 {
			t.Fatalf("DELETE %s: %d %s", id, status, body)
		}
	}
	if _, body := f.do(t, "GET", "/api/9/http/upstreams/backend/servers", ""); body != `[]` {
		t.Fatalf("servers %s", body)
	}
	if got := strings.Join(f.changes, ","); got != "backend,backend,backend,backend,backend" {
		t.Fatalf("OnChange calls %s", got)
	}
}

func TestOnChangeFailure(t *testing.T) {
	f := newFixture(t, true)
	f.saveErr = errors.New("disk full")
	status, body := f.do(t, "PATCH", "/api/9/http/upstreams/backend/servers/0", `{"down":true}`)
	if want := apiErr(500, "StateNotSaved", "change applied but not saved: disk full"); status != 500 || body != want {
		t.Fatalf("%d %s", status, body)
	}
	// documented: the change stays applied
	if p, _ := f.upstream("backend").Snapshot().FindUID(0); !p.Spec().Down {
		t.Fatal("change was undone")
	}
}

func TestPeerStatistics(t *testing.T) {
	f := newFixture(t, true)
	u := f.upstream("backend")
	a := u.Begin(upstream.Request{})
	p, err := a.Next()
	if err != nil || p.UID() != 0 {
		t.Fatalf("pick %v %v", p, err)
	}
	p.RecordResponse(200, 100, 2000, 10*time.Millisecond, 30*time.Millisecond)
	p.RecordResponse(503, 50, 10, 20*time.Millisecond, 50*time.Millisecond)
	a.Finish(p, true)
	status, body := f.do(t, "GET", "/api/9/http/upstreams/backend?fields=peers", "")
	want := `{"peers":[{"id":0,"server":"127.0.0.1:8081","name":"127.0.0.1:8081","backup":false,"weight":2,"state":"unavail","active":0,"max_conns":5,` +
		`"requests":1,"responses":{"1xx":0,"2xx":1,"3xx":0,"4xx":0,"5xx":1,"codes":{"200":1,"503":1},"total":2},"sent":150,"received":2010,` +
		`"fails":1,"unavail":1,"health_checks":{"checks":0,"fails":0,"unhealthy":0},"downtime":0,"downstart":"2025-03-01T12:00:00.000Z","selected":"2025-03-01T12:00:00.000Z","header_time":15,"response_time":40}`
	if status != 200 || !strings.HasPrefix(body, want) {
		t.Fatalf("got %s\nwant prefix %s", body, want)
	}
	// DELETE on the upstream resets the statistics, not the configuration
	if status, body := f.do(t, "DELETE", "/api/9/http/upstreams/backend", ""); status != 204 || body != "" {
		t.Fatalf("reset: %d %q", status, body)
	}
	_, body = f.do(t, "GET", "/api/9/http/upstreams/backend/", "")
	if !strings.Contains(body, `"max_conns":5,`+zeroStats+`,"downstart":"2025-03-01T12:00:00.000Z","selected"`) {
		t.Fatalf("after reset: %s", body)
	}
	if len(f.changes) != 0 {
		t.Fatalf("a statistics reset is not a change to persist: %v", f.changes)
	}
}

func TestZombies(t *testing.T) {
	f := newFixture(t, true)
	u := f.upstream("backend")
	a := u.Begin(upstream.Request{})
	p, _ := a.Next()
	if status, _ := f.do(t, "DELETE", fmt.Sprintf("/api/9/http/upstreams/backend/servers/%d", p.UID()), ""); status != 200 {
		t.Fatal(status)
	}
	if _, body := f.do(t, "GET", "/api/9/http/upstreams/backend?fields=zombies", ""); body != `{"zombies":1}` {
		t.Fatalf("in flight: %s", body)
	}
	a.Finish(p, false)
	if _, body := f.do(t, "GET", "/api/9/http/upstreams/backend?fields=zombies", ""); body != `{"zombies":0}` {
		t.Fatalf("finished: %s", body)
	}
}

func TestRandomRequestID(t *testing.T) {
	h := New(Options{Prefix: "/api"})
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/99/", nil))
		var e struct {
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if len(e.RequestID) != 32 || strings.Trim(e.RequestID, "0123456789abcdef") != "" || seen[e.RequestID] {
			t.Fatalf("request_id %q", e.RequestID)
		}
		seen[e.RequestID] = true
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10s", 10 * time.Second, true},
		{"10", 10 * time.Second, true},
		{"0", 0, true},
		{"1m30s", 90 * time.Second, true},
		{"1h 30m", 90 * time.Minute, true},
		{"1d", 24 * time.Hour, true},
		{"1w", 7 * 24 * time.Hour, true},
		{"1M", 30 * 24 * time.Hour, true},
		{"1y", 365 * 24 * time.Hour, true},
		{"2m1", 121 * time.Second, true},
		{"", 0, false},
		{"s", 0, false},
		{"10ms", 0, false},
		{"30s1m", 0, false},
		{"1s1s", 0, false},
		{"-1s", 0, false},
		{"1x", 0, false},
		{"101y", 0, false},
		{"1000000000000000s", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseSeconds(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseSeconds(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestConcurrentWrites runs POST, PATCH and DELETE through the API while
// requests pick peers; -race checks the sharing, and every pick must find a
// peer (8081 is never touched, so one is always up).
func TestConcurrentWrites(t *testing.T) {
	f := newFixture(t, true)
	u := f.upstream("backend")
	stop := make(chan struct{})
	var picks, failures atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var a upstream.Attempt
			for {
				select {
				case <-stop:
					return
				default:
				}
				u.BeginInto(&a, upstream.Request{})
				p, err := a.Next()
				if err != nil {
					failures.Add(1)
					continue
				}
				p.RecordResponse(200, 1, 1, 0, 0)
				a.Finish(p, false)
				picks.Add(1)
			}
		}()
	}
	var writers sync.WaitGroup
	for w := 0; w < 4; w++ {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := 0; i < 50; i++ {
				addr := fmt.Sprintf("127.0.1.%d:%d", w, 9000+i)
				status, body := f.do(t, "POST", "/api/9/http/upstreams/backend/servers", `{"server":"`+addr+`","weight":2}`)
				if status != 201 {
					t.Errorf("POST %d %s", status, body)
					return
				}
				var s struct{ ID int }
				_ = json.Unmarshal([]byte(body), &s)
				path := fmt.Sprintf("/api/9/http/upstreams/backend/servers/%d", s.ID)
				if status, body := f.do(t, "PATCH", path, `{"weight":3,"drain":true}`); status != 200 {
					t.Errorf("PATCH %d %s", status, body)
				}
				if status, _ := f.do(t, "GET", "/api/9/http/upstreams/backend", ""); status != 200 {
					t.Errorf("GET %d", status)
				}
				if status, body := f.do(t, "DELETE", path, ""); status != 200 {
					t.Errorf("DELETE %d %s", status, body)
				}
			}
		}()
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	if failures.Load() != 0 || picks.Load() == 0 {
		t.Fatalf("picks %d, failures %d", picks.Load(), failures.Load())
	}
	if _, body := f.do(t, "GET", "/api/9/http/upstreams/backend/servers?fields=id", ""); body != `[{"id":0},{"id":1},{"id":2}]` {
		t.Fatalf("servers after the storm: %s", body)
	}
	if n := len(f.changes); n != 4*50*3 {
		t.Fatalf("OnChange calls %d", n)
	}
}

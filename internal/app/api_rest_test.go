package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// apiDo sends one request to the REST API and returns status, header and
// body. body "" sends none.
func apiDo(t *testing.T, method, url, body string) (int, http.Header, string) {
	t.Helper()
	return apiDoAuth(t, method, url, body, "", "")
}

func apiDoAuth(t *testing.T, method, url, body, user, pass string) (int, http.Header, string) {
	t.Helper()
	var opts []svOpt
	if user != "" {
		opts = append(opts, func(r *http.Request) { r.SetBasicAuth(user, pass) })
	}
	status, data, hdr := svDo(t, method, url, body, opts...)
	return status, hdr, data
}

var requestIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// checkAPIError checks an NGINX Plus error object: status, code, and the
// request_id and href members.
func checkAPIError(t *testing.T, what string, status int, hdr http.Header, body string, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: status %d, want %d (body %s)", what, status, wantStatus, body)
		return
	}
	var e struct {
		Error struct {
			Status int    `json:"status"`
			Text   string `json:"text"`
			Code   string `json:"code"`
		} `json:"error"`
		RequestID string `json:"request_id"`
		Href      string `json:"href"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Errorf("%s: error body is not JSON: %v: %q", what, err, body)
		return
	}
	if e.Error.Status != wantStatus || e.Error.Code != wantCode || e.Error.Text == "" {
		t.Errorf("%s: error %+v, want status %d code %s", what, e.Error, wantStatus, wantCode)
	}
	if !requestIDRe.MatchString(e.RequestID) || e.Href != "https://nginx.org/en/docs/http/ngx_http_api_module.html" {
		t.Errorf("%s: request_id %q href %q", what, e.RequestID, e.Href)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
}

// apiConf is the configuration of the REST API tests: upstream backend
// with ids 0 (weight 2, max_conns 5), 1 (down) and 2 (backup), a hash
// upstream, and the API behind several guards. UPADMIN is where the Lua
// admin locations go (empty when a test does not need them).
const apiConf = `
error_log stderr info;
events {}
http {
    access_log off;
    upstream backend {
        server %[1]s weight=2 max_conns=5;
        server %[2]s down;
        server %[3]s backup;
    }
    upstream hashed { hash $uri; server %[4]s; }
    server {
        listen LISTEN;
        location /p { proxy_pass http://backend; }
        location /api { api write=on; allow 127.0.0.1; deny all; }
        location /ro { api; }
        location /closed { api write=on; allow 10.0.0.0/8; deny all; }
        location /auth {
            api write=on;
            auth_basic "upstream API";
            auth_basic_user_file htpasswd;
        }
%[5]s
    }
}`

// TestAPIEndpoints drives every endpoint, method and error of the REST API
// through the real server, in the order a table of independent reads and
// then a sequence of writes.
func TestAPIEndpoints(t *testing.T) {
	_, a := backend(t, "a")
	_, b := backend(t, "b")
	_, c := backend(t, "c")
	_, h := backend(t, "h")
	_, d := backend(t, "d")
	_, base, _ := startServer(t, fmt.Sprintf(apiConf, a, b, c, h, ""))
	api := base + "/api"

	servers := fmt.Sprintf(`[{"id":0,"server":"%s","weight":2,"max_conns":5,"max_fails":1,"fail_timeout":"10s","slow_start":"0s","route":"","backup":false,"down":false},`+
		`{"id":1,"server":"%s","weight":1,"max_conns":0,"max_fails":1,"fail_timeout":"10s","slow_start":"0s","route":"","backup":false,"down":true},`+
		`{"id":2,"server":"%s","weight":1,"max_conns":0,"max_fails":1,"fail_timeout":"10s","slow_start":"0s","route":"","backup":true,"down":false}]`, a, b, c)
	server1 := fmt.Sprintf(`{"id":1,"server":"%s","weight":1,"max_conns":0,"max_fails":1,"fail_timeout":"10s","slow_start":"0s","route":"","backup":false,"down":true}`, b)

	type tc struct {
		method, path, body string
		status             int
		code               string // error code; "" = success
		want               string // exact body of a success; "" = not checked
		check              func(t *testing.T, body string, hdr http.Header)
	}
	reads := []tc{
		// roots
		{method: "GET", path: "/", status: 200, want: `[1,2,3,4,5,6,7,8,9]`},
		{method: "GET", path: "", status: 200, want: `[1,2,3,4,5,6,7,8,9]`},
		{method: "GET", path: "/9/", status: 200, want: `["nginx","http"]`},
		{method: "GET", path: "/9", status: 200, want: `["nginx","http"]`},
		{method: "GET", path: "/1/", status: 200, want: `["nginx","http"]`},
		{method: "GET", path: "/9/http/", status: 200, want: `["upstreams"]`},
		{method: "GET", path: "/9/nginx", status: 200, check: checkNginxObject},
		{method: "GET", path: "/9/nginx?fields=version,build", status: 200, check: func(t *testing.T, body string, _ http.Header) {
			if !regexp.MustCompile(`^\{"version":"[0-9.]+","build":"[^"]+"\}$`).MatchString(body) {
				t.Errorf("fields=version,build: %s", body)
			}
		}},
		{method: "HEAD", path: "/9/nginx", status: 200, want: ""},
		// unknown version and paths
		{method: "GET", path: "/10/", status: 404, code: "UnknownVersion"},
		{method: "GET", path: "/0/nginx", status: 404, code: "UnknownVersion"},
		{method: "GET", path: "/v9/nginx", status: 404, code: "UnknownVersion"},
		{method: "GET", path: "/9/stream/upstreams", status: 404, code: "PathNotFound"},
		{method: "GET", path: "/9/http/caches", status: 404, code: "PathNotFound"},
		{method: "GET", path: "/9/http/upstreams/backend/peers", status: 404, code: "PathNotFound"},
		{method: "GET", path: "/9/http/upstreams/backend/servers/0/x", status: 404, code: "PathNotFound"},
		// upstreams
		{method: "GET", path: "/9/http/upstreams?fields=", status: 200, want: `{"backend":{},"hashed":{}}`},
		{method: "GET", path: "/9/http/upstreams?fields=zone", status: 200, want: `{"backend":{"zone":"backend"},"hashed":{"zone":"hashed"}}`},
		{method: "GET", path: "/9/http/upstreams", status: 200, check: func(t *testing.T, body string, _ http.Header) {
			if !strings.HasPrefix(body, `{"backend":{"peers":[{"id":0,`) || !strings.Contains(body, `},"hashed":{"peers":[{"id":0,"server":"`+h+`"`) {
				t.Errorf("upstreams not in config order with their peers: %s", body)
			}
		}},
		{method: "GET", path: "/9/http/upstreams/backend", status: 200, check: func(t *testing.T, body string, _ http.Header) {
			checkUpstreamObject(t, body, a, b, c)
		}},
		{method: "GET", path: "/9/http/upstreams/backend/?fields=zone,zombies", status: 200, want: `{"zombies":0,"zone":"backend"}`},
		{method: "GET", path: "/9/http/upstreams/nope", status: 404, code: "UpstreamNotFound"},
		{method: "GET", path: "/9/http/upstreams/nope/servers", status: 404, code: "UpstreamNotFound"},
		{method: "GET", path: "/9/http/upstreams/nope/servers/0", status: 404, code: "UpstreamNotFound"},
		// servers
		{method: "GET", path: "/9/http/upstreams/backend/servers", status: 200, want: servers},
		{method: "GET", path: "/9/http/upstreams/backend/servers/", status: 200, want: servers},
		{method: "GET", path: "/9/http/upstreams/backend/servers?fields=id,down", status: 200,
			want: `[{"id":0,"down":false},{"id":1,"down":true},{"id":2,"down":false}]`},
		{method: "GET", path: "/9/http/upstreams/backend/servers/1", status: 200, want: server1},
		{method: "GET", path: "/9/http/upstreams/backend/servers/1?fields=server", status: 200, want: `{"server":"` + b + `"}`},
		{method: "HEAD", path: "/9/http/upstreams/backend/servers/1", status: 200, want: ""},
		{method: "GET", path: "/9/http/upstreams/backend/servers/7", status: 404, code: "UpstreamServerNotFound",
			check: func(t *testing.T, body string, _ http.Header) {
				if !strings.Contains(body, `"text":"server with ID \"7\" does not exist"`) {
					t.Errorf("text: %s", body)
				}
			}},
		{method: "GET", path: "/9/http/upstreams/backend/servers/x", status: 400, code: "UpstreamBadServerId"},
		{method: "GET", path: "/9/http/upstreams/backend/servers/-1", status: 400, code: "UpstreamBadServerId"},
		// methods a path does not serve
		{method: "POST", path: "/9/nginx", body: `{}`, status: 405, code: "MethodNotSupported", check: allowIs("GET, HEAD")},
		{method: "DELETE", path: "/9/http/upstreams", status: 405, code: "MethodNotSupported", check: allowIs("GET, HEAD")},
		{method: "PATCH", path: "/9/http/upstreams/backend", body: `{}`, status: 405, code: "MethodNotSupported", check: allowIs("GET, HEAD, DELETE")},
		{method: "PUT", path: "/9/http/upstreams/backend/servers", body: `{}`, status: 405, code: "MethodNotSupported", check: allowIs("GET, HEAD, POST")},
		{method: "POST", path: "/9/http/upstreams/backend/servers/0", body: `{}`, status: 405, code: "MethodNotSupported", check: allowIs("GET, HEAD, PATCH, DELETE")},
		{method: "OPTIONS", path: "/", status: 405, code: "MethodNotSupported", check: allowIs("GET, HEAD")},
		// writes that fail, and change nothing
		{method: "POST", path: "/9/http/upstreams/nope/servers", body: `{"server":"` + d + `"}`, status: 404, code: "UpstreamNotFound"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":`, status: 415, code: "JsonError"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `not json`, status: 415, code: "JsonError"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"` + d + `"} {}`, status: 415, code: "JsonError"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"` + d + `","wieght":2}`, status: 400, code: "UpstreamConfFormatError",
			check: func(t *testing.T, body string, _ http.Header) {
				if !strings.Contains(body, `unknown parameter \"wieght\"`) {
					t.Errorf("text: %s", body)
				}
			}},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `[{"server":"` + d + `"}]`, status: 400, code: "UpstreamConfFormatError"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"weight":2}`, status: 400, code: "UpstreamConfFormatError"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"` + d + `","id":9}`, status: 400, code: "UpstreamConfFormatError"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"` + d + `","weight":"2"}`, status: 400, code: "UpstreamConfFormatError"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"` + d + `","weight":0}`, status: 400, code: "UpstreamBadWeight"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"` + d + `","max_fails":-1}`, status: 400, code: "UpstreamBadMaxFails"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"` + d + `","max_conns":-1}`, status: 400, code: "UpstreamBadMaxConns"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"` + d + `","fail_timeout":"10ms"}`, status: 400, code: "UpstreamBadFailTimeout"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"` + d + `","slow_start":"x"}`, status: 400, code: "UpstreamBadSlowStart"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"` + d + `","route":"` + strings.Repeat("r", 33) + `"}`, status: 400, code: "UpstreamBadRoute"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"127.0.0.1:99999"}`, status: 400, code: "UpstreamBadAddress"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"` + a + `"}`, status: 409, code: "EntryExists"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"` + c + `","backup":true}`, status: 409, code: "EntryExists"},
		{method: "POST", path: "/9/http/upstreams/hashed/servers", body: `{"server":"` + d + `","backup":true}`, status: 400, code: "UpstreamNoBackup"},
		{method: "POST", path: "/9/http/upstreams/hashed/servers", body: `{"server":"` + d + `","slow_start":"10s"}`, status: 400, code: "UpstreamBadSlowStart"},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"` + d + `","route":"` + strings.Repeat("x", 70<<10) + `"}`, status: 413, code: "RequestEntityTooLarge"},
		{method: "PATCH", path: "/9/http/upstreams/backend/servers/7", body: `{"down":true}`, status: 404, code: "UpstreamServerNotFound"},
		{method: "PATCH", path: "/9/http/upstreams/backend/servers/x", body: `{"down":true}`, status: 400, code: "UpstreamBadServerId"},
		{method: "PATCH", path: "/9/http/upstreams/backend/servers/0", body: `{"server":"` + d + `"}`, status: 400, code: "UpstreamServerImmutable"},
		{method: "PATCH", path: "/9/http/upstreams/backend/servers/0", body: `{"id":1}`, status: 400, code: "UpstreamServerImmutable"},
		{method: "PATCH", path: "/9/http/upstreams/backend/servers/0", body: `{"backup":true}`, status: 400, code: "UpstreamServerImmutable"},
		// one bad member: nothing changes (weight stays 2, down stays false; checked below)
		{method: "PATCH", path: "/9/http/upstreams/backend/servers/0", body: `{"down":true,"weight":0}`, status: 400, code: "UpstreamBadWeight"},
		{method: "PATCH", path: "/9/http/upstreams/backend/servers/0", body: `{"down":1}`, status: 400, code: "UpstreamConfFormatError"},
		{method: "PATCH", path: "/9/http/upstreams/backend/servers/0", body: `{"down":`, status: 415, code: "JsonError"},
		{method: "DELETE", path: "/9/http/upstreams/backend/servers/7", status: 404, code: "UpstreamServerNotFound"},
		{method: "DELETE", path: "/9/http/upstreams/nope/servers/0", status: 404, code: "UpstreamNotFound"},
		{method: "DELETE", path: "/9/http/upstreams/nope", status: 404, code: "UpstreamNotFound"},
	}
	run := func(t *testing.T, prefix string, cases []tc) {
		t.Helper()
		for _, tt := range cases {
			what := tt.method + " " + prefix + tt.path
			status, hdr, body := apiDo(t, tt.method, base+prefix+tt.path, tt.body)
			if tt.code != "" {
				checkAPIError(t, what, status, hdr, body, tt.status, tt.code)
			} else if status != tt.status {
				t.Errorf("%s: status %d, want %d (body %s)", what, status, tt.status, body)
				continue
			} else if tt.want != "" || tt.method == "HEAD" {
				if body != tt.want {
					t.Errorf("%s:\n got %s\nwant %s", what, body, tt.want)
				}
			}
			if tt.check != nil {
				tt.check(t, body, hdr)
			}
		}
	}
	run(t, "/api", reads)

	// Nothing the failed writes tried is visible.
	if _, _, body := apiDo(t, "GET", api+"/9/http/upstreams/backend/servers", ""); body != servers {
		t.Fatalf("failed writes changed the servers:\n%s\nwant\n%s", body, servers)
	}

	// write=off: every write is MethodDisabled, checked before the
	// upstream or server exists; reads work.
	run(t, "/ro", []tc{
		{method: "GET", path: "/9/http/upstreams/backend/servers", status: 200, want: servers},
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"` + d + `"}`, status: 405, code: "MethodDisabled"},
		{method: "POST", path: "/9/http/upstreams/nope/servers", body: `{"server":"` + d + `"}`, status: 405, code: "MethodDisabled"},
		{method: "PATCH", path: "/9/http/upstreams/backend/servers/0", body: `{"down":true}`, status: 405, code: "MethodDisabled"},
		{method: "PATCH", path: "/9/http/upstreams/backend/servers/77", body: `{"down":true}`, status: 405, code: "MethodDisabled"},
		{method: "DELETE", path: "/9/http/upstreams/backend/servers/0", status: 405, code: "MethodDisabled"},
		{method: "DELETE", path: "/9/http/upstreams/backend", status: 405, code: "MethodDisabled"},
		// a method the path never serves is MethodNotSupported, not Disabled
		{method: "PUT", path: "/9/http/upstreams/backend/servers/0", body: `{}`, status: 405, code: "MethodNotSupported"},
	})

	// The successful writes, in sequence.
	added := fmt.Sprintf(`{"id":3,"server":"%s","weight":3,"max_conns":0,"max_fails":2,"fail_timeout":"30s","slow_start":"60s","route":"r1","backup":false,"down":true}`, d)
	addedUp := strings.Replace(added, `"down":true`, `"down":false`, 1)
	// primary servers first, then backup ones
	i := strings.Index(servers, `,{"id":2,`)
	remaining := servers[:i] + "," + addedUp + servers[i:]
	run(t, "/api", []tc{
		{method: "POST", path: "/9/http/upstreams/backend/servers", status: 201, want: added,
			body: `{"server":"` + d + `","weight":3,"max_fails":2,"fail_timeout":"30s","slow_start":60,"route":"r1","down":true}`},
		{method: "GET", path: "/9/http/upstreams/backend/servers/3", status: 200, want: added},
		// a retried POST does not register the server twice
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"` + d + `"}`, status: 409, code: "EntryExists"},
		{method: "PATCH", path: "/9/http/upstreams/backend/servers/3", body: `{"down":false}`, status: 200, want: addedUp},
		{method: "PATCH", path: "/9/http/upstreams/backend/servers/3", body: `{"drain":true}`, status: 200,
			want: strings.TrimSuffix(addedUp, "}") + `,"drain":true}`},
		{method: "GET", path: "/9/http/upstreams/backend?fields=peers", status: 200, check: func(t *testing.T, body string, _ http.Header) {
			if !strings.Contains(body, `{"id":3,"server":"`+d+`","name":"`+d+`","backup":false,"weight":3,"state":"draining"`) {
				t.Errorf("drained peer state: %s", body)
			}
		}},
		{method: "PATCH", path: "/9/http/upstreams/backend/servers/3", body: `{"drain":false}`, status: 200, want: addedUp},
		// sending back a GET result, with its immutable members, is fine
		{method: "PATCH", path: "/9/http/upstreams/backend/servers/1", body: strings.Replace(server1, `"down":true`, `"down":false`, 1), status: 200,
			want: strings.Replace(server1, `"down":true`, `"down":false`, 1)},
		{method: "PATCH", path: "/9/http/upstreams/backend/servers/1", body: `{"down":true,"weight":1}`, status: 200, want: server1},
		{method: "GET", path: "/9/http/upstreams/backend/servers", status: 200, want: remaining},
		{method: "DELETE", path: "/9/http/upstreams/backend/servers/3", status: 200, want: servers},
		{method: "GET", path: "/9/http/upstreams/backend/servers/3", status: 404, code: "UpstreamServerNotFound"},
		{method: "DELETE", path: "/9/http/upstreams/backend/servers/3", status: 404, code: "UpstreamServerNotFound"},
		// ids are never reused
		{method: "POST", path: "/9/http/upstreams/backend/servers", body: `{"server":"` + d + `","backup":true}`, status: 201,
			want: fmt.Sprintf(`{"id":4,"server":"%s","weight":1,"max_conns":0,"max_fails":1,"fail_timeout":"10s","slow_start":"0s","route":"","backup":true,"down":false}`, d)},
		{method: "DELETE", path: "/9/http/upstreams/backend/servers/4?fields=id", status: 200, want: `[{"id":0},{"id":1},{"id":2}]`},
	})

	// DELETE of the upstream resets its statistics.
	for i := 0; i < 3; i++ {
		if code, body, _ := get(t, base+"/p"); code != 200 || !strings.HasPrefix(body, "a ") {
			t.Fatalf("proxied: %d %q", code, body)
		}
	}
	peer0 := func() map[string]any {
		_, _, body := apiDo(t, "GET", api+"/9/http/upstreams/backend", "")
		var u struct{ Peers []map[string]any }
		if err := json.Unmarshal([]byte(body), &u); err != nil {
			t.Fatal(err)
		}
		return u.Peers[0]
	}
	// (responses, sent and received are not checked: the proxy does not
	// report responses to the peer yet, see docs/api.md.)
	if p := peer0(); p["requests"] != 3.0 || p["selected"] == nil {
		t.Fatalf("peer 0 after 3 requests: %v", p)
	}
	if status, _, body := apiDo(t, "DELETE", api+"/9/http/upstreams/backend", ""); status != 204 || body != "" {
		t.Fatalf("DELETE upstream: %d %q", status, body)
	}
	if p := peer0(); p["requests"] != 0.0 || p["responses"].(map[string]any)["total"] != 0.0 || p["weight"] != 2.0 || p["state"] != "up" {
		t.Fatalf("peer 0 after reset: %v", p)
	}
}

func allowIs(want string) func(t *testing.T, _ string, hdr http.Header) {
	return func(t *testing.T, _ string, hdr http.Header) {
		t.Helper()
		if got := hdr.Get("Allow"); got != want {
			t.Errorf("Allow %q, want %q", got, want)
		}
	}
}

func checkNginxObject(t *testing.T, body string, _ http.Header) {
	t.Helper()
	var n map[string]any
	if err := json.Unmarshal([]byte(body), &n); err != nil {
		t.Fatalf("nginx: %v: %s", err, body)
	}
	keys := `{"version":"`
	if !strings.HasPrefix(body, keys) {
		t.Errorf("nginx object does not start with version: %s", body)
	}
	iso := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	for _, k := range []string{"load_timestamp", "timestamp"} {
		if s, _ := n[k].(string); !iso.MatchString(s) {
			t.Errorf("%s = %v", k, n[k])
		}
	}
	if n["address"] != "127.0.0.1" || n["generation"] != 1.0 || n["pid"] != float64(os.Getpid()) || n["ppid"] != float64(os.Getppid()) {
		t.Errorf("nginx object: %s", body)
	}
	if v, _ := n["version"].(string); v == "" {
		t.Errorf("no version: %s", body)
	}
	if v, _ := n["build"].(string); v == "" {
		t.Errorf("no build: %s", body)
	}
}

// checkUpstreamObject checks the peers of upstream backend before any
// traffic: every statistics member NGINX Plus shows, in its shape.
func checkUpstreamObject(t *testing.T, body, a, b, c string) {
	t.Helper()
	var u struct {
		Peers     []map[string]any `json:"peers"`
		Keepalive *float64         `json:"keepalive"`
		Zombies   *float64         `json:"zombies"`
		Zone      string           `json:"zone"`
	}
	if err := json.Unmarshal([]byte(body), &u); err != nil {
		t.Fatalf("upstream: %v: %s", err, body)
	}
	if len(u.Peers) != 3 || u.Keepalive == nil || u.Zombies == nil || u.Zone != "backend" {
		t.Fatalf("upstream object: %s", body)
	}
	for i, want := range []struct {
		server, state string
		backup        bool
		weight        float64
	}{{a, "up", false, 2}, {b, "down", false, 1}, {c, "up", true, 1}} {
		p := u.Peers[i]
		if p["id"] != float64(i) || p["server"] != want.server || p["name"] != want.server || p["state"] != want.state ||
			p["backup"] != want.backup || p["weight"] != want.weight {
			t.Errorf("peer %d: %v", i, p)
		}
		for _, k := range []string{"active", "requests", "sent", "received", "fails", "unavail", "downtime"} {
			if p[k] != 0.0 {
				t.Errorf("peer %d: %s = %v", i, k, p[k])
			}
		}
		r, _ := p["responses"].(map[string]any)
		for _, k := range []string{"1xx", "2xx", "3xx", "4xx", "5xx", "total"} {
			if r[k] != 0.0 {
				t.Errorf("peer %d: responses.%s = %v", i, k, r[k])
			}
		}
		if _, ok := r["codes"].(map[string]any); !ok {
			t.Errorf("peer %d: responses.codes = %v", i, r["codes"])
		}
		if _, ok := p["health_checks"].(map[string]any); !ok {
			t.Errorf("peer %d: health_checks = %v", i, p["health_checks"])
		}
		// not picked yet: no selected, no times
		for _, k := range []string{"selected", "header_time", "response_time"} {
			if _, ok := p[k]; ok {
				t.Errorf("peer %d: %s present before any pick", i, k)
			}
		}
	}
	if u.Peers[0]["max_conns"] != 5.0 {
		t.Errorf("peer 0 max_conns = %v", u.Peers[0]["max_conns"])
	}
	if _, ok := u.Peers[1]["max_conns"]; ok {
		t.Errorf("peer 1 shows max_conns without one set")
	}
}

// TestAPIGuards puts allow/deny and auth_basic in front of the API: a
// denied address gets nginx's 403 page (not the API), a request without
// credentials gets 401 with the challenge, with them the API answers.
func TestAPIGuards(t *testing.T) {
	_, a := backend(t, "a")
	s, base, logs := startServer(t, fmt.Sprintf(apiConf, a, deadAddr(t), deadAddr(t), deadAddr(t), ""))
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(s.opts.ConfFile), "htpasswd"), []byte("ops:"+string(hash)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// deny all (127.0.0.1 is not in 10.0.0.0/8): nginx's HTML 403 page,
	// as nginx answers before its API module runs, and nothing changes.
	status, hdr, body := apiDo(t, "GET", base+"/closed/9/nginx", "")
	if status != 403 || !strings.Contains(body, "<title>403 Forbidden</title>") || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Errorf("denied GET: %d %q %q", status, hdr.Get("Content-Type"), body)
	}
	if status, _, _ := apiDo(t, "DELETE", base+"/closed/9/http/upstreams/backend/servers/0", ""); status != 403 {
		t.Errorf("denied DELETE: %d", status)
	}
	if !strings.Contains(logs.String(), "access forbidden by rule") {
		t.Errorf("no [error] access forbidden by rule:\n%s", logs.String())
	}

	// allow 127.0.0.1; deny all: loopback is let in, another loopback
	// source address (127.0.0.2) is not.
	if status, _, _ := apiDo(t, "GET", base+"/api/9/nginx", ""); status != 200 {
		t.Errorf("allowed address: %d", status)
	}
	if status, body, ok := getFrom(t, "127.0.0.2", base+"/api/9/nginx"); ok && (status != 403 || !strings.Contains(body, "403 Forbidden")) {
		t.Errorf("GET from 127.0.0.2: %d %q", status, body)
	}

	// auth_basic
	status, hdr, body = apiDo(t, "GET", base+"/auth/9/http/upstreams/backend/servers", "")
	if status != 401 || hdr.Get("WWW-Authenticate") != `Basic realm="upstream API"` || !strings.Contains(body, "401 Authorization Required") {
		t.Errorf("no credentials: %d %q %q", status, hdr.Get("WWW-Authenticate"), body)
	}
	if status, _, _ := apiDoAuth(t, "PATCH", base+"/auth/9/http/upstreams/backend/servers/0", `{"weight":7}`, "ops", "wrong"); status != 401 {
		t.Errorf("wrong password: %d", status)
	}
	if status, _, body := apiDoAuth(t, "GET", base+"/auth/9/http/upstreams/backend/servers/0?fields=weight", "", "ops", "s3cret"); status != 200 || body != `{"weight":2}` {
		t.Errorf("with credentials: %d %s", status, body)
	}
	if status, _, body := apiDoAuth(t, "PATCH", base+"/auth/9/http/upstreams/backend/servers/0?fields=weight", `{"weight":7}`, "ops", "s3cret"); status != 200 || body != `{"weight":7}` {
		t.Errorf("PATCH with credentials: %d %s", status, body)
	}
	// The denied and unauthenticated writes changed nothing else.
	if _, _, body := apiDo(t, "GET", base+"/api/9/http/upstreams/backend/servers?fields=id,weight", ""); body != `[{"id":0,"weight":7},{"id":1,"weight":1},{"id":2,"weight":1}]` {
		t.Errorf("servers: %s", body)
	}
}

// getFrom sends a GET from the local address src; ok is false (and the
// check is skipped) when that address cannot be bound on this machine.
func getFrom(t *testing.T, src, url string) (int, string, bool) {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	probe, err := dialer.Dial("tcp", strings.TrimPrefix(url, "http://")[:strings.Index(strings.TrimPrefix(url, "http://"), "/")])
	if err != nil {
		t.Logf("cannot connect from %s, skipping that check: %v", src, err)
		return 0, "", false
	}
	probe.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", url, src, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = io.Copy(&buf, resp.Body)
	return resp.StatusCode, buf.String(), true
}

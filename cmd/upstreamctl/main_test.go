package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// cliCase runs upstreamctl against a fresh fakeAPI. In args, env and the
// expected output, "{api}" stands for the fake's API base URL and "{host}"
// for its host:port.
type cliCase struct {
	name   string
	args   []string
	env    map[string]string
	setup  func(f *fakeAPI)
	code   int
	stdout string
	stderr string
	// reqs is every request the fake received, as "METHOD PATH [BODY]";
	// nil means none, which usage errors must guarantee.
	reqs []string
}

func (tc cliCase) run(t *testing.T) {
	t.Helper()
	f := newFakeAPI()
	if tc.setup != nil {
		tc.setup(f)
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	expand := func(s string) string {
		return strings.NewReplacer("{api}", srv.URL+"/api", "{host}", host).Replace(s)
	}
	args := make([]string, len(tc.args))
	for i, a := range tc.args {
		args[i] = expand(a)
	}
	env := func(k string) string { return expand(tc.env[k]) }
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr, env)
	if code != tc.code {
		t.Errorf("exit code = %d, want %d (stderr %q)", code, tc.code, stderr.String())
	}
	if got, want := stdout.String(), expand(tc.stdout); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
	if got, want := stderr.String(), expand(tc.stderr); got != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", got, want)
	}
	if got := f.log(); !slices.Equal(got, tc.reqs) {
		t.Errorf("requests:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.reqs, "\n  "))
	}
}

func runCases(t *testing.T, cases []cliCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}

// api prefixes the global --api flag pointing at the fake.
func api(args ...string) []string { return append([]string{"--api", "{api}"}, args...) }

const root = "GET /api/"

func TestListing(t *testing.T) {
	runCases(t, []cliCase{
		{
			name: "upstreams counts peers by state",
			args: api("upstreams"),
			stdout: "" +
				"NAME     PEERS  UP  DOWN  DRAINING  UNHEALTHY  ZONE\n" +
				"api      4      1   0     1         2          api_zone\n" +
				"backend  3      2   1     0         0          backend\n" +
				"static   1      1   0     0         0          -\n",
			reqs: []string{root, "GET /api/9/http/upstreams"},
		},
		{
			name: "upstreams with none configured prints the header only",
			args: api("upstreams"),
			setup: func(f *fakeAPI) {
				clear(f.upstreams)
			},
			stdout: "NAME  PEERS  UP  DOWN  DRAINING  UNHEALTHY  ZONE\n",
			reqs:   []string{root, "GET /api/9/http/upstreams"},
		},
		{
			name: "servers shows live peer state",
			args: api("servers", "backend"),
			stdout: "" +
				"ID  SERVER         WEIGHT  STATE  BACKUP  ACTIVE  REQUESTS  FAILS\n" +
				"0   10.0.0.1:8081  5       up     no      2       1200      0\n" +
				"1   10.0.0.2:8081  1       down   no      0       30        1\n" +
				"2   10.0.0.3:8081  1       up     yes     0       0         0\n",
			reqs: []string{root, "GET /api/9/http/upstreams/backend"},
		},
		{
			name: "servers shows draining, unhealthy and unavail",
			args: api("servers", "api"),
			stdout: "" +
				"ID  SERVER         WEIGHT  STATE      BACKUP  ACTIVE  REQUESTS  FAILS\n" +
				"0   10.0.1.1:9000  1       up         no      0       50        0\n" +
				"1   10.0.1.2:9000  1       draining   no      1       0         0\n" +
				"2   10.0.1.3:9000  1       unhealthy  no      0       0         12\n" +
				"3   10.0.1.4:9000  1       unavail    no      0       0         3\n",
			reqs: []string{root, "GET /api/9/http/upstreams/api"},
		},
		{
			name: "servers sorts peers by id",
			args: api("servers", "backend"),
			setup: func(f *fakeAPI) {
				s := f.upstreams["backend"].servers
				slices.Reverse(s)
			},
			stdout: "" +
				"ID  SERVER         WEIGHT  STATE  BACKUP  ACTIVE  REQUESTS  FAILS\n" +
				"0   10.0.0.1:8081  5       up     no      2       1200      0\n" +
				"1   10.0.0.2:8081  1       down   no      0       30        1\n" +
				"2   10.0.0.3:8081  1       up     yes     0       0         0\n",
			reqs: []string{root, "GET /api/9/http/upstreams/backend"},
		},
		{
			name: "servers --json after the command prints the upstream object as served",
			args: api("servers", "static", "--json"),
			stdout: `{
  "peers": [
    {
      "id": 0,
      "server": "10.0.2.1:80",
      "name": "10.0.2.1:80",
      "backup": false,
      "weight": 1,
      "state": "up",
      "active": 0,
      "requests": 7,
      "responses": {
        "1xx": 0,
        "2xx": 7,
        "3xx": 0,
        "4xx": 0,
        "5xx": 0,
        "codes": {
          "200": 7
        },
        "total": 7
      },
      "sent": 0,
      "received": 0,
      "fails": 0,
      "unavail": 0,
      "health_checks": {
        "checks": 0,
        "fails": 0,
        "unhealthy": 0,
        "last_passed": false
      },
      "downtime": 0
    }
  ],
  "keepalive": 0,
  "zombies": 0
}
`,
			reqs: []string{root, "GET /api/9/http/upstreams/static"},
		},
		{
			name:   "unknown upstream is an API error",
			args:   api("servers", "nope"),
			code:   exitAPI,
			stderr: "upstreamctl: upstream not found (404 UpstreamNotFound)\n",
			reqs:   []string{root, "GET /api/9/http/upstreams/nope"},
		},
		{
			name:   "upstream names are escaped into one path segment",
			args:   api("servers", "a/b c"),
			code:   exitAPI,
			stderr: "upstreamctl: upstream not found (404 UpstreamNotFound)\n",
			reqs:   []string{root, "GET /api/9/http/upstreams/a%2Fb%20c"},
		},
	})
}

func TestChanges(t *testing.T) {
	runCases(t, []cliCase{
		{
			name:   "add sends only the server and prints the new id",
			args:   api("add", "backend", "10.0.0.9:8081"),
			stdout: "3\n",
			reqs:   []string{root, `POST /api/9/http/upstreams/backend/servers {"server":"10.0.0.9:8081"}`},
		},
		{
			name: "add sends every flag, before or after the arguments",
			args: api("add", "--weight", "3", "backend", "10.0.0.9:8081", "--max-fails", "0",
				"--fail-timeout", "1m", "--max-conns", "100", "--slow-start", "30", "--backup", "--down"),
			stdout: "3\n",
			reqs: []string{root, `POST /api/9/http/upstreams/backend/servers ` +
				`{"server":"10.0.0.9:8081","weight":3,"max_conns":100,"max_fails":0,"fail_timeout":"60s","slow_start":"30s","backup":true,"down":true}`},
		},
		{
			name: "add --json prints the created server",
			args: []string{"--json", "--api", "{api}", "add", "backend", "10.0.0.9:8081", "--weight", "2"},
			stdout: `{
  "id": 3,
  "server": "10.0.0.9:8081",
  "weight": 2,
  "max_conns": 0,
  "max_fails": 1,
  "fail_timeout": "10s",
  "slow_start": "0s",
  "route": "",
  "backup": false,
  "down": false,
  "drain": false
}
`,
			reqs: []string{root, `POST /api/9/http/upstreams/backend/servers {"server":"10.0.0.9:8081","weight":2}`},
		},
		{
			name:   "add with a weight the server rejects",
			args:   api("add", "backend", "10.0.0.9:8081", "--weight", "0"),
			code:   exitAPI,
			stderr: "upstreamctl: invalid \"weight\" (400 UpstreamBadWeight)\n",
			reqs:   []string{root, `POST /api/9/http/upstreams/backend/servers {"server":"10.0.0.9:8081","weight":0}`},
		},
		{
			name:   "add to a static upstream",
			args:   api("add", "static", "10.0.2.2:80"),
			code:   exitAPI,
			stderr: "upstreamctl: upstream is static (400 UpstreamStatic)\n",
			reqs:   []string{root, `POST /api/9/http/upstreams/static/servers {"server":"10.0.2.2:80"}`},
		},
		{
			name:   "down",
			args:   api("down", "backend", "0"),
			stdout: "backend: server 0 (10.0.0.1:8081) marked down\n",
			reqs:   []string{root, `PATCH /api/9/http/upstreams/backend/servers/0 {"down":true}`},
		},
		{
			name:   "up",
			args:   api("up", "backend", "1"),
			stdout: "backend: server 1 (10.0.0.2:8081) marked up\n",
			reqs:   []string{root, `PATCH /api/9/http/upstreams/backend/servers/1 {"down":false}`},
		},
		{
			name:   "drain",
			args:   api("drain", "api", "0"),
			stdout: "api: server 0 (10.0.1.1:9000) set to drain\n",
			reqs:   []string{root, `PATCH /api/9/http/upstreams/api/servers/0 {"drain":true}`},
		},
		{
			name:   "weight",
			args:   api("weight", "backend", "2", "7"),
			stdout: "backend: server 2 (10.0.0.3:8081) weight set to 7\n",
			reqs:   []string{root, `PATCH /api/9/http/upstreams/backend/servers/2 {"weight":7}`},
		},
		{
			name:   "weight the server rejects",
			args:   api("weight", "backend", "2", "0"),
			code:   exitAPI,
			stderr: "upstreamctl: invalid \"weight\" (400 UpstreamBadWeight)\n",
			reqs:   []string{root, `PATCH /api/9/http/upstreams/backend/servers/2 {"weight":0}`},
		},
		{
			name:   "patch of an unknown server",
			args:   api("down", "backend", "42"),
			code:   exitAPI,
			stderr: "upstreamctl: server with ID \"42\" does not exist (404 UpstreamServerNotFound)\n",
			reqs:   []string{root, `PATCH /api/9/http/upstreams/backend/servers/42 {"down":true}`},
		},
		{
			name:   "remove",
			args:   api("remove", "backend", "2"),
			stdout: "backend: server 2 removed\n",
			reqs:   []string{root, "DELETE /api/9/http/upstreams/backend/servers/2"},
		},
		{
			name: "remove --json prints the remaining servers",
			args: api("--json", "remove", "backend", "0"),
			stdout: `[
  {
    "id": 1,
    "server": "10.0.0.2:8081",
    "weight": 1,
    "max_conns": 0,
    "max_fails": 1,
    "fail_timeout": "10s",
    "slow_start": "0s",
    "route": "",
    "backup": false,
    "down": true,
    "drain": false
  },
  {
    "id": 2,
    "server": "10.0.0.3:8081",
    "weight": 1,
    "max_conns": 0,
    "max_fails": 1,
    "fail_timeout": "10s",
    "slow_start": "0s",
    "route": "",
    "backup": true,
    "down": false,
    "drain": false
  }
]
`,
			reqs: []string{root, "DELETE /api/9/http/upstreams/backend/servers/0"},
		},
		{
			name:   "remove of an unknown server",
			args:   api("remove", "backend", "9"),
			code:   exitAPI,
			stderr: "upstreamctl: server with ID \"9\" does not exist (404 UpstreamServerNotFound)\n",
			reqs:   []string{root, "DELETE /api/9/http/upstreams/backend/servers/9"},
		},
		{
			name:   "writes disabled (api write=off)",
			args:   api("remove", "backend", "2"),
			setup:  func(f *fakeAPI) { f.writeOff = true },
			code:   exitAPI,
			stderr: "upstreamctl: method disabled (405 MethodDisabled)\n",
			reqs:   []string{root, "DELETE /api/9/http/upstreams/backend/servers/2"},
		},
	})
}

// TestChangesTakeEffect checks each command against the state the fake
// reports afterwards, not just against the request it sent.
func TestChangesTakeEffect(t *testing.T) {
	f := newFakeAPI()
	srv := httptest.NewServer(f)
	defer srv.Close()
	steps := []struct {
		args []string
		out  string
	}{
		{[]string{"down", "backend", "0"}, "backend: server 0 (10.0.0.1:8081) marked down\n"},
		{[]string{"up", "backend", "1"}, "backend: server 1 (10.0.0.2:8081) marked up\n"},
		{[]string{"drain", "backend", "2"}, "backend: server 2 (10.0.0.3:8081) set to drain\n"},
		{[]string{"weight", "backend", "1", "4"}, "backend: server 1 (10.0.0.2:8081) weight set to 4\n"},
		{[]string{"add", "backend", "10.0.0.9:8081", "--down"}, "3\n"},
		{[]string{"add", "backend", "10.0.0.10:8081"}, "4\n"},
		{[]string{"remove", "backend", "3"}, "backend: server 3 removed\n"},
		{[]string{"servers", "backend"}, "" +
			"ID  SERVER          WEIGHT  STATE     BACKUP  ACTIVE  REQUESTS  FAILS\n" +
			"0   10.0.0.1:8081   5       down      no      2       1200      0\n" +
			"1   10.0.0.2:8081   4       up        no      0       30        1\n" +
			"2   10.0.0.3:8081   1       draining  yes     0       0         0\n" +
			"4   10.0.0.10:8081  1       up        no      0       0         0\n"},
		{[]string{"upstreams"}, "" +
			"NAME     PEERS  UP  DOWN  DRAINING  UNHEALTHY  ZONE\n" +
			"api      4      1   0     1         2          api_zone\n" +
			"backend  4      2   1     1         0          backend\n" +
			"static   1      1   0     0         0          -\n"},
	}
	for _, s := range steps {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"--api", srv.URL + "/api"}, s.args...), &stdout, &stderr, noEnv)
		if code != 0 || stdout.String() != s.out {
			t.Fatalf("%v: exit %d, stdout:\n%s\nwant:\n%s\nstderr: %s", s.args, code, stdout.String(), s.out, stderr.String())
		}
	}
}

func noEnv(string) string { return "" }

func TestUsageErrors(t *testing.T) {
	usage := func(msg string) string { return "upstreamctl: " + msg + "\n\n" + usageText }
	runCases(t, []cliCase{
		{name: "no command", args: api(), code: exitUsage, stderr: usage("missing command")},
		{name: "unknown command", args: api("list"), code: exitUsage, stderr: usage(`unknown command "list"`)},
		{name: "missing argument", args: api("servers"), code: exitUsage, stderr: usage("servers: want NAME, got 0 argument(s)")},
		{name: "argument to upstreams", args: api("upstreams", "backend"), code: exitUsage, stderr: usage("upstreams: takes no arguments, got 1")},
		{name: "extra argument", args: api("down", "backend", "1", "2"), code: exitUsage, stderr: usage("down: want NAME ID, got 3 argument(s)")},
		{name: "weight without N", args: api("weight", "backend", "1"), code: exitUsage, stderr: usage("weight: want NAME ID N, got 2 argument(s)")},
		{name: "non-numeric weight", args: api("weight", "backend", "1", "heavy"), code: exitUsage, stderr: usage(`weight: invalid weight "heavy": want an integer`)},
		{name: "non-numeric id", args: api("remove", "backend", "one"), code: exitUsage, stderr: usage(`remove: invalid server ID "one": want a non-negative integer`)},
		{name: "negative id", args: api("drain", "backend", "--", "-1"), code: exitUsage, stderr: usage(`drain: invalid server ID "-1": want a non-negative integer`)},
		{name: "unknown global flag", args: []string{"--verbose", "upstreams"}, code: exitUsage, stderr: usage("flag provided but not defined: -verbose")},
		{name: "flag of another command", args: api("servers", "backend", "--weight", "2"), code: exitUsage, stderr: usage("flag provided but not defined: -weight")},
		{name: "bad integer flag", args: api("add", "backend", "10.0.0.9:80", "--max-fails", "x"), code: exitUsage,
			stderr: usage(`invalid value "x" for flag -max-fails: parse error`)},
		{name: "sub-second fail timeout", args: api("add", "backend", "10.0.0.9:80", "--fail-timeout", "1500ms"), code: exitUsage,
			stderr: usage(`invalid value "1500ms" for flag -fail-timeout: want a whole, non-negative number of seconds`)},
		{name: "bad slow start", args: api("add", "backend", "10.0.0.9:80", "--slow-start", "soon"), code: exitUsage,
			stderr: usage(`invalid value "soon" for flag -slow-start: want a duration such as 10s or 1m`)},
		{name: "user without password", args: api("--user", "admin", "upstreams"), code: exitUsage, stderr: usage("invalid --user: want USER:PASS")},
		{name: "api URL without scheme", args: []string{"--api", "{host}/api", "upstreams"}, code: exitUsage,
			stderr: usage(`invalid --api URL "{host}/api": want http://HOST[:PORT]/PATH`)},
		{name: "non-positive timeout", args: api("--timeout", "0s", "upstreams"), code: exitUsage, stderr: usage("invalid --timeout 0s: must be positive")},
		{name: "help flag", args: []string{"-h"}, stdout: usageText},
		{name: "help command", args: []string{"help"}, stdout: usageText},
		{name: "help flag after command", args: api("add", "--help"), stdout: usageText},
	})
}

func TestVersionDiscovery(t *testing.T) {
	runCases(t, []cliCase{
		{
			name: "9 listed among newer versions is used",
			args: api("remove", "backend", "2"),
			setup: func(f *fakeAPI) {
				f.versions = []int{7, 8, 9, 10}
			},
			stdout: "backend: server 2 removed\n",
			reqs:   []string{root, "DELETE /api/9/http/upstreams/backend/servers/2"},
		},
		{
			name: "without 9 the highest listed is used",
			args: api("remove", "backend", "2"),
			setup: func(f *fakeAPI) {
				f.versions = []int{6, 8, 7}
			},
			stdout: "backend: server 2 removed\n",
			reqs:   []string{root, "DELETE /api/8/http/upstreams/backend/servers/2"},
		},
		{
			name:   "an API without the version list gets 9",
			args:   api("remove", "backend", "2"),
			setup:  func(f *fakeAPI) { f.versions = nil },
			stdout: "backend: server 2 removed\n",
			reqs:   []string{root, "DELETE /api/9/http/upstreams/backend/servers/2"},
		},
		{
			name:   "a version in the URL is used without discovery",
			args:   []string{"--api", "{api}/8/", "remove", "backend", "2"},
			setup:  func(f *fakeAPI) { f.versions = []int{8, 9} },
			stdout: "backend: server 2 removed\n",
			reqs:   []string{"DELETE /api/8/http/upstreams/backend/servers/2"},
		},
		{
			name:   "a pinned version the API lacks",
			args:   []string{"--api", "{api}/3", "upstreams"},
			setup:  func(f *fakeAPI) { f.versions = []int{8, 9} },
			code:   exitAPI,
			stderr: "upstreamctl: unknown version (404 UnknownVersion)\n",
			reqs:   []string{"GET /api/3/http/upstreams"},
		},
	})
}

func TestEnvironment(t *testing.T) {
	runCases(t, []cliCase{
		{
			name:   "UPSTREAMCTL_API is the default API",
			args:   []string{"remove", "backend", "2"},
			env:    map[string]string{"UPSTREAMCTL_API": "{api}"},
			stdout: "backend: server 2 removed\n",
			reqs:   []string{root, "DELETE /api/9/http/upstreams/backend/servers/2"},
		},
		{
			name:   "--api overrides UPSTREAMCTL_API",
			args:   api("remove", "backend", "2"),
			env:    map[string]string{"UPSTREAMCTL_API": "http://127.0.0.1:1/api"},
			stdout: "backend: server 2 removed\n",
			reqs:   []string{root, "DELETE /api/9/http/upstreams/backend/servers/2"},
		},
	})
}

func TestAuth(t *testing.T) {
	auth := func(f *fakeAPI) { f.user, f.pass, f.readOnly = "admin", "s3cret", "viewer" }
	ok := []string{root, "DELETE /api/9/http/upstreams/backend/servers/2"}
	runCases(t, []cliCase{
		{
			name:   "no credentials",
			args:   api("remove", "backend", "2"),
			setup:  auth,
			code:   exitAuth,
			stderr: "upstreamctl: authentication required (401 Unauthorized): use --user or $UPSTREAMCTL_USER\n",
			reqs:   []string{root},
		},
		{
			name:   "wrong password",
			args:   api("--user", "admin:guess", "remove", "backend", "2"),
			setup:  auth,
			code:   exitAuth,
			stderr: "upstreamctl: authentication failed (401 Unauthorized)\n",
			reqs:   []string{root},
		},
		{
			name:   "--user",
			args:   api("--user", "admin:s3cret", "remove", "backend", "2"),
			setup:  auth,
			stdout: "backend: server 2 removed\n",
			reqs:   ok,
		},
		{
			name:   "UPSTREAMCTL_USER",
			args:   api("remove", "backend", "2"),
			env:    map[string]string{"UPSTREAMCTL_USER": "admin:s3cret"},
			setup:  auth,
			stdout: "backend: server 2 removed\n",
			reqs:   ok,
		},
		{
			name:   "--user overrides UPSTREAMCTL_USER",
			args:   api("--user", "admin:s3cret", "remove", "backend", "2"),
			env:    map[string]string{"UPSTREAMCTL_USER": "admin:stale"},
			setup:  auth,
			stdout: "backend: server 2 removed\n",
			reqs:   ok,
		},
		{
			name:   "credentials in the URL",
			args:   []string{"--api", "http://admin:s3cret@{host}/api", "remove", "backend", "2"},
			setup:  auth,
			stdout: "backend: server 2 removed\n",
			reqs:   ok,
		},
		{
			name:   "read-only user may read",
			args:   api("--user", "viewer:s3cret", "upstreams"),
			setup:  func(f *fakeAPI) { auth(f); clear(f.upstreams) },
			stdout: "NAME  PEERS  UP  DOWN  DRAINING  UNHEALTHY  ZONE\n",
			reqs:   []string{root, "GET /api/9/http/upstreams"},
		},
		{
			name:   "read-only user may not write",
			args:   api("--user", "viewer:s3cret", "remove", "backend", "2"),
			setup:  auth,
			code:   exitAuth,
			stderr: "upstreamctl: access denied (403 Forbidden)\n",
			reqs:   ok,
		},
		{
			name: "403 with an API error object",
			args: api("upstreams"),
			setup: func(f *fakeAPI) {
				f.intercept = func(w http.ResponseWriter, r *http.Request) {
					writeError(w, http.StatusForbidden, "forbidden by policy", "Forbidden")
				}
			},
			code:   exitAuth,
			stderr: "upstreamctl: forbidden by policy (403 Forbidden)\n",
			reqs:   []string{root},
		},
	})
}

func TestTransportAndResponseFailures(t *testing.T) {
	// A port that was just listening and is now closed refuses connections.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	runCases(t, []cliCase{
		{
			name:   "connection refused",
			args:   []string{"--api", closed + "/api", "upstreams"},
			code:   exitUnreachable,
			stderr: "upstreamctl: cannot reach " + closed + "/api: connection refused\n",
		},
		{
			name:   "password is redacted from messages",
			args:   []string{"--api", "http://admin:s3cret@" + l.Addr().String() + "/api", "upstreams"},
			code:   exitUnreachable,
			stderr: "upstreamctl: cannot reach http://admin:xxxxx@" + l.Addr().String() + "/api: connection refused\n",
		},
		{
			name: "timeout",
			// Long enough that a loaded machine still delivers the request
			// to the fake before the client gives up (reqs checks it).
			args: api("--timeout", "1s", "upstreams"),
			setup: func(f *fakeAPI) {
				f.intercept = func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
			},
			code:   exitUnreachable,
			stderr: "upstreamctl: cannot reach {api}: timed out after 1s\n",
			reqs:   []string{root},
		},
		{
			name: "non-API error page from a proxy in front",
			args: api("--api", "{api}/9", "upstreams"),
			setup: func(f *fakeAPI) {
				f.intercept = func(w http.ResponseWriter, r *http.Request) {
					htmlError(w, http.StatusBadGateway, "502 Bad Gateway")
				}
			},
			code:   exitAPI,
			stderr: "upstreamctl: unexpected response from {api}: 502 Bad Gateway\n",
			reqs:   []string{"GET /api/9/http/upstreams"},
		},
		{
			name: "invalid JSON in a success response",
			args: api("servers", "backend"),
			setup: func(f *fakeAPI) {
				f.intercept = func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }
			},
			code:   exitAPI,
			stderr: "upstreamctl: invalid response from {api}: invalid character '<' looking for beginning of value\n",
			reqs:   []string{root, "GET /api/9/http/upstreams/backend"},
		},
	})
}

func TestNginxSeconds(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"10", "10s", true},
		{"0", "0s", true},
		{"10s", "10s", true},
		{"1m", "60s", true},
		{"1h30m", "5400s", true},
		{"1.5s", "", false},
		{"500ms", "", false},
		{"-5s", "", false},
		{"ten", "", false},
	} {
		var n nginxSeconds
		err := n.Set(tc.in)
		if (err == nil) != tc.ok || n.v != tc.want {
			t.Errorf("Set(%q) = %q, %v; want %q, ok=%v", tc.in, n.v, err, tc.want, tc.ok)
		}
	}
}

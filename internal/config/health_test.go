package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const hcUpstream = "upstream backend {\nserver 127.0.0.1:8081;\n}\n"

// hcConf is an http block with the backend upstream and one server whose
// location / holds locBody.
func hcConf(extra, locBody string) string {
	return httpConf(hcUpstream + extra + "server {\nlisten 8080;\nlocation / {\n" + locBody + "\n}\n}")
}

func TestHealthCheckParams(t *testing.T) {
	base := HealthCheck{Upstream: "backend", Interval: 5 * time.Second, Fails: 1, Passes: 1, URI: "/", Type: "http",
		File: "nginx.conf", Line: 10, Host: "backend", ConnectTimeout: 60 * time.Second, ReadTimeout: 60 * time.Second}
	tests := []struct {
		name, extra, loc string
		want             func(*HealthCheck)
	}{
		{"defaults", "", "proxy_pass http://backend;\nhealth_check;", func(*HealthCheck) {}},
		{"all params", "match ok {\nstatus 200;\n}\n",
			"proxy_pass http://backend;\nhealth_check interval=100ms jitter=1s fails=3 passes=2 uri=/hc?x=1 port=9000 match=ok mandatory persistent;",
			func(h *HealthCheck) {
				h.Line = 13
				h.Interval, h.Jitter, h.Fails, h.Passes = 100*time.Millisecond, time.Second, 3, 2
				h.URI, h.Port, h.Match, h.Mandatory, h.Persistent = "/hc?x=1", 9000, "ok", true, true
			}},
		{"tcp", "", "proxy_pass http://backend;\nhealth_check type=tcp interval=2;",
			func(h *HealthCheck) { h.Type, h.Interval = "tcp", 2*time.Second }},
		{"health_check before proxy_pass", "", "health_check;\nproxy_pass http://backend;",
			func(h *HealthCheck) { h.Line = 9 }},
		{"literal Host and timeouts", "",
			"proxy_pass http://backend;\nproxy_set_header Host example.org;\nproxy_connect_timeout 2s;\nproxy_read_timeout 3s;\nhealth_check;",
			func(h *HealthCheck) {
				h.Line = 13
				h.Host, h.ConnectTimeout, h.ReadTimeout = "example.org", 2*time.Second, 3*time.Second
			}},
		{"variable Host", "", "proxy_pass http://backend;\nproxy_set_header Host $host;\nhealth_check;",
			func(h *HealthCheck) { h.Line = 11 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustBuild(t, hcConf(tc.extra, tc.loc))
			want := base
			tc.want(&want)
			if len(cfg.HTTP.HealthChecks) != 1 {
				t.Fatalf("HealthChecks: %v", cfg.HTTP.HealthChecks)
			}
			if got := *cfg.HTTP.HealthChecks[0]; !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
			loc := findLoc(cfg.HTTP.Servers[0].Locations, "/")
			if loc.HealthCheck != cfg.HTTP.HealthChecks[0] {
				t.Fatalf("location's HealthCheck %v", loc.HealthCheck)
			}
		})
	}
}

// health_check is not inherited, and several may name one upstream.
func TestHealthCheckPlacement(t *testing.T) {
	cfg := mustBuild(t, httpConf(hcUpstream+`server {
listen 8080;
location / {
proxy_pass http://backend;
health_check uri=/a;
health_check uri=/b;
location /inner {
proxy_pass http://backend;
}
}
location /other {
proxy_pass http://backend;
health_check uri=/c;
}
}`))
	var uris []string
	for _, h := range cfg.HTTP.HealthChecks {
		uris = append(uris, h.Upstream+h.URI)
	}
	if want := []string{"backend/a", "backend/b", "backend/c"}; !reflect.DeepEqual(uris, want) {
		t.Fatalf("checks %v, want %v", uris, want)
	}
	root := findLoc(cfg.HTTP.Servers[0].Locations, "/")
	if root.HealthCheck == nil || root.HealthCheck.URI != "/a" {
		t.Fatalf("/ HealthCheck %+v", root.HealthCheck)
	}
	if in := findLoc(cfg.HTTP.Servers[0].Locations, "/inner"); in.HealthCheck != nil {
		t.Fatalf("/inner inherited %+v", in.HealthCheck)
	}
	if cfg.HTTP.Matches != nil {
		t.Fatalf("Matches %v", cfg.HTTP.Matches)
	}
}

func TestMatchRules(t *testing.T) {
	cfg := mustBuild(t, hcConf(`match m {
status 200-399 418;
status ! 500;
header Content-Type ~ text/html;
header X-A = b;
header X-B != c;
header X-Present;
header ! X-Bad;
body ~ "ok";
body !~ "err";
}
`, "proxy_pass http://backend;\nhealth_check match=m;"))
	m := cfg.HTTP.Matches["m"]
	if m == nil || m.Name != "m" || m.Line != 6 {
		t.Fatalf("match %+v", m)
	}
	type rule struct {
		kind, header, op, value string
		negate                  bool
		codes                   [][2]int
		re                      string
	}
	want := []rule{
		{kind: "status", codes: [][2]int{{200, 399}, {418, 418}}},
		{kind: "status", negate: true, codes: [][2]int{{500, 500}}},
		{kind: "header", header: "Content-Type", op: "~", value: "text/html", re: "text/html"},
		{kind: "header", header: "X-A", op: "=", value: "b"},
		{kind: "header", header: "X-B", op: "!=", value: "c", negate: true},
		{kind: "header", header: "X-Present"},
		{kind: "header", header: "X-Bad", negate: true},
		{kind: "body", op: "~", value: "ok", re: "ok"},
		{kind: "body", op: "!~", value: "err", re: "err", negate: true},
	}
	if len(m.Rules) != len(want) {
		t.Fatalf("%d rules", len(m.Rules))
	}
	for i, r := range m.Rules {
		got := rule{kind: r.Kind, header: r.Header, op: r.Op, value: r.Value, negate: r.Negate, codes: r.Codes}
		if r.Re != nil {
			got.re = r.Re.String()
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("rule %d: got %+v, want %+v", i, got, want[i])
		}
	}
}

func TestHealthCheckErrors(t *testing.T) {
	tests := []struct {
		name, extra, loc, want string
	}{
		{"unknown match", "", "proxy_pass http://backend;\nhealth_check match=nope;",
			`match "nope" not found in nginx.conf:10`},
		{"no proxy_pass", "", "health_check;",
			`"health_check" requires "proxy_pass" in the same location in nginx.conf:9`},
		{"implicit upstream", "", "proxy_pass http://127.0.0.1:9;\nhealth_check;",
			`"health_check" requires "proxy_pass" to an upstream{} group, not "127.0.0.1:9" in nginx.conf:10`},
		{"content handler wins", "", "proxy_pass http://backend;\ncontent_by_lua_block { ngx.say(1) }\nhealth_check;",
			`"health_check" requires "proxy_pass" in the same location in nginx.conf:11`},
		{"bad interval", "", "proxy_pass http://backend;\nhealth_check interval=0;",
			`invalid parameter "interval=0" in nginx.conf:10`},
		{"bad fails", "", "proxy_pass http://backend;\nhealth_check fails=0;",
			`invalid parameter "fails=0" in nginx.conf:10`},
		{"bad passes", "", "proxy_pass http://backend;\nhealth_check passes=x;",
			`invalid parameter "passes=x" in nginx.conf:10`},
		{"bad uri", "", "proxy_pass http://backend;\nhealth_check uri=hc;",
			`invalid parameter "uri=hc" in nginx.conf:10`},
		{"bad port", "", "proxy_pass http://backend;\nhealth_check port=70000;",
			`invalid parameter "port=70000" in nginx.conf:10`},
		{"bad type", "", "proxy_pass http://backend;\nhealth_check type=grpc;",
			`invalid parameter "type=grpc" in nginx.conf:10`},
		{"unknown param", "", "proxy_pass http://backend;\nhealth_check keepalive_time=60s;",
			`invalid parameter "keepalive_time=60s" in nginx.conf:10`},
		{"bare word", "", "proxy_pass http://backend;\nhealth_check sometimes;",
			`invalid parameter "sometimes" in nginx.conf:10`},
		{"persistent alone", "", "proxy_pass http://backend;\nhealth_check persistent;",
			`"persistent" requires "mandatory" in nginx.conf:10`},
		{"tcp with uri", "", "proxy_pass http://backend;\nhealth_check type=tcp uri=/x;",
			`"uri" and "match" require type=http in nginx.conf:10`},
		{"duplicate match", "match m {\n}\nmatch m {\n}\n", "proxy_pass http://backend;",
			`duplicate match "m" in nginx.conf:8`},
		{"bad status", "match m {\nstatus 20;\n}\n", "proxy_pass http://backend;",
			`invalid status "20" in nginx.conf:7`},
		{"bad status range", "match m {\nstatus 400-200;\n}\n", "proxy_pass http://backend;",
			`invalid status "400-200" in nginx.conf:7`},
		{"bad header op", "match m {\nheader X ** y;\n}\n", "proxy_pass http://backend;",
			`invalid operator "**" in nginx.conf:7`},
		{"bad body op", "match m {\nbody = x;\n}\n", "proxy_pass http://backend;",
			`invalid operator "=" in nginx.conf:7`},
		{"bad body regex", "match m {\nbody ~ \"(x\";\n}\n", "proxy_pass http://backend;",
			"pcre_compile() failed: missing closing ): `(x` in \"(x\" in nginx.conf:7"},
		{"unknown in match", "match m {\nlisten 80;\n}\n", "proxy_pass http://backend;",
			`unknown directive "listen" in nginx.conf:7`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildConf(t, hcConf(tc.extra, tc.loc))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err %v\nwant %s", err, tc.want)
			}
		})
	}
	for _, place := range []string{"health_check;", "server {\nhealth_check;\n}"} {
		if _, err := buildConf(t, httpConf(place)); err == nil || !strings.Contains(err.Error(), `"health_check" directive is not allowed here`) {
			t.Errorf("%q: %v", place, err)
		}
	}
	if _, err := buildConf(t, httpConf("server {\nmatch m {\n}\n}")); err == nil || !strings.Contains(err.Error(), `"match" directive is not allowed here`) {
		t.Errorf("match in server: %v", err)
	}
}

package config

import (
	"strings"
	"testing"
)

func TestPrometheusDirective(t *testing.T) {
	conf := httpConf(`upstream backend { server 127.0.0.1:8081; }
server {
    listen 8080;
    location = /metrics {
        prometheus;
        allow 127.0.0.1;
        deny all;
    }
    location /outer {
        prometheus;
        location /outer/inner { }
    }
    location / { proxy_pass http://backend; }
}`)
	cfg := mustBuild(t, conf)
	locs := cfg.HTTP.Servers[0].Locations
	tests := []struct {
		pattern string
		want    bool
	}{
		{"/metrics", true},
		{"/outer", true},
		{"/outer/inner", false}, // a content handler is not inherited
		{"/", false},
	}
	for _, tc := range tests {
		loc := findLoc(locs, tc.pattern)
		if loc == nil {
			t.Fatalf("no location %s", tc.pattern)
		}
		if loc.Prometheus != tc.want {
			t.Errorf("%s: Prometheus = %v, want %v", tc.pattern, loc.Prometheus, tc.want)
		}
	}
	if m := findLoc(locs, "/metrics"); !m.Guard.Active() {
		t.Errorf("/metrics lost its allow/deny: %+v", m.Guard)
	}
	if cfg.HTTP.Servers[0].Root.Prometheus {
		t.Error("the server's root location has Prometheus")
	}
}

func TestPrometheusErrors(t *testing.T) {
	tests := []struct {
		name, conf, want string
	}{
		{"argument", "server { location /m { prometheus on; } }",
			`invalid number of arguments in "prometheus" directive in nginx.conf:3`},
		{"duplicate", "server { location /m { prometheus; prometheus; } }",
			`"prometheus" directive is duplicate in nginx.conf:3`},
		{"in server", "server { prometheus; }",
			`"prometheus" directive is not allowed here in nginx.conf:3`},
		{"in http", "prometheus;",
			`"prometheus" directive is not allowed here in nginx.conf:3`},
		{"with proxy_pass", "upstream b { server 127.0.0.1:1; }\nserver {\nlocation /m {\nproxy_pass http://b;\nprometheus;\n}\n}",
			`"prometheus" cannot be combined with "proxy_pass" in location "/m" in nginx.conf:5`},
		{"with api", "server {\nlocation /m {\nprometheus;\napi;\n}\n}",
			`"prometheus" cannot be combined with "api" in location "/m" in nginx.conf:4`},
		{"with return", "server {\nlocation /m {\nprometheus;\nreturn 204;\n}\n}",
			`"prometheus" cannot be combined with "return" in location "/m" in nginx.conf:4`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := buildConf(t, httpConf(tc.conf))
			if err == nil {
				t.Fatal("built without error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
		})
	}
}

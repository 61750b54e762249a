package config

import (
	"net"
	"path/filepath"
	"testing"

	"upstreamd/internal/nginxconf"
)

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

const testPrefix = "/srv/ngx"

// testResolver is the injected resolver of every test: a few fixed names,
// everything else not found.
func testResolver(host string) ([]string, error) {
	switch host {
	case "localhost":
		return []string{"127.0.0.1", "::1"}, nil
	case "backend.example":
		return []string{"10.0.0.1", "10.0.0.2", "10.0.0.1"}, nil
	case "v6.example":
		return []string{"2001:db8::1"}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// buildConf parses conf as "nginx.conf" and builds it with the test prefix
// and resolver.
func buildConf(t *testing.T, conf string) (*Config, error) {
	t.Helper()
	return buildOpts(t, Options{}, conf)
}

func buildOpts(t *testing.T, opts Options, conf string) (*Config, error) {
	t.Helper()
	tree, err := nginxconf.Parse("nginx.conf", []byte(conf))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if opts.Prefix == "" {
		opts.Prefix = testPrefix
	}
	if opts.Resolve == nil {
		opts.Resolve = testResolver
	}
	return Build(opts, tree)
}

func mustBuild(t *testing.T, conf string) *Config {
	t.Helper()
	cfg, err := buildConf(t, conf)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return cfg
}

// httpConf wraps an http{} body into a whole configuration.
func httpConf(body string) string {
	return "events {}\nhttp {\n" + body + "\n}\n"
}

// loc finds a location by pattern, depth first.
func findLoc(locs []*Location, pattern string) *Location {
	for _, l := range locs {
		if l.Pattern == pattern {
			return l
		}
		if f := findLoc(l.Locations, pattern); f != nil {
			return f
		}
	}
	return nil
}

package config

import "time"

// HealthCheck is NGINX Plus's `health_check` in a location that proxies to
// an upstream: the upstream's peers are probed actively.
type HealthCheck struct {
	Upstream   string        // the upstream of the location's proxy_pass
	Interval   time.Duration // default 5s
	Jitter     time.Duration // default 0
	Fails      int           // default 1
	Passes     int           // default 1
	URI        string        // default "/"
	Port       int           // 0 = the peer's own port
	Match      string        // name of a match{} block; "" = status 2xx/3xx
	Mandatory  bool
	Persistent bool
	Type       string // "http" (default) or "tcp"
	File       string
	Line       int
}

// Match is a `match NAME { ... }` block of http: the conditions a health
// check response must meet. Its rules are defined next to the directive's
// handler.
type Match struct {
	Name  string
	File  string
	Line  int
	Rules []MatchRule
}

// MatchRule is one line of a match block (status, header or body test).
type MatchRule struct {
	Kind   string // "status", "header", "body"
	Negate bool
	Args   []string // the directive's arguments as written
}

package config

import (
	"regexp"
	"time"
)

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

	// From the location, so probes look like its requests: the Host header
	// (see healthHost) and proxy_connect_timeout / proxy_read_timeout.
	Host                        string
	ConnectTimeout, ReadTimeout time.Duration
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
// A response matches the block when it passes every rule.
type MatchRule struct {
	Kind string   // "status", "header", "body"
	Args []string // the directive's arguments as written

	// Negate: "status ! ...", "header ! NAME", the != and !~ operators.
	Negate bool
	// Codes are the inclusive status ranges of a status rule (one code is
	// a range of one); the rule holds when the status is in any of them.
	Codes [][2]int
	// Header is the header name of a header rule; Op is "" (presence),
	// "=", "!=", "~" or "!~", and Value its operand.
	Header, Op, Value string
	// Re is the compiled regex of the ~ and !~ operators (header and body).
	Re *regexp.Regexp
}

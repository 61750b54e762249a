// Package config turns the nginx-syntax tree from nginxconf into a typed,
// validated configuration. Every value here has already been checked and has
// nginx's default applied; inheritance (http → server → location) is resolved
// so that each Location carries its effective settings.
package config

import (
	"regexp"
	"time"
)

// Config is one whole configuration (one generation).
type Config struct {
	Prefix   string // -p; relative paths in the config resolve under it
	ConfFile string // absolute path of the main file

	WorkerProcesses   int // 0 means "auto" (number of CPUs)
	ErrorLogs         []ErrorLog
	PIDFile           string // absolute; default PREFIX/logs/nginx.pid
	WorkerConnections int    // default 512
	MultiAccept       bool   // events { multi_accept on; }, default off

	HTTP *HTTP // nil when there is no http block
}

// ErrorLog is one `error_log FILE [LEVEL]`. Path is absolute, or "stderr".
type ErrorLog struct {
	Path  string
	Level string // debug info notice warn error crit alert emerg; default "error"
}

// HTTP is the http{} block.
type HTTP struct {
	// Upstreams in config order, followed by the implicit ones created by
	// `proxy_pass http://host:port` (Implicit true), in order of appearance.
	Upstreams []*Upstream
	Servers   []*Server

	Types map[string]string // lower-case extension → MIME type (types{} or the bundled mime.types); shared, do not modify

	Lua LuaMain

	// Matches are the match{} blocks by name (health_check match=NAME).
	Matches map[string]*Match
	// HealthChecks lists every health_check, in config order.
	HealthChecks []*HealthCheck
}

// LuaMain holds the http-level Lua settings.
type LuaMain struct {
	PackagePath                                                string // lua_package_path, ";;" already expanded to the default path
	PackageCPath                                               string
	CodeCache                                                  bool // lua_code_cache, default on
	SharedDicts                                                []SharedDict
	Init                                                       *LuaCode      // init_by_lua*
	InitWorker                                                 *LuaCode      // init_worker_by_lua*
	SocketConnectTimeout, SocketSendTimeout, SocketReadTimeout time.Duration // default 60s each
	SocketPoolSize                                             int           // default 30
	SocketKeepaliveTimeout                                     time.Duration // default 60s
}

// SharedDict is one `lua_shared_dict NAME SIZE`.
type SharedDict struct {
	Name string
	Size int64
}

// LuaCode is the code of one *_by_lua, *_by_lua_block or *_by_lua_file
// directive.
type LuaCode struct {
	Source    string // inline code; empty for *_file
	File      string // absolute path for *_by_lua_file (re-read per request when code cache is off)
	ChunkName string // what ngx_lua names the chunk in tracebacks, e.g. "content_by_lua(nginx.conf:12)"
	Line      int    // line where inline code starts, so Lua line numbers map back to the config
	ConfFile  string
}

// Method is the balancing method of an upstream.
type Method int

const (
	RoundRobin Method = iota
	LeastConn
	IPHash
	Hash
	Random
)

// Upstream is an upstream{} block, or an implicit upstream from proxy_pass.
type Upstream struct {
	// Name is the upstream{} name as written, or for an implicit upstream
	// "host:port" with the port always present (80 when the URL has none),
	// which is how lua-upstream-nginx-module's get_upstreams() names it.
	Name     string
	Implicit bool
	File     string // where the upstream{} block (or the first proxy_pass naming it) is
	Line     int

	Servers []*UpstreamServer

	Method            Method
	HashKey           string // `hash KEY` (raw, may contain variables)
	HashConsistent    bool
	RandomTwo         bool          // `random two [least_conn]`
	Keepalive         int           // idle connections kept per upstream; 0 = none configured
	KeepaliveTimeout  time.Duration // default 60s
	KeepaliveRequests int           // default 1000
	Zone              string
	// StateFile is `state FILE` (absolute): the servers are loaded from it at
	// start instead of `server` lines, and every runtime change is saved to it.
	StateFile string
	ZoneSize  int64 // `zone NAME SIZE`; 0 when no size was given
}

// UpstreamServer is one `server` line of an upstream.
type UpstreamServer struct {
	Name        string        // as written (no port added; Addrs carry port 80 when none is given)
	Addrs       []string      // resolved ip:port, one per address (several peers when a name resolves to several)
	Weight      int           // default 1
	MaxFails    int           // default 1
	FailTimeout time.Duration // default 10s
	MaxConns    int
	Backup      bool
	Down        bool
	Drain       bool          // NGINX Plus `drain`
	SlowStart   time.Duration // NGINX Plus `slow_start=`
	Route       string        // NGINX Plus `route=` (shown, not used to balance)
	File        string
	Line        int
}

// Listen is one `listen` of a server.
type Listen struct {
	// Addr is host:port as given to net.Listen, e.g. "0.0.0.0:8080",
	// "127.0.0.1:80", "[::]:80". nginx listens on IPv6 addresses with
	// IPV6_V6ONLY set, so "[::]:80" and "0.0.0.0:80" can coexist. A host
	// name is resolved at load: one Listen per address.
	Addr          string
	DefaultServer bool
	Backlog       int  // backlog=N; default 511 (nginx's NGX_LISTEN_BACKLOG on Linux)
	ReusePort     bool // reuseport
	File          string
	Line          int
}

// Server is a server{} block of http.
type Server struct {
	Listens []Listen // default "*:80" → "0.0.0.0:80" (nginx: 8000 when not root; we use 80 when root, 8000 otherwise)
	Names   []string // server_name values as written ("" allowed); regex names start with "~"
	File    string
	Line    int

	// Root is the server-level location settings, used when no location matches.
	Root *Location
	// Locations in config order (nested ones in their parent's Locations).
	Locations []*Location
}

// Location is a location{} block with its effective (inherited) settings.
type Location struct {
	Modifier string         // "" (prefix), "=", "^~", "~", "~*", "@"
	Pattern  string         // as written; for a named location it includes the "@" ("@fallback")
	Regex    *regexp.Regexp // for "~" and "~*"
	File     string
	Line     int

	Locations []*Location // nested
	Settings
}

// Settings are the per-location settings, inherited from http and server.
//
// Inheritance follows nginx: a scalar set at an outer level applies until an
// inner level sets it; the lists (add_header, error_page, access_log,
// proxy_set_header, index, types) are taken from the outer level only when
// the inner level has none of its own. Three things are NOT inherited, as in
// nginx: Return (rewrite-module directives belong to their own level: a
// server-level `return`, found in Server.Root.Return, runs for every request
// of that server before any location is looked at), Proxy and Content (the
// content handler belongs to one location; nested locations don't get it).
// The slices and maps are shared between levels: treat them as read-only.
type Settings struct {
	DefaultType       string // default "text/plain" (nginx's default when not set)
	Root              string // absolute (or raw when it contains variables); default PREFIX/html
	Index             []string
	Return            *Return
	AddHeaders        []AddHeader
	ErrorPages        []ErrorPage
	AccessLogs        []AccessLog   // empty = off; default PREFIX/logs/access.log combined
	KeepaliveTimeout  time.Duration // default 75s
	ClientMaxBodySize int64         // default 1m; 0 = unlimited

	KeepaliveHeaderTimeout time.Duration     // second argument of keepalive_timeout (Keep-Alive: timeout=N header); 0 = not sent
	KeepaliveRequests      int               // default 1000
	Types                  map[string]string // effective extension → MIME type map (types{} may appear in server/location too)
	ServerTokens           bool              // server_tokens, default on ("build" counts as on)

	Proxy *ProxyPass
	// ProxySetHeaders is the effective list: the proxy_set_header entries in
	// force, followed by nginx's defaults that were not overridden: Host
	// $proxy_host, Connection close, and TE, Keep-Alive, Expect, Upgrade with
	// an empty value. An entry with an empty Value means the header is not
	// sent, and the client's header of that name is not passed either.
	// (nginx's Content-Length/Transfer-Encoding entries are left to the proxy,
	// which frames the request body itself.)
	ProxySetHeaders          []Header
	ProxyHTTPVersion         string        // "1.0" (default) or "1.1"
	ProxyConnectTimeout      time.Duration // default 60s
	ProxySendTimeout         time.Duration // default 60s
	ProxyReadTimeout         time.Duration // default 60s
	ProxyNextUpstream        NextUpstream  // default error|timeout
	ProxyNextUpstreamTries   int           // 0 = unlimited
	ProxyNextUpstreamTimeout time.Duration // 0 = unlimited
	ProxyBuffering           bool          // default on

	Rewrite, Access, Content, HeaderFilter, BodyFilter, Log *LuaCode

	// Guard is allow/deny + auth_basic + satisfy, checked in nginx's access
	// phase before access_by_lua.
	Guard Guard
	// API is the NGINX Plus REST API handler (`api`), nil when not set.
	API *API
	// Prometheus is the `prometheus` metrics handler of a location.
	Prometheus bool
	// HealthCheck is `health_check` (not inherited), nil when not set.
	HealthCheck *HealthCheck

	LuaCodeCache                                                        bool // lua_code_cache, default on (may be set per server/location)
	LuaSocketConnectTimeout, LuaSocketSendTimeout, LuaSocketReadTimeout time.Duration
	LuaSocketPoolSize                                                   int
	LuaSocketKeepaliveTimeout                                           time.Duration
}

// Return is `return code [text|URL]` or `return URL`.
type Return struct {
	Code int
	Text string // may contain variables; for 301/302/303/307/308 it is the Location
}

// AddHeader is one `add_header NAME VALUE [always]`.
type AddHeader struct {
	Name, Value string
	Always      bool
}

// Header is a header name and a value template (may contain variables).
type Header struct {
	Name, Value string
}

// ErrorPage is `error_page CODE... [=[RESPONSE]] URI`.
type ErrorPage struct {
	Codes    []int
	Response int // 0: keep the original code; -1: "=" (code from the handled URI)
	URI      string
}

// AccessLog is one `access_log PATH [FORMAT [buffer=SIZE] [flush=TIME] [if=COND]]`;
// Path is absolute or "stderr"/"/dev/stdout".
type AccessLog struct {
	Path       string
	Format     string // the log_format's pattern (combined by default), joined into one string
	FormatName string // "combined" by default
	Escape     string // log_format escape=: "default", "json" or "none"
	Buffer     int64  // buffer=SIZE, 0 when not given
	Flush      time.Duration
	If         string // if=CONDITION (raw, may contain variables); "" when not given
}

// ProxyPass is `proxy_pass URL`.
type ProxyPass struct {
	Scheme     string // "http" (https accepted later)
	Upstream   string // name of the upstream (named or implicit "host:port")
	URI        string // URI part of the URL ("" when none, "/" when just a slash)
	HasURI     bool
	HostHeader string // nginx's $proxy_host: "backend" or "host:port" (port omitted when 80)
}

// NextUpstream is the set of proxy_next_upstream conditions.
type NextUpstream uint32

const (
	NextError NextUpstream = 1 << iota
	NextTimeout
	NextInvalidHeader
	NextHTTP500
	NextHTTP502
	NextHTTP503
	NextHTTP504
	NextHTTP403
	NextHTTP404
	NextHTTP429
	NextNonIdempotent
	NextOff
)

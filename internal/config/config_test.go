package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var defaultHeaders = []Header{
	{"Host", "$proxy_host"}, {"Connection", "close"},
	{"TE", ""}, {"Keep-Alive", ""}, {"Expect", ""}, {"Upgrade", ""},
}

func TestDefaults(t *testing.T) {
	defer func(f func() int) { getuid = f }(getuid)
	for _, tc := range []struct {
		uid  int
		addr string
	}{{0, "0.0.0.0:80"}, {1000, "0.0.0.0:8000"}} {
		getuid = func() int { return tc.uid }
		cfg := mustBuild(t, httpConf("server {\nlocation / {}\n}"))

		if cfg.Prefix != testPrefix || cfg.ConfFile != testPrefix+"/conf/nginx.conf" {
			t.Errorf("prefix %q conf %q", cfg.Prefix, cfg.ConfFile)
		}
		if cfg.WorkerProcesses != 1 || cfg.WorkerConnections != 512 || cfg.MultiAccept {
			t.Errorf("workers %d connections %d multi_accept %v", cfg.WorkerProcesses, cfg.WorkerConnections, cfg.MultiAccept)
		}
		if want := []ErrorLog{{testPrefix + "/logs/error.log", "error"}}; !reflect.DeepEqual(cfg.ErrorLogs, want) {
			t.Errorf("error logs %+v", cfg.ErrorLogs)
		}
		if cfg.PIDFile != testPrefix+"/logs/nginx.pid" {
			t.Errorf("pid %q", cfg.PIDFile)
		}
		h := cfg.HTTP
		if h.Types["html"] != "text/html" || h.Types["png"] != "image/png" {
			t.Errorf("types not the bundled mime.types")
		}
		lua := h.Lua
		if !lua.CodeCache || lua.SocketConnectTimeout != 60*time.Second || lua.SocketSendTimeout != 60*time.Second ||
			lua.SocketReadTimeout != 60*time.Second || lua.SocketPoolSize != 30 || lua.SocketKeepaliveTimeout != 60*time.Second {
			t.Errorf("lua defaults %+v", lua)
		}
		if lua.PackagePath != DefaultLuaPath(testPrefix) || lua.PackageCPath != DefaultLuaCPath(testPrefix) {
			t.Errorf("lua paths %q %q", lua.PackagePath, lua.PackageCPath)
		}
		if len(h.Upstreams) != 0 || len(h.Servers) != 1 {
			t.Fatalf("upstreams %d servers %d", len(h.Upstreams), len(h.Servers))
		}
		srv := h.Servers[0]
		if want := []Listen{{Addr: tc.addr, Backlog: 511, File: "nginx.conf", Line: 3}}; !reflect.DeepEqual(srv.Listens, want) {
			t.Errorf("uid %d: listens %+v", tc.uid, srv.Listens)
		}
		if !reflect.DeepEqual(srv.Names, []string{""}) {
			t.Errorf("names %q", srv.Names)
		}
		for _, l := range []*Location{srv.Root, srv.Locations[0]} {
			s := l.Settings
			checks := []struct {
				what      string
				got, want any
			}{
				{"default_type", s.DefaultType, "text/plain"},
				{"root", s.Root, testPrefix + "/html"},
				{"index", s.Index, []string{"index.html"}},
				{"access_log", s.AccessLogs, []AccessLog{{Path: testPrefix + "/logs/access.log", Format: combinedFormat, FormatName: "combined", Escape: "default"}}},
				{"keepalive_timeout", s.KeepaliveTimeout, 75 * time.Second},
				{"keepalive_requests", s.KeepaliveRequests, 1000},
				{"client_max_body_size", s.ClientMaxBodySize, int64(1 << 20)},
				{"server_tokens", s.ServerTokens, true},
				{"proxy_set_header", s.ProxySetHeaders, defaultHeaders},
				{"proxy_http_version", s.ProxyHTTPVersion, "1.0"},
				{"proxy_connect_timeout", s.ProxyConnectTimeout, 60 * time.Second},
				{"proxy_send_timeout", s.ProxySendTimeout, 60 * time.Second},
				{"proxy_read_timeout", s.ProxyReadTimeout, 60 * time.Second},
				{"proxy_next_upstream", s.ProxyNextUpstream, NextError | NextTimeout},
				{"proxy_next_upstream_tries", s.ProxyNextUpstreamTries, 0},
				{"proxy_next_upstream_timeout", s.ProxyNextUpstreamTimeout, time.Duration(0)},
				{"proxy_buffering", s.ProxyBuffering, true},
				{"lua_code_cache", s.LuaCodeCache, true},
				{"lua_socket_pool_size", s.LuaSocketPoolSize, 30},
			}
			for _, c := range checks {
				if !reflect.DeepEqual(c.got, c.want) {
					t.Errorf("%q %s = %#v, want %#v", l.Pattern, c.what, c.got, c.want)
				}
			}
			if s.Return != nil || s.Proxy != nil || s.Content != nil || s.AddHeaders != nil || s.ErrorPages != nil {
				t.Errorf("%q has unexpected settings %+v", l.Pattern, s)
			}
			if s.Types["css"] != "text/css" {
				t.Errorf("%q types not inherited", l.Pattern)
			}
		}
	}

	cfg := mustBuild(t, "events {}\n")
	if cfg.HTTP != nil {
		t.Errorf("HTTP without http{}: %+v", cfg.HTTP)
	}
}

func TestMain(t *testing.T) {
	cfg := mustBuild(t, `
worker_processes auto;
error_log stderr;
error_log logs/debug.log debug_http;
error_log /var/log/ngx.log warn;
pid run/ngx.pid;
daemon off;
master_process on;
worker_rlimit_nofile 4096;
events { worker_connections 4096; use epoll; multi_accept on; }
http { error_log logs/http.log info; server { error_log logs/srv.log; } }
`)
	if cfg.WorkerProcesses != 0 || cfg.WorkerConnections != 4096 || !cfg.MultiAccept {
		t.Errorf("workers %d connections %d multi_accept %v", cfg.WorkerProcesses, cfg.WorkerConnections, cfg.MultiAccept)
	}
	want := []ErrorLog{{"stderr", "error"}, {testPrefix + "/logs/debug.log", "debug"}, {"/var/log/ngx.log", "warn"}}
	if !reflect.DeepEqual(cfg.ErrorLogs, want) {
		t.Errorf("error logs %+v", cfg.ErrorLogs)
	}
	if cfg.PIDFile != testPrefix+"/run/ngx.pid" {
		t.Errorf("pid %q", cfg.PIDFile)
	}

	cfg, err := buildOpts(t, Options{Globals: "worker_processes 3; pid /run/x.pid;"}, "events {}\n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WorkerProcesses != 3 || cfg.PIDFile != "/run/x.pid" {
		t.Errorf("-g: workers %d pid %q", cfg.WorkerProcesses, cfg.PIDFile)
	}
}

func TestInheritance(t *testing.T) {
	cfg := mustBuild(t, httpConf(`
default_type application/octet-stream;
root html2;
add_header X-Http 1;
proxy_set_header X-Http 1;
access_log logs/http.log;
rewrite_by_lua_block { r_http() }
log_by_lua 'l_http()';
keepalive_timeout 5s 4;
types { text/x-a a; }
lua_socket_read_timeout 3s;
server {
    listen 8080;
    add_header X-Srv 1 always;
    proxy_read_timeout 5s;
    proxy_next_upstream error http_502;
    proxy_next_upstream http_503;
    lua_code_cache off;
    location /a {
        proxy_set_header Host $host;
        proxy_set_header connection "";
        access_log off;
        proxy_http_version 1.1;
        rewrite_by_lua_block { r_a() }
        proxy_pass http://127.0.0.1:9000/;
        location /a/b {
            add_header X-B 1;
            types {}
            proxy_next_upstream off;
            content_by_lua_block { ngx.say("b") }
        }
    }
    location /c {
        access_log logs/c.log;
        index a.htm b.htm;
        index /c.htm;
        error_page 404 /404.html;
        root /abs/;
        default_type text/html;
    }
}
server {
    listen 8081;
    return 301 http://example.com$request_uri;
    location /x { }
    location /y { return 404; }
}
client_max_body_size 10m;
`))
	srv := cfg.HTTP.Servers[0]
	root := srv.Root.Settings
	if root.DefaultType != "application/octet-stream" || root.Root != testPrefix+"/html2" ||
		root.KeepaliveTimeout != 5*time.Second || root.KeepaliveHeaderTimeout != 4*time.Second ||
		root.ProxyReadTimeout != 5*time.Second || root.ClientMaxBodySize != 10<<20 || root.LuaCodeCache ||
		root.LuaSocketReadTimeout != 3*time.Second {
		t.Errorf("server settings %+v", root)
	}
	if !reflect.DeepEqual(root.AddHeaders, []AddHeader{{"X-Srv", "1", true}}) {
		t.Errorf("server add_header %+v", root.AddHeaders)
	}
	if want := append([]Header{{"X-Http", "1"}}, defaultHeaders...); !reflect.DeepEqual(root.ProxySetHeaders, want) {
		t.Errorf("server proxy_set_header %+v", root.ProxySetHeaders)
	}
	if len(root.AccessLogs) != 1 || root.AccessLogs[0].Path != testPrefix+"/logs/http.log" || root.AccessLogs[0].Format != combinedFormat {
		t.Errorf("server access_log %+v", root.AccessLogs)
	}
	if root.Rewrite == nil || !strings.Contains(root.Rewrite.Source, "r_http") || root.Log == nil || root.Log.Source != "l_http()" {
		t.Errorf("server lua phases %+v %+v", root.Rewrite, root.Log)
	}
	if root.ProxyNextUpstream != NextError|NextHTTP502|NextHTTP503 {
		t.Errorf("server proxy_next_upstream %b", root.ProxyNextUpstream)
	}
	if !reflect.DeepEqual(root.Types, map[string]string{"a": "text/x-a"}) || !reflect.DeepEqual(cfg.HTTP.Types, root.Types) {
		t.Errorf("types %v / %v", root.Types, cfg.HTTP.Types)
	}
	if cfg.HTTP.Lua.CodeCache != true || cfg.HTTP.Lua.SocketReadTimeout != 3*time.Second {
		t.Errorf("http lua %+v", cfg.HTTP.Lua)
	}

	a := findLoc(srv.Locations, "/a")
	wantA := []Header{{"Host", "$host"}, {"connection", ""}, {"TE", ""}, {"Keep-Alive", ""}, {"Expect", ""}, {"Upgrade", ""}}
	if !reflect.DeepEqual(a.ProxySetHeaders, wantA) {
		t.Errorf("/a proxy_set_header %+v", a.ProxySetHeaders)
	}
	if a.AccessLogs != nil || a.ProxyHTTPVersion != "1.1" || a.Proxy == nil || a.Content != nil ||
		!reflect.DeepEqual(a.AddHeaders, root.AddHeaders) || !strings.Contains(a.Rewrite.Source, "r_a") || a.Log != root.Log {
		t.Errorf("/a settings %+v", a.Settings)
	}

	b := findLoc(srv.Locations, "/a/b")
	if !reflect.DeepEqual(b.AddHeaders, []AddHeader{{"X-B", "1", false}}) {
		t.Errorf("/a/b add_header %+v", b.AddHeaders)
	}
	if !reflect.DeepEqual(b.ProxySetHeaders, wantA) || b.ProxyHTTPVersion != "1.1" || b.AccessLogs != nil {
		t.Errorf("/a/b inherited from /a: %+v", b.Settings)
	}
	if b.Proxy != nil || b.Content == nil || b.Rewrite != a.Rewrite {
		t.Errorf("/a/b handlers: proxy %+v content %+v", b.Proxy, b.Content)
	}
	if b.Types == nil || len(b.Types) != 0 {
		t.Errorf("/a/b types{} should be empty, got %v", b.Types)
	}
	if b.ProxyNextUpstream != NextOff {
		t.Errorf("/a/b proxy_next_upstream %b", b.ProxyNextUpstream)
	}

	c := findLoc(srv.Locations, "/c")
	if len(c.AccessLogs) != 1 || c.AccessLogs[0].Path != testPrefix+"/logs/c.log" {
		t.Errorf("/c access_log %+v", c.AccessLogs)
	}
	if !reflect.DeepEqual(c.Index, []string{"a.htm", "b.htm", "/c.htm"}) || c.Root != "/abs" || c.DefaultType != "text/html" {
		t.Errorf("/c index %q root %q type %q", c.Index, c.Root, c.DefaultType)
	}
	if !reflect.DeepEqual(c.ErrorPages, []ErrorPage{{Codes: []int{404}, URI: "/404.html"}}) {
		t.Errorf("/c error_page %+v", c.ErrorPages)
	}

	srv2 := cfg.HTTP.Servers[1]
	if r := srv2.Root.Return; r == nil || r.Code != 301 || r.Text != "http://example.com$request_uri" {
		t.Errorf("server return %+v", r)
	}
	if x := findLoc(srv2.Locations, "/x"); x.Return != nil {
		t.Errorf("return must not be inherited: %+v", x.Return)
	}
	if y := findLoc(srv2.Locations, "/y"); y.Return == nil || y.Return.Code != 404 || y.Return.Text != "" {
		t.Errorf("/y return %+v", y.Return)
	}
	if srv2.Root.AddHeaders == nil || srv2.Root.ProxyReadTimeout != 60*time.Second {
		t.Errorf("server 2 inherits from http only: %+v", srv2.Root.Settings)
	}
}

func TestContentHandlerLastWins(t *testing.T) {
	cfg := mustBuild(t, httpConf(`server {
    location /p { content_by_lua_block { ngx.say(1) } proxy_pass http://127.0.0.1:9000; }
    location /l { proxy_pass http://127.0.0.1:9000; content_by_lua_block { ngx.say(1) } }
}`))
	p := findLoc(cfg.HTTP.Servers[0].Locations, "/p")
	l := findLoc(cfg.HTTP.Servers[0].Locations, "/l")
	if p.Proxy == nil || p.Content != nil {
		t.Errorf("/p: proxy %v content %v", p.Proxy, p.Content)
	}
	if l.Proxy != nil || l.Content == nil {
		t.Errorf("/l: proxy %v content %v", l.Proxy, l.Content)
	}
}

func TestValues(t *testing.T) {
	cfg := mustBuild(t, httpConf(`
log_format main escape=json '$remote_addr '
                             '"$request" $status';
server {
    server_name example.com *.example.org ~^(?<sub>.+)\.example\.net$;
    access_log /var/log/a.log main buffer=32k flush=5s if=$loggable;
    access_log stderr;
    error_page 500 502 =200 /50x.html;
    error_page 404 = @fallback;
    error_page 497 /https;
    location = /exact {}
    location ^~ /static/ {}
    location ~ \.php$ {}
    location ~* \.(png|jpg)$ {}
    location @fallback { return 200 "fallback"; }
    location =/compact {}
    location ~*\.css$ {}
    location / { return https://example.com; }
}`))
	srv := cfg.HTTP.Servers[0]
	if !reflect.DeepEqual(srv.Names, []string{"example.com", "*.example.org", `~^(?<sub>.+)\.example\.net$`}) {
		t.Errorf("names %q", srv.Names)
	}
	wantLogs := []AccessLog{
		{Path: "/var/log/a.log", Format: `$remote_addr "$request" $status`, FormatName: "main", Escape: "json", Buffer: 32 << 10, Flush: 5 * time.Second, If: "$loggable"},
		{Path: "stderr", Format: combinedFormat, FormatName: "combined", Escape: "default"},
	}
	if !reflect.DeepEqual(srv.Root.AccessLogs, wantLogs) {
		t.Errorf("access logs %+v", srv.Root.AccessLogs)
	}
	wantPages := []ErrorPage{
		{Codes: []int{500, 502}, Response: 200, URI: "/50x.html"},
		{Codes: []int{404}, Response: -1, URI: "@fallback"},
		{Codes: []int{497}, Response: 400, URI: "/https"},
	}
	if !reflect.DeepEqual(srv.Root.ErrorPages, wantPages) {
		t.Errorf("error pages %+v", srv.Root.ErrorPages)
	}
	type lw struct{ mod, pat string }
	var got []lw
	for _, l := range srv.Locations {
		got = append(got, lw{l.Modifier, l.Pattern})
	}
	want := []lw{{"=", "/exact"}, {"^~", "/static/"}, {"~", `\.php$`}, {"~*", `\.(png|jpg)$`}, {"@", "@fallback"}, {"=", "/compact"}, {"~*", `\.css$`}, {"", "/"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("locations %v", got)
	}
	php := findLoc(srv.Locations, `\.php$`)
	if php.Regex == nil || !php.Regex.MatchString("/x.php") || php.Regex.MatchString("/x.PHP") {
		t.Errorf("~ must be case-sensitive")
	}
	img := findLoc(srv.Locations, `\.(png|jpg)$`)
	if img.Regex == nil || !img.Regex.MatchString("/a.PNG") {
		t.Errorf("~* must be caseless")
	}
	if findLoc(srv.Locations, "/exact").Regex != nil {
		t.Errorf("regex on a prefix location")
	}
	if r := findLoc(srv.Locations, "@fallback").Return; r == nil || r.Code != 200 || r.Text != "fallback" {
		t.Errorf("named return %+v", r)
	}
	if r := findLoc(srv.Locations, "/").Return; r == nil || r.Code != 302 || r.Text != "https://example.com" {
		t.Errorf("return URL %+v", r)
	}
}

func TestListen(t *testing.T) {
	cfg := mustBuild(t, httpConf(`
server { listen 8080 default_server backlog=1024 reuseport; }
server { listen localhost:8081; listen [::]:80; listen 127.0.0.2; listen *:8000 bind; listen [::1]; }
server { listen 8080; listen v6.example:9000; }`))
	addrs := func(s *Server) (out []string) {
		for _, l := range s.Listens {
			out = append(out, l.Addr)
		}
		return out
	}
	s := cfg.HTTP.Servers
	if got := s[0].Listens[0]; got.Addr != "0.0.0.0:8080" || !got.DefaultServer || got.Backlog != 1024 || !got.ReusePort {
		t.Errorf("listen 0: %+v", got)
	}
	if got, want := addrs(s[1]), []string{"127.0.0.1:8081", "[::1]:8081", "[::]:80", "127.0.0.2:80", "0.0.0.0:8000", "[::1]:80"}; !reflect.DeepEqual(got, want) {
		t.Errorf("listens 1: %q, want %q", got, want)
	}
	if got, want := addrs(s[2]), []string{"0.0.0.0:8080", "[2001:db8::1]:9000"}; !reflect.DeepEqual(got, want) {
		t.Errorf("listens 2: %q, want %q", got, want)
	}
}

func TestUpstreamBlock(t *testing.T) {
	cfg := mustBuild(t, httpConf(`
upstream a {
    zone a 64k;
    least_conn;
    server backend.example weight=3 max_fails=0 fail_timeout=30s max_conns=10;
    server 127.0.0.1:8002 backup;
    server [::1]:8003 down;
    server v6.example:8004;
    keepalive 16;
    keepalive_timeout 30s;
    keepalive_requests 100;
}
upstream h { hash $remote_addr consistent; server 127.0.0.1; }
upstream r { random two least_conn; server 127.0.0.1; }
upstream i { ip_hash; server 127.0.0.1 weight=2; server 127.0.0.2 down; }
upstream d { server 127.0.0.1; server localhost:81; }`))
	ups := cfg.HTTP.Upstreams
	if len(ups) != 5 {
		t.Fatalf("%d upstreams", len(ups))
	}
	a := ups[0]
	if a.Name != "a" || a.Implicit || a.Method != LeastConn || a.Zone != "a" || a.ZoneSize != 64<<10 ||
		a.Keepalive != 16 || a.KeepaliveTimeout != 30*time.Second || a.KeepaliveRequests != 100 || a.Line != 4 {
		t.Errorf("upstream a %+v", a)
	}
	want := []UpstreamServer{
		{Name: "backend.example", Addrs: []string{"10.0.0.1:80", "10.0.0.2:80"}, Weight: 3, MaxFails: 0, FailTimeout: 30 * time.Second, MaxConns: 10, File: "nginx.conf", Line: 7},
		{Name: "127.0.0.1:8002", Addrs: []string{"127.0.0.1:8002"}, Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second, Backup: true, File: "nginx.conf", Line: 8},
		{Name: "[::1]:8003", Addrs: []string{"[::1]:8003"}, Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second, Down: true, File: "nginx.conf", Line: 9},
		{Name: "v6.example:8004", Addrs: []string{"[2001:db8::1]:8004"}, Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second, File: "nginx.conf", Line: 10},
	}
	for i := range want {
		if !reflect.DeepEqual(*a.Servers[i], want[i]) {
			t.Errorf("server %d: %+v\nwant %+v", i, *a.Servers[i], want[i])
		}
	}
	if h := ups[1]; h.Method != Hash || h.HashKey != "$remote_addr" || !h.HashConsistent {
		t.Errorf("hash %+v", h)
	}
	if r := ups[2]; r.Method != Random || !r.RandomTwo {
		t.Errorf("random %+v", r)
	}
	if i := ups[3]; i.Method != IPHash || i.Servers[0].Weight != 2 || !i.Servers[1].Down {
		t.Errorf("ip_hash %+v", i)
	}
	if d := ups[4]; d.Method != RoundRobin || d.KeepaliveTimeout != 60*time.Second || d.KeepaliveRequests != 1000 || d.Keepalive != 0 ||
		!reflect.DeepEqual(d.Servers[1].Addrs, []string{"127.0.0.1:81", "[::1]:81"}) {
		t.Errorf("defaults %+v", d)
	}
}

func TestProxyPassTargets(t *testing.T) {
	cfg := mustBuild(t, httpConf(`
server {
    location /a { proxy_pass http://backend/; }
    location /b { proxy_pass http://127.0.0.1:9000; }
    location /c { proxy_pass http://127.0.0.1:9000/c/?x=1; }
    location /d { proxy_pass http://localhost; }
    location /e { proxy_pass http://LOCALHOST:80; }
    location /f { proxy_pass http://[::1]:8080; }
    location /g { proxy_pass HTTP://Backend; }
    location /h { proxy_pass http://localhost:8080?q; }
    location @named { proxy_pass http://backend; }
}
upstream backend { server 127.0.0.1:8001; }
`))
	locs := cfg.HTTP.Servers[0].Locations
	want := map[string]ProxyPass{
		"/a":     {Scheme: "http", Upstream: "backend", URI: "/", HasURI: true, HostHeader: "backend"},
		"/b":     {Scheme: "http", Upstream: "127.0.0.1:9000", HostHeader: "127.0.0.1:9000"},
		"/c":     {Scheme: "http", Upstream: "127.0.0.1:9000", URI: "/c/?x=1", HasURI: true, HostHeader: "127.0.0.1:9000"},
		"/d":     {Scheme: "http", Upstream: "localhost:80", HostHeader: "localhost"},
		"/e":     {Scheme: "http", Upstream: "localhost:80", HostHeader: "LOCALHOST"},
		"/f":     {Scheme: "http", Upstream: "[::1]:8080", HostHeader: "[::1]:8080"},
		"/g":     {Scheme: "http", Upstream: "backend", HostHeader: "Backend"},
		"/h":     {Scheme: "http", Upstream: "localhost:8080", URI: "?q", HasURI: true, HostHeader: "localhost:8080"},
		"@named": {Scheme: "http", Upstream: "backend", HostHeader: "backend"},
	}
	for pat, w := range want {
		l := findLoc(locs, pat)
		if l.Proxy == nil || *l.Proxy != w {
			t.Errorf("%s: %+v, want %+v", pat, l.Proxy, w)
		}
	}
	var names []string
	for _, u := range cfg.HTTP.Upstreams {
		names = append(names, u.Name)
	}
	if want := []string{"backend", "127.0.0.1:9000", "localhost:80", "[::1]:8080", "localhost:8080"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("upstreams %q, want %q", names, want)
	}
	imp := cfg.HTTP.Upstreams[2]
	wantServer := UpstreamServer{Name: "localhost:80", Addrs: []string{"127.0.0.1:80", "[::1]:80"}, Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second, File: "nginx.conf", Line: 8}
	if !imp.Implicit || imp.Line != 8 || len(imp.Servers) != 1 || !reflect.DeepEqual(*imp.Servers[0], wantServer) ||
		imp.KeepaliveTimeout != 60*time.Second || imp.KeepaliveRequests != 1000 {
		t.Errorf("implicit upstream %+v %+v", imp, imp.Servers[0])
	}
	if cfg.HTTP.Upstreams[0].Implicit {
		t.Errorf("backend is explicit")
	}
}

func TestLua(t *testing.T) {
	cfg := mustBuild(t, httpConf(`
lua_package_path "$prefix/lua/?.lua;/opt/?.lua;;";
lua_package_cpath "/opt/?.so";
lua_shared_dict cache 10m;
lua_shared_dict locks 100k;
lua_socket_pool_size 64;
lua_socket_connect_timeout 5s;
lua_socket_send_timeout 6s;
lua_socket_keepalive_timeout 7s;
init_by_lua_block {
    cjson = require "cjson"
}
init_worker_by_lua_file lua/worker.lua;
access_by_lua_file /etc/lua/access.lua;
server {
    location / {
        content_by_lua 'ngx.say("hi")';
        body_filter_by_lua_block { ngx.arg[1] = ngx.arg[1] }
    }
    location /f { content_by_lua_file lua/$uri.lua; header_filter_by_lua_file lua/h.lua; }
}`))
	lm := cfg.HTTP.Lua
	def := DefaultLuaPath(testPrefix)
	if want := testPrefix + "//lua/?.lua;/opt/?.lua;" + def + ";"; lm.PackagePath != want {
		t.Errorf("package.path %q, want %q", lm.PackagePath, want)
	}
	if lm.PackageCPath != "/opt/?.so" {
		t.Errorf("package.cpath %q", lm.PackageCPath)
	}
	if !reflect.DeepEqual(lm.SharedDicts, []SharedDict{{"cache", 10 << 20}, {"locks", 100 << 10}}) {
		t.Errorf("shared dicts %+v", lm.SharedDicts)
	}
	if lm.SocketPoolSize != 64 || lm.SocketConnectTimeout != 5*time.Second || lm.SocketSendTimeout != 6*time.Second ||
		lm.SocketReadTimeout != 60*time.Second || lm.SocketKeepaliveTimeout != 7*time.Second {
		t.Errorf("socket settings %+v", lm)
	}
	if want := (&LuaCode{Source: "\n    cjson = require \"cjson\"\n", ChunkName: "init_by_lua(nginx.conf:12)", Line: 12, ConfFile: "nginx.conf"}); !reflect.DeepEqual(lm.Init, want) {
		t.Errorf("init %+v", lm.Init)
	}
	if want := (&LuaCode{File: testPrefix + "/lua/worker.lua", ChunkName: testPrefix + "/lua/worker.lua", Line: 1, ConfFile: "nginx.conf"}); !reflect.DeepEqual(lm.InitWorker, want) {
		t.Errorf("init_worker %+v", lm.InitWorker)
	}
	root := findLoc(cfg.HTTP.Servers[0].Locations, "/")
	if want := (&LuaCode{Source: `ngx.say("hi")`, ChunkName: "content_by_lua(nginx.conf:19)", Line: 19, ConfFile: "nginx.conf"}); !reflect.DeepEqual(root.Content, want) {
		t.Errorf("content %+v", root.Content)
	}
	if c := root.BodyFilter; c == nil || c.ChunkName != "body_filter_by_lua(nginx.conf:20)" || c.Source != " ngx.arg[1] = ngx.arg[1] " {
		t.Errorf("body_filter %+v", c)
	}
	if c := root.Access; c == nil || c.File != "/etc/lua/access.lua" {
		t.Errorf("access inherited from http %+v", c)
	}
	f := findLoc(cfg.HTTP.Servers[0].Locations, "/f")
	if f.Content.File != "lua/$uri.lua" || f.HeaderFilter.File != testPrefix+"/lua/h.lua" {
		t.Errorf("files %+v %+v", f.Content, f.HeaderFilter)
	}
}

// TestSeed loads the example from the project's seed (shared/seed/README.md).
func TestSeed(t *testing.T) {
	prefix := t.TempDir()
	cfg, err := Load(Options{Prefix: prefix, ConfFile: mustAbs("testdata/seed.conf"), Resolve: testResolver})
	if err != nil {
		t.Fatal(err)
	}
	conf := mustAbs("testdata/seed.conf")
	if cfg.WorkerProcesses != 1 || cfg.WorkerConnections != 1024 || cfg.ConfFile != conf {
		t.Errorf("main %+v", cfg)
	}
	if want := []ErrorLog{{prefix + "/logs/error.log", "info"}}; !reflect.DeepEqual(cfg.ErrorLogs, want) {
		t.Errorf("error logs %+v", cfg.ErrorLogs)
	}
	h := cfg.HTTP
	if h.Lua.CodeCache {
		t.Errorf("lua_code_cache off not applied")
	}
	if len(h.Upstreams) != 1 {
		t.Fatalf("upstreams %+v", h.Upstreams)
	}
	be := h.Upstreams[0]
	if be.Name != "backend" || len(be.Servers) != 2 || !be.Servers[0].Down || be.Servers[1].Down ||
		be.Servers[0].Name != "localhost:8081" ||
		!reflect.DeepEqual(be.Servers[0].Addrs, []string{"127.0.0.1:8081", "[::1]:8081"}) ||
		!reflect.DeepEqual(be.Servers[1].Addrs, []string{"127.0.0.1:8082", "[::1]:8082"}) {
		t.Errorf("backend %+v %+v %+v", be, be.Servers[0], be.Servers[1])
	}
	if len(h.Servers) != 3 {
		t.Fatalf("%d servers", len(h.Servers))
	}
	for i, port := range []string{"8081", "8082", "8080"} {
		if l := h.Servers[i].Listens; len(l) != 1 || l[0].Addr != "0.0.0.0:"+port {
			t.Errorf("server %d listens %+v", i, l)
		}
	}
	hello := h.Servers[0].Locations[0]
	if hello.DefaultType != "text/plain" || hello.Content == nil || hello.Content.Source != ` ngx.say("hello world") ` ||
		hello.Content.ChunkName != "content_by_lua(seed.conf:11)" || hello.LuaCodeCache {
		t.Errorf("hello %+v", hello.Settings)
	}
	main := h.Servers[2]
	call := findLoc(main.Locations, "/call_upstream")
	if call.Proxy == nil || call.Proxy.Upstream != "backend" || call.Proxy.HostHeader != "backend" || call.Content != nil {
		t.Errorf("/call_upstream proxy %+v", call.Proxy)
	}
	if hf := call.HeaderFilter; hf == nil || !strings.Contains(hf.Source, "current_upstream_name()") ||
		hf.ChunkName != "header_filter_by_lua(seed.conf:18)" || hf.Line != 18 || hf.ConfFile != conf {
		t.Errorf("/call_upstream header filter %+v", hf)
	}
	status := findLoc(main.Locations, "/status_upstream")
	if status.Content == nil || !strings.Contains(status.Content.Source, "upstream.get_servers(v)") ||
		status.Content.ChunkName != "content_by_lua(seed.conf:26)" || status.HeaderFilter != nil {
		t.Errorf("/status_upstream %+v", status.Content)
	}
	set := findLoc(main.Locations, "/set_upstream")
	if set.Content == nil || !strings.Contains(set.Content.Source, `set_peer_down("backend", false, 0, false)`) {
		t.Errorf("/set_upstream %+v", set.Content)
	}
}

func TestLoadFiles(t *testing.T) {
	prefix := t.TempDir()
	if err := os.MkdirAll(filepath.Join(prefix, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(prefix, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("conf/mime.types", "types {\n    text/html html;\n    image/x-custom cst CST2;\n}\n")
	write("conf/nginx.conf", "events {}\nhttp {\n    include mime.types;\n    server { listen 8080; }\n}\n")
	cfg, err := Load(Options{Prefix: prefix, Resolve: testResolver})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"html": "text/html", "cst": "image/x-custom", "cst2": "image/x-custom"}; !reflect.DeepEqual(cfg.HTTP.Types, want) {
		t.Errorf("types %v", cfg.HTTP.Types)
	}
	if cfg.ConfFile != filepath.Join(prefix, "conf/nginx.conf") {
		t.Errorf("conf file %q", cfg.ConfFile)
	}

	write("conf/bad.conf", "events {}\nhttp {\n    server {\n        location / { proxy_pass http://nosuch.example; }\n    }\n}\n")
	_, err = Load(Options{Prefix: prefix, ConfFile: "conf/bad.conf", Resolve: testResolver})
	if want := `host not found in upstream "nosuch.example" in ` + filepath.Join(prefix, "conf/bad.conf") + ":4"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}

	_, err = Load(Options{Prefix: prefix, ConfFile: "conf/missing.conf"})
	if err == nil || !strings.Contains(err.Error(), `open() "`+filepath.Join(prefix, "conf/missing.conf")+`" failed`) {
		t.Errorf("missing file: %v", err)
	}
}

// TestStockConf loads nginx's own default nginx.conf with the bundled
// mime.types beside it, the way a fresh install has them.
func TestStockConf(t *testing.T) {
	prefix := t.TempDir()
	if err := os.MkdirAll(filepath.Join(prefix, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(prefix, "conf/mime.types"), []byte(MimeTypesFile()), 0o644); err != nil {
		t.Fatal(err)
	}
	stock := `
#user  nobody;
worker_processes  1;

#error_log  logs/error.log;
#pid        logs/nginx.pid;

events {
    worker_connections  1024;
}

http {
    include       mime.types;
    default_type  application/octet-stream;

    #log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
    #                  '$status $body_bytes_sent "$http_referer" '
    #                  '"$http_user_agent" "$http_x_forwarded_for"';

    sendfile        on;
    #tcp_nopush     on;

    keepalive_timeout  65;

    server {
        listen       80;
        server_name  localhost;

        location / {
            root   html;
            index  index.html index.htm;
        }

        error_page   500 502 503 504  /50x.html;
        location = /50x.html {
            root   html;
        }
    }
}
`
	if err := os.WriteFile(filepath.Join(prefix, "conf/nginx.conf"), []byte(stock), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(Options{Prefix: prefix, Resolve: testResolver})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.HTTP.Types, defaultTypes()) {
		t.Errorf("included mime.types differs from the bundled set")
	}
	srv := cfg.HTTP.Servers[0]
	root := findLoc(srv.Locations, "/")
	if root.Root != prefix+"/html" || !reflect.DeepEqual(root.Index, []string{"index.html", "index.htm"}) ||
		root.DefaultType != "application/octet-stream" || root.KeepaliveTimeout != 65*time.Second {
		t.Errorf("/ %+v", root.Settings)
	}
	if want := []ErrorPage{{Codes: []int{500, 502, 503, 504}, URI: "/50x.html"}}; !reflect.DeepEqual(root.ErrorPages, want) {
		t.Errorf("error pages %+v", root.ErrorPages)
	}
	if srv.Listens[0].Addr != "0.0.0.0:80" || srv.Names[0] != "localhost" {
		t.Errorf("server %+v", srv)
	}
}

func TestMoreSettings(t *testing.T) {
	cfg := mustBuild(t, httpConf(`
keepalive_requests 50;
server_tokens off;
types_hash_max_size 2048;
types_hash_bucket_size 64;
server_names_hash_bucket_size 128;
sendfile on;
tcp_nopush on;
tcp_nodelay off;
proxy_connect_timeout 2s;
proxy_send_timeout 3s;
proxy_next_upstream_tries 3;
proxy_next_upstream_timeout 10s;
proxy_buffering off;
client_max_body_size 0;
server {
    server_tokens build;
    location / { lua_code_cache off; lua_socket_pool_size 5; }
}`))
	s := cfg.HTTP.Servers[0]
	r := s.Root
	if r.KeepaliveRequests != 50 || !r.ServerTokens || r.ProxyConnectTimeout != 2*time.Second || r.ProxySendTimeout != 3*time.Second ||
		r.ProxyNextUpstreamTries != 3 || r.ProxyNextUpstreamTimeout != 10*time.Second || r.ProxyBuffering || r.ClientMaxBodySize != 0 {
		t.Errorf("server settings %+v", r.Settings)
	}
	l := s.Locations[0]
	if l.LuaCodeCache || l.LuaSocketPoolSize != 5 || !cfg.HTTP.Lua.CodeCache || cfg.HTTP.Lua.SocketPoolSize != 30 {
		t.Errorf("location lua settings %+v", l.Settings)
	}
	cfg = mustBuild(t, httpConf("server_tokens off; server {}"))
	if cfg.HTTP.Servers[0].Root.ServerTokens {
		t.Errorf("server_tokens off not inherited")
	}
}

// TestNotSupported lists nginx directives upstreamd does not implement:
// they are refused, never silently ignored.
func TestNotSupported(t *testing.T) {
	for _, d := range []string{"if ($x) { return 403; }", "rewrite ^ /x;", "set $a 1;", "try_files $uri =404;",
		"alias /x;", "gzip on;", "proxy_redirect off;", "ssl_certificate x.pem;", "limit_except GET { deny all; }"} {
		_, err := buildConf(t, httpConf("server {\nlocation / {\n"+d+"\n}\n}"))
		name := strings.Fields(d)[0]
		if want := `unknown directive "` + name + `" in nginx.conf:5`; err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", name, err, want)
		}
	}
}

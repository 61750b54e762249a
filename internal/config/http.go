package config

import (
	"net"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"

	"upstreamd/internal/access"
	"upstreamd/internal/nginxconf"
)

// combinedFormat is nginx's predefined "combined" log_format.
const combinedFormat = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`

type logFormat struct {
	pattern string
	escape  string
}

// httpB collects the http{} block while it is walked; inheritance and
// proxy_pass targets are resolved once the whole block is known.
type httpB struct {
	lvl        level
	servers    []*serverB
	upstreams  []*upstreamB
	upByName   map[string]*upstreamB // lower-cased name
	logFormats map[string]logFormat
	proxies    []*proxyRef
	listens    map[string]*listenInfo
	lua        LuaMain
	luaSeen    map[string]bool
}

type listenInfo struct {
	defaultServer bool
	options       bool
}

type serverB struct {
	srv     *Server
	lvl     level
	locs    []*locB
	listens map[string]bool
}

type locB struct {
	loc      *Location
	lvl      level
	parent   *locB
	children []*locB
}

// level holds what one http, server or location block sets itself; nil
// pointers and nil slices mean "not set here".
type level struct {
	seen map[string]bool // single-valued directives set at this level

	defaultType       *string
	root              *string
	index             []string
	ret               *Return
	addHeaders        []AddHeader
	errorPages        []ErrorPage
	accessLogs        []AccessLog
	accessOff         bool
	keepalive         *time.Duration
	keepaliveHeader   *time.Duration
	keepaliveRequests *int
	clientMaxBodySize *int64
	types             map[string]string
	serverTokens      *bool

	proxy             *ProxyPass
	proxySetHeaders   []Header
	proxyHTTPVersion  *string
	proxyConnect      *time.Duration
	proxySend         *time.Duration
	proxyRead         *time.Duration
	nextUpstream      NextUpstream
	nextUpstreamSet   bool
	nextTries         *int
	nextTimeout       *time.Duration
	buffering         *bool
	contentIsLua      bool // the last content handler set here was content_by_lua*
	lua               [nPhases]*LuaCode
	luaCodeCache      *bool
	luaConnectTimeout *time.Duration
	luaSendTimeout    *time.Duration
	luaReadTimeout    *time.Duration
	luaPoolSize       *int
	luaKeepalive      *time.Duration

	rules     access.Rules
	authBasic *string
	userFile  *string
	satisfy   *access.Satisfy
	api       *API
}

// once reports `"NAME" directive is duplicate` when key was already set at
// this level; key is usually the directive name.
func (l *level) once(d *nginxconf.Directive, key string) error {
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	if l.seen[key] {
		return errDup(d)
	}
	l.seen[key] = true
	return nil
}

func ptr[T any](v T) *T { return &v }

func registerHTTP() {
	defBlock("server", cHTTP, 0, 0, hServer)
	def("listen", cServer, 1, -1, hListen)
	def("server_name", cServer, 1, -1, hServerName)
	defBlock("location", cServer|cLocation, 1, 2, hLocation)
	defBlock("types", cHSL, 0, 0, hTypes)
	def("log_format", cHTTP, 2, -1, hLogFormat)
	def("access_log", cHSL, 1, -1, hAccessLog)
	def("default_type", cHSL, 1, 1, hDefaultType)
	def("root", cHSL, 1, 1, hRoot)
	def("index", cHSL, 1, -1, hIndex)
	def("return", cServer|cLocation, 1, 2, hReturn)
	def("add_header", cHSL, 2, 3, hAddHeader)
	def("error_page", cHSL, 2, -1, hErrorPage)
	def("keepalive_timeout", cHSL, 1, 2, hKeepaliveTimeout)
	def("keepalive_requests", cHSL, 1, 1, hKeepaliveRequests)
	def("client_max_body_size", cHSL, 1, 1, hClientMaxBodySize)
	def("server_tokens", cHSL, 1, 1, hServerTokens)
	for _, name := range []string{"sendfile", "tcp_nopush", "tcp_nodelay"} {
		def(name, cHSL, 1, 1, hFlagNoop)
	}
	// Hash sizing knobs of stock configurations: meaningless for Go maps.
	def("types_hash_max_size", cHSL, 1, 1, hSizeNoop)
	def("types_hash_bucket_size", cHSL, 1, 1, hSizeNoop)
	def("server_names_hash_max_size", cHTTP, 1, 1, hSizeNoop)
	def("server_names_hash_bucket_size", cHTTP, 1, 1, hSizeNoop)

	def("proxy_pass", cLocation, 1, 1, hProxyPass)
	def("proxy_set_header", cHSL, 2, 2, hProxySetHeader)
	def("proxy_http_version", cHSL, 1, 1, hProxyHTTPVersion)
	def("proxy_connect_timeout", cHSL, 1, 1, hTimeout(func(l *level) **time.Duration { return &l.proxyConnect }))
	def("proxy_send_timeout", cHSL, 1, 1, hTimeout(func(l *level) **time.Duration { return &l.proxySend }))
	def("proxy_read_timeout", cHSL, 1, 1, hTimeout(func(l *level) **time.Duration { return &l.proxyRead }))
	def("proxy_next_upstream", cHSL, 1, -1, hProxyNextUpstream)
	def("proxy_next_upstream_tries", cHSL, 1, 1, hProxyNextUpstreamTries)
	def("proxy_next_upstream_timeout", cHSL, 1, 1, hTimeout(func(l *level) **time.Duration { return &l.nextTimeout }))
	def("proxy_buffering", cHSL, 1, 1, hProxyBuffering)
}

func hHTTP(b *builder, s *scope, d *nginxconf.Directive) error {
	if b.http != nil {
		return errDup(d)
	}
	b.http = &httpB{
		upByName:   map[string]*upstreamB{},
		logFormats: map[string]logFormat{"combined": {pattern: combinedFormat, escape: "default"}},
		listens:    map[string]*listenInfo{},
		luaSeen:    map[string]bool{},
	}
	h := b.http
	return b.walk(&scope{ctx: cHTTP, lvl: &h.lvl}, d.Block)
}

func hServer(b *builder, s *scope, d *nginxconf.Directive) error {
	sb := &serverB{
		srv:     &Server{File: d.File, Line: d.Line},
		listens: map[string]bool{},
	}
	if err := b.walk(&scope{ctx: cServer, lvl: &sb.lvl, srv: sb}, d.Block); err != nil {
		return err
	}
	if len(sb.srv.Listens) == 0 {
		port := "8000"
		if getuid() == 0 {
			port = "80"
		}
		sb.srv.Listens = []Listen{{Addr: "0.0.0.0:" + port, Backlog: defaultBacklog, File: d.File, Line: d.Line}}
	}
	if sb.srv.Names == nil {
		sb.srv.Names = []string{""}
	}
	b.http.servers = append(b.http.servers, sb)
	return nil
}

const defaultBacklog = 511

func hListen(b *builder, s *scope, d *nginxconf.Directive) error {
	arg := d.Args[0]
	listenErr := func(msg string) error {
		return errf(d, `%s in "%s" of the "listen" directive`, msg, arg)
	}
	if strings.HasPrefix(arg, "unix:") {
		return listenErr("unix domain sockets are not supported")
	}
	var hosts []string
	var port int
	if n, ok := atoi(arg); ok {
		// port only
		if n < 1 || n > 65535 {
			return listenErr("invalid port")
		}
		hosts, port = []string{"0.0.0.0"}, int(n)
	} else {
		hp, err := splitHostPort(arg, 80)
		if err != "" {
			return listenErr(err)
		}
		port = hp.port
		switch {
		case hp.host == "*":
			hosts = []string{"0.0.0.0"}
		case hp.ip != nil:
			hosts = []string{hp.ip.String()}
		default:
			addrs, rerr := b.lookup(hp.host)
			if rerr != nil {
				return listenErr("host not found")
			}
			hosts = addrs
		}
	}

	l := Listen{Backlog: defaultBacklog, File: d.File, Line: d.Line}
	options := false
	for _, p := range d.Args[1:] {
		switch {
		case p == "default_server" || p == "default":
			l.DefaultServer = true
		case strings.HasPrefix(p, "backlog="):
			n, ok := atoiInt(p[len("backlog="):])
			if !ok || n == 0 {
				return errf(d, `invalid backlog "%s"`, p[len("backlog="):])
			}
			l.Backlog = n
			options = true
		case p == "reuseport":
			l.ReusePort = true
			options = true
		case p == "bind":
			options = true
		case p == "ssl":
			return errf(d, `the "ssl" parameter requires ngx_http_ssl_module`)
		case p == "http2":
			return errf(d, `the "http2" parameter requires ngx_http_v2_module`)
		case p == "quic":
			return errf(d, `the "quic" parameter requires ngx_http_v3_module`)
		default:
			return errInvalidParam(d, p)
		}
	}

	h := b.http
	for _, host := range hosts {
		l.Addr = net.JoinHostPort(host, strconv.Itoa(port))
		if s.srv.listens[l.Addr] {
			return errf(d, "a duplicate listen %s", l.Addr)
		}
		s.srv.listens[l.Addr] = true
		info := h.listens[l.Addr]
		if info == nil {
			info = &listenInfo{}
			h.listens[l.Addr] = info
		}
		if options {
			if info.options {
				return errf(d, "duplicate listen options for %s", l.Addr)
			}
			info.options = true
		}
		if l.DefaultServer {
			if info.defaultServer {
				return errf(d, "a duplicate default server for %s", l.Addr)
			}
			info.defaultServer = true
		}
		s.srv.srv.Listens = append(s.srv.srv.Listens, l)
	}
	return nil
}

func hServerName(b *builder, s *scope, d *nginxconf.Directive) error {
	for _, name := range d.Args {
		if strings.HasPrefix(name, "~") {
			// nginx compiles server name regexes caselessly.
			if _, err := compileRegex(name[1:], true); err != nil {
				return errf(d, `pcre_compile() failed: %s in "%s"`, regexpErr(err), name[1:])
			}
		}
		s.srv.srv.Names = append(s.srv.srv.Names, name)
	}
	return nil
}

// compileRegex compiles a location or server_name regex (Go's RE2 syntax
// standing in for PCRE); errors quote only the pattern as written.
func compileRegex(pattern string, caseless bool) (*regexp.Regexp, error) {
	if _, err := syntax.Parse(pattern, syntax.Perl); err != nil {
		return nil, err
	}
	if caseless {
		pattern = "(?i)" + pattern
	}
	return regexp.Compile(pattern)
}

func regexpErr(err error) string {
	msg := err.Error()
	return strings.TrimPrefix(msg, "error parsing regexp: ")
}

func hLocation(b *builder, s *scope, d *nginxconf.Directive) error {
	loc := &Location{File: d.File, Line: d.Line}
	if len(d.Args) == 2 {
		switch m := d.Args[0]; m {
		case "=", "^~", "~", "~*":
			loc.Modifier = m
		default:
			return errf(d, `invalid location modifier "%s"`, m)
		}
		loc.Pattern = d.Args[1]
	} else {
		name := d.Args[0]
		switch {
		case strings.HasPrefix(name, "="):
			loc.Modifier, name = "=", name[1:]
		case strings.HasPrefix(name, "~*"):
			loc.Modifier, name = "~*", name[2:]
		case strings.HasPrefix(name, "~"):
			loc.Modifier, name = "~", name[1:]
		case strings.HasPrefix(name, "@"):
			loc.Modifier = "@"
		}
		loc.Pattern = name
	}
	if loc.Modifier == "~" || loc.Modifier == "~*" {
		re, err := compileRegex(loc.Pattern, loc.Modifier == "~*")
		if err != nil {
			return errf(d, `pcre_compile() failed: %s in "%s"`, regexpErr(err), loc.Pattern)
		}
		loc.Regex = re
	}

	parent := s.loc
	if parent != nil {
		p := parent.loc
		switch {
		case p.Modifier == "=":
			return errf(d, `location "%s" cannot be inside the exact location "%s"`, loc.Pattern, p.Pattern)
		case p.Modifier == "@":
			return errf(d, `location "%s" cannot be inside the named location "%s"`, loc.Pattern, p.Pattern)
		case loc.Modifier == "@":
			return errf(d, `named location "%s" can be on the server level only`, loc.Pattern)
		case loc.Regex == nil && !strings.HasPrefix(loc.Pattern, p.Pattern):
			return errf(d, `location "%s" is outside location "%s"`, loc.Pattern, p.Pattern)
		}
	}

	siblings := s.srv.locs
	if parent != nil {
		siblings = parent.children
	}
	if loc.Modifier != "~" && loc.Modifier != "~*" && loc.Modifier != "@" {
		exact := loc.Modifier == "="
		for _, o := range siblings {
			om := o.loc.Modifier
			if o.loc.Pattern == loc.Pattern && (om == "=") == exact && om != "~" && om != "~*" && om != "@" {
				return errf(d, `duplicate location "%s"`, loc.Pattern)
			}
		}
	}

	lb := &locB{loc: loc, parent: parent}
	if parent != nil {
		parent.children = append(parent.children, lb)
	} else {
		s.srv.locs = append(s.srv.locs, lb)
	}
	return b.walk(&scope{ctx: cLocation, lvl: &lb.lvl, srv: s.srv, loc: lb}, d.Block)
}

func hTypes(b *builder, s *scope, d *nginxconf.Directive) error {
	// Several types{} blocks at one level add up, as in nginx.
	if s.lvl.types == nil {
		s.lvl.types = map[string]string{}
	}
	return b.walk(&scope{ctx: cTypes, types: s.lvl.types}, d.Block)
}

// typeLine is one `TYPE EXT...;` line inside types{}.
func typeLine(s *scope, d *nginxconf.Directive) error {
	if d.IsBlock {
		return errf(d, `unexpected "{"`)
	}
	for _, ext := range d.Args {
		s.types[strings.ToLower(ext)] = d.Name
	}
	return nil
}

func hLogFormat(b *builder, s *scope, d *nginxconf.Directive) error {
	h := b.http
	name := d.Args[0]
	if _, dup := h.logFormats[name]; dup {
		return errf(d, `duplicate "log_format" name "%s"`, name)
	}
	args := d.Args[1:]
	escape := "default"
	if a := args[0]; len(a) > 7 && strings.HasPrefix(a, "escape=") {
		switch v := a[7:]; v {
		case "default", "json", "none":
			escape = v
		default:
			return errf(d, `unknown log format escaping "%s"`, v)
		}
		args = args[1:]
	}
	h.logFormats[name] = logFormat{pattern: strings.Join(args, ""), escape: escape}
	return nil
}

func hAccessLog(b *builder, s *scope, d *nginxconf.Directive) error {
	lvl := s.lvl
	if d.Args[0] == "off" {
		lvl.accessOff = true
		if len(d.Args) > 1 {
			return errInvalidParam(d, d.Args[1])
		}
		return nil
	}
	path := d.Args[0]
	if strings.HasPrefix(path, "syslog:") {
		return errInvalidParam(d, path)
	}
	if path != "stderr" && !strings.Contains(path, "$") {
		path = b.full(path)
	}
	name := "combined"
	if len(d.Args) >= 2 {
		name = d.Args[1]
	}
	f, ok := b.http.logFormats[name]
	if !ok {
		return errf(d, `unknown log format "%s"`, name)
	}
	al := AccessLog{Path: path, Format: f.pattern, FormatName: name, Escape: f.escape}
	if len(d.Args) > 2 {
		for _, p := range d.Args[2:] {
			switch {
			case strings.HasPrefix(p, "buffer="):
				n, err := ParseSize(p[len("buffer="):])
				if err != nil || n == 0 {
					return errf(d, `invalid buffer size "%s"`, p[len("buffer="):])
				}
				al.Buffer = n
			case strings.HasPrefix(p, "flush="):
				t, err := ParseDuration(p[len("flush="):])
				if err != nil || t == 0 {
					return errf(d, `invalid flush time "%s"`, p[len("flush="):])
				}
				al.Flush = t
			case strings.HasPrefix(p, "if="):
				al.If = p[len("if="):]
			default:
				return errInvalidParam(d, p)
			}
		}
	}
	lvl.accessLogs = append(lvl.accessLogs, al)
	return nil
}

func hDefaultType(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.lvl.once(d, d.Name); err != nil {
		return err
	}
	s.lvl.defaultType = ptr(d.Args[0])
	return nil
}

func hRoot(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.lvl.once(d, d.Name); err != nil {
		return err
	}
	root := d.Args[0]
	if !strings.HasPrefix(root, "$") {
		root = b.full(root)
	}
	s.lvl.root = &root
	return nil
}

func hIndex(b *builder, s *scope, d *nginxconf.Directive) error {
	for i, f := range d.Args {
		if f == "" {
			return errf(d, `index "%s" in "index" directive is invalid`, f)
		}
		if f[0] == '/' && i != len(d.Args)-1 {
			return errf(d, `only the last index in "index" directive should be absolute`)
		}
		s.lvl.index = append(s.lvl.index, f)
	}
	return nil
}

func hReturn(b *builder, s *scope, d *nginxconf.Directive) error {
	r := &Return{}
	v := d.Args[0]
	if n, ok := atoiInt(v); ok {
		if n > 999 {
			return errf(d, `invalid return code "%s"`, v)
		}
		r.Code = n
		if len(d.Args) == 2 {
			r.Text = d.Args[1]
		}
	} else {
		if len(d.Args) == 2 ||
			!(len(v) > 7 && strings.HasPrefix(v, "http://") ||
				len(v) > 8 && strings.HasPrefix(v, "https://") ||
				strings.HasPrefix(v, "$scheme")) {
			return errf(d, `invalid return code "%s"`, v)
		}
		r.Code, r.Text = 302, v
	}
	// Later returns at the same level can never run (the first one ends
	// the request); they are checked but not kept.
	if s.lvl.ret == nil {
		s.lvl.ret = r
	}
	return nil
}

func hAddHeader(b *builder, s *scope, d *nginxconf.Directive) error {
	h := AddHeader{Name: d.Args[0], Value: d.Args[1]}
	if len(d.Args) == 3 {
		if d.Args[2] != "always" {
			return errInvalidParam(d, d.Args[2])
		}
		h.Always = true
	}
	s.lvl.addHeaders = append(s.lvl.addHeaders, h)
	return nil
}

func hErrorPage(b *builder, s *scope, d *nginxconf.Directive) error {
	args := d.Args
	uri := args[len(args)-1]
	codes := args[:len(args)-1]
	response := 0
	explicit := false
	if last := codes[len(codes)-1]; strings.HasPrefix(last, "=") {
		if len(codes) == 1 {
			return errf(d, `invalid value "%s"`, last)
		}
		explicit = true
		if len(last) > 1 {
			n, ok := atoiInt(last[1:])
			if !ok {
				return errf(d, `invalid value "%s"`, last)
			}
			response = n
		} else {
			response = -1
		}
		codes = codes[:len(codes)-1]
	}
	ep := ErrorPage{URI: uri, Response: response}
	for _, c := range codes {
		n, ok := atoiInt(c)
		if !ok || n == 499 {
			return errf(d, `invalid value "%s"`, c)
		}
		if n < 300 || n > 599 {
			return errf(d, `value "%s" must be between 300 and 599`, c)
		}
		ep.Codes = append(ep.Codes, n)
	}
	if !explicit {
		// nginx's internal 494..497 codes are answered as 400 unless the
		// error_page says otherwise; they share one entry per directive, so
		// split them out.
		var plain, special []int
		for _, c := range ep.Codes {
			if c >= 494 && c <= 497 {
				special = append(special, c)
			} else {
				plain = append(plain, c)
			}
		}
		if len(special) > 0 {
			if len(plain) > 0 {
				s.lvl.errorPages = append(s.lvl.errorPages, ErrorPage{Codes: plain, URI: uri})
			}
			s.lvl.errorPages = append(s.lvl.errorPages, ErrorPage{Codes: special, Response: 400, URI: uri})
			return nil
		}
	}
	s.lvl.errorPages = append(s.lvl.errorPages, ep)
	return nil
}

func hKeepaliveTimeout(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.lvl.once(d, d.Name); err != nil {
		return err
	}
	t, err := msec(d, d.Args[0])
	if err != nil {
		return err
	}
	s.lvl.keepalive = &t
	if len(d.Args) == 2 {
		h, err := parseSeconds(d.Args[1])
		if err != nil {
			return errInvalidValue(d)
		}
		s.lvl.keepaliveHeader = &h
	}
	return nil
}

func hKeepaliveRequests(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.lvl.once(d, d.Name); err != nil {
		return err
	}
	n, err := num(d, d.Args[0])
	if err != nil {
		return err
	}
	s.lvl.keepaliveRequests = &n
	return nil
}

func hClientMaxBodySize(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.lvl.once(d, d.Name); err != nil {
		return err
	}
	n, err := size(d, d.Args[0])
	if err != nil {
		return err
	}
	s.lvl.clientMaxBodySize = &n
	return nil
}

func hServerTokens(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.lvl.once(d, d.Name); err != nil {
		return err
	}
	switch d.Args[0] {
	case "on", "build":
		s.lvl.serverTokens = ptr(true)
	case "off":
		s.lvl.serverTokens = ptr(false)
	default:
		return errf(d, `invalid value "%s"`, d.Args[0])
	}
	return nil
}

func hFlagNoop(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.lvl.once(d, d.Name); err != nil {
		return err
	}
	_, err := flag(d)
	return err
}

func hSizeNoop(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.lvl.once(d, d.Name); err != nil {
		return err
	}
	_, err := size(d, d.Args[0])
	return err
}

func hProxySetHeader(b *builder, s *scope, d *nginxconf.Directive) error {
	s.lvl.proxySetHeaders = append(s.lvl.proxySetHeaders, Header{Name: d.Args[0], Value: d.Args[1]})
	return nil
}

func hProxyHTTPVersion(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.lvl.once(d, d.Name); err != nil {
		return err
	}
	switch v := d.Args[0]; v {
	case "1.0", "1.1":
		s.lvl.proxyHTTPVersion = &v
		return nil
	}
	return errf(d, `invalid value "%s"`, d.Args[0])
}

var nextUpstreamNames = map[string]NextUpstream{
	"error":          NextError,
	"timeout":        NextTimeout,
	"invalid_header": NextInvalidHeader,
	"http_500":       NextHTTP500,
	"http_502":       NextHTTP502,
	"http_503":       NextHTTP503,
	"http_504":       NextHTTP504,
	"http_403":       NextHTTP403,
	"http_404":       NextHTTP404,
	"http_429":       NextHTTP429,
	"non_idempotent": NextNonIdempotent,
	"off":            NextOff,
}

// hProxyNextUpstream is a bitmask slot: repeated directives add up, and
// "off" wins over everything else (as ngx_http_proxy_merge_loc_conf does).
func hProxyNextUpstream(b *builder, s *scope, d *nginxconf.Directive) error {
	for _, a := range d.Args {
		m, ok := nextUpstreamNames[a]
		if !ok {
			return errf(d, `invalid value "%s"`, a)
		}
		s.lvl.nextUpstream |= m
	}
	s.lvl.nextUpstreamSet = true
	return nil
}

func hProxyNextUpstreamTries(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.lvl.once(d, d.Name); err != nil {
		return err
	}
	n, err := num(d, d.Args[0])
	if err != nil {
		return err
	}
	s.lvl.nextTries = &n
	return nil
}

func hProxyBuffering(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.lvl.once(d, d.Name); err != nil {
		return err
	}
	v, err := flag(d)
	if err != nil {
		return err
	}
	s.lvl.buffering = &v
	return nil
}

// proxyRef is a proxy_pass waiting for the whole http{} block, so that it
// can name an upstream defined further down.
type proxyRef struct {
	pp      *ProxyPass
	d       *nginxconf.Directive
	host    string // as written (IPv6 in brackets)
	port    int
	hasPort bool
	ip      net.IP
}

func hProxyPass(b *builder, s *scope, d *nginxconf.Directive) error {
	lvl := s.lvl
	if lvl.proxy != nil {
		return errDup(d)
	}
	url := d.Args[0]
	if strings.Contains(url, "$") {
		return errf(d, "proxy_pass with variables is not supported")
	}
	var rest string
	switch {
	case len(url) >= 7 && strings.EqualFold(url[:7], "http://"):
		rest = url[7:]
	case len(url) >= 8 && strings.EqualFold(url[:8], "https://"):
		return errf(d, "https protocol requires SSL support")
	default:
		return errf(d, `invalid URL prefix in "%s"`, url)
	}
	if strings.HasPrefix(rest, "unix:") {
		return errf(d, `unix domain sockets are not supported in upstream "%s"`, rest)
	}
	hostPort, uri := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		hostPort, uri = rest[:i], rest[i:]
	}
	hp, msg := splitHostPort(hostPort, 80)
	if msg != "" {
		return errf(d, `%s in upstream "%s"`, msg, rest)
	}
	if uri != "" {
		if m := s.loc.loc.Modifier; m == "~" || m == "~*" || m == "@" {
			return errf(d, `"proxy_pass" cannot have URI part in location given by regular expression, `+
				`or inside named location, or inside "if" statement, or inside "limit_except" block`)
		}
	}
	pp := &ProxyPass{Scheme: "http", URI: uri, HasURI: uri != "", HostHeader: hp.host}
	if hp.hasPort && hp.port != 80 {
		pp.HostHeader = hp.host + ":" + hp.portText
	}
	lvl.proxy = pp
	lvl.contentIsLua = false
	b.http.proxies = append(b.http.proxies, &proxyRef{
		pp: pp, d: d, host: hp.host, port: hp.port, hasPort: hp.hasPort, ip: hp.ip,
	})
	return nil
}

// effective is a level's settings with everything inherited resolved.
type effective struct {
	Settings
	userHeaders []Header // proxy_set_header entries in force, before nginx's defaults
}

func (b *builder) defaults() *effective {
	return &effective{Settings: Settings{
		DefaultType:       "text/plain",
		Root:              filepath.Join(b.prefix, "html"),
		Index:             []string{"index.html"},
		AccessLogs:        []AccessLog{{Path: filepath.Join(b.prefix, "logs/access.log"), Format: combinedFormat, FormatName: "combined", Escape: "default"}},
		KeepaliveTimeout:  75 * time.Second,
		KeepaliveRequests: 1000,
		ClientMaxBodySize: 1 << 20,
		Types:             defaultTypes(),
		ServerTokens:      true,

		ProxyHTTPVersion:    "1.0",
		ProxyConnectTimeout: 60 * time.Second,
		ProxySendTimeout:    60 * time.Second,
		ProxyReadTimeout:    60 * time.Second,
		ProxyNextUpstream:   NextError | NextTimeout,
		ProxyBuffering:      true,

		LuaCodeCache:              true,
		LuaSocketConnectTimeout:   60 * time.Second,
		LuaSocketSendTimeout:      60 * time.Second,
		LuaSocketReadTimeout:      60 * time.Second,
		LuaSocketPoolSize:         30,
		LuaSocketKeepaliveTimeout: 60 * time.Second,
	}}
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// merge is nginx's merge_loc_conf for everything we know: p is the outer
// level's effective settings, l what this level sets.
func merge(p *effective, l *level) *effective {
	e := &effective{Settings: p.Settings, userHeaders: p.userHeaders}
	s := &e.Settings
	set(&s.DefaultType, l.defaultType)
	set(&s.Root, l.root)
	if l.index != nil {
		s.Index = l.index
	}
	s.Return = l.ret
	if l.addHeaders != nil {
		s.AddHeaders = l.addHeaders
	}
	if l.errorPages != nil {
		s.ErrorPages = l.errorPages
	}
	switch {
	case l.accessOff:
		s.AccessLogs = nil
	case l.accessLogs != nil:
		s.AccessLogs = l.accessLogs
	}
	set(&s.KeepaliveTimeout, l.keepalive)
	set(&s.KeepaliveHeaderTimeout, l.keepaliveHeader)
	set(&s.KeepaliveRequests, l.keepaliveRequests)
	set(&s.ClientMaxBodySize, l.clientMaxBodySize)
	if l.types != nil {
		s.Types = l.types
	}
	set(&s.ServerTokens, l.serverTokens)

	s.Proxy = l.proxy
	if l.proxySetHeaders != nil {
		e.userHeaders = l.proxySetHeaders
	}
	s.ProxySetHeaders = withDefaultHeaders(e.userHeaders)
	set(&s.ProxyHTTPVersion, l.proxyHTTPVersion)
	set(&s.ProxyConnectTimeout, l.proxyConnect)
	set(&s.ProxySendTimeout, l.proxySend)
	set(&s.ProxyReadTimeout, l.proxyRead)
	if l.nextUpstreamSet {
		s.ProxyNextUpstream = l.nextUpstream
		if s.ProxyNextUpstream&NextOff != 0 {
			s.ProxyNextUpstream = NextOff
		}
	}
	set(&s.ProxyNextUpstreamTries, l.nextTries)
	set(&s.ProxyNextUpstreamTimeout, l.nextTimeout)
	set(&s.ProxyBuffering, l.buffering)

	for ph := phase(0); ph < nPhases; ph++ {
		if c := l.lua[ph]; c != nil || ph == phContent {
			*s.phase(ph) = c
		}
	}
	if l.contentIsLua {
		s.Proxy = nil
	} else if l.proxy != nil {
		s.Content = nil
	}
	set(&s.LuaCodeCache, l.luaCodeCache)
	set(&s.LuaSocketConnectTimeout, l.luaConnectTimeout)
	set(&s.LuaSocketSendTimeout, l.luaSendTimeout)
	set(&s.LuaSocketReadTimeout, l.luaReadTimeout)
	set(&s.LuaSocketPoolSize, l.luaPoolSize)
	set(&s.LuaSocketKeepaliveTimeout, l.luaKeepalive)

	s.Guard = mergeGuard(s.Guard, l)
	// api is a content handler: not inherited, and the last one set wins.
	s.API = l.api
	if l.api != nil {
		s.Proxy, s.Content = nil, nil
	}
	return e
}

// defaultProxyHeaders are nginx's ngx_http_proxy_headers that apply to a
// plain proxy (the body-framing ones excepted).
var defaultProxyHeaders = []Header{
	{"Host", "$proxy_host"},
	{"Connection", "close"},
	{"TE", ""},
	{"Keep-Alive", ""},
	{"Expect", ""},
	{"Upgrade", ""},
}

func withDefaultHeaders(user []Header) []Header {
	out := make([]Header, 0, len(user)+len(defaultProxyHeaders))
	out = append(out, user...)
	for _, dh := range defaultProxyHeaders {
		found := false
		for _, h := range user {
			if strings.EqualFold(h.Name, dh.Name) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, dh)
		}
	}
	return out
}

func (b *builder) finishHTTP() error {
	h := b.http
	if err := b.resolveProxies(); err != nil {
		return err
	}
	top := merge(b.defaults(), &h.lvl)
	hc := &HTTP{Types: top.Types}
	for _, ub := range h.upstreams {
		hc.Upstreams = append(hc.Upstreams, ub.u)
	}
	for _, sb := range h.servers {
		se := merge(top, &sb.lvl)
		srv := sb.srv
		srv.Root = &Location{File: srv.File, Line: srv.Line, Settings: se.Settings}
		srv.Locations = buildLocations(se, sb.locs)
		hc.Servers = append(hc.Servers, srv)
	}
	h.lua.CodeCache = top.LuaCodeCache
	h.lua.SocketConnectTimeout = top.LuaSocketConnectTimeout
	h.lua.SocketSendTimeout = top.LuaSocketSendTimeout
	h.lua.SocketReadTimeout = top.LuaSocketReadTimeout
	h.lua.SocketPoolSize = top.LuaSocketPoolSize
	h.lua.SocketKeepaliveTimeout = top.LuaSocketKeepaliveTimeout
	if !h.luaSeen["lua_package_path"] {
		h.lua.PackagePath = DefaultLuaPath(b.prefix)
	}
	if !h.luaSeen["lua_package_cpath"] {
		h.lua.PackageCPath = DefaultLuaCPath(b.prefix)
	}
	hc.Lua = h.lua
	b.cfg.HTTP = hc
	return nil
}

func buildLocations(parent *effective, lbs []*locB) []*Location {
	var out []*Location
	for _, lb := range lbs {
		e := merge(parent, &lb.lvl)
		lb.loc.Settings = e.Settings
		lb.loc.Locations = buildLocations(e, lb.children)
		out = append(out, lb.loc)
	}
	return out
}

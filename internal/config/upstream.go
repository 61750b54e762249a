package config

import (
	"net"
	"strconv"
	"strings"
	"time"

	"upstreamd/internal/nginxconf"
)

var netLookupHost = net.DefaultResolver.LookupHost

type upstreamB struct {
	u      *Upstream
	seen   map[string]bool
	backup *nginxconf.Directive // first server line with "backup"
	// stateDirective is the `state` line: with it the servers come from the
	// state file, and `server` lines are refused as NGINX Plus does.
	stateDirective *nginxconf.Directive
	firstServer    *nginxconf.Directive
}

func registerUpstream() {
	defBlock("upstream", cHTTP, 1, 1, hUpstream)
	def("server", cUpstream, 1, -1, hUpstreamServer)
	def("keepalive", cUpstream, 1, 1, hKeepalive)
	def("keepalive_timeout", cUpstream, 1, 1, hUpstreamKeepaliveTimeout)
	def("keepalive_requests", cUpstream, 1, 1, hUpstreamKeepaliveRequests)
	def("zone", cUpstream, 1, 2, hZone)
	def("least_conn", cUpstream, 0, 0, hMethod)
	def("ip_hash", cUpstream, 0, 0, hMethod)
	def("hash", cUpstream, 1, 2, hMethod)
	def("random", cUpstream, 0, 2, hMethod)
}

func (ub *upstreamB) once(d *nginxconf.Directive) error {
	if ub.seen[d.Name] {
		return errDup(d)
	}
	ub.seen[d.Name] = true
	return nil
}

// supportsBackup says whether the balancing method keeps backup servers
// (nginx's NGX_HTTP_UPSTREAM_BACKUP flag: only round robin and least_conn).
func supportsBackup(m Method) bool { return m == RoundRobin || m == LeastConn }

func hUpstream(b *builder, s *scope, d *nginxconf.Directive) error {
	h := b.http
	name := d.Args[0]
	key := strings.ToLower(name)
	if h.upByName[key] != nil {
		return errf(d, `duplicate upstream "%s"`, name)
	}
	ub := &upstreamB{
		u: &Upstream{
			Name:              name,
			File:              d.File,
			Line:              d.Line,
			KeepaliveTimeout:  60 * time.Second,
			KeepaliveRequests: 1000,
		},
		seen: map[string]bool{},
	}
	h.upByName[key] = ub
	if err := b.walk(&scope{ctx: cUpstream, up: ub}, d.Block); err != nil {
		return err
	}
	if ub.stateDirective != nil && ub.firstServer != nil {
		return errf(ub.firstServer, `"server" directive is not allowed in upstream with "state" (the servers come from %s)`, ub.u.StateFile)
	}
	if len(ub.u.Servers) == 0 && ub.stateDirective == nil {
		return errf(d, "no servers are inside upstream")
	}
	if ub.backup != nil && !supportsBackup(ub.u.Method) {
		return errf(ub.backup, `balancing method does not support parameter "backup"`)
	}
	h.upstreams = append(h.upstreams, ub)
	return nil
}

func hUpstreamServer(b *builder, s *scope, d *nginxconf.Directive) error {
	ub := s.up
	if ub.firstServer == nil {
		ub.firstServer = d
	}
	us := &UpstreamServer{Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second, File: d.File, Line: d.Line}
	for _, p := range d.Args[1:] {
		key, val, hasVal := strings.Cut(p, "=")
		switch {
		case hasVal && key == "weight":
			n, ok := atoiInt(val)
			if !ok || n == 0 {
				return errInvalidParam(d, p)
			}
			us.Weight = n
		case hasVal && key == "max_conns":
			n, ok := atoiInt(val)
			if !ok {
				return errInvalidParam(d, p)
			}
			us.MaxConns = n
		case hasVal && key == "max_fails":
			n, ok := atoiInt(val)
			if !ok {
				return errInvalidParam(d, p)
			}
			us.MaxFails = n
		case hasVal && key == "fail_timeout":
			t, err := parseSeconds(val)
			if err != nil {
				return errInvalidParam(d, p)
			}
			us.FailTimeout = t
		case p == "backup":
			if !supportsBackup(ub.u.Method) {
				return errf(d, `balancing method does not support parameter "%s"`, p)
			}
			us.Backup = true
			if ub.backup == nil {
				ub.backup = d
			}
		case p == "down":
			us.Down = true
		case p == "drain":
			// NGINX Plus accepts drain in `server` lines (and state files).
			us.Drain = true
		case hasVal && key == "slow_start":
			t, err := parseSeconds(val)
			if err != nil {
				return errInvalidParam(d, p)
			}
			us.SlowStart = t
		case hasVal && key == "route":
			if val == "" || len(val) > 32 {
				return errInvalidParam(d, p)
			}
			us.Route = val
		default:
			return errInvalidParam(d, p)
		}
	}

	addr := d.Args[0]
	if strings.HasPrefix(addr, "unix:") {
		return errf(d, `unix domain sockets are not supported in upstream "%s"`, addr)
	}
	hp, msg := splitHostPort(addr, 80)
	if msg != "" {
		return errf(d, `%s in upstream "%s"`, msg, addr)
	}
	addrs, err := b.hostAddrs(hp)
	if err != nil {
		return errf(d, `host not found in upstream "%s"`, addr)
	}
	// The name stays as written (nginx shows it so, and hashes it so for
	// `hash ... consistent`); only the resolved addresses get port 80.
	us.Name = addr
	us.Addrs = addrs
	ub.u.Servers = append(ub.u.Servers, us)
	return nil
}

func hKeepalive(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.up.once(d); err != nil {
		return err
	}
	n, ok := atoiInt(d.Args[0])
	if !ok || n == 0 {
		return errf(d, `invalid value "%s" in "%s" directive`, d.Args[0], d.Name)
	}
	s.up.u.Keepalive = n
	return nil
}

func hUpstreamKeepaliveTimeout(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.up.once(d); err != nil {
		return err
	}
	t, err := msec(d, d.Args[0])
	if err != nil {
		return err
	}
	s.up.u.KeepaliveTimeout = t
	return nil
}

func hUpstreamKeepaliveRequests(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.up.once(d); err != nil {
		return err
	}
	n, err := num(d, d.Args[0])
	if err != nil {
		return err
	}
	s.up.u.KeepaliveRequests = n
	return nil
}

func hZone(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.up.once(d); err != nil {
		return err
	}
	if d.Args[0] == "" {
		return errf(d, `invalid zone name "%s"`, d.Args[0])
	}
	s.up.u.Zone = d.Args[0]
	if len(d.Args) == 2 {
		n, err := ParseSize(d.Args[1])
		if err != nil {
			return errf(d, `invalid zone size "%s"`, d.Args[1])
		}
		if n < 8*4096 {
			return errf(d, `zone "%s" is too small`, d.Args[0])
		}
		s.up.u.ZoneSize = n
	}
	return nil
}

// hMethod handles least_conn, ip_hash, hash and random. nginx only warns
// when a second method replaces the first; so do we (silently).
func hMethod(b *builder, s *scope, d *nginxconf.Directive) error {
	u := s.up.u
	u.HashKey, u.HashConsistent, u.RandomTwo = "", false, false
	switch d.Name {
	case "least_conn":
		u.Method = LeastConn
	case "ip_hash":
		u.Method = IPHash
	case "hash":
		u.Method = Hash
		u.HashKey = d.Args[0]
		if len(d.Args) == 2 {
			if d.Args[1] != "consistent" {
				return errInvalidParam(d, d.Args[1])
			}
			u.HashConsistent = true
		}
	case "random":
		u.Method = Random
		if len(d.Args) >= 1 {
			if d.Args[0] != "two" {
				return errInvalidParam(d, d.Args[0])
			}
			u.RandomTwo = true
		}
		if len(d.Args) == 2 && d.Args[1] != "least_conn" {
			return errInvalidParam(d, d.Args[1])
		}
	}
	return nil
}

// hostPort is an address split the way ngx_parse_inet_url splits it.
type hostPort struct {
	host     string // as written; IPv6 keeps its brackets
	ip       net.IP // when host is an IP literal
	port     int
	portText string
	hasPort  bool
}

// splitHostPort parses host[:port] / [v6][:port]. On failure it returns
// nginx's u->err text ("invalid port", "no host", ...).
func splitHostPort(s string, defPort int) (hostPort, string) {
	var hp hostPort
	var portText string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return hp, "invalid host"
		}
		inner := s[1:end]
		rest := s[end+1:]
		switch {
		case rest == "":
		case rest[0] == ':':
			portText = rest[1:]
			hp.hasPort = true
		default:
			return hp, "invalid host"
		}
		if inner == "" {
			return hp, "no host"
		}
		ip := net.ParseIP(inner)
		if ip == nil || ip.To4() != nil || strings.Contains(inner, "%") {
			return hp, "invalid IPv6 address"
		}
		hp.host, hp.ip = s[:end+1], ip
	} else {
		host := s
		if i := strings.IndexByte(s, ':'); i >= 0 {
			host, portText = s[:i], s[i+1:]
			hp.hasPort = true
		}
		if host == "" {
			if hp.hasPort {
				if n, ok := atoi(portText); !ok || n < 1 || n > 65535 {
					return hp, "invalid port"
				}
			}
			return hp, "no host"
		}
		hp.host = host
		if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
			hp.ip = ip.To4()
		}
	}
	hp.port = defPort
	if hp.hasPort {
		n, ok := atoi(portText)
		if !ok || n < 1 || n > 65535 {
			return hp, "invalid port"
		}
		hp.port, hp.portText = int(n), portText
	}
	return hp, ""
}

// lookup resolves a host name: the resolver's addresses, deduplicated, in
// its order. No address at all is "host not found".
func (b *builder) lookup(host string) ([]string, error) {
	addrs, err := b.resolve(host)
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	for _, a := range addrs {
		ip := net.ParseIP(strings.Trim(a, "[]"))
		if ip == nil {
			continue
		}
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		if s := ip.String(); !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	return out, nil
}

// hostAddrs gives "ip:port" for every address of hp.
func (b *builder) hostAddrs(hp hostPort) ([]string, error) {
	port := strconv.Itoa(hp.port)
	if hp.ip != nil {
		return []string{net.JoinHostPort(hp.ip.String(), port)}, nil
	}
	ips, err := b.lookup(hp.host)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = net.JoinHostPort(ip, port)
	}
	return out, nil
}

// resolveProxies points every proxy_pass at its upstream: an upstream{}
// block of that name (case-insensitive, wherever it is in http{}), or else
// an implicit one-server upstream shared by all proxy_pass to the same
// host:port, resolved now as nginx does at start.
func (b *builder) resolveProxies() error {
	h := b.http
	implicit := map[string]*upstreamB{}
	var order []*upstreamB
	for _, r := range h.proxies {
		if ub := h.upByName[strings.ToLower(r.host)]; ub != nil {
			if r.hasPort {
				return errf(r.d, `upstream "%s" may not have port %d`, r.host, r.port)
			}
			r.pp.Upstream = ub.u.Name
			continue
		}
		key := strings.ToLower(r.host) + ":" + strconv.Itoa(r.port)
		ub := implicit[key]
		if ub == nil {
			name := r.host + ":" + strconv.Itoa(r.port)
			ub = &upstreamB{
				u: &Upstream{
					Name:              name,
					Implicit:          true,
					File:              r.d.File,
					Line:              r.d.Line,
					KeepaliveTimeout:  60 * time.Second,
					KeepaliveRequests: 1000,
				},
			}
			addrs, err := b.hostAddrs(hostPort{host: r.host, ip: r.ip, port: r.port})
			if err != nil {
				return errf(r.d, `host not found in upstream "%s"`, r.host)
			}
			ub.u.Servers = []*UpstreamServer{{
				Name:        name,
				Addrs:       addrs,
				Weight:      1,
				MaxFails:    1,
				FailTimeout: 10 * time.Second,
				File:        r.d.File,
				Line:        r.d.Line,
			}}
			implicit[key] = ub
			order = append(order, ub)
		}
		r.pp.Upstream = ub.u.Name
	}
	h.upstreams = append(h.upstreams, order...)
	return nil
}

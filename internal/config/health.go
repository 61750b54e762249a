package config

import (
	"strings"
	"time"

	"upstreamd/internal/nginxconf"
)

// NGINX Plus's ngx_http_upstream_hc_module: `health_check` in a location
// that proxies to an upstream{} group, and `match NAME { ... }` in http.
//
// Both need the whole http{} block before they can be checked (a match may
// be defined after the health_check naming it, and the location's upstream
// is only known once proxy_pass targets are resolved), so the handlers only
// collect; finishHealth, run after finishHTTP, validates and fills
// HTTP.Matches, HTTP.HealthChecks and each location's Settings.HealthCheck.

func init() {
	def("health_check", cLocation, 0, -1, hHealthCheck)
	defBlock("match", cHTTP, 1, 1, hMatch)
}

// healthB is what the walk collected for one builder.
type healthB struct {
	checks  []pendingCheck
	matches map[string]*Match
	order   []*Match
}

type pendingCheck struct {
	hc  *HealthCheck
	loc *Location
	d   *nginxconf.Directive
}

func (b *builder) health() *healthB {
	if b.healthB == nil {
		b.healthB = &healthB{matches: map[string]*Match{}}
	}
	return b.healthB
}

// Health-check defaults, as NGINX Plus.
const (
	defaultHealthInterval = 5 * time.Second
	defaultHealthURI      = "/"
)

func hHealthCheck(b *builder, s *scope, d *nginxconf.Directive) error {
	hc := &HealthCheck{
		Interval: defaultHealthInterval,
		Fails:    1,
		Passes:   1,
		URI:      defaultHealthURI,
		Type:     "http",
		File:     d.File,
		Line:     d.Line,
	}
	uriSet := false
	for _, a := range d.Args {
		key, val, hasVal := strings.Cut(a, "=")
		switch {
		case a == "mandatory":
			hc.Mandatory = true
		case a == "persistent":
			hc.Persistent = true
		case !hasVal:
			return errInvalidParam(d, a)
		case key == "interval" || key == "jitter":
			t, err := ParseDuration(val)
			if err != nil || (key == "interval" && t <= 0) {
				return errInvalidParam(d, a)
			}
			if key == "interval" {
				hc.Interval = t
			} else {
				hc.Jitter = t
			}
		case key == "fails" || key == "passes":
			n, ok := atoiInt(val)
			if !ok || n < 1 {
				return errInvalidParam(d, a)
			}
			if key == "fails" {
				hc.Fails = n
			} else {
				hc.Passes = n
			}
		case key == "uri":
			if val == "" || val[0] != '/' {
				return errInvalidParam(d, a)
			}
			hc.URI, uriSet = val, true
		case key == "port":
			n, ok := atoiInt(val)
			if !ok || n < 1 || n > 65535 {
				return errInvalidParam(d, a)
			}
			hc.Port = n
		case key == "match":
			if val == "" {
				return errInvalidParam(d, a)
			}
			hc.Match = val
		case key == "type":
			if val != "http" && val != "tcp" {
				return errInvalidParam(d, a)
			}
			hc.Type = val
		default:
			return errInvalidParam(d, a)
		}
	}
	if hc.Persistent && !hc.Mandatory {
		return errf(d, `"persistent" requires "mandatory"`)
	}
	if hc.Type == "tcp" && (uriSet || hc.Match != "") {
		return errf(d, `"uri" and "match" require type=http`)
	}
	h := b.health()
	h.checks = append(h.checks, pendingCheck{hc: hc, loc: s.loc.loc, d: d})
	return nil
}

func hMatch(b *builder, s *scope, d *nginxconf.Directive) error {
	h := b.health()
	name := d.Args[0]
	if _, dup := h.matches[name]; dup {
		return errf(d, `duplicate match "%s"`, name)
	}
	m := &Match{Name: name, File: d.File, Line: d.Line}
	for _, c := range d.Block {
		r, err := matchRule(c)
		if err != nil {
			return err
		}
		m.Rules = append(m.Rules, r)
	}
	h.matches[name] = m
	h.order = append(h.order, m)
	return nil
}

// matchRule parses one line of a match block:
//
//	status [!] CODE|LOW-HIGH ...
//	header [!] NAME | header NAME (=|!=|~|!~) VALUE
//	body (~|!~) REGEX
func matchRule(d *nginxconf.Directive) (MatchRule, error) {
	r := MatchRule{Kind: d.Name, Args: d.Args}
	if d.IsBlock {
		return r, errf(d, `directive "%s" is not terminated by ";"`, d.Name)
	}
	args := d.Args
	switch d.Name {
	case "status":
		if len(args) > 0 && args[0] == "!" {
			r.Negate, args = true, args[1:]
		}
		if len(args) == 0 {
			return r, errf(d, `invalid number of arguments in "%s" directive`, d.Name)
		}
		for _, a := range args {
			lo, hi, isRange := strings.Cut(a, "-")
			if !isRange {
				hi = lo
			}
			l, ok1 := atoiInt(lo)
			h, ok2 := atoiInt(hi)
			if !ok1 || !ok2 || l < 100 || h > 599 || l > h {
				return r, errf(d, `invalid status "%s"`, a)
			}
			r.Codes = append(r.Codes, [2]int{l, h})
		}
	case "header":
		switch {
		case len(args) == 2 && args[0] == "!":
			r.Negate, r.Header = true, args[1]
		case len(args) == 1:
			r.Header = args[0]
		case len(args) == 3:
			r.Header, r.Op, r.Value = args[0], args[1], args[2]
			switch r.Op {
			case "=", "!=":
			case "~", "!~":
				re, err := compileRegex(r.Value, false)
				if err != nil {
					return r, errf(d, `pcre_compile() failed: %s in "%s"`, regexpErr(err), r.Value)
				}
				r.Re = re
			default:
				return r, errf(d, `invalid operator "%s"`, r.Op)
			}
			r.Negate = r.Op[0] == '!'
		default:
			return r, errf(d, `invalid number of arguments in "%s" directive`, d.Name)
		}
	case "body":
		if len(args) != 2 {
			return r, errf(d, `invalid number of arguments in "%s" directive`, d.Name)
		}
		r.Op, r.Value = args[0], args[1]
		if r.Op != "~" && r.Op != "!~" {
			return r, errf(d, `invalid operator "%s"`, r.Op)
		}
		re, err := compileRegex(r.Value, false)
		if err != nil {
			return r, errf(d, `pcre_compile() failed: %s in "%s"`, regexpErr(err), r.Value)
		}
		r.Re, r.Negate = re, r.Op == "!~"
	default:
		return r, errf(d, `unknown directive "%s"`, d.Name)
	}
	return r, nil
}

// finishHealth validates what the walk collected once the http{} block is
// built (locations have their effective settings, proxy_pass targets are
// resolved) and fills the Config. Called by build after finishHTTP.
func (b *builder) finishHealth() error {
	h := b.healthB
	if h == nil || b.cfg.HTTP == nil {
		return nil
	}
	hc := b.cfg.HTTP
	if len(h.order) > 0 {
		hc.Matches = h.matches
	}
	named := map[string]*Upstream{}
	for _, u := range hc.Upstreams {
		named[u.Name] = u
	}
	perUpstream := map[string]int{}
	for _, pc := range h.checks {
		c, loc, d := pc.hc, pc.loc, pc.d
		// The location's own proxy_pass (Settings.Proxy is not inherited),
		// to a named upstream{} group: an implicit upstream made from a
		// host:port URL is not a group NGINX Plus can keep state for.
		if loc.Proxy == nil {
			return errf(d, `"health_check" requires "proxy_pass" in the same location`)
		}
		u := named[loc.Proxy.Upstream]
		if u == nil || u.Implicit {
			return errf(d, `"health_check" requires "proxy_pass" to an upstream{} group, not "%s"`, loc.Proxy.Upstream)
		}
		if c.Match != "" && h.matches[c.Match] == nil {
			return errf(d, `match "%s" not found`, c.Match)
		}
		if perUpstream[u.Name]++; perUpstream[u.Name] > maxHealthChecksPerUpstream {
			return errf(d, `too many health checks for upstream "%s"`, u.Name)
		}
		c.Upstream = u.Name
		c.Host = healthHost(loc)
		c.ConnectTimeout = loc.ProxyConnectTimeout
		c.ReadTimeout = loc.ProxyReadTimeout
		if loc.HealthCheck == nil {
			loc.HealthCheck = c
		}
		hc.HealthChecks = append(hc.HealthChecks, c)
	}
	return nil
}

// maxHealthChecksPerUpstream matches upstream.MaxHealthChecks (config does
// not import the runtime packages).
const maxHealthChecksPerUpstream = 32

// healthHost is the Host header of the location's probes: what its requests
// carry, when that is known without a request — a literal proxy_set_header
// Host, or $proxy_host (the default) — else the upstream's name.
func healthHost(loc *Location) string {
	for _, h := range loc.ProxySetHeaders {
		if !strings.EqualFold(h.Name, "Host") {
			continue
		}
		switch {
		case h.Value == "$proxy_host":
			return loc.Proxy.HostHeader
		case h.Value != "" && !strings.Contains(h.Value, "$"):
			return h.Value
		}
		break
	}
	return loc.Proxy.Upstream
}

package access

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Rule is one allow or deny directive.
//
// Exactly one of three shapes is used: Unix set (matches only clients
// connected over a unix-domain socket), Net set (matches IP clients inside the
// network), or neither (the "all" keyword, matching every client). The family
// of Net is taken from the length of its mask, so a 4-byte mask is an IPv4
// rule and a 16-byte mask an IPv6 rule, as net.ParseCIDR produces them.
type Rule struct {
	Allow bool
	Net   *net.IPNet // nil = all (unless Unix)
	Unix  bool
}

// ParseRule parses the argument of an allow (allow=true) or deny directive.
//
// Accepted forms are nginx's: an IPv4 or IPv6 address, an address with a
// /prefix, "all" and "unix:". Errors use nginx's text `invalid parameter "x"`.
// When the address has bits set beyond the prefix (10.0.0.1/8) nginx still
// accepts the rule but warns; ParseRule likewise returns the normalised
// network together with the warning text, which the caller should log at warn
// level while loading the configuration.
func ParseRule(allow bool, arg string) (rule Rule, warning string, err error) {
	rule.Allow = allow
	switch arg {
	case "all":
		return rule, "", nil
	case "unix:":
		rule.Unix = true
		return rule, "", nil
	}
	invalid := fmt.Errorf("invalid parameter %q", arg)

	addrText, prefixText, hasPrefix := strings.Cut(arg, "/")
	var ip net.IP
	if strings.Contains(addrText, ":") {
		a, perr := netip.ParseAddr(addrText)
		// Zones are meaningless in a rule (nginx rejects them too) and a
		// string with a colon must be IPv6, never a plain IPv4 address.
		if perr != nil || a.Zone() != "" || !a.Is6() {
			return Rule{}, "", invalid
		}
		ip = a.AsSlice() // 16 bytes, also for ::ffff:a.b.c.d
	} else {
		ip = parseIPv4(addrText)
		if ip == nil {
			return Rule{}, "", invalid
		}
	}
	bits := len(ip) * 8
	ones := bits
	if hasPrefix {
		n, ok := parseDecimal(prefixText)
		if !ok || n > bits {
			return Rule{}, "", invalid
		}
		ones = n
	}
	mask := net.CIDRMask(ones, bits)
	network := ip.Mask(mask)
	if !network.Equal(ip) {
		warning = fmt.Sprintf("low address bits of %s are meaningless", arg)
	}
	if len(ip) == net.IPv6len && ones >= 96 && network.To4() != nil {
		// Clients are always matched as IPv4 when their address is
		// IPv4-mapped (see Rules.Match), so such a rule could never fire;
		// nginx accepts it silently, we at least tell the operator.
		if warning != "" {
			warning += "; "
		}
		warning += fmt.Sprintf("IPv4-mapped rule %s never matches, clients are compared as IPv4; write the IPv4 form", arg)
	}
	rule.Net = &net.IPNet{IP: network, Mask: mask}
	return rule, warning, nil
}

// parseIPv4 accepts dotted quads like nginx's ngx_inet_addr, which reads
// every octet as decimal and therefore allows leading zeros ("010.0.0.1" is
// 10.0.0.1); Go's parsers reject those and existing configs may contain them.
func parseIPv4(s string) net.IP {
	ip := make(net.IP, net.IPv4len)
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return nil
	}
	for i, p := range parts {
		n, ok := parseDecimal(p)
		if !ok || n > 255 {
			return nil
		}
		ip[i] = byte(n)
	}
	return ip
}

// parseDecimal accepts only ASCII digits (no sign, no spaces), as nginx's
// ngx_atoi does; values are capped well before overflow since callers only
// need numbers up to 255.
func parseDecimal(s string) (int, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// String renders the rule as its directive, e.g. "deny 10.0.0.0/8".
func (r Rule) String() string {
	verb := "deny"
	if r.Allow {
		verb = "allow"
	}
	switch {
	case r.Unix:
		return verb + " unix:"
	case r.Net == nil:
		return verb + " all"
	default:
		return verb + " " + netString(r.Net)
	}
}

// netString prints a network in the family of its mask. net.IPNet.String
// would print an IPv6 rule on ::ffff:a.b.c.d as if it were IPv4, hiding
// exactly the distinction that decides whether it can match.
func netString(n *net.IPNet) string {
	ones, _ := n.Mask.Size()
	if len(n.Mask) == net.IPv6len {
		if ip16 := n.IP.To16(); ip16 != nil {
			return netip.PrefixFrom(netip.AddrFrom16([16]byte(ip16)), ones).String()
		}
	}
	return n.String()
}

// matchIP reports whether an IP client falls under the rule.
func (r Rule) matchIP(ip net.IP) bool {
	if r.Unix {
		return false
	}
	if r.Net == nil {
		return true
	}
	mask := r.Net.Mask
	var client, network net.IP
	switch len(mask) {
	case net.IPv4len:
		client, network = ip.To4(), r.Net.IP.To4()
	case net.IPv6len:
		// nginx converts IPv4-mapped clients to IPv4 and checks them
		// against the IPv4 rules; Go does not even keep the distinction
		// between a mapped and a native IPv4 peer, so every address with
		// an IPv4 form is an IPv4 client and IPv6 rules never see it.
		if ip.To4() != nil {
			return false
		}
		client, network = ip.To16(), r.Net.IP.To16()
	default:
		return false
	}
	if client == nil || network == nil {
		return false
	}
	for i := range client {
		if client[i]&mask[i] != network[i]&mask[i] {
			return false
		}
	}
	return true
}

// Rules is a location's allow/deny list in configuration order.
type Rules []Rule

// Match evaluates the rules for an IP client: the first rule that matches
// decides (allowed = its Allow) and matched is true. When no rule matches,
// matched is false; nginx then lets the request through under "satisfy all"
// but does not count it as a grant under "satisfy any" (see Guard).
// A nil or malformed ip only matches "all" rules, so a list ending in
// "deny all" still fails closed.
func (rs Rules) Match(ip net.IP) (allowed, matched bool) {
	for _, r := range rs {
		if r.matchIP(ip) {
			return r.Allow, true
		}
	}
	return false, false
}

// Allowed reports whether an IP client may pass: first match wins, no match
// allows (nginx's behaviour; end the list with "deny all" to deny the rest).
// IPv4-mapped IPv6 addresses are treated as IPv4.
func (rs Rules) Allowed(ip net.IP) bool {
	allowed, matched := rs.Match(ip)
	return allowed || !matched
}

// MatchUnix is Match for a client on a unix-domain socket, which only
// "unix:" and "all" rules apply to.
func (rs Rules) MatchUnix() (allowed, matched bool) {
	for _, r := range rs {
		if r.Unix || r.Net == nil {
			return r.Allow, true
		}
	}
	return false, false
}

// AllowedUnix is Allowed for a client on a unix-domain socket.
func (rs Rules) AllowedUnix() bool {
	allowed, matched := rs.MatchUnix()
	return allowed || !matched
}

// MatchRemoteAddr is Match for the peer as net/http reports it in
// Request.RemoteAddr: "ip:port" for TCP, and "" or "@" for an unnamed
// unix-socket peer (a path is treated as unix too). Anything else is matched
// like a nil IP, i.e. only by "all" rules.
func (rs Rules) MatchRemoteAddr(remoteAddr string) (allowed, matched bool) {
	if isUnixPeer(remoteAddr) {
		return rs.MatchUnix()
	}
	return rs.Match(remoteIP(remoteAddr))
}

// AllowedRemoteAddr is Allowed for a Request.RemoteAddr value.
func (rs Rules) AllowedRemoteAddr(remoteAddr string) bool {
	allowed, matched := rs.MatchRemoteAddr(remoteAddr)
	return allowed || !matched
}

func isUnixPeer(s string) bool {
	return s == "" || s == "@" || strings.HasPrefix(s, "/") || strings.HasPrefix(s, "unix:")
}

// remoteIP extracts the address from "ip:port", "[v6]:port" or a bare IP,
// dropping any zone, which rules cannot express.
func remoteIP(s string) net.IP {
	host := s
	if h, _, err := net.SplitHostPort(s); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return nil
	}
	return a.WithZone("").AsSlice()
}

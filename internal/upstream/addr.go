package upstream

import (
	"errors"
	"net"
	"strconv"
	"strings"
)

// ParseServerAddr parses a server address the way an nginx `server` line
// takes it, for the runtime doors that add servers (REST API, Lua): "ip:port",
// "host:port", "[ipv6]:port", "unix:/path", or an ip or host without a port
// (port 80). It returns the name as written, for ServerSpec.Name, and the
// address to connect to, for ServerSpec.Addr, with IP literals in canonical
// form. Host names are not resolved: the connection resolves them, so a name
// added at run time is one peer whatever it resolves to.
func ParseServerAddr(s string) (name, addr string, err error) {
	if s == "" {
		return "", "", errors.New("empty address")
	}
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if path == "" {
			return "", "", errors.New("no path in unix address")
		}
		return s, s, nil
	}
	host, port, splitErr := net.SplitHostPort(s)
	if splitErr != nil {
		switch {
		case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
			host = s[1 : len(s)-1] // "[v6]" without port
		case strings.Contains(s, ":"):
			// "a:b:c" (a bare IPv6 literal is ambiguous, nginx wants
			// brackets) or "host:" with an empty port.
			return "", "", errors.New("invalid address, host:port expected")
		default:
			host = s
		}
		port = "80"
	}
	if host == "" || strings.ContainsAny(host, " \t/\\\"'") {
		return "", "", errors.New("invalid host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '+' {
		return "", "", errors.New("invalid port")
	}
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	} else if strings.Contains(host, ":") {
		return "", "", errors.New("invalid IPv6 address")
	}
	return s, net.JoinHostPort(host, port), nil
}

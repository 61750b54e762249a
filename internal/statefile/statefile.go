// Package statefile persists the servers of one upstream group the way NGINX
// Plus does for `state FILE;`: the file holds nothing but `server ADDR
// [params];` lines in nginx syntax, is loaded at start instead of the block's
// own server lines, and is rewritten on every runtime change.
//
// The package is a leaf: it knows nginx syntax (through internal/nginxconf)
// and files, not the live upstream, so the runtime can call it from any
// layer without import cycles.
package statefile

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"upstreamd/internal/nginxconf"
)

// nginx's defaults for a `server` line without parameters. Read fills them in
// for omitted parameters and Format omits them, so a file written by hand
// with bare `server ADDR;` lines means what it means in nginx.
const (
	DefaultWeight      = 1
	DefaultMaxFails    = 1
	DefaultFailTimeout = 10 * time.Second
)

// Server is one `server` line of a state file.
type Server struct {
	// Addr is the address exactly as written: "host:port", "ip:port",
	// "[v6]:port" or "unix:/path". Hostnames are not resolved here; like
	// NGINX Plus, the file keeps the name so a restart resolves it afresh.
	Addr string

	Weight   int // 0 is treated as the default 1, like upstream.ServerSpec
	MaxFails int // 0 disables failure accounting, so it is not "unset"
	MaxConns int // 0 = unlimited

	// Durations are kept to whole seconds: nginx's time parser for these
	// parameters has no smaller unit, so anything finer cannot round-trip.
	FailTimeout time.Duration
	SlowStart   time.Duration

	Backup, Down, Drain bool
}

// Default returns a Server with nginx's defaults for a bare `server ADDR;`.
func Default(addr string) Server {
	return Server{Addr: addr, Weight: DefaultWeight, MaxFails: DefaultMaxFails, FailTimeout: DefaultFailTimeout}
}

// Format renders servers as state-file text, one line per server, in the
// given order (order matters: peer ids and round-robin order follow it).
//
// Parameters follow the order of the nginx `server` directive documentation
// (weight, max_conns, max_fails, fail_timeout, backup, down, slow_start,
// drain); parameters at their default are left out to keep the file as
// terse as a hand-written block. max_fails and fail_timeout are written
// together whenever either differs from the default, because they only mean
// something as a pair ("N failures within T"). Durations are whole seconds
// with the "s" unit, as nginx prints them (fail_timeout=10s).
//
// Format does not validate; Write does, before anything reaches the disk.
func Format(servers []Server) []byte {
	var b strings.Builder
	for _, s := range servers {
		b.WriteString("server ")
		b.WriteString(s.Addr)
		if s.Weight != 0 && s.Weight != DefaultWeight {
			fmt.Fprintf(&b, " weight=%d", s.Weight)
		}
		if s.MaxConns != 0 {
			fmt.Fprintf(&b, " max_conns=%d", s.MaxConns)
		}
		if s.MaxFails != DefaultMaxFails || s.FailTimeout != DefaultFailTimeout {
			fmt.Fprintf(&b, " max_fails=%d fail_timeout=%s", s.MaxFails, formatSeconds(s.FailTimeout))
		}
		if s.Backup {
			b.WriteString(" backup")
		}
		if s.Down {
			b.WriteString(" down")
		}
		if s.SlowStart != 0 {
			fmt.Fprintf(&b, " slow_start=%s", formatSeconds(s.SlowStart))
		}
		if s.Drain {
			b.WriteString(" drain")
		}
		b.WriteString(";\n")
	}
	return []byte(b.String())
}

// formatSeconds prints d truncated to whole seconds, the unit nginx keeps.
func formatSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// Read loads the state file at path.
//
// A missing file is an empty list and no error: NGINX Plus starts such a
// group with no servers and creates the file on the first change. An empty
// file (or one with only comments) is equally valid. Errors are worded and
// positioned like nginx's own configuration errors, e.g.
// `invalid parameter "x" in /var/lib/upstreamd/backend.state:3`.
func Read(path string) ([]Server, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open() %q failed (%w)", path, err)
	}
	return parse(path, data)
}

// parse reads state-file text; file names it in errors.
func parse(file string, data []byte) ([]Server, error) {
	dirs, err := nginxconf.Parse(file, data)
	if err != nil {
		return nil, err
	}
	servers := make([]Server, 0, len(dirs))
	for _, d := range dirs {
		s, err := parseServer(d)
		if err != nil {
			return nil, err
		}
		servers = append(servers, s)
	}
	return servers, nil
}

// parseServer mirrors nginx's handling of an upstream `server` directive,
// restricted to the parameters a state file can carry.
func parseServer(d *nginxconf.Directive) (Server, error) {
	if d.Name != "server" {
		// nginx parses the state file with a handler that accepts only
		// server lines, so anything else is unknown there.
		return Server{}, d.Errorf("unknown directive %q", d.Name)
	}
	if d.IsBlock {
		return Server{}, d.Errorf(`directive "server" is not terminated by ";"`)
	}
	if len(d.Args) < 1 {
		return Server{}, d.Errorf(`invalid number of arguments in "server" directive`)
	}
	s := Default(d.Args[0])
	if msg := checkAddr(s.Addr); msg != "" {
		return Server{}, d.Errorf("%s in upstream %q", msg, s.Addr)
	}
	for _, arg := range d.Args[1:] {
		if !s.apply(arg) {
			return Server{}, d.Errorf("invalid parameter %q", arg)
		}
	}
	return s, nil
}

// apply sets the parameter arg on s, reporting whether arg was valid. The
// validity rules are nginx's: weight must be positive, counts may be zero.
func (s *Server) apply(arg string) bool {
	name, value, hasValue := strings.Cut(arg, "=")
	if !hasValue {
		switch arg {
		case "backup":
			s.Backup = true
		case "down":
			s.Down = true
		case "drain":
			s.Drain = true
		default:
			return false
		}
		return true
	}
	var ok bool
	switch name {
	case "weight":
		s.Weight, ok = parseCount(value)
		ok = ok && s.Weight > 0
	case "max_fails":
		s.MaxFails, ok = parseCount(value)
	case "max_conns":
		s.MaxConns, ok = parseCount(value)
	case "fail_timeout":
		s.FailTimeout, ok = parseSeconds(value)
	case "slow_start":
		s.SlowStart, ok = parseSeconds(value)
	}
	return ok
}

// parseCount accepts what nginx's ngx_atoi accepts: one or more decimal
// digits, no sign, no overflow.
func parseCount(v string) (int, bool) {
	if v == "" {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 32)
	return int(n), err == nil
}

// timeUnits lists nginx's time units (for parameters measured in seconds)
// from largest to smallest; each may appear once and only in this order,
// so "1m30s" is valid and "30s1m" is not.
var timeUnits = []struct {
	unit byte
	d    time.Duration
}{
	{'y', 365 * 24 * time.Hour},
	{'M', 30 * 24 * time.Hour},
	{'w', 7 * 24 * time.Hour},
	{'d', 24 * time.Hour},
	{'h', time.Hour},
	{'m', time.Minute},
	{'s', time.Second},
}

// maxSeconds bounds parsed times so the sum cannot overflow time.Duration.
const maxSeconds = int64(1<<63-1) / int64(time.Second) / 2

// parseSeconds parses an nginx time value for a seconds-resolution
// parameter: "10", "10s", "1m30s", "1h 5m". A bare number means seconds;
// "ms" is rejected because these parameters cannot hold fractions.
func parseSeconds(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	var total time.Duration
	next := 0 // index into timeUnits of the smallest unit still allowed
	var n int64
	digits := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= '0' && c <= '9':
			n = n*10 + int64(c-'0')
			if n > maxSeconds {
				return 0, false
			}
			digits = true
			continue
		case c == ' ' && !digits:
			continue // spaces may separate parts: "1h 30m"
		case !digits:
			return 0, false
		}
		if c == 'm' && i+1 < len(v) && v[i+1] == 's' {
			return 0, false // milliseconds
		}
		j := next
		for j < len(timeUnits) && timeUnits[j].unit != c {
			j++
		}
		if j == len(timeUnits) {
			return 0, false // unknown unit, or a unit out of order
		}
		part := time.Duration(n) * timeUnits[j].d
		if part/timeUnits[j].d != time.Duration(n) || part < 0 || total > time.Duration(1<<63-1)-part {
			return 0, false
		}
		total += part
		next, n, digits = j+1, 0, false
	}
	if digits {
		// A trailing bare number is seconds, allowed only if seconds
		// have not been given already.
		if next > len(timeUnits)-1 {
			return 0, false
		}
		total += time.Duration(n) * time.Second
	} else if next == 0 {
		return 0, false // only spaces
	}
	if total < 0 {
		return 0, false
	}
	return total, true
}

// checkAddr validates a server address the way nginx's URL parser does for
// upstream servers and returns its error text ("" when valid). A missing
// port is allowed (nginx defaults to 80); hostnames are not resolved.
func checkAddr(addr string) string {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return "no path in the unix domain socket"
		}
		return ""
	}
	host, port := addr, ""
	if rest, ok := strings.CutPrefix(addr, "["); ok {
		ip, after, found := strings.Cut(rest, "]")
		if !found {
			return "invalid host"
		}
		if a, err := netip.ParseAddr(ip); err != nil || !a.Is6() || a.Zone() != "" {
			return "invalid IPv6 address"
		}
		if after != "" {
			p, ok := strings.CutPrefix(after, ":")
			if !ok {
				return "invalid host"
			}
			if p == "" {
				return "invalid port"
			}
			port = p
		}
		host = ip
	} else if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		host, port = addr[:i], addr[i+1:]
		if port == "" {
			return "invalid port"
		}
		if strings.Contains(host, ":") {
			// An unbracketed IPv6 address is ambiguous; nginx rejects it.
			return "invalid host"
		}
	}
	if host == "" {
		return "no host"
	}
	if port != "" {
		if p, ok := parseCount(port); !ok || p < 1 || p > 65535 {
			return "invalid port"
		}
	}
	return ""
}

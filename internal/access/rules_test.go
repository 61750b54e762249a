package access

import (
	"net"
	"strings"
	"testing"
)

func TestParseRule(t *testing.T) {
	tests := []struct {
		arg     string
		want    string // Rule.String() for allow
		warn    string // substring; "" = no warning
		wantErr bool
	}{
		{arg: "all", want: "allow all"},
		{arg: "unix:", want: "allow unix:"},
		{arg: "127.0.0.1", want: "allow 127.0.0.1/32"},
		{arg: "10.0.0.0/8", want: "allow 10.0.0.0/8"},
		{arg: "010.000.0.1", want: "allow 10.0.0.1/32"}, // nginx reads octets as decimal
		{arg: "0.0.0.0/0", want: "allow 0.0.0.0/0"},
		{arg: "10.0.0.1/8", want: "allow 10.0.0.0/8", warn: "low address bits of 10.0.0.1/8 are meaningless"},
		{arg: "192.168.1.77/24", want: "allow 192.168.1.0/24", warn: "low address bits of 192.168.1.77/24 are meaningless"},
		{arg: "::1", want: "allow ::1/128"},
		{arg: "2001:db8::/32", want: "allow 2001:db8::/32"},
		{arg: "2001:db8::1/32", want: "allow 2001:db8::/32", warn: "low address bits of 2001:db8::1/32 are meaningless"},
		{arg: "::/0", want: "allow ::/0"},
		{arg: "::ffff:10.0.0.1", want: "allow ::ffff:10.0.0.1/128", warn: "never matches"},
		{arg: "::ffff:0:0/96", want: "allow ::ffff:0.0.0.0/96", warn: "never matches"},

		{arg: "", wantErr: true},
		{arg: "any", wantErr: true},
		{arg: "unix", wantErr: true},
		{arg: "ALL", wantErr: true}, // nginx compares case-sensitively
		{arg: "10.0.0", wantErr: true},
		{arg: "10.0.0.256", wantErr: true},
		{arg: "10..0.1", wantErr: true},
		{arg: "10.0.0.0/33", wantErr: true},
		{arg: "10.0.0.0/", wantErr: true},
		{arg: "10.0.0.0/+8", wantErr: true},
		{arg: "10.0.0.0/8/8", wantErr: true},
		{arg: "::1/129", wantErr: true},
		{arg: "fe80::1%eth0", wantErr: true},
		{arg: "2001:db8::g", wantErr: true},
		{arg: "example.com", wantErr: true},
		{arg: " 10.0.0.1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			r, warn, err := ParseRule(true, tt.arg)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseRule(%q) = %v, want error", tt.arg, r)
				}
				if want := `invalid parameter "` + tt.arg + `"`; err.Error() != want {
					t.Fatalf("error %q, want %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRule(%q): %v", tt.arg, err)
			}
			if got := r.String(); got != tt.want {
				t.Errorf("rule %q, want %q", got, tt.want)
			}
			if tt.warn == "" && warn != "" || tt.warn != "" && !strings.Contains(warn, tt.warn) {
				t.Errorf("warning %q, want %q", warn, tt.warn)
			}
		})
	}

	r, _, err := ParseRule(false, "10.0.0.0/8")
	if err != nil || r.Allow || r.String() != "deny 10.0.0.0/8" {
		t.Errorf("deny rule: %v, %v", r, err)
	}
}

// mustRules builds a rule list from directive lines like "allow 10.0.0.0/8".
func mustRules(t *testing.T, lines ...string) Rules {
	t.Helper()
	var rs Rules
	for _, l := range lines {
		verb, arg, _ := strings.Cut(l, " ")
		r, _, err := ParseRule(verb == "allow", arg)
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		rs = append(rs, r)
	}
	return rs
}

func TestRulesMatch(t *testing.T) {
	apiRules := []string{"allow 127.0.0.1", "deny all"}
	mixed := []string{"deny 192.168.1.1", "allow 192.168.1.0/24", "allow 10.1.1.0/16", "allow 2001:0db8::/32", "deny all"}
	tests := []struct {
		name        string
		rules       []string
		ip          string
		wantAllowed bool
		wantMatched bool
	}{
		{"empty list allows", nil, "1.2.3.4", true, false},
		{"api loopback", apiRules, "127.0.0.1", true, true},
		{"api other v4", apiRules, "127.0.0.2", false, true},
		{"api v6 loopback is not 127.0.0.1", apiRules, "::1", false, true},
		{"api mapped loopback is v4", apiRules, "::ffff:127.0.0.1", true, true},
		{"first match wins over later allow", mixed, "192.168.1.1", false, true},
		{"cidr allow", mixed, "192.168.1.2", true, true},
		{"host bits normalised", mixed, "10.1.200.3", true, true},
		{"v6 in /32", mixed, "2001:db8:ffff::1", true, true},
		{"v6 outside", mixed, "2001:db9::1", false, true},
		{"v4 falls to deny all", mixed, "8.8.8.8", false, true},
		{"no match allows", []string{"deny 10.0.0.0/8"}, "11.0.0.1", true, false},
		{"no match v6 vs v4 rule", []string{"deny 10.0.0.0/8"}, "::a00:1", true, false},
		{"v4 client not matched by ::/0", []string{"deny ::/0"}, "10.0.0.1", true, false},
		{"v6 client matched by ::/0", []string{"deny ::/0"}, "2001:db8::1", false, true},
		{"v6 client not matched by 0.0.0.0/0", []string{"deny 0.0.0.0/0"}, "2001:db8::1", true, false},
		{"mapped client matched by v4 cidr", []string{"deny 10.0.0.0/8"}, "::ffff:10.9.9.9", false, true},
		{"mapped rule never matches", []string{"deny ::ffff:10.0.0.0/104"}, "10.0.0.1", true, false},
		{"unix rule does not match ip", []string{"deny unix:"}, "127.0.0.1", true, false},
		{"deny all then allow", []string{"deny all", "allow 127.0.0.1"}, "127.0.0.1", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := mustRules(t, tt.rules...)
			ip := net.ParseIP(tt.ip)
			if ip == nil {
				t.Fatalf("bad test ip %q", tt.ip)
			}
			allowed, matched := rs.Match(ip)
			if allowed != tt.wantAllowed && matched || matched != tt.wantMatched {
				t.Errorf("Match(%s) = %v,%v, want %v,%v", tt.ip, allowed, matched, tt.wantAllowed, tt.wantMatched)
			}
			if got := rs.Allowed(ip); got != tt.wantAllowed {
				t.Errorf("Allowed(%s) = %v, want %v", tt.ip, got, tt.wantAllowed)
			}
			// The 4-byte form of an IPv4 address must behave the same.
			if v4 := ip.To4(); v4 != nil {
				if got := rs.Allowed(v4); got != tt.wantAllowed {
					t.Errorf("Allowed(4-byte %s) = %v, want %v", tt.ip, got, tt.wantAllowed)
				}
			}
		})
	}
}

// Rules built by hand from net.ParseCIDR must work like parsed ones.
func TestRulesFromParseCIDR(t *testing.T) {
	_, n4, _ := net.ParseCIDR("10.0.0.0/8")
	_, n6, _ := net.ParseCIDR("2001:db8::/32")
	rs := Rules{{Allow: true, Net: n4}, {Allow: true, Net: n6}, {Allow: false}}
	for ip, want := range map[string]bool{"10.2.3.4": true, "2001:db8::5": true, "11.0.0.1": false, "::ffff:10.0.0.1": true} {
		if got := rs.Allowed(net.ParseIP(ip)); got != want {
			t.Errorf("Allowed(%s) = %v, want %v", ip, got, want)
		}
	}
}

func TestRulesUnixAndRemoteAddr(t *testing.T) {
	tests := []struct {
		name   string
		rules  []string
		remote string
		want   bool
	}{
		{"unix allowed by unix:", []string{"allow unix:", "deny all"}, "@", true},
		{"empty remote is unix", []string{"allow unix:", "deny all"}, "", true},
		{"socket path is unix", []string{"deny unix:"}, "/run/upstreamd.sock", false},
		{"unix denied by all", []string{"allow 127.0.0.1", "deny all"}, "@", false},
		{"unix unaffected by ip rules", []string{"deny 0.0.0.0/0", "deny ::/0"}, "@", true},
		{"tcp v4 with port", []string{"allow 127.0.0.1", "deny all"}, "127.0.0.1:5555", true},
		{"tcp v6 with port", []string{"allow ::1", "deny all"}, "[::1]:5555", true},
		{"tcp v6 with zone", []string{"allow fe80::/10", "deny all"}, "[fe80::1%eth0]:80", true},
		{"tcp mapped", []string{"allow 127.0.0.1", "deny all"}, "[::ffff:127.0.0.1]:80", true},
		{"bare ip", []string{"allow 127.0.0.1", "deny all"}, "127.0.0.1", true},
		{"garbage fails closed", []string{"allow 127.0.0.1", "deny all"}, "bogus:1", false},
		{"garbage without deny all", []string{"deny 10.0.0.0/8"}, "bogus:1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustRules(t, tt.rules...).AllowedRemoteAddr(tt.remote); got != tt.want {
				t.Errorf("AllowedRemoteAddr(%q) = %v, want %v", tt.remote, got, tt.want)
			}
		})
	}
	if !(Rules{}).AllowedUnix() || (Rules{{Unix: true}}).AllowedUnix() {
		t.Error("AllowedUnix")
	}
}

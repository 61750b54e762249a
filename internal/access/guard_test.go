package access

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"upstreamd/internal/errlog"
)

func TestChallenge(t *testing.T) {
	tests := []struct{ realm, want string }{
		{"closed site", `Basic realm="closed site"`},
		{"", `Basic realm=""`},
		{`say "hi"`, `Basic realm="say \"hi\""`},
		{`a\b`, `Basic realm="a\\b"`},
		{"x\r\nSet-Cookie: y", `Basic realm="xSet-Cookie: y"`},
		{"tab\there", "Basic realm=\"tab\there\""},
	}
	for _, tt := range tests {
		if got := Challenge(tt.realm); got != tt.want {
			t.Errorf("Challenge(%q) = %q, want %q", tt.realm, got, tt.want)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestParseAuthorization(t *testing.T) {
	tests := []struct {
		name, header   string
		user, password string
		ok             bool
	}{
		{"plain", "Basic " + b64("alice:pw"), "alice", "pw", true},
		{"scheme case-insensitive", "bAsIc " + b64("alice:pw"), "alice", "pw", true},
		{"extra spaces", "Basic    " + b64("alice:pw"), "alice", "pw", true},
		{"password with colon", "Basic " + b64("alice:a:b"), "alice", "a:b", true},
		{"empty password", "Basic " + b64("alice:"), "alice", "", true},
		{"no padding", "Basic " + base64.RawStdEncoding.EncodeToString([]byte("ab:c")), "ab", "c", true},
		{"empty user", "Basic " + b64(":pw"), "", "", false},
		{"no colon", "Basic " + b64("alice"), "", "", false},
		{"missing", "", "", "", false},
		{"other scheme", "Bearer abc", "", "", false},
		{"no space", "Basic" + b64("a:b"), "", "", false},
		{"no credentials", "Basic ", "", "", false},
		{"bad base64", "Basic !!!!", "", "", false},
		{"newline inside", "Basic YWxp\nY2U6cHc=", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, p, ok := ParseAuthorization(tt.header)
			if u != tt.user || p != tt.password || ok != tt.ok {
				t.Errorf("ParseAuthorization(%q) = %q,%q,%v, want %q,%q,%v", tt.header, u, p, ok, tt.user, tt.password, tt.ok)
			}
		})
	}
}

func TestParseSatisfy(t *testing.T) {
	if s, err := ParseSatisfy("all"); s != SatisfyAll || err != nil {
		t.Error("all")
	}
	if s, err := ParseSatisfy("any"); s != SatisfyAny || err != nil {
		t.Error("any")
	}
	if _, err := ParseSatisfy("some"); err == nil {
		t.Error("some accepted")
	}
}

func TestGuardEvaluate(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(pwFile, []byte("admin:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "subdir")
	if err := os.Mkdir(unreadable, 0o700); err != nil { // reading a directory fails, not with ENOENT
		t.Fatal(err)
	}
	auth := &BasicAuth{Realm: "api", Users: NewUserFileSource(pwFile)}
	missing := &BasicAuth{Realm: "api", Users: NewUserFileSource(filepath.Join(dir, "nope"))}
	broken := &BasicAuth{Realm: "api", Users: NewUserFileSource(unreadable)}
	local := mustRules(t, "allow 127.0.0.1", "deny all")
	denyOne := mustRules(t, "deny 10.0.0.1")

	good := "Basic " + b64("admin:secret")
	wrong := "Basic " + b64("admin:guess")
	unknown := "Basic " + b64("root:secret")
	const inside, outside = "127.0.0.1:4000", "192.0.2.7:4000"
	challenge := `Basic realm="api"`

	tests := []struct {
		name      string
		guard     Guard
		remote    string
		authz     string
		status    int
		challenge string
		user      string
		level     errlog.Level
		log       string
	}{
		{name: "zero guard passes", remote: outside},
		{name: "rules allow", guard: Guard{Rules: local}, remote: inside},
		{name: "rules deny", guard: Guard{Rules: local}, remote: outside,
			status: 403, level: errlog.Error, log: "access forbidden by rule"},
		{name: "rules no match passes", guard: Guard{Rules: denyOne}, remote: outside},

		{name: "auth ok", guard: Guard{Auth: auth}, remote: outside, authz: good, user: "admin"},
		{name: "auth missing credentials", guard: Guard{Auth: auth}, remote: outside,
			status: 401, challenge: challenge, level: errlog.Info, log: "no user/password was provided for basic authentication"},
		{name: "auth wrong password", guard: Guard{Auth: auth}, remote: outside, authz: wrong,
			status: 401, challenge: challenge, user: "admin", level: errlog.Error, log: `user "admin": password mismatch`},
		{name: "auth unknown user", guard: Guard{Auth: auth}, remote: outside, authz: unknown,
			status: 401, challenge: challenge, user: "root", level: errlog.Error, log: `user "root" was not found in "` + pwFile + `"`},
		{name: "auth file missing is 403", guard: Guard{Auth: missing}, remote: outside, authz: good,
			status: 403, user: "admin", level: errlog.Error, log: `open() "` + filepath.Join(dir, "nope") + `" failed (2: no such file or directory)`},
		{name: "auth file unreadable is 500", guard: Guard{Auth: broken}, remote: outside, authz: good,
			status: 500, user: "admin", level: errlog.Crit, log: `read() "` + unreadable + `" failed (21: is a directory)`},
		{name: "missing credentials checked before file", guard: Guard{Auth: missing}, remote: outside,
			status: 401, challenge: challenge, level: errlog.Info, log: "no user/password was provided for basic authentication"},

		// satisfy all: rules first, then credentials.
		{name: "all: denied ip gets 403 without challenge", guard: Guard{Rules: local, Auth: auth}, remote: outside, authz: good,
			status: 403, level: errlog.Error, log: "access forbidden by rule"},
		{name: "all: allowed ip still needs password", guard: Guard{Rules: local, Auth: auth}, remote: inside,
			status: 401, challenge: challenge, level: errlog.Info, log: "no user/password was provided for basic authentication"},
		{name: "all: both pass", guard: Guard{Rules: local, Auth: auth}, remote: inside, authz: good, user: "admin"},

		// satisfy any.
		{name: "any: allowed ip skips auth", guard: Guard{Rules: local, Auth: auth, Satisfy: SatisfyAny}, remote: inside, authz: wrong},
		{name: "any: denied ip with good password", guard: Guard{Rules: local, Auth: auth, Satisfy: SatisfyAny}, remote: outside, authz: good, user: "admin"},
		{name: "any: both fail gives 401", guard: Guard{Rules: local, Auth: auth, Satisfy: SatisfyAny}, remote: outside, authz: wrong,
			status: 401, challenge: challenge, user: "admin", level: errlog.Error, log: `user "admin": password mismatch`},
		{name: "any: no rule matched is no grant", guard: Guard{Rules: denyOne, Auth: auth, Satisfy: SatisfyAny}, remote: outside,
			status: 401, challenge: challenge, level: errlog.Info, log: "no user/password was provided for basic authentication"},
		{name: "any: denied without auth is silent 403", guard: Guard{Rules: local, Satisfy: SatisfyAny}, remote: outside, status: 403},
		{name: "any: nothing configured passes", guard: Guard{Satisfy: SatisfyAny}, remote: outside},
		{name: "any: missing file keeps 403", guard: Guard{Rules: local, Auth: missing, Satisfy: SatisfyAny}, remote: outside, authz: good,
			status: 403, user: "admin", level: errlog.Error, log: `open() "` + filepath.Join(dir, "nope") + `" failed (2: no such file or directory)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.guard.Evaluate(tt.remote, tt.authz)
			want := Decision{Status: tt.status, Challenge: tt.challenge, User: tt.user, LogMsg: tt.log, LogLevel: tt.level}
			if d != want {
				t.Errorf("Evaluate(%q, %q)\n got  %+v\n want %+v", tt.remote, tt.authz, d, want)
			}
			if d.Allowed() != (tt.status == 0) {
				t.Errorf("Allowed() = %v", d.Allowed())
			}
		})
	}
}

// Check reads the peer and header from a real request.
func TestGuardCheckRequest(t *testing.T) {
	g := Guard{Rules: mustRules(t, "allow 127.0.0.1", "deny all")}
	r := httptest.NewRequest(http.MethodGet, "/api/", nil)
	r.RemoteAddr = "127.0.0.1:1234"
	if d := g.Check(r); !d.Allowed() {
		t.Errorf("loopback denied: %+v", d)
	}
	r.RemoteAddr = "[::1]:1234"
	if d := g.Check(r); d.Status != http.StatusForbidden {
		t.Errorf("::1 not denied by 127.0.0.1 rule: %+v", d)
	}
}

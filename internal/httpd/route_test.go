package httpd

import (
	"path"
	"regexp"
	"strings"
	"testing"

	"upstreamd/internal/config"
)

func loc(mod, pattern string, nested ...*config.Location) *config.Location {
	l := &config.Location{Modifier: mod, Pattern: pattern, Locations: nested}
	switch mod {
	case "~":
		l.Regex = regexp.MustCompile(pattern)
	case "~*":
		l.Regex = regexp.MustCompile("(?i)" + pattern)
	}
	return l
}

func name(l *config.Location) string {
	if l == nil {
		return "<none>"
	}
	if l.Modifier == "" {
		return l.Pattern
	}
	return l.Modifier + " " + l.Pattern
}

// The cases follow the example in nginx's documentation of "location" plus
// the rules for ^~, nesting and regex order.
func TestLocationMatching(t *testing.T) {
	locs := []*config.Location{
		loc("=", "/"),
		loc("", "/"),
		loc("", "/documents/"),
		loc("^~", "/images/"),
		loc("~*", `\.(gif|jpg|jpeg)$`),
		loc("", "/api/", loc("", "/api/v2/"), loc("~", `^/api/.*\.json$`), loc("=", "/api/exact")),
		loc("^~", "/static/", loc("~", `\.css$`)),
		loc("~", `^/documents/.*\.pdf$`),
		loc("~", `^/documents/`),
	}
	named := map[string]*config.Location{}
	lv := buildLevel(locs, named)
	tests := []struct{ uri, want string }{
		{"/", "= /"},
		{"/index.html", "/"},
		{"/documents/document.html", `~ ^/documents/`},
		{"/documents/a.pdf", `~ ^/documents/.*\.pdf$`},
		{"/images/1.gif", "^~ /images/"},
		{"/documents/1.jpg", `~* \.(gif|jpg|jpeg)$`},
		{"/DOCS/1.JPG", `~* \.(gif|jpg|jpeg)$`},
		{"/api/x", "/api/"},
		{"/api/v2/x", "/api/v2/"},
		{"/api/v2/x.json", `~ ^/api/.*\.json$`},
		{"/api/exact", "= /api/exact"},
		{"/static/a.css", `~ \.css$`},
		{"/static/a.jpg", "^~ /static/"},
		{"/documents", "/"},
	}
	for _, tt := range tests {
		got, _ := lv.find(tt.uri)
		if name(got) != tt.want {
			t.Errorf("find(%q) = %s, want %s", tt.uri, name(got), tt.want)
		}
	}
}

func TestLocationNoMatchUsesServerLevel(t *testing.T) {
	root := &config.Location{}
	vs := newVServer(&config.Server{Root: root, Locations: []*config.Location{loc("=", "/x")}})
	if got := vs.match("/y"); got != root {
		t.Fatalf("match(/y) = %s, want the server-level settings", name(got))
	}
}

func TestServerNameSelection(t *testing.T) {
	mk := func(id string, names ...string) *vserver {
		return newVServer(&config.Server{Names: append([]string{}, names...), File: id})
	}
	first := mk("first", "first.test")
	exact := mk("exact", "www.example.com")
	leading := mk("leading", "*.example.com")
	longerLeading := mk("longer", "*.mail.example.com")
	trailing := mk("trailing", "www.example.*")
	regex := mk("regex", `~^(?P<n>\w+)\.regex\.test$`)
	capitals := mk("capitals", `~^WWW\.Caps\.test$`)
	dot := mk("dot", ".dot.test")
	dflt := mk("default", "")
	nt := newNameTable()
	for _, vs := range []*vserver{first, exact, leading, longerLeading, trailing, regex, capitals, dot} {
		nt.add(vs, false)
	}
	nt.add(dflt, true)
	nt.finish()
	tests := []struct {
		host string
		want *vserver
	}{
		{"www.example.com", exact},
		{"WWW.Example.COM:8080", exact},
		{"www.example.com.", exact},
		{"a.example.com", leading},
		{"x.mail.example.com", longerLeading},
		{"www.example.org", trailing},
		{"abc.regex.test", regex},
		{"www.caps.test", capitals},
		{"dot.test", dot},
		{"a.dot.test", dot},
		{"unknown.test", dflt},
		{"", dflt},
	}
	for _, tt := range tests {
		if got := nt.lookup(tt.host); got != tt.want {
			t.Errorf("lookup(%q) = %s, want %s", tt.host, got.cfg.File, tt.want.cfg.File)
		}
	}
}

func TestFirstServerIsDefaultWithoutDefaultServer(t *testing.T) {
	a := newVServer(&config.Server{Names: []string{"a"}})
	b := newVServer(&config.Server{Names: []string{"b"}})
	nt := newNameTable()
	nt.add(a, false)
	nt.add(b, false)
	nt.finish()
	if nt.lookup("zzz") != a {
		t.Fatal("the first server for an address must be the default")
	}
}

func TestTemplate(t *testing.T) {
	tests := []struct {
		in   string
		want []templatePart
	}{
		{"plain", []templatePart{{literal: "plain"}}},
		{"$host:$server_port", []templatePart{{varName: "host"}, {literal: ":"}, {varName: "server_port"}}},
		{"${arg_a}b", []templatePart{{varName: "arg_a"}, {literal: "b"}}},
		{"cost $", []templatePart{{literal: "cost $"}}},
		{"$Http_X_Real", []templatePart{{varName: "http_x_real"}}},
	}
	for _, tt := range tests {
		got := compileTemplate(tt.in).parts
		if len(got) != len(tt.want) {
			t.Errorf("%q: parts %+v, want %+v", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%q: part %d %+v, want %+v", tt.in, i, got[i], tt.want[i])
			}
		}
	}
}

func TestNormalizePath(t *testing.T) {
	tests := map[string]string{
		"": "/", "/a/../b": "/b", "/a//b/": "/a/b/", "/./x": "/x", "/..": "/",
		"/": "/", "/proxy": "/proxy", "/a/b/": "/a/b/", "/a/.": "/a", "/a/..": "/",
		"/a/./": "/a/", "//": "/", "/a.b/..c/.d": "/a.b/..c/.d", "/a/...": "/a/...",
	}
	for in, want := range tests {
		if got := normalizePath(in); got != want {
			t.Errorf("normalizePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzIsCleanPath: a path taken as clean (returned unchanged, without
// path.Clean) is one that path.Clean's normalisation leaves as it is.
func FuzzIsCleanPath(f *testing.F) {
	for _, p := range []string{"/", "/a/b/", "/a//b", "/./", "/a/..", "/..a/b.", "x", "/a/.../"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !isCleanPath(p) {
			return
		}
		want := path.Clean(p)
		if strings.HasSuffix(p, "/") && want != "/" {
			want += "/"
		}
		if want != p {
			t.Fatalf("%q taken as clean, normalises to %q", p, want)
		}
	})
}

func TestNormalizeHost(t *testing.T) {
	tests := map[string]string{
		"Example.COM": "example.com", "example.com.": "example.com", "example.com:8080": "example.com",
		"EXAMPLE.com.:80": "example.com", "127.0.0.1:33315": "127.0.0.1", "[::1]:80": "::1",
		"[::1]": "[::1]", "::1": "::1", "name:": "name", "a]:80": "a]:80",
	}
	for in, want := range tests {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

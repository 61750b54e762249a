package nginxconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles creates files (relative path -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestIncludeFromDisk(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"nginx.conf": `user nobody;
http {
    include mime.types;
    include conf.d/*.conf;
    include none.d/*.conf;
    server { include snippets/common; }
}
`,
		"mime.types":          "types {\n    text/html html;\n}\n",
		"conf.d/b.conf":       "\n\nserver { listen 81; }\n",
		"conf.d/a.conf":       "server { listen 80; include snippets/common; }\n",
		"conf.d/.a.conf.swp":  "garbage {",
		"conf.d/c.conf.off":   "garbage {",
		"snippets/common":     "# shared\nkeepalive_timeout 5;\n",
		"snippets/unused.cnf": "garbage {",
	})
	main := filepath.Join(dir, "nginx.conf")
	ds, err := ParseFile(main)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer("$D", dir).Replace(`$D/nginx.conf:1 "user" "nobody"
$D/nginx.conf:2 "http" {
  $D/mime.types:1 "types" {
    $D/mime.types:2 "text/html" "html"
  $D/conf.d/a.conf:1 "server" {
    $D/conf.d/a.conf:1 "listen" "80"
    $D/snippets/common:2 "keepalive_timeout" "5"
  $D/conf.d/b.conf:3 "server" {
    $D/conf.d/b.conf:3 "listen" "81"
  $D/nginx.conf:6 "server" {
    $D/snippets/common:2 "keepalive_timeout" "5"
`)
	if got := outline(ds); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// Relative includes resolve against the main file's directory even when
// written inside an included file in a subdirectory, as nginx resolves
// them against its configuration prefix.
func TestIncludeRelativeToMainFile(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"nginx.conf":   "include sub/one.conf;",
		"sub/one.conf": "include two.conf;",
		"two.conf":     "two;",
		"sub/two.conf": "wrong;",
	})
	ds, err := ParseFile(filepath.Join(dir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	want := dir + `/two.conf:1 "two"` + "\n"
	if got := outline(ds); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestIncludeAbsoluteAndParseDir(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"x.conf": "x;"})
	src := "include " + filepath.Join(dir, "x.conf") + ";\ninclude x.conf;"
	ds, err := Parse(filepath.Join(dir, "virtual.conf"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].File != filepath.Join(dir, "x.conf") || ds[1].Line != 1 {
		t.Errorf("got\n%s", outline(ds))
	}
}

func TestIncludeDirectoryMatch(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"nginx.conf":     "\ninclude d/*;",
		"d/sub/x.conf":   "x;",
		"d/a.conf":       "a;",
		"d/.hidden/x.cf": "x;",
	})
	_, err := ParseFile(filepath.Join(dir, "nginx.conf"))
	want := `pread() "` + dir + `/d/sub" failed (21: Is a directory) in ` + dir + "/nginx.conf:2"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant    %s", err, want)
	}
}

func TestParseFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.conf")
	_, err := ParseFile(path)
	want := `open() "` + path + `" failed (2: No such file or directory)`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestMatchesDotfile(t *testing.T) {
	tests := []struct {
		pattern, match string
		want           bool
	}{
		{"/a/*.conf", "/a/x.conf", false},
		{"/a/*.conf", "/a/.x.conf", true},
		{"/a/.*", "/a/.x", false},
		{"/a/*/x", "/a/.git/x", true},
		{"/a/./b/*", "/a/b/c", false},
		{"/a/./b/*", "/a/b/.c", true},
		{"/a/[.]x", "/a/.x", true},
	}
	for _, tt := range tests {
		if got := matchesDotfile(tt.pattern, tt.match); got != tt.want {
			t.Errorf("matchesDotfile(%q, %q) = %v", tt.pattern, tt.match, got)
		}
	}
}

func TestResolve(t *testing.T) {
	tests := []struct{ prefix, name, want string }{
		{".", "a.conf", "a.conf"},
		{"/", "a.conf", "/a.conf"},
		{"/etc/nginx", "a.conf", "/etc/nginx/a.conf"},
		{"/etc/nginx", "./a.conf", "/etc/nginx/./a.conf"},
		{"conf", "a.conf", "conf/a.conf"},
		{"/etc/nginx", "/abs/a.conf", "/abs/a.conf"},
	}
	for _, tt := range tests {
		p := &parser{prefix: tt.prefix}
		if got := p.resolve(tt.name); got != tt.want {
			t.Errorf("resolve(%q) with prefix %q = %q, want %q", tt.name, tt.prefix, got, tt.want)
		}
	}
}

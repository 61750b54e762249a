package nginxconf

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestParseParam(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"extra.conf": "\nworker_rlimit_nofile 1024;"})
	ds, err := ParseParam("daemon off;\n master_process 'on'; include extra.conf;", dir)
	if err != nil {
		t.Fatal(err)
	}
	want := `command line:0 "daemon" "off"
command line:0 "master_process" "on"
` + filepath.Join(dir, "extra.conf") + `:2 "worker_rlimit_nofile" "1024"
`
	if got := outline(ds); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if e := ds[0].Errorf(`"daemon" directive is duplicate`); e.Error() != `"daemon" directive is duplicate in command line` {
		t.Errorf("got %q", e.Error())
	}
}

func TestParseParamErrors(t *testing.T) {
	tests := []struct{ param, want string }{
		{"daemon off", `unexpected end of parameter, expecting ";" in command line`},
		{"daemon 'off;", `unexpected end of parameter, expecting ";" in command line`},
		{"events {}", `block directives are not supported in -g option in command line`},
		{"content_by_lua_block { }", `block directives are not supported in -g option in command line`},
		{"a; }", `unexpected "}" in command line`},
		{"\n\n;", `unexpected ";" in command line`},
		{"include nope.conf;", `open() "$D/nope.conf" failed (2: No such file or directory) in command line`},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		tt.want = strings.ReplaceAll(tt.want, "$D", dir)
		_, err := ParseParam(tt.param, dir)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseParam(%q) error = %v\nwant %s", tt.param, err, tt.want)
		}
	}
}

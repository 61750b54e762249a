package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An access_log path with variables is resolved per request, relative to
// the prefix, as nginx does; open files are cached but bounded, and a path
// that cannot be opened is reported at crit without failing the request.
func TestServeAccessLogVariablePath(t *testing.T) {
	// logs/ exists, as after nginx's install: its files are created, not
	// the directory.
	s, base, _, logs := startServerWithFiles(t, `
error_log stderr info;
events {}
http {
    log_format plain "$request_uri";
    server {
        listen LISTEN;
        access_log logs/$host.log plain;
        location / { return 200 ok; }
        location /nodir {
            access_log logs/missing/$arg_d/x.log plain;
            return 200 nodir;
        }
    }
}`, map[string]string{"logs/.keep": ""})
	for _, h := range []string{"a.test", "b.test", "a.test"} {
		if code, _, _ := svDo(t, "GET", base+"/from-"+h, "", svHost(h)); code != 200 {
			t.Fatalf("Host %s: %d", h, code)
		}
	}
	if got := svLogLines(t, svPrefix(s, "logs/a.test.log"), 2); strings.Join(got, ",") != "/from-a.test,/from-a.test" {
		t.Fatalf("a.test.log = %q", got)
	}
	if got := svLogLines(t, svPrefix(s, "logs/b.test.log"), 1); strings.Join(got, ",") != "/from-b.test" {
		t.Fatalf("b.test.log = %q", got)
	}
	if _, err := os.Stat(svPrefix(s, "logs/$host.log")); err == nil {
		t.Fatal("the path was created literally")
	}

	// More distinct names than the cache holds: every line still lands in
	// its file (evicted files are reopened and appended to), and the
	// number of open log files stays bounded.
	const hosts = 80
	for round := 0; round < 2; round++ {
		for i := 0; i < hosts; i++ {
			svDo(t, "GET", base+fmt.Sprintf("/r%d", round), "", svHost(fmt.Sprintf("h%d.test", i)))
		}
	}
	for i := 0; i < hosts; i++ {
		got := svLogLines(t, svPrefix(s, fmt.Sprintf("logs/h%d.test.log", i)), 2)
		if strings.Join(got, ",") != "/r0,/r1" {
			t.Fatalf("h%d.test.log = %q", i, got)
		}
	}
	if n := openFilesUnder(t, svPrefix(s, "logs")); n > 64+1 {
		t.Fatalf("%d log files open, want at most the cache's 64 (+ error log)", n)
	}

	// nginx does not create directories for such paths.
	if code, body, _ := svDo(t, "GET", base+"/nodir?d=sub", ""); code != 200 || body != "nodir" {
		t.Fatalf("/nodir: %d %q", code, body)
	}
	want := `[crit] ` // then: *N open() "PREFIX/logs/missing/sub/x.log" failed (2: No such file or directory)
	path := svPrefix(s, "logs/missing/sub/x.log")
	waitFor(t, func() bool {
		return strings.Contains(logs.String(), want) &&
			strings.Contains(logs.String(), `open() "`+path+`" failed (2: No such file or directory)`)
	})
	if _, err := os.Stat(filepath.Dir(path)); err == nil {
		t.Fatal("the directory of a path with variables was created")
	}
}

// openFilesUnder counts this process's open files under dir (Linux).
func openFilesUnder(t *testing.T, dir string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, dir+"/") {
			n++
		}
	}
	return n
}

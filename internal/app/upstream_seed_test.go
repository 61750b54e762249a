package app

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// freePort is a loopback port with nothing listening on it.
func freePort(t *testing.T) string {
	t.Helper()
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestSeedScenario drives the scenario of the blog post the project grew
// from (examples/seed/conf/nginx.conf, unchanged but for its fixed ports):
// with the original module, /set_upstream only changed the worker that
// served it, so /call_upstream kept answering from 8082 on the others and
// /status_upstream never showed the change.
func TestSeedScenario(t *testing.T) {
	src, err := os.ReadFile("../../examples/seed/conf/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	front, p1, p2 := freePort(t), freePort(t), freePort(t)
	// Only the ports: "hello world 8082" is the answer the scenario checks.
	conf := strings.NewReplacer(
		"listen 8080;", "listen "+front+";", "listen 8081;", "listen "+p1+";", "listen 8082;", "listen "+p2+";",
		"localhost:8081", "localhost:"+p1, "localhost:8082", "localhost:"+p2,
	).Replace(string(src))
	// The seed names its backends "localhost" and they listen on IPv4 only;
	// where localhost also resolves to ::1 the upstream would get peers
	// nothing listens on, which is not what the scenario is about.
	if addrs, err := net.LookupHost("localhost"); err != nil || !slices.Equal(addrs, []string{"127.0.0.1"}) {
		conf = strings.ReplaceAll(conf, "localhost:", "127.0.0.1:")
	}
	s, _, _ := startServer(t, conf)
	base := "http://127.0.0.1:" + front
	errorLog := filepath.Join(s.opts.Prefix, "logs", "error.log")
	readLog := func() string {
		b, _ := os.ReadFile(errorLog)
		return string(b)
	}

	for i := 0; i < 4; i++ {
		if code, body, _ := get(t, base+"/call_upstream"); code != 200 || body != "hello world 8082\n" {
			t.Fatalf("while 8081 is down: %d %q", code, body)
		}
	}

	// A status line lists key:value pairs in table order: match them as a set.
	statusLine := func(log, down string) bool {
		fields := []string{"idx:1", "name:(localhost|127\\.0\\.0\\.1):" + p1, "backup:false", "down:" + down}
	lines:
		for _, line := range strings.Split(log, "\n") {
			if !strings.Contains(line, "[info]") {
				continue
			}
			for _, f := range fields {
				if !regexp.MustCompile(` ` + f + `[ ,]`).MatchString(line) {
					continue lines
				}
			}
			return true
		}
		return false
	}
	get(t, base+"/status_upstream")
	waitFor(t, func() bool {
		l := readLog()
		return strings.Contains(l, "upstream name:backend") && statusLine(l, "true")
	})

	if code, _, _ := get(t, base+"/set_upstream"); code != 200 {
		t.Fatalf("/set_upstream: %d", code)
	}
	mark := len(readLog())
	get(t, base+"/status_upstream")
	waitFor(t, func() bool { return statusLine(readLog()[mark:], "false") })

	var seq []string
	for i := 0; i < 6; i++ {
		code, body, _ := get(t, base+"/call_upstream")
		if code != 200 {
			t.Fatalf("after /set_upstream: %d %q", code, body)
		}
		seq = append(seq, strings.TrimSpace(body))
	}
	for i := 1; i < len(seq); i++ {
		if seq[i] == seq[i-1] || (seq[i] != "hello world" && seq[i] != "hello world 8082") {
			t.Fatalf("does not alternate between both backends: %q", seq)
		}
	}
	if !regexp.MustCompile(`\[info\] .*current upstream:backend`).MatchString(readLog()) {
		t.Fatalf("no [info] current upstream:backend in the error log:\n%s", readLog())
	}
}

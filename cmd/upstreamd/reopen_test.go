package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"upstreamd/internal/testutil"
)

// reopenConf logs every request to logs/access.log and writes info lines to
// logs/error.log; every location but /ready answers body.
func reopenConf(listen, body string) string {
	return fmt.Sprintf(`error_log logs/error.log info;
events {}
http {
    log_format plain "$request_uri";
    access_log logs/access.log plain;
    server {
        listen %s;
        location = /ready { return 200 ready; }
        location / { return 200 %s; }
    }
}
`, listen, body)
}

// SIGUSR1 reopens the logs where logrotate expects them and nothing else:
// after the files are renamed, the lines go to new files at the configured
// paths, the renamed ones stop growing, and an edited configuration is not
// applied (nginx applies it only on SIGHUP).
func TestReopenLogsSignal(t *testing.T) {
	t.Parallel()
	listen := testutil.FreeAddr(t)
	prefix := newPrefix(t, reopenConf(listen, "v1"))
	d := startDaemon(t, prefix, listen)
	client := &http.Client{Timeout: 5 * time.Second}
	if code, _, err := get(client, d.url+"/before"); err != nil || code != 200 {
		t.Fatalf("GET /before: %d %v", code, err)
	}
	logs := filepath.Join(prefix, "logs")
	access, errorLog := filepath.Join(logs, "access.log"), filepath.Join(logs, "error.log")
	d.poll("the access line", func() bool { return strings.Contains(readFile(access), "/before") })
	for _, p := range []string{access, errorLog} {
		if err := os.Rename(p, p+".1"); err != nil {
			t.Fatal(err)
		}
	}
	// An edit that SIGUSR1 must not pick up.
	writeConf(t, prefix, reopenConf(listen, "v2"))
	d.signal(syscall.SIGUSR1)
	d.poll("the new log files", func() bool { return fileExists(errorLog) && fileExists(access) })
	// The SIGUSR1 notice went to the old error log, before the reopen (as
	// in nginx); from here on the renamed files must not change.
	sizes := map[string]int{access + ".1": len(readFile(access + ".1")), errorLog + ".1": len(readFile(errorLog + ".1"))}

	if code, _, err := get(client, d.url+"/after"); err != nil || code != 200 {
		t.Fatalf("GET /after: %d %v", code, err)
	}
	d.poll("the access line in the new file", func() bool { return strings.Contains(readFile(access), "/after") })
	if code, body, err := get(client, d.url+"/"); err != nil || code != 200 || body != "v1" {
		t.Fatalf("GET / after SIGUSR1: %d %q %v (the edited configuration must not be applied)", code, body, err)
	}
	// A reload now writes its notice to the reopened error log.
	d.signal(syscall.SIGHUP)
	d.waitBody("v2")
	d.poll("the reload notice in the new error log", func() bool {
		return strings.Contains(readFile(errorLog), "signal 1 (SIGHUP) received")
	})
	if strings.Contains(readFile(access), "/before") {
		t.Fatal("the new access log holds a line from before the reopen")
	}
	for p, n := range sizes {
		if got := len(readFile(p)); got != n {
			t.Errorf("%s grew from %d to %d bytes after the reopen:\n%s", filepath.Base(p), n, got, readFile(p))
		}
	}
	if strings.Contains(readFile(errorLog+".1"), "reconfiguring") {
		t.Error("SIGUSR1 reloaded the configuration")
	}
}

func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

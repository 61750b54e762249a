package app

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"upstreamd/internal/errlog"
)

// ReopenLogs under traffic, as logrotate does it: rename, then reopen,
// again and again while requests log. Every line lands whole in exactly
// one of the files, none is lost, and the error log follows too.
func TestReopenLogsUnderTraffic(t *testing.T) {
	s, base, _, _ := startServerWithFiles(t, `
error_log logs/error.log info;
events {}
http {
    log_format plain "$request_uri";
    access_log logs/access.log plain;
    server {
        listen LISTEN;
        location / { return 200 ok; }
    }
}`, nil)
	access, errorLog := svPrefix(s, "logs/access.log"), svPrefix(s, "logs/error.log")
	var (
		stop atomic.Bool
		sent atomic.Int64
		wg   sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				resp, err := http.Get(fmt.Sprintf("%s/w%d-%d", base, w, i))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				sent.Add(1)
			}
		}(w)
	}
	const rotations = 5
	for i := 1; i <= rotations; i++ {
		before := sent.Load()
		waitFor(t, func() bool { return sent.Load() >= before+20 })
		for _, p := range []string{access, errorLog} {
			if err := os.Rename(p, fmt.Sprintf("%s.%d", p, i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.ReopenLogs(); err != nil {
			t.Fatal(err)
		}
		s.Current().Log.Logf(errlog.Notice, 0, "rotation %d", i)
	}
	stop.Store(true)
	wg.Wait()

	// Access lines are written after the response: wait until every sent
	// request is in one of the files, checking each line is whole.
	countLines := func() int {
		n := 0
		for i := 0; i <= rotations; i++ {
			name := access
			if i > 0 {
				name = fmt.Sprintf("%s.%d", access, i)
			}
			data, _ := os.ReadFile(name)
			for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
				if line == "" {
					continue
				}
				if !strings.HasPrefix(line, "/w") || strings.Count(line, "/") != 1 {
					t.Fatalf("torn line %q", line)
				}
				n++
			}
		}
		return n
	}
	waitFor(t, func() bool { return countLines() == int(sent.Load()) })
	for i := 1; i <= rotations; i++ {
		data, _ := os.ReadFile(fmt.Sprintf("%s.%d", errorLog, i))
		if strings.Contains(string(data), fmt.Sprintf("rotation %d\n", i)) {
			t.Errorf("error.log.%d got the line logged after it was rotated away", i)
		}
		next := errorLog
		if i < rotations {
			next = fmt.Sprintf("%s.%d", errorLog, i+1)
		}
		if data, _ := os.ReadFile(next); !strings.Contains(string(data), fmt.Sprintf("rotation %d\n", i)) {
			t.Errorf("%s lacks the line logged after rotation %d", next, i)
		}
	}
}

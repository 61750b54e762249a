package app

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// nginx's upstream `keepalive N` is a cache per worker process: with
// worker_processes W the backends may see N×W idle connections. upstreamd
// has one cache per upstream, sized the same way.
func TestKeepaliveCachePerWorker(t *testing.T) {
	for _, tc := range []struct {
		workers string
		want    int
	}{
		{"", 4}, // nginx's default: worker_processes 1
		{"worker_processes 1;", 4},
		{"worker_processes 3;", 12},
		{"worker_processes auto;", 4 * runtime.NumCPU()},
	} {
		prefix := t.TempDir()
		confPath := filepath.Join(prefix, "conf", "nginx.conf")
		writeFile(t, confPath, tc.workers+`
events {}
http {
    upstream kept {
        server 127.0.0.1:9;
        keepalive 4;
    }
    upstream none {
        server 127.0.0.1:9;
    }
    server { listen 127.0.0.1:8080; }
}`)
		g, err := Load(Options{Prefix: prefix + "/", ConfFile: confPath, Stderr: &syncBuffer{}})
		if err != nil {
			t.Fatalf("%q: %v", tc.workers, err)
		}
		if got := g.pools["kept"].Capacity(); got != tc.want {
			t.Errorf("%q: keepalive 4 keeps %d idle connections, want %d", strings.TrimSpace(tc.workers), got, tc.want)
		}
		if got := g.pools["none"].Capacity(); got != 0 {
			t.Errorf("%q: no keepalive directive keeps %d, want 0", tc.workers, got)
		}
		g.close()
	}
}

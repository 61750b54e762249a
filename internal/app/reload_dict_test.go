package app

import (
	"os"
	"strings"
	"testing"
)

// A lua_shared_dict keeps its data across a reload when its name and size
// stay the same (nginx keeps the zone); a resized one starts empty.
func TestSharedDictSurvivesReload(t *testing.T) {
	conf := `
events {}
http {
    access_log off;
    lua_shared_dict counters SIZE;
    server {
        listen LISTEN;
        location /incr { default_type text/plain; content_by_lua_block { ngx.say((ngx.shared.counters:incr("n", 1, 0))) } }
    }
}`
	s, base, _ := startServer(t, strings.Replace(conf, "SIZE", "1m", 1))
	listen := strings.TrimPrefix(base, "http://")
	for i := 1; i <= 3; i++ {
		if _, body, _ := get(t, base+"/incr"); body != itoa(i)+"\n" {
			t.Fatalf("incr %d: %q", i, body)
		}
	}
	reload := func(size string) {
		t.Helper()
		text := strings.ReplaceAll(strings.Replace(conf, "SIZE", size, 1), "LISTEN", listen)
		if err := os.WriteFile(s.opts.ConfFile, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := s.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	reload("1m")
	if _, body, _ := get(t, base+"/incr"); body != "4\n" {
		t.Fatalf("after reload with the same size: %q, want 4", body)
	}
	reload("2m")
	if _, body, _ := get(t, base+"/incr"); body != "1\n" {
		t.Fatalf("after resizing: %q, want a fresh dict (1)", body)
	}
}

func itoa(i int) string { return string(rune('0' + i)) }

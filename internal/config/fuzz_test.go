package config

import (
	"os"
	"testing"

	"upstreamd/internal/nginxconf"
)

// FuzzBuild checks that no parsed configuration makes Build panic, and
// that every failure is a positioned *nginxconf.Error.
func FuzzBuild(f *testing.F) {
	seed, err := os.ReadFile("testdata/seed.conf")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(seed))
	f.Add(httpConf("server { listen 80; location / { proxy_pass http://127.0.0.1:81/x; } }"))
	f.Add(httpConf("upstream u { server 127.0.0.1 weight=2 backup; hash $x; } server { location ~* a { location /b {} } }"))
	f.Add(httpConf("server { error_page 404 =200 /x; return 301 http://x; location = /x { return 200; } }"))
	f.Fuzz(func(t *testing.T, text string) {
		tree, err := nginxconf.Parse("nginx.conf", []byte(text))
		if err != nil {
			return
		}
		_, err = Build(Options{Prefix: testPrefix, Resolve: testResolver}, tree)
		if err != nil {
			if _, ok := err.(*nginxconf.Error); !ok {
				t.Fatalf("error %T: %v", err, err)
			}
		}
	})
}

package app

import (
	"os"
	"path/filepath"
	"testing"
)

// The shipped examples must stay valid: each loads (as `-t` does) from a
// copy of its prefix, so logs and state files land in a temporary directory.
func TestExamplesLoad(t *testing.T) {
	confs, err := filepath.Glob("../../examples/*/conf/nginx.conf")
	if err != nil || len(confs) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, conf := range confs {
		example := filepath.Dir(filepath.Dir(conf))
		t.Run(filepath.Base(example), func(t *testing.T) {
			prefix := t.TempDir()
			if err := os.CopyFS(prefix, os.DirFS(example)); err != nil {
				t.Fatal(err)
			}
			g, err := Load(Options{Prefix: prefix + "/", ConfFile: filepath.Join(prefix, "conf/nginx.conf"), Stderr: os.Stderr})
			if err != nil {
				t.Fatalf("%s: %v", conf, err)
			}
			g.close()
		})
	}
}

package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProfiled(t *testing.T) {
	if rc := profiled("", nil, func() int { return 3 }); rc != 3 {
		t.Fatalf("without a path: rc %d, want f's 3", rc)
	}
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	rc := profiled(path, nil, func() int {
		for i := 0; i < 1e7; i++ { // some work to sample
			_ = strings.Repeat("x", i%7)
		}
		return 0
	})
	if rc != 0 {
		t.Fatalf("rc %d", rc)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A pprof profile is a gzipped protocol buffer.
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the profile is not gzipped: %v", err)
	}
	if raw, err := io.ReadAll(zr); err != nil || len(raw) == 0 {
		t.Fatalf("the profile's content: %d bytes, %v", len(raw), err)
	}
	var stderr bytes.Buffer
	if rc := profiled(filepath.Join(t.TempDir(), "no", "such", "dir"), &stderr, func() int { return 0 }); rc != 1 ||
		!strings.Contains(stderr.String(), "UPSTREAMD_CPUPROFILE") {
		t.Fatalf("an unwritable path: rc %d, %q", rc, stderr.String())
	}
}

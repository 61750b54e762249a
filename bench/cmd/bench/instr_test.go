package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCachegrindTotal(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		want          int64
		wantErr       bool
	}{
		{"summary", "desc: I1 cache:\ncmd: upstreamd\nevents: Ir\nfl=x\n1 5\nsummary: 1234567\n", 1234567, false},
		{"no summary", "events: Ir\nfl=x\n1 5\n", 0, true},
		{"empty summary", "summary:\n", 0, true},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := cachegrindTotal(path)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%s: %d, %v; want %d, error %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
	if _, err := cachegrindTotal(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

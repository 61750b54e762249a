package config

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	good := []struct {
		in   string
		want time.Duration
	}{
		{"10s", 10 * time.Second},
		{"1m", time.Minute},
		{"500ms", 500 * time.Millisecond},
		{"1h 30m", 90 * time.Minute},
		{"1m30s", 90 * time.Second},
		{"1h30m15s500ms", time.Hour + 30*time.Minute + 15*time.Second + 500*time.Millisecond},
		{"5", 5 * time.Second},
		{"0", 0},
		{"75", 75 * time.Second},
		{"1d", 24 * time.Hour},
		{"2w", 14 * 24 * time.Hour},
		{"1m 30", 90 * time.Second}, // a trailing bare number is seconds
		{"1h  5m", time.Hour + 5*time.Minute},
	}
	for _, tt := range good {
		got, err := ParseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	bad := []string{"", "s", "ms", "1y", "1M", "30s1m", "1m1m", "1s500ms1s", "-1s", "1.5s", "10 s", "1x", "1S", "99999999999999999999", "9999999999999d"}
	for _, in := range bad {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want error", in, got)
		}
	}
}

func TestParseSeconds(t *testing.T) {
	good := map[string]time.Duration{
		"30":    30 * time.Second,
		"10s":   10 * time.Second,
		"1m30s": 90 * time.Second,
		"1y":    365 * 24 * time.Hour,
		"1M":    30 * 24 * time.Hour,
	}
	for in, want := range good {
		if got, err := parseSeconds(in); err != nil || got != want {
			t.Errorf("parseSeconds(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"10ms", "", "1q"} {
		if _, err := parseSeconds(in); err == nil {
			t.Errorf("parseSeconds(%q): want error", in)
		}
	}
}

func TestParseSize(t *testing.T) {
	good := []struct {
		in   string
		want int64
	}{
		{"64k", 64 << 10},
		{"64K", 64 << 10},
		{"1m", 1 << 20},
		{"1M", 1 << 20},
		{"1g", 1 << 30},
		{"2G", 2 << 30},
		{"512", 512},
		{"0", 0},
	}
	for _, tt := range good {
		got, err := ParseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "k", "1t", "1.5m", "-1", "1kb", "1 k", "99999999999999999999", "9999999999999g"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %v, want error", in, got)
		}
	}
}

func TestDefaultTypes(t *testing.T) {
	m := defaultTypes()
	for ext, want := range map[string]string{
		"html": "text/html", "htm": "text/html", "css": "text/css", "js": "application/javascript",
		"json": "application/json", "png": "image/png", "svg": "image/svg+xml", "txt": "text/plain",
		"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "woff2": "font/woff2",
		"mp4": "video/mp4", "iso": "application/octet-stream", "wasm": "application/wasm",
	} {
		if got := m[ext]; got != want {
			t.Errorf("type of %q = %q, want %q", ext, got, want)
		}
	}
	if len(m) < 100 {
		t.Errorf("only %d extensions", len(m))
	}
}

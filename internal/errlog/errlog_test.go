package errlog

import (
	"bytes"
	"errors"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestLineFormat(t *testing.T) {
	var buf bytes.Buffer
	l := New(Info, &buf)
	l.now = func() time.Time { return time.Date(2026, 11, 25, 9, 8, 7, 0, time.UTC) }
	l.Logf(Error, 7, "connect() failed (%d: %s)", 111, "Connection refused")
	l.Log(Info, 0, "no connection number")
	want := "2026/11/25 09:08:07 [error] " + strconv.Itoa(os.Getpid()) + "#0: *7 connect() failed (111: Connection refused)\n" +
		"2026/11/25 09:08:07 [info] " + strconv.Itoa(os.Getpid()) + "#0: no connection number\n"
	if buf.String() != want {
		t.Fatalf("got\n%q\nwant\n%q", buf.String(), want)
	}
}

func TestLevelThreshold(t *testing.T) {
	tests := []struct {
		configured Level
		written    []Level
	}{
		{Error, []Level{Stderr, Emerg, Alert, Crit, Error}},
		{Warn, []Level{Stderr, Emerg, Alert, Crit, Error, Warn}},
		{Debug, []Level{Stderr, Emerg, Alert, Crit, Error, Warn, Notice, Info, Debug}},
		{Emerg, []Level{Stderr, Emerg}},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		l := New(tt.configured, &buf)
		for lv := Stderr; lv <= Debug; lv++ {
			l.Log(lv, 0, "x")
		}
		var got []string
		for _, m := range regexp.MustCompile(`\[(\w+)\]`).FindAllStringSubmatch(buf.String(), -1) {
			got = append(got, m[1])
		}
		var want []string
		for _, lv := range tt.written {
			want = append(want, lv.String())
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("level %s wrote %v, want %v", tt.configured, got, want)
		}
	}
}

func TestParseLevel(t *testing.T) {
	for _, name := range []string{"debug", "info", "notice", "warn", "error", "crit", "alert", "emerg"} {
		lv, ok := ParseLevel(name)
		if !ok || lv.String() != name {
			t.Errorf("ParseLevel(%q) = %v, %v", name, lv, ok)
		}
	}
	for _, bad := range []string{"", "stderr", "warning", "ERROR"} {
		if _, ok := ParseLevel(bad); ok {
			t.Errorf("ParseLevel(%q) accepted", bad)
		}
	}
}

// Lines from concurrent writers must never interleave: tools parse them one
// per line.
func TestConcurrentLinesStayWhole(t *testing.T) {
	var buf bytes.Buffer
	l := New(Info, &buf)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				l.Logf(Info, uint64(g+1), "writer %d line %d %s", g, i, strings.Repeat("x", 100))
			}
		}(g)
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 1600 {
		t.Fatalf("%d lines, want 1600", len(lines))
	}
	re := regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[info\] \d+#0: \*\d writer \d line \d+ x{100}$`)
	for _, line := range lines {
		if !re.MatchString(line) {
			t.Fatalf("malformed line %q", line)
		}
	}
}

func TestDiscardWritesNothing(t *testing.T) {
	l := Discard()
	if l.Enabled(Emerg) {
		t.Fatal("Discard logger claims to write")
	}
	var nilLogger *Logger
	if nilLogger.Enabled(Error) {
		t.Fatal("nil logger claims to write")
	}
}

// Each error_log keeps its own level: a debug file next to an error-only
// stderr gets everything while stderr stays quiet.
func TestPerSinkLevels(t *testing.T) {
	var verbose, quiet bytes.Buffer
	l := NewSinks(Sink{W: &verbose, Level: Info}, Sink{W: &quiet, Level: Error})
	l.Log(Info, 0, "informational")
	l.Log(Error, 0, "failure")
	if !strings.Contains(verbose.String(), "informational") || !strings.Contains(verbose.String(), "failure") {
		t.Fatalf("info sink got %q", verbose.String())
	}
	if strings.Contains(quiet.String(), "informational") || !strings.Contains(quiet.String(), "failure") {
		t.Fatalf("error sink got %q", quiet.String())
	}
	if !l.Enabled(Info) || l.Enabled(Debug) {
		t.Fatal("Enabled must follow the most verbose sink")
	}
}

// Reopening an error log swaps the writer: lines go wholly to the old one
// before the swap and to the new one after.
func TestReplaceWriter(t *testing.T) {
	var oldW, newW, other bytes.Buffer
	l := NewSinks(Sink{W: &oldW, Level: Info}, Sink{W: &other, Level: Info})
	l.Log(Info, 0, "before")
	if !l.ReplaceWriter(&oldW, &newW) {
		t.Fatal("sink not found")
	}
	l.Log(Info, 0, "after")
	if !strings.Contains(oldW.String(), "before") || strings.Contains(oldW.String(), "after") {
		t.Fatalf("old writer got %q", oldW.String())
	}
	if strings.Contains(newW.String(), "before") || !strings.Contains(newW.String(), "after") {
		t.Fatalf("new writer got %q", newW.String())
	}
	if strings.Count(other.String(), "\n") != 2 {
		t.Fatalf("untouched sink got %q", other.String())
	}
	if l.ReplaceWriter(&oldW, &newW) {
		t.Fatal("replaced a writer no sink uses")
	}
}

func TestErrnoText(t *testing.T) {
	_, openErr := os.Open("/nonexistent/file")
	tests := []struct {
		err  error
		want string
	}{
		{openErr, "2: No such file or directory"},
		{syscall.EADDRINUSE, "98: Address already in use"},
		{&net.OpError{Op: "dial", Err: errors.New("custom")}, "custom"},
		{errors.New("plain"), "plain"},
	}
	for _, tt := range tests {
		if got := ErrnoText(tt.err); got != tt.want {
			t.Errorf("ErrnoText(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

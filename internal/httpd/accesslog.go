package httpd

import (
	"os"
	"path/filepath"
	"sync"
)

// LogFiles keeps access log files open, one handle per path shared by every
// location that logs there. A reload builds a new set and closes the old
// one, which is how nginx reopens logs on SIGHUP.
type LogFiles struct {
	mu    sync.Mutex
	files map[string]*LogFile
}

// NewLogFiles returns an empty set.
func NewLogFiles() *LogFiles { return &LogFiles{files: map[string]*LogFile{}} }

// LogFile appends whole lines; concurrent writers never interleave.
type LogFile struct {
	mu sync.Mutex
	f  *os.File
}

type accessLogRT struct {
	w      *LogFile
	format *template
}

// Open returns the shared handle for path, creating the file (and its
// directory, as nginx's install does) when missing.
func (lf *LogFiles) Open(path string) (*LogFile, error) {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if f, ok := lf.files[path]; ok {
		return f, nil
	}
	var f *os.File
	switch path {
	case "stderr", "/dev/stderr":
		f = os.Stderr
	case "/dev/stdout":
		f = os.Stdout
	default:
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		var err error
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
	}
	l := &LogFile{f: f}
	lf.files[path] = l
	return l, nil
}

// WriteLine appends s and a newline in one write.
func (l *LogFile) WriteLine(s string) {
	buf := make([]byte, 0, len(s)+1)
	buf = append(buf, s...)
	buf = append(buf, '\n')
	l.mu.Lock()
	_, _ = l.f.Write(buf)
	l.mu.Unlock()
}

// Close closes every file this set opened.
func (lf *LogFiles) Close() {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	for _, l := range lf.files {
		if l.f != os.Stderr && l.f != os.Stdout {
			l.f.Close()
		}
	}
	lf.files = map[string]*LogFile{}
}

package httpd

import (
	"container/list"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"upstreamd/internal/config"
	"upstreamd/internal/errlog"
)

// LogFiles keeps access log files open, one handle per path shared by every
// location that logs there. A reload builds a new set and closes the old
// one, which is how nginx reopens logs on SIGHUP; Reopen does it in place
// for SIGUSR1.
//
// Paths with variables are resolved per request. nginx opens and closes
// such a file for every line unless open_log_file_cache keeps it; here a
// bounded cache (maxDynamicLogs, least recently used closed first) always
// does, so a busy $host log costs no open() per request while a flood of
// distinct names cannot exhaust file descriptors.
type LogFiles struct {
	mu    sync.Mutex
	files map[string]*LogFile
	dyn   map[string]*list.Element // values are *LogFile; front = most recent
	lru   list.List
}

// maxDynamicLogs bounds the open files kept for access_log paths with
// variables.
const maxDynamicLogs = 64

// NewLogFiles returns an empty set.
func NewLogFiles() *LogFiles {
	return &LogFiles{files: map[string]*LogFile{}, dyn: map[string]*list.Element{}}
}

// LogFile appends whole lines; concurrent writers never interleave.
type LogFile struct {
	mu     sync.Mutex
	f      *os.File
	path   string
	closed bool // evicted from the dynamic cache: writers must reopen
}

type accessLogRT struct {
	w      *LogFile  // nil when the path has variables
	path   *template // the path with variables, resolved per request
	format *template
	escape string    // log_format escape=: "default", "json" or "none"
	cond   *template // if=; nil when not given
}

func (h *Handler) newAccessLog(w *LogFile, al config.AccessLog) accessLogRT {
	rt := accessLogRT{w: w, format: h.template(al.Format), escape: al.Escape}
	if w == nil {
		rt.path = h.template(al.Path)
	}
	if al.If != "" {
		rt.cond = h.template(al.If)
	}
	return rt
}

// line formats the access log line for r as ngx_http_log_module does: a
// variable that is empty (nginx: not found) logs as "-", and values are
// escaped per the format's escape= setting.
func (al *accessLogRT) line(r *request) (string, bool) {
	if al.cond != nil {
		if v := al.cond.eval(r); v == "" || v == "0" {
			return "", false
		}
	}
	var b strings.Builder
	for _, p := range al.format.parts {
		if p.varName == "" {
			b.WriteString(p.literal)
			continue
		}
		v, _ := r.variable(p.varName)
		if v == "" && al.escape != "json" && !foundWhenEmpty(r, p.varName) {
			b.WriteByte('-')
			continue
		}
		switch al.escape {
		case "none":
			b.WriteString(v)
		case "json":
			escapeJSON(&b, v)
		default:
			escapeLog(&b, v)
		}
	}
	return b.String(), true
}

// foundWhenEmpty reports variables nginx logs as an empty string rather
// than "-" when they have no value.
func foundWhenEmpty(r *request, name string) bool {
	if _, set := r.setVars[name]; set {
		return true
	}
	switch name {
	case "is_args", "server_name":
		return true
	}
	return false
}

// escapeLog is escape=default: '"', '\', control characters and bytes
// above 126 as \xHH.
func escapeLog(b *strings.Builder, v string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '"' || c == '\\' || c < 0x20 || c > 0x7e {
			b.WriteString("\\x")
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
}

// escapeJSON is escape=json, as ngx_escape_json.
func escapeJSON(b *strings.Builder, v string) {
	const hex = "0123456789abcdef"
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString("\\n")
		case '\r':
			b.WriteString("\\r")
		case '\t':
			b.WriteString("\\t")
		case '\b':
			b.WriteString("\\b")
		case '\f':
			b.WriteString("\\f")
		default:
			if c < 0x20 {
				b.WriteString("\\u00")
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
				continue
			}
			b.WriteByte(c)
		}
	}
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
	l := &LogFile{f: f, path: path}
	lf.files[path] = l
	return l, nil
}

// WriteLine appends s and a newline in one write.
func (l *LogFile) WriteLine(s string) { l.writeLine(s) }

// writeLine is WriteLine reporting false when l was closed (evicted from the
// dynamic cache) before the write, so the caller can reopen the path.
func (l *LogFile) writeLine(s string) bool {
	buf := make([]byte, 0, len(s)+1)
	buf = append(buf, s...)
	buf = append(buf, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	_, _ = l.f.Write(buf)
	return true
}

// isStdio reports handles this set did not open and must not close.
func (l *LogFile) isStdio() bool { return l.f == os.Stderr || l.f == os.Stdout }

// close closes the file under the writers' lock, so no write races it.
func (l *LogFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed && !l.isStdio() {
		l.f.Close()
	}
	l.closed = true
}

// writeDynamic appends line to the file at path (an access_log path with
// variables, already resolved), opening it through the cache.
func (lf *LogFiles) writeDynamic(path, line string) error {
	// An eviction between the lookup and the write closes the handle: the
	// second attempt opens it again.
	for try := 0; try < 2; try++ {
		l, err := lf.openDynamic(path)
		if err != nil {
			return err
		}
		if l.writeLine(line) {
			return nil
		}
	}
	return nil
}

func (lf *LogFiles) openDynamic(path string) (*LogFile, error) {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if e, ok := lf.dyn[path]; ok {
		lf.lru.MoveToFront(e)
		return e.Value.(*LogFile), nil
	}
	// As nginx, no directory is created for a path with variables: the
	// name comes from the request.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	l := &LogFile{f: f, path: path}
	lf.dyn[path] = lf.lru.PushFront(l)
	for lf.lru.Len() > maxDynamicLogs {
		old := lf.lru.Remove(lf.lru.Back()).(*LogFile)
		delete(lf.dyn, old.path)
		old.close()
	}
	return l, nil
}

// Reopen reopens every file at its path (SIGUSR1, so that logrotate can
// move the files away): the new handle is swapped in under the writers'
// lock, then the old one closed, so no line is lost or split. A file that
// cannot be opened keeps its old handle, as in nginx, and the errors are
// returned. Files of paths with variables are closed and open again on
// their next line.
func (lf *LogFiles) Reopen() error {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	var errs []error
	for path, l := range lf.files {
		if l.isStdio() {
			continue
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			errs = append(errs, fmt.Errorf("open() \"%s\" failed (%s)", path, errlog.ErrnoText(err)))
			continue
		}
		l.mu.Lock()
		old := l.f
		l.f = f
		l.mu.Unlock()
		old.Close()
	}
	lf.closeDynamic()
	return errors.Join(errs...)
}

func (lf *LogFiles) closeDynamic() {
	for e := lf.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*LogFile).close()
	}
	lf.lru.Init()
	lf.dyn = map[string]*list.Element{}
}

// Close closes every file this set opened.
func (lf *LogFiles) Close() {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	for _, l := range lf.files {
		l.close()
	}
	lf.files = map[string]*LogFile{}
	lf.closeDynamic()
}

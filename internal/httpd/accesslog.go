package httpd

import (
	"os"
	"path/filepath"
	"strings"
	"sync"

	"upstreamd/internal/config"
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
	escape string    // log_format escape=: "default", "json" or "none"
	cond   *template // if=; nil when not given
}

func (h *Handler) newAccessLog(w *LogFile, al config.AccessLog) accessLogRT {
	rt := accessLogRT{w: w, format: h.template(al.Format), escape: al.Escape}
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

// Package errlog writes nginx-format error log lines:
//
//	2026/11/25 11:18:02 [error] 4242#0: *7 message, client: 127.0.0.1, ...
//
// Ops tooling greps these lines, so the layout matches nginx's exactly.
package errlog

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Level is an nginx log level; the numbers are ngx_lua's ngx.STDERR..ngx.DEBUG.
type Level int

const (
	Stderr Level = iota
	Emerg
	Alert
	Crit
	Error
	Warn
	Notice
	Info
	Debug
)

var levelNames = [...]string{"stderr", "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"}

func (l Level) String() string {
	if l < 0 || int(l) >= len(levelNames) {
		return "unknown"
	}
	return levelNames[l]
}

// ParseLevel accepts nginx's error_log level names.
func ParseLevel(s string) (Level, bool) {
	for i, n := range levelNames {
		if n == s && i > 0 {
			return Level(i), true
		}
	}
	return 0, false
}

// Logger writes lines at or above (numerically at or below) its level to
// every sink. It is safe for concurrent use; each line is one Write.
type Logger struct {
	level atomic.Int32 // the most verbose level of any sink
	mu    sync.Mutex
	sinks []Sink
	pid   string
	now   func() time.Time
}

// Sink is one error_log target with its own level, as nginx keeps a level
// per error_log directive.
type Sink struct {
	W     io.Writer
	Level Level
}

// New returns a logger writing to every w at level.
func New(level Level, sinks ...io.Writer) *Logger {
	ss := make([]Sink, len(sinks))
	for i, w := range sinks {
		ss[i] = Sink{W: w, Level: level}
	}
	return NewSinks(ss...)
}

// NewSinks returns a logger writing each line to the sinks whose level
// admits it.
func NewSinks(sinks ...Sink) *Logger {
	l := &Logger{sinks: sinks, pid: strconv.Itoa(os.Getpid()), now: time.Now}
	most := Stderr
	for _, s := range sinks {
		most = max(most, s.Level)
	}
	l.level.Store(int32(most))
	return l
}

// Discard is a logger that writes nothing.
func Discard() *Logger { return New(Stderr) }

// Enabled reports whether a line at level would be written.
func (l *Logger) Enabled(level Level) bool {
	return l != nil && level <= Level(l.level.Load()) && len(l.sinks) > 0
}

// Logf writes one line. conn is the connection number nginx prints as "*N"
// (0 omits it).
func (l *Logger) Logf(level Level, conn uint64, format string, args ...any) {
	if !l.Enabled(level) {
		return
	}
	l.Log(level, conn, fmt.Sprintf(format, args...))
}

// Log writes one preformatted message.
func (l *Logger) Log(level Level, conn uint64, msg string) {
	if !l.Enabled(level) {
		return
	}
	var b strings.Builder
	b.Grow(len(msg) + 48)
	b.WriteString(l.now().Format("2006/01/02 15:04:05"))
	b.WriteString(" [")
	b.WriteString(level.String())
	b.WriteString("] ")
	b.WriteString(l.pid)
	b.WriteString("#0: ")
	if conn != 0 {
		b.WriteByte('*')
		b.WriteString(strconv.FormatUint(conn, 10))
		b.WriteByte(' ')
	}
	b.WriteString(msg)
	b.WriteByte('\n')
	line := b.String()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.sinks {
		if level <= s.Level {
			_, _ = io.WriteString(s.W, line)
		}
	}
}

// ReplaceWriter makes every sink writing to old write to w instead,
// reporting whether any did. It swaps under the lock Log writes under, so a
// concurrent line goes wholly to one of the two: reopening a log (SIGUSR1)
// loses no line and splits none. The caller closes old afterwards.
func (l *Logger) ReplaceWriter(old, w io.Writer) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	found := false
	for i := range l.sinks {
		if l.sinks[i].W == old {
			l.sinks[i].W = w
			found = true
		}
	}
	return found
}

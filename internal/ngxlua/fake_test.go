package ngxlua

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"upstreamd/internal/errlog"
	"upstreamd/internal/testutil"
)

// fakeReq is an in-memory Request.
type fakeReq struct {
	method      string
	uri, args   string
	requestURI  string
	version     float64
	header      http.Header
	body        []byte
	bodyReads   int
	remote      string
	start       time.Time
	vars        map[string]string
	writable    map[string]bool
	status      int
	respHeader  http.Header
	headersSent bool
	out         bytes.Buffer
	flushes     int
	upstream    string
	ctx         context.Context
	writeErr    error

	mu       sync.Mutex
	logs     []string
	captures []string
	capture  func(method, uri, args string, body []byte, h http.Header) (int, http.Header, []byte, error)
}

func newFakeReq() *fakeReq {
	return &fakeReq{
		method: "GET", uri: "/t", requestURI: "/t", version: 1.1,
		header: http.Header{}, respHeader: http.Header{},
		remote: "127.0.0.1", start: time.Unix(1700000000, 123000000),
		vars: map[string]string{}, writable: map[string]bool{},
		ctx: context.Background(),
	}
}

func (r *fakeReq) Method() string              { return r.method }
func (r *fakeReq) SetMethod(m string)          { r.method = m }
func (r *fakeReq) URI() string                 { return r.uri }
func (r *fakeReq) SetURI(u string)             { r.uri = u }
func (r *fakeReq) Args() string                { return r.args }
func (r *fakeReq) SetArgs(a string)            { r.args = a }
func (r *fakeReq) RequestURI() string          { return r.requestURI }
func (r *fakeReq) HTTPVersion() float64        { return r.version }
func (r *fakeReq) Header() http.Header         { return r.header }
func (r *fakeReq) RemoteAddr() string          { return r.remote }
func (r *fakeReq) StartTime() time.Time        { return r.start }
func (r *fakeReq) Status() int                 { return r.status }
func (r *fakeReq) SetStatus(s int)             { r.status = s }
func (r *fakeReq) ResponseHeader() http.Header { return r.respHeader }
func (r *fakeReq) HeadersSent() bool           { return r.headersSent }
func (r *fakeReq) UpstreamName() string        { return r.upstream }
func (r *fakeReq) Context() context.Context    { return r.ctx }

func (r *fakeReq) ReadBody() ([]byte, error) {
	r.bodyReads++
	return r.body, nil
}

func (r *fakeReq) Var(name string) (string, bool) {
	switch name {
	case "uri":
		return r.uri, true
	case "args":
		return r.args, true
	case "request_uri":
		return r.requestURI, true
	case "request_method":
		return r.method, true
	case "status":
		return fmt.Sprint(r.status), true
	}
	if strings.HasPrefix(name, "arg_") {
		for _, kv := range strings.Split(r.args, "&") {
			k, v, _ := strings.Cut(kv, "=")
			if k == name[4:] {
				return v, true
			}
		}
		return "", false
	}
	if strings.HasPrefix(name, "http_") {
		v := r.header.Get(strings.ReplaceAll(name[5:], "_", "-"))
		return v, v != ""
	}
	v, ok := r.vars[name]
	return v, ok
}

func (r *fakeReq) SetVar(name, value string) error {
	if name == "args" {
		r.args = value
		return nil
	}
	if !r.writable[name] {
		if _, ok := r.Var(name); ok {
			return fmt.Errorf("variable %q not changeable", name)
		}
		return fmt.Errorf("variable %q not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use \"set $%s '';\" in the config file to define it first", name, name)
	}
	r.vars[name] = value
	return nil
}

func (r *fakeReq) Write(p []byte) error {
	if r.writeErr != nil {
		return r.writeErr
	}
	if !r.headersSent {
		r.headersSent = true
		if r.status == 0 {
			r.status = 200
		}
	}
	r.out.Write(p)
	return nil
}

func (r *fakeReq) Flush() error { r.flushes++; return nil }

func (r *fakeReq) Capture(method, uri, args string, body []byte, h http.Header) (int, http.Header, []byte, error) {
	r.mu.Lock()
	r.captures = append(r.captures, method+" "+uri+"?"+args+" "+string(body))
	r.mu.Unlock()
	if r.capture != nil {
		return r.capture(method, uri, args, body, h)
	}
	return 404, http.Header{}, nil, nil
}

func (r *fakeReq) Log(level errlog.Level, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, "["+level.String()+"] "+msg)
}

func (r *fakeReq) logText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.logs, "\n")
}

// syncBuf is a log sink the test reads while the code under test writes.
type syncBuf = testutil.Buffer

func newTestEngine(t testing.TB, opts Options) (*Engine, *syncBuf) {
	t.Helper()
	buf := &syncBuf{}
	if opts.Log == nil {
		opts.Log = errlog.New(errlog.Debug, buf)
	}
	if !opts.CodeCache {
		opts.CodeCache = true
	}
	e, err := NewEngine(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e, buf
}

func compile(t testing.TB, e *Engine, src string) *Handler {
	t.Helper()
	h, err := e.Compile(Code{Source: src, ChunkName: "content_by_lua(nginx.conf:10)"})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return h
}

// run runs src in the content phase against r.
func run(t testing.TB, e *Engine, r *fakeReq, src string) (Outcome, error) {
	t.Helper()
	return e.Run(compile(t, e, src), PhaseContent, r, NewRequestState())
}

// runOK runs src and fails on Lua errors; returns the response body.
func runOK(t testing.TB, e *Engine, r *fakeReq, src string) string {
	t.Helper()
	if _, err := run(t, e, r, src); err != nil {
		t.Fatalf("lua error: %v", err)
	}
	return r.out.String()
}

var errTest = errors.New("test error")

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

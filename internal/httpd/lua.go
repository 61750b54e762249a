package httpd

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"upstreamd/internal/errlog"
	"upstreamd/internal/ngxlua"
)

// luaRequest adapts a request to the interface the Lua engine drives.
type luaRequest struct{ r *request }

var _ ngxlua.Request = luaRequest{}

func (l luaRequest) Method() string              { return l.r.method }
func (l luaRequest) SetMethod(m string)          { l.r.method = m }
func (l luaRequest) URI() string                 { return l.r.uri }
func (l luaRequest) SetURI(uri string)           { l.r.uri, l.r.uriChanged = uri, true }
func (l luaRequest) Args() string                { return l.r.args }
func (l luaRequest) SetArgs(args string)         { l.r.args, l.r.uriChanged = args, true }
func (l luaRequest) RequestURI() string          { return l.r.req.RequestURI }
func (l luaRequest) Header() http.Header         { return l.r.req.Header }
func (l luaRequest) ReadBody() ([]byte, error)   { return l.r.readBody() }
func (l luaRequest) RemoteAddr() string          { return mustVar(l.r, "remote_addr") }
func (l luaRequest) StartTime() time.Time        { return l.r.start }
func (l luaRequest) ResponseHeader() http.Header { return l.r.w.Header() }
func (l luaRequest) HeadersSent() bool           { return l.r.w.wroteHeader }
func (l luaRequest) UpstreamName() string        { return l.r.upstreamName }
func (l luaRequest) Context() context.Context    { return l.r.req.Context() }

var _ ngxlua.CodeCacher = luaRequest{}

// CodeCache is the location's lua_code_cache.
func (l luaRequest) CodeCache() bool { return l.r.loc.LuaCodeCache }

var _ ngxlua.SocketConfigurer = luaRequest{}

// SocketConfig is the location's lua_socket_* directives.
func (l luaRequest) SocketConfig() ngxlua.SocketConfig {
	loc := l.r.loc
	return ngxlua.SocketConfig{
		ConnectTimeout:   loc.LuaSocketConnectTimeout,
		SendTimeout:      loc.LuaSocketSendTimeout,
		ReadTimeout:      loc.LuaSocketReadTimeout,
		KeepaliveTimeout: loc.LuaSocketKeepaliveTimeout,
		PoolSize:         loc.LuaSocketPoolSize,
	}
}

// subrequestKey marks the context of ngx.location.capture subrequests.
type subrequestKey struct{}

var _ ngxlua.Subrequester = luaRequest{}

func (l luaRequest) IsSubrequest() bool {
	return l.r.req.Context().Value(subrequestKey{}) != nil
}

func (l luaRequest) HTTPVersion() float64 {
	return float64(l.r.req.ProtoMajor) + float64(l.r.req.ProtoMinor)/10
}

// Var is r.variable, except that variables nginx reports as "not found"
// (a missing header, argument or cookie, upstream variables of a request
// that did not go upstream) are nil for Lua, as in ngx_lua, while the log
// and templates see them as empty.
func (l luaRequest) Var(name string) (string, bool) {
	name = strings.ToLower(name)
	r := l.r
	if _, ok := r.setVars[name]; ok {
		return r.variable(name)
	}
	switch {
	case name == "http_host":
		if r.req.Host == "" {
			return "", false
		}
	case strings.HasPrefix(name, "http_"):
		if _, ok := r.req.Header[headerNameFromVar(name[5:])]; !ok {
			return "", false
		}
	case strings.HasPrefix(name, "sent_http_"):
		if _, ok := r.w.Header()[headerNameFromVar(name[10:])]; !ok {
			return "", false
		}
	case strings.HasPrefix(name, "arg_"):
		if !hasArg(r.args, name[4:]) {
			return "", false
		}
	case strings.HasPrefix(name, "cookie_"):
		if _, err := r.req.Cookie(name[7:]); err != nil {
			return "", false
		}
	case strings.HasPrefix(name, "upstream_"):
		if len(r.upstream.Addrs) == 0 {
			return "", false
		}
		if strings.HasPrefix(name, "upstream_http_") {
			if _, ok := r.upstreamHeader[headerNameFromVar(name[14:])]; !ok {
				return "", false
			}
		}
	}
	return r.variable(name)
}

// hasArg reports whether the query string has argument key (nginx compares
// names case-insensitively).
func hasArg(args, key string) bool {
	for args != "" {
		var kv string
		kv, args, _ = strings.Cut(args, "&")
		k, _, _ := strings.Cut(kv, "=")
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

func (l luaRequest) SetVar(name, value string) error {
	name = strings.ToLower(name)
	switch {
	case name == "args" || name == "query_string":
		l.SetArgs(value)
		return nil
	case writableVariable(name):
	case l.r.setVars != nil && hasKey(l.r.setVars, name):
	default:
		if _, builtin := l.r.variable(name); builtin {
			return fmt.Errorf("variable \"%s\" not changeable", name)
		}
		return fmt.Errorf("variable \"%s\" not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use \"set $%s '';\" in the config file to define it first", name, name)
	}
	if l.r.setVars == nil {
		l.r.setVars = map[string]string{}
	}
	l.r.setVars[name] = value
	return nil
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

func (l luaRequest) Status() int {
	if l.r.w.wroteHeader || l.r.w.filtering {
		return l.r.w.status
	}
	return l.r.w.pending
}

func (l luaRequest) SetStatus(status int) {
	if l.r.w.filtering {
		l.r.w.status = status
		return
	}
	l.r.w.pending = status
}

func (l luaRequest) Write(p []byte) error {
	rw := l.r.w
	if !rw.wroteHeader {
		// A direct map look-up is Header().Get without canonicalizing the
		// (already canonical) key on every ngx.say/ngx.print.
		if h := rw.Header(); emptyField(h, "Content-Type") {
			h["Content-Type"] = l.r.defaultTypeValue()
		}
	}
	_, err := rw.Write(p)
	return err
}

func (l luaRequest) Flush() error {
	l.r.w.Flush()
	return nil
}

func (l luaRequest) Exec(uri, args string) error {
	if uri == "" {
		return fmt.Errorf("uri is empty")
	}
	return nil
}

func (l luaRequest) Log(level errlog.Level, msg string) {
	if l.r.h.deps.Log.Enabled(level) {
		l.r.logMsg(level, msg, "")
	}
}

// Capture runs a subrequest through the same server's locations and
// collects its whole response (ngx.location.capture).
func (l luaRequest) Capture(method, uri, args string, body []byte, headers http.Header) (int, http.Header, []byte, error) {
	parent := l.r
	target := uri
	if args != "" {
		target += "?" + args
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return 0, nil, nil, err
	}
	sreq := parent.req.Clone(context.WithValue(parent.req.Context(), subrequestKey{}, true))
	sreq.Method = method
	sreq.URL = u
	sreq.RequestURI = target
	sreq.Header = headers
	if sreq.Header == nil {
		sreq.Header = parent.req.Header.Clone()
	}
	sreq.Header.Del("Content-Length")
	sreq.Body = http.NoBody
	sreq.ContentLength = int64(len(body))
	rec := &recorder{header: http.Header{}}
	sub := &request{h: parent.h, req: sreq, start: time.Now(), method: method, args: u.RawQuery, vs: parent.vs}
	sub.uri = normalizePath(u.Path)
	sub.w = &responseWriter{w: rec, r: sub}
	sub.body, sub.bodyRead = body, true
	sub.setLocation(sub.vs.match(sub.uri))
	sub.h.process(sub)
	sub.w.finish()
	return rec.status, rec.header, rec.buf.Bytes(), nil
}

// recorder collects a subrequest's response in memory.
type recorder struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (rc *recorder) Header() http.Header { return rc.header }
func (rc *recorder) WriteHeader(code int) {
	if rc.status == 0 {
		rc.status = code
	}
}
func (rc *recorder) Write(p []byte) (int, error) {
	if rc.status == 0 {
		rc.status = http.StatusOK
	}
	return rc.buf.Write(p)
}

func (r *request) luaState() *ngxlua.RequestState {
	if r.lua == nil {
		r.lua = &r.luaSt // the pooled request's own, emptied by release
	}
	return r.lua
}

// runLua runs one request phase of Lua code and maps the engine's Action
// onto the phase flow (see ngxlua.Action for the nginx semantics).
func (r *request) runLua(hd *ngxlua.Handler, phase ngxlua.Phase) flow {
	out, err := r.h.deps.Lua.Run(hd, phase, luaRequest{r}, r.luaState())
	if err != nil {
		r.logf(errlog.Error, "%s", err.Error())
	}
	switch out.Action {
	case ngxlua.ActionExec:
		return r.luaExec(out.ExecURI, out.ExecArgs)
	case ngxlua.ActionRematch:
		return flow{kind: flowRedirect}
	case ngxlua.ActionSpecial:
		if r.w.wroteHeader {
			return flow{kind: flowDone}
		}
		return flow{kind: flowStatus, status: out.Status}
	case ngxlua.ActionAbort:
		panic(http.ErrAbortHandler)
	case ngxlua.ActionFinish:
		if out.Status != 0 && !r.w.wroteHeader {
			r.w.pending = out.Status
		}
		r.sendLuaHeader()
		return flow{kind: flowDone}
	}
	if phase == ngxlua.PhaseContent {
		r.sendLuaHeader()
		return flow{kind: flowDone}
	}
	return flow{kind: flowNext}
}

// sendLuaHeader sends the header of a Lua-generated response that produced
// no output, with default_type as ngx_lua does.
func (r *request) sendLuaHeader() {
	if !r.w.wroteHeader {
		_ = luaRequest{r}.Write(nil)
	}
}

// luaExec performs ngx.exec: an internal redirect to a URI or a named
// location, with a fresh ngx.ctx as in nginx.
func (r *request) luaExec(uri, args string) flow {
	r.luaState().ResetCtx()
	if strings.HasPrefix(uri, "@") {
		named := r.vs.named[uri]
		if named == nil {
			r.logf(errlog.Error, "named location \"%s\" not found", uri)
			return flow{kind: flowStatus, status: http.StatusInternalServerError}
		}
		r.setLocation(named)
		r.namedJump = true
		return flow{kind: flowRedirect}
	}
	if q := strings.IndexByte(uri, '?'); q >= 0 && args == "" {
		uri, args = uri[:q], uri[q+1:]
	}
	r.uri, r.args, r.uriChanged = uri, args, true
	return flow{kind: flowRedirect}
}

func (r *request) runFilterLua() {
	out, err := r.h.deps.Lua.Run(r.rt.headerFilter, ngxlua.PhaseHeaderFilter, luaRequest{r}, r.luaState())
	if err != nil {
		r.logf(errlog.Error, "%s", err.Error())
		// The header is still about to go out (this runs inside
		// WriteHeader), so the failure can only show in its status.
		if out.Action == ngxlua.ActionSpecial && out.Status != 0 {
			r.w.status = out.Status
		}
	}
}

func (r *request) bodyFilterActive() bool { return r.rt != nil && r.rt.bodyFilter != nil }

func (h *Handler) bodyFilter(r *request, chunk []byte, eof bool) ([]byte, error) {
	out, _, err := h.deps.Lua.RunBodyFilter(r.rt.bodyFilter, luaRequest{r}, r.luaState(), chunk, eof)
	if err != nil {
		r.logf(errlog.Error, "%s", err.Error())
		return nil, err
	}
	return out, nil
}

func (r *request) runLogLua() {
	if _, err := r.h.deps.Lua.Run(r.rt.log, ngxlua.PhaseLog, luaRequest{r}, r.luaState()); err != nil {
		r.logf(errlog.Error, "%s", err.Error())
	}
}

// defaultTypeValue is the location's default_type as a header value slice:
// the location's shared one (capacity 1, never modified in place) when
// available.
func (r *request) defaultTypeValue() []string {
	if r.rt != nil && len(r.rt.defaultType) == 1 && r.rt.defaultType[0] == r.loc.DefaultType {
		return r.rt.defaultType
	}
	return []string{r.loc.DefaultType}
}

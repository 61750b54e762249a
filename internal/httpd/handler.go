// Package httpd serves HTTP for one configuration generation: it selects the
// virtual server and location as nginx does, runs the request phases
// (return, rewrite/access/content Lua, proxy_pass, static files), the output
// filters and the log phase.
package httpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"upstreamd/internal/config"
	"upstreamd/internal/errlog"
	"upstreamd/internal/ngxlua"
	"upstreamd/internal/proxy"
	"upstreamd/internal/upstream"
)

// NginxVersion is what $nginx_version reports; ServerHeader is our Server
// response header.
const (
	NginxVersion = "1.25.0"
	Version      = "0.1.0"
	ServerHeader = "upstreamd/" + Version
)

// maxInternalRedirects bounds ngx.exec/error_page loops, as nginx's
// NGX_HTTP_MAX_URI_CHANGES.
const maxInternalRedirects = 10

// Deps are the runtime pieces a generation serves with.
type Deps struct {
	Upstreams *upstream.Registry
	Pools     map[string]*proxy.Pool // per upstream name
	Log       *errlog.Logger
	Lua       *ngxlua.Engine // nil when the config has no Lua
	Logs      *LogFiles
}

// Handler serves one configuration generation.
type Handler struct {
	cfg    *config.Config
	deps   Deps
	byAddr map[string]*nameTable
	rt     map[*config.Location]*locRuntime
}

// New prepares cfg for serving: it compiles templates and Lua chunks and
// links locations to their upstreams. Errors here are configuration errors.
func New(cfg *config.Config, deps Deps) (*Handler, error) {
	h := &Handler{cfg: cfg, deps: deps, byAddr: map[string]*nameTable{}, rt: map[*config.Location]*locRuntime{}}
	if deps.Log == nil {
		h.deps.Log = errlog.Discard()
	}
	if cfg.HTTP == nil {
		return h, nil
	}
	for _, s := range cfg.HTTP.Servers {
		vs := newVServer(s)
		for _, l := range s.Listens {
			nt := h.byAddr[l.Addr]
			if nt == nil {
				nt = newNameTable()
				h.byAddr[l.Addr] = nt
			}
			nt.add(vs, l.DefaultServer)
		}
		if err := h.prepareLocation(s.Root); err != nil {
			return nil, err
		}
		if err := h.prepareLocations(s.Locations); err != nil {
			return nil, err
		}
	}
	for _, nt := range h.byAddr {
		nt.finish()
	}
	return h, nil
}

func (h *Handler) prepareLocations(locs []*config.Location) error {
	for _, l := range locs {
		if err := h.prepareLocation(l); err != nil {
			return err
		}
		if err := h.prepareLocations(l.Locations); err != nil {
			return err
		}
	}
	return nil
}

// Addrs lists the listen addresses this generation serves.
func (h *Handler) Addrs() []string {
	addrs := make([]string, 0, len(h.byAddr))
	for a := range h.byAddr {
		addrs = append(addrs, a)
	}
	return addrs
}

// Config is the configuration this generation serves.
func (h *Handler) Config() *config.Config { return h.cfg }

// ForAddr returns the http.Handler for connections accepted on addr.
func (h *Handler) ForAddr(addr string) http.Handler {
	nt := h.byAddr[addr]
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.serve(w, req, nt)
	})
}

type connIDKey struct{}

var connCounter atomic.Uint64

// ConnContext numbers connections like nginx's "*N" so log lines of one
// connection can be correlated; install it as http.Server.ConnContext.
func ConnContext(ctx context.Context, _ any) context.Context {
	return context.WithValue(ctx, connIDKey{}, connCounter.Add(1))
}

func connID(req *http.Request) uint64 {
	id, _ := req.Context().Value(connIDKey{}).(uint64)
	return id
}

// request is the state of one client request across its phases.
type request struct {
	h      *Handler
	req    *http.Request
	w      *responseWriter
	vs     *vserver
	loc    *config.Location
	rt     *locRuntime
	start  time.Time
	method string
	uri    string
	args   string
	// uriChanged records a rewrite (ngx.req.set_uri, exec): proxy_pass then
	// sends the new $uri instead of the client's original request line.
	uriChanged bool
	setVars    map[string]string

	body     []byte
	bodyRead bool
	bodyErr  error

	upstream       proxy.Result
	upstreamHeader http.Header
	upstreamName   string

	lua *ngxlua.RequestState
	// error_page state: the status to answer with after the redirect
	// (0 = whatever the target produces), and whether it was used already.
	errorPageStatus int
	errorPaged      bool
	namedJump       bool
	inFilter        bool
	reqID           string
}

func (h *Handler) serve(w http.ResponseWriter, req *http.Request, nt *nameTable) {
	r := &request{h: h, req: req, start: time.Now(), method: req.Method, args: req.URL.RawQuery}
	r.w = &responseWriter{w: w, r: r}
	r.uri = normalizePath(req.URL.Path)
	if nt == nil {
		r.finishStatus(http.StatusNotFound)
		return
	}
	r.vs = nt.lookup(req.Host)
	if ret := r.vs.cfg.Root.Return; ret != nil {
		// A server-level return runs in the server rewrite phase, before
		// any location is chosen.
		r.setLocation(r.vs.cfg.Root)
		defer r.logPhase()
		if f := r.doReturn(ret); f.kind == flowStatus {
			r.writeSpecial(f.status)
		}
		r.w.finish()
		return
	}
	r.setLocation(r.vs.match(r.uri))

	defer r.logPhase()
	if req.ContentLength > 0 && r.loc.ClientMaxBodySize > 0 && req.ContentLength > r.loc.ClientMaxBodySize {
		r.logf(errlog.Error, "client intended to send too large body: %d bytes", req.ContentLength)
		r.finishStatus(http.StatusRequestEntityTooLarge)
		return
	}
	h.process(r)
	r.w.finish()
}

func (r *request) setLocation(loc *config.Location) {
	r.loc = loc
	r.rt = r.h.rt[loc]
}

// process runs the phases for r's current location, following internal
// redirects (ngx.exec, error_page) by re-matching the location.
func (h *Handler) process(r *request) {
	for redirects := 0; ; redirects++ {
		if redirects > 0 {
			if r.namedJump {
				r.namedJump = false
			} else {
				r.setLocation(r.vs.match(r.uri))
			}
		}
		if redirects > maxInternalRedirects {
			r.logf(errlog.Error, "rewrite or internal redirection cycle while internally redirecting to \"%s\"", r.uri)
			r.finishStatus(http.StatusInternalServerError)
			return
		}
		switch f := h.runLocation(r); f.kind {
		case flowRedirect:
			continue
		case flowStatus:
			if h.errorPage(r, f.status) {
				continue
			}
			r.writeSpecial(f.status)
			return
		default:
			return
		}
	}
}

type flowKind int

const (
	flowNext     flowKind = iota // go on with the next phase
	flowDone                     // the response is complete
	flowRedirect                 // r.uri/r.args changed: match the location again
	flowStatus                   // answer with nginx's response for status
)

type flow struct {
	kind   flowKind
	status int
}

func (h *Handler) runLocation(r *request) flow {
	loc, rt := r.loc, r.rt
	if loc.Return != nil {
		return r.doReturn(loc.Return)
	}
	if rt.rewrite != nil {
		if f := r.runLua(rt.rewrite, ngxlua.PhaseRewrite); f.kind != flowNext {
			return f
		}
	}
	if rt.access != nil {
		if f := r.runLua(rt.access, ngxlua.PhaseAccess); f.kind != flowNext {
			return f
		}
	}
	switch {
	case rt.content != nil:
		if f := r.runLua(rt.content, ngxlua.PhaseContent); f.kind != flowNext {
			return f
		}
		return flow{kind: flowDone}
	case loc.Proxy != nil:
		return r.doProxy()
	default:
		return r.serveStatic()
	}
}

// doReturn implements the rewrite module's `return`.
func (r *request) doReturn(ret *config.Return) flow {
	text := r.rt.returnText.eval(r)
	switch ret.Code {
	case 444:
		// nginx closes the connection without a response.
		panic(http.ErrAbortHandler)
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		r.w.Header().Set("Location", r.absoluteURL(text))
		return flow{kind: flowStatus, status: ret.Code}
	}
	if ret.Text == "" {
		return flow{kind: flowStatus, status: ret.Code}
	}
	r.w.Header().Set("Content-Type", r.loc.DefaultType)
	r.w.WriteHeader(ret.Code)
	io.WriteString(r.w, text)
	return flow{kind: flowDone}
}

// absoluteURL makes a redirect target absolute as nginx does with
// absolute_redirect on.
func (r *request) absoluteURL(target string) string {
	if !strings.HasPrefix(target, "/") {
		return target
	}
	host := r.req.Host
	if host == "" {
		host, _ = r.variable("server_addr")
	}
	return "http://" + host + target
}

func (r *request) serveStatic() flow {
	if r.method != http.MethodGet && r.method != http.MethodHead {
		return flow{kind: flowStatus, status: http.StatusMethodNotAllowed}
	}
	name := path.Join(r.loc.Root, r.uri)
	if strings.HasSuffix(r.uri, "/") {
		for _, idx := range r.loc.Index {
			if st, err := statFile(path.Join(name, idx)); err == nil && !st.IsDir() {
				r.uri += idx
				r.uriChanged = true
				return flow{kind: flowRedirect}
			}
		}
		if _, err := statFile(name); err != nil {
			r.logf(errlog.Error, "\"%s\" is not found (2: No such file or directory)", name+"/")
			return flow{kind: flowStatus, status: http.StatusNotFound}
		}
		r.logf(errlog.Error, "directory index of \"%s\" is forbidden", name+"/")
		return flow{kind: flowStatus, status: http.StatusForbidden}
	}
	f, st, err := openFile(name)
	if err != nil {
		r.logf(errlog.Error, "open() \"%s\" failed (2: No such file or directory)", name)
		return flow{kind: flowStatus, status: http.StatusNotFound}
	}
	defer f.Close()
	if st.IsDir() {
		loc := r.uri + "/"
		if r.args != "" {
			loc += "?" + r.args
		}
		r.w.Header().Set("Location", r.absoluteURL(loc))
		return flow{kind: flowStatus, status: http.StatusMovedPermanently}
	}
	if r.w.Header().Get("Content-Type") == "" {
		r.w.Header().Set("Content-Type", r.h.contentType(name, r.loc.DefaultType))
	}
	http.ServeContent(r.w, r.req, "", st.ModTime(), f)
	return flow{kind: flowDone}
}

func (h *Handler) contentType(name, dflt string) string {
	if h.cfg.HTTP != nil {
		ext := strings.ToLower(strings.TrimPrefix(path.Ext(name), "."))
		if t, ok := h.cfg.HTTP.Types[ext]; ok {
			return t
		}
	}
	return dflt
}

// errorPage follows error_page for status, reporting whether it redirected
// internally (or answered with a redirect).
func (h *Handler) errorPage(r *request, status int) bool {
	// Without recursive_error_pages (off by default) nginx follows
	// error_page only once per request.
	if r.w.wroteHeader || r.errorPaged {
		return false
	}
	for _, ep := range r.loc.ErrorPages {
		if !containsInt(ep.Codes, status) {
			continue
		}
		r.errorPaged = true
		if strings.HasPrefix(ep.URI, "/") || strings.HasPrefix(ep.URI, "@") {
			r.errorPageStatus = status
			if ep.Response > 0 {
				r.errorPageStatus = ep.Response
			}
			if ep.Response == -1 {
				r.errorPageStatus = 0
			}
			r.method = http.MethodGet
			if strings.HasPrefix(ep.URI, "@") {
				if named := r.vs.named[ep.URI]; named != nil {
					r.setLocation(named)
					r.namedJump = true
					return true
				}
				return false
			}
			uri, args, _ := strings.Cut(ep.URI, "?")
			r.uri, r.args, r.uriChanged = uri, args, true
			return true
		}
		code := http.StatusFound
		if ep.Response > 0 {
			code = ep.Response
		}
		r.w.Header().Set("Location", ep.URI)
		r.writeSpecial(code)
		return true
	}
	return false
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// finishStatus answers with status, following error_page.
func (r *request) finishStatus(status int) {
	if r.loc != nil && r.h.errorPage(r, status) {
		r.h.process(r)
		return
	}
	r.writeSpecial(status)
}

// writeSpecial sends nginx's built-in response for status (the HTML error
// page for 4xx/5xx and redirects).
func (r *request) writeSpecial(status int) {
	if r.w.wroteHeader {
		return
	}
	if r.errorPageStatus > 0 {
		status = r.errorPageStatus
	}
	body := specialBody(status)
	h := r.w.Header()
	if body != "" {
		h.Set("Content-Type", "text/html")
		h.Set("Content-Length", fmt.Sprint(len(body)))
	}
	r.w.WriteHeader(status)
	if body != "" && r.method != http.MethodHead {
		io.WriteString(r.w, body)
	}
}

func specialBody(status int) string {
	if status < 300 || status == http.StatusNotModified {
		return ""
	}
	line := fmt.Sprintf("%d %s", status, http.StatusText(status))
	return "<html>\r\n<head><title>" + line + "</title></head>\r\n<body>\r\n<center><h1>" + line +
		"</h1></center>\r\n<hr><center>upstreamd</center>\r\n</body>\r\n</html>\r\n"
}

// readBody buffers the client body (nginx buffers it before proxying, which
// is what makes retrying it on the next peer possible), enforcing
// client_max_body_size.
func (r *request) readBody() ([]byte, error) {
	if r.bodyRead {
		return r.body, r.bodyErr
	}
	r.bodyRead = true
	if r.req.Body == nil || r.req.Body == http.NoBody {
		return nil, nil
	}
	var rd io.Reader = r.req.Body
	limit := r.loc.ClientMaxBodySize
	if limit > 0 {
		rd = io.LimitReader(rd, limit+1)
	}
	r.body, r.bodyErr = io.ReadAll(rd)
	if r.bodyErr == nil && limit > 0 && int64(len(r.body)) > limit {
		r.bodyErr = errBodyTooLarge
	}
	return r.body, r.bodyErr
}

var errBodyTooLarge = errors.New("client intended to send too large body")

// logf writes an error-log line with nginx's request context suffix.
func (r *request) logf(level errlog.Level, format string, args ...any) {
	if !r.h.deps.Log.Enabled(level) {
		return
	}
	r.logMsg(level, fmt.Sprintf(format, args...), "")
}

func (r *request) logMsg(level errlog.Level, msg, upstreamURL string) {
	var b strings.Builder
	b.WriteString(msg)
	remote, _ := r.variable("remote_addr")
	b.WriteString(", client: ")
	b.WriteString(remote)
	b.WriteString(", server: ")
	if r.vs != nil {
		b.WriteString(r.vs.primaryName())
	}
	fmt.Fprintf(&b, ", request: \"%s %s %s\"", r.req.Method, r.req.RequestURI, r.req.Proto)
	if upstreamURL != "" {
		fmt.Fprintf(&b, ", upstream: \"%s\"", upstreamURL)
	}
	if r.req.Host != "" {
		fmt.Fprintf(&b, ", host: \"%s\"", r.req.Host)
	}
	r.h.deps.Log.Log(level, connID(r.req), b.String())
}

// hostVar is nginx's $host: the Host header without port, else the server
// name.
func (r *request) hostVar() string {
	if r.req.Host != "" {
		return normalizeHost(r.req.Host)
	}
	if r.vs != nil {
		return r.vs.primaryName()
	}
	return ""
}

func (r *request) requestID() string {
	if r.reqID == "" {
		r.reqID = newRequestID()
	}
	return r.reqID
}

// normalizePath resolves "." and ".." segments and merges slashes, as nginx
// does before location matching, keeping a trailing slash.
func normalizePath(p string) string {
	if p == "" {
		return "/"
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean
}

// escapePath encodes a changed $uri for the upstream request line.
func escapePath(p string) string {
	return (&url.URL{Path: p}).EscapedPath()
}

// ServeAddr serves a request accepted on listen address addr.
func (h *Handler) ServeAddr(addr string, w http.ResponseWriter, req *http.Request) {
	h.serve(w, req, h.byAddr[addr])
}

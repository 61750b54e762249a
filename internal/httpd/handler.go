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
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"upstreamd/internal/access"
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
	// API builds the REST API handler of an `api` location (prefix is the
	// location's pattern); nil when the server has none.
	API func(api *config.API, prefix string) http.Handler
}

// Handler serves one configuration generation.
type Handler struct {
	cfg    *config.Config
	deps   Deps
	byAddr map[string]*nameTable
	// covering maps a wildcard listen address to true when servers also
	// listen on specific addresses of its port: nginx then binds only the
	// wildcard and picks the servers by the connection's local address.
	covering map[string]bool
	rt       map[*config.Location]*locRuntime
	// keepUpstreamHeaders is set when a template or Lua may read
	// $upstream_http_*.
	keepUpstreamHeaders bool
	// userFiles shares one auth_basic_user_file watcher per path.
	userFiles map[string]*access.UserFileSource
}

// New prepares cfg for serving: it compiles templates and Lua chunks and
// links locations to their upstreams. Errors here are configuration errors.
func New(cfg *config.Config, deps Deps) (*Handler, error) {
	h := &Handler{cfg: cfg, deps: deps, byAddr: map[string]*nameTable{}, rt: map[*config.Location]*locRuntime{}, userFiles: map[string]*access.UserFileSource{}}
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
	h.covering = map[string]bool{}
	for a := range h.byAddr {
		if w := wildcardOf(a); w != "" && h.byAddr[w] != nil {
			h.covering[w] = true
		}
	}
	return h, nil
}

// wildcardOf is the wildcard address of addr's family and port, or "" when
// addr is a wildcard (or not an IP address).
func wildcardOf(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	if err != nil || ip == nil || ip.IsUnspecified() {
		return ""
	}
	if ip.To4() != nil {
		return net.JoinHostPort("0.0.0.0", port)
	}
	return net.JoinHostPort("::", port)
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

// Addrs lists the addresses to bind: every listen address, except specific
// ones whose port is also listened on by the wildcard address (that socket
// receives their connections, as in nginx).
func (h *Handler) Addrs() []string {
	addrs := make([]string, 0, len(h.byAddr))
	for a := range h.byAddr {
		if w := wildcardOf(a); w != "" && h.covering[w] {
			continue
		}
		addrs = append(addrs, a)
	}
	return addrs
}

// tableFor is the name table for a connection accepted on the listener for
// addr.
func (h *Handler) tableFor(addr string, req *http.Request) *nameTable {
	if h.covering[addr] {
		if local, ok := req.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			if nt := h.byAddr[local.String()]; nt != nil {
				return nt
			}
		}
	}
	return h.byAddr[addr]
}

// Config is the configuration this generation serves.
func (h *Handler) Config() *config.Config { return h.cfg }

// ForAddr returns the http.Handler for connections accepted on addr.
func (h *Handler) ForAddr(addr string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.serve(w, req, h.tableFor(addr, req))
	})
}

type connKey struct{}

// connState is what nginx keeps per client connection and the request
// needs: the "*N" number and the count of requests served on it.
type connState struct {
	id       uint64
	requests atomic.Int64
}

var connCounter atomic.Uint64

// ConnContext numbers connections like nginx's "*N" so log lines of one
// connection can be correlated; install it as http.Server.ConnContext.
func ConnContext(ctx context.Context, _ any) context.Context {
	return context.WithValue(ctx, connKey{}, &connState{id: connCounter.Add(1)})
}

func connOf(req *http.Request) *connState {
	cs, _ := req.Context().Value(connKey{}).(*connState)
	return cs
}

func connID(req *http.Request) uint64 {
	if cs := connOf(req); cs != nil {
		return cs.id
	}
	return 0
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
	// matchedURI is $uri when the current location was selected. A $uri
	// changed after that without a new location search (ngx.req.set_uri
	// without jump, nginx's "rewrite ... break") clears nginx's
	// valid_location: proxy_pass then sends the whole new $uri and ignores
	// its own URI part.
	matchedURI string
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
	// connRequests is $connection_requests: this request's number on its
	// connection, for keepalive_requests.
	connRequests int64

	// Storage reused across the requests a pooled *request serves (see
	// getRequest): the response writer, the Lua state, the proxy request
	// and options, the copy of the upstream header, and the functions
	// handed to proxy.Serve, bound once to this request.
	rw             responseWriter
	luaSt          ngxlua.RequestState
	out            proxy.Out
	proxyOpts      proxy.Options
	failStatus     int
	upHeaderBuf    http.Header
	errorPageFn    func(http.ResponseWriter, int) bool
	headerFilterFn func(http.ResponseWriter, int) int
	proxyLogFn     func(errlog.Level, string, string)
}

// requestPool recycles request structs: a proxied or Lua request otherwise
// allocates the request, its response writer, its Lua state, the proxy
// request and its header map, the proxy options and three closures.
var requestPool = sync.Pool{New: func() any {
	r := &request{}
	r.errorPageFn = r.proxyErrorPage
	r.headerFilterFn = r.proxyHeaderFilter
	r.proxyLogFn = r.proxyLog
	return r
}}

// requestStart is when the request's first bytes arrived, as nginx's
// $request_time counts, when the server knows it (internal/h1 does), else
// now.
func requestStart(w http.ResponseWriter) time.Time {
	if rs, ok := w.(interface{ RequestStart() time.Time }); ok {
		if t := rs.RequestStart(); !t.IsZero() {
			return t
		}
	}
	return time.Now()
}

// getRequest returns a request for req, from the pool.
func getRequest(h *Handler, w http.ResponseWriter, req *http.Request) *request {
	r := requestPool.Get().(*request)
	r.h, r.req, r.start, r.method, r.args = h, req, requestStart(w), req.Method, req.URL.RawQuery
	r.rw = responseWriter{w: w, r: r}
	r.w = &r.rw
	return r
}

// release clears r and puts it back in the pool. Everything that belongs
// to the request is dropped; only allocated storage (the maps and slices
// below, emptied) is kept. It is called only when serving returned
// normally: a request unwinding from a panic (http.ErrAbortHandler) is left
// to the garbage collector, so nothing half-finished is ever reused.
func (r *request) release() {
	upstream := proxy.Result{
		Addrs: r.upstream.Addrs[:0], Statuses: r.upstream.Statuses[:0], ResponseTimes: r.upstream.ResponseTimes[:0],
		ConnectTimes: r.upstream.ConnectTimes[:0], HeaderTimes: r.upstream.HeaderTimes[:0],
	}
	clear(upstream.Addrs[:cap(upstream.Addrs)]) // drop the address strings
	outHeader := r.out.Header
	clear(outHeader)
	upHeaderBuf := r.upHeaderBuf
	clear(upHeaderBuf)
	luaSt := r.luaSt
	luaSt.Reset()
	ep, hf, lg := r.errorPageFn, r.headerFilterFn, r.proxyLogFn
	*r = request{upstream: upstream, upHeaderBuf: upHeaderBuf, luaSt: luaSt, errorPageFn: ep, headerFilterFn: hf, proxyLogFn: lg}
	r.out.Header = outHeader
	requestPool.Put(r)
}

func (h *Handler) serve(w http.ResponseWriter, req *http.Request, nt *nameTable) {
	r := getRequest(h, w, req)
	h.serveRequest(r, req, nt)
	// Not reached when serving panicked: see release.
	r.release()
}

func (h *Handler) serveRequest(r *request, req *http.Request, nt *nameTable) {
	r.uri = normalizePath(req.URL.Path)
	if nt == nil {
		r.finishStatus(http.StatusNotFound)
		return
	}
	r.vs = nt.lookup(req.Host)
	if cs := connOf(req); cs != nil {
		r.connRequests = cs.requests.Add(1)
	}
	if req.Method == http.MethodTrace {
		// nginx refuses TRACE while reading the request header, before
		// any rewrite or location; only server-level error_page applies.
		r.setLocation(r.vs.cfg.Root)
		defer r.logPhase()
		r.logf(errlog.Info, "client sent TRACE method")
		r.finishStatus(http.StatusMethodNotAllowed)
		r.w.finish()
		return
	}
	if ret := r.vs.cfg.Root.Return; ret != nil {
		// A server-level return runs in the server rewrite phase, before
		// any location is chosen.
		r.setLocation(r.vs.cfg.Root)
		defer r.logPhase()
		h.serverReturn(r, ret)
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

// serverReturn runs a server-level return, following the server-level
// error_page as nginx does. An internal redirect to a URI starts again at
// nginx's server rewrite phase, so the same return answers the error page's
// URI too, and, error_page being followed once, nginx's own page for that
// code goes out; a named location skips that phase and serves; a URL
// answers with the redirect.
func (h *Handler) serverReturn(r *request, ret *config.Return) {
	for {
		f := r.doReturn(ret)
		if f.kind != flowStatus {
			return
		}
		if !h.errorPage(r, f.status) {
			// The code of this return, not an error_page's =code: nginx
			// sets the status anew when it finalizes with it.
			r.errorPageStatus = 0
			r.writeSpecial(f.status)
			return
		}
		switch {
		case r.w.wroteHeader:
			return
		case r.namedJump:
			r.namedJump = false
			h.process(r)
			return
		}
	}
}

func (r *request) setLocation(loc *config.Location) {
	r.loc = loc
	r.rt = r.h.rt[loc]
	r.matchedURI = r.uri
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
	if rt.guard != nil {
		if f := r.checkAccess(); f.kind != flowNext {
			return f
		}
	}
	if rt.access != nil {
		if f := r.runLua(rt.access, ngxlua.PhaseAccess); f.kind != flowNext {
			return f
		}
	}
	switch {
	case loc.API != nil:
		return r.serveAPI()
	case loc.Prometheus:
		return r.servePrometheus()
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
		// nginx closes the connection without a response, and logs 444.
		r.w.status = 444
		panic(http.ErrAbortHandler)
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		r.w.Header().Set("Location", r.absoluteURL(text))
		return flow{kind: flowStatus, status: ret.Code}
	}
	if ret.Text == "" && ret.Code >= http.StatusBadRequest {
		return flow{kind: flowStatus, status: ret.Code}
	}
	// Below 400, or with a text, nginx sends the text (possibly empty) as
	// the body, not its special page, and error_page does not apply.
	r.w.Header().Set("Content-Type", r.loc.DefaultType)
	r.w.Header().Set("Content-Length", strconv.Itoa(len(text)))
	r.w.WriteHeader(ret.Code)
	io.WriteString(r.w, text)
	return flow{kind: flowDone}
}

// absoluteURL makes a redirect target absolute as nginx does with
// absolute_redirect on, server_name_in_redirect off and port_in_redirect
// on: the Host header's name (else the local address) and the port the
// connection came in on, unless it is 80.
func (r *request) absoluteURL(target string) string {
	if !strings.HasPrefix(target, "/") {
		return target
	}
	host := normalizeHost(r.req.Host)
	if host == "" {
		host = mustVar(r, "server_addr")
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port := mustVar(r, "server_port"); port != "" && port != "80" {
		host += ":" + port
	}
	return "http://" + host + target
}

func (r *request) serveStatic() flow {
	// nginx's static and index modules take GET, HEAD and POST (POST only
	// to be refused once the file is found); any other method is 405.
	switch r.method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		return flow{kind: flowStatus, status: http.StatusMethodNotAllowed}
	}
	name := path.Join(r.documentRoot(), r.uri)
	if strings.HasSuffix(r.uri, "/") {
		for _, idx := range r.loc.Index {
			if st, err := statFile(path.Join(name, idx)); err == nil && !st.IsDir() {
				r.uri += idx
				r.uriChanged = true
				return flow{kind: flowRedirect}
			}
		}
		if _, err := statFile(name); err != nil {
			// nginx names the first index file it looked for.
			missing := name + "/"
			if len(r.loc.Index) > 0 {
				missing = path.Join(name, r.loc.Index[0])
			}
			r.logf(errlog.Error, "\"%s\" is not found (2: No such file or directory)", missing)
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
	if r.method == http.MethodPost {
		return flow{kind: flowStatus, status: http.StatusMethodNotAllowed}
	}
	if r.w.Header().Get("Content-Type") == "" {
		r.w.Header().Set("Content-Type", r.contentType(name))
	}
	http.ServeContent(r.w, r.req, "", st.ModTime(), f)
	return flow{kind: flowDone}
}

// contentType maps the file extension through the location's effective
// types{} (a types block at an inner level replaces the outer one).
func (r *request) contentType(name string) string {
	types := r.loc.Types
	if types == nil && r.h.cfg.HTTP != nil {
		types = r.h.cfg.HTTP.Types
	}
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(name), "."))
	if t, ok := types[ext]; ok {
		return t
	}
	return r.loc.DefaultType
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
			if r.method != http.MethodHead {
				r.method = http.MethodGet
			}
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
		// process runs the current location first: do the location search
		// the internal redirect asks for here.
		if r.namedJump {
			r.namedJump = false
		} else {
			r.setLocation(r.vs.match(r.uri))
		}
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

// nginxStatusText holds the titles of nginx's built-in pages where they
// differ from the RFC reason phrases clients and tests compare against.
var nginxStatusText = map[int]string{
	401: "Authorization Required",
	405: "Not Allowed",
	408: "Request Time-out",
	413: "Request Entity Too Large",
	414: "Request-URI Too Large",
	416: "Requested Range Not Satisfiable",
	494: "Request Header Or Cookie Too Large",
	503: "Service Temporarily Unavailable",
	504: "Gateway Time-out",
}

func specialBody(status int) string {
	if status < 300 || status == http.StatusNotModified {
		return ""
	}
	text, ok := nginxStatusText[status]
	if !ok {
		text = http.StatusText(status)
	}
	line := strconv.Itoa(status) + " " + text
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
	if isCleanPath(p) {
		return p // the usual case, without path.Clean's work
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean
}

// isCleanPath reports whether normalizePath would return p unchanged: an
// absolute path without empty, "." or ".." segments (a trailing slash is
// kept by normalizePath, so it is allowed).
func isCleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		seg := p[i+1:]
		if j := strings.IndexByte(seg, '/'); j >= 0 {
			seg = seg[:j]
			if j == 0 {
				return false // "//"
			}
		}
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// escapePath encodes a changed $uri for the upstream request line.
func escapePath(p string) string {
	return (&url.URL{Path: p}).EscapedPath()
}

// connectionCloseValue is "Connection: close" as a shared header value
// slice (capacity 1, never modified in place), saving an allocation on
// every connection's last response.
var connectionCloseValue = []string{"close"}

// keepaliveHeaders applies keepalive_timeout and keepalive_requests of the
// location answering: nginx closes the connection after the response when
// keepalive_timeout is 0 or the connection served keepalive_requests
// requests, and sends "Keep-Alive: timeout=N" for keepalive_timeout's
// second argument. (The idle time itself is the listener's.)
func (r *request) keepaliveHeaders(h http.Header) {
	loc := r.loc
	if loc == nil && r.vs != nil {
		loc = r.vs.cfg.Root
	}
	if loc == nil {
		return
	}
	if loc.KeepaliveTimeout == 0 || (loc.KeepaliveRequests > 0 && r.connRequests >= int64(loc.KeepaliveRequests)) {
		h["Connection"] = connectionCloseValue
		return
	}
	if t := loc.KeepaliveHeaderTimeout; t > 0 && !r.req.Close {
		h.Set("Keep-Alive", "timeout="+strconv.FormatInt(int64(t/time.Second), 10))
	}
}

// ServeAddr serves a request accepted on listen address addr.
func (h *Handler) ServeAddr(addr string, w http.ResponseWriter, req *http.Request) {
	h.serve(w, req, h.tableFor(addr, req))
}

package httpd

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"

	"upstreamd/internal/access"
	"upstreamd/internal/config"
	"upstreamd/internal/errlog"
	"upstreamd/internal/ngxlua"
	"upstreamd/internal/proxy"
	"upstreamd/internal/upstream"
)

// locRuntime is what a location needs at request time, compiled once per
// generation so the hot path does no parsing.
type locRuntime struct {
	returnText   *template
	addHeaders   []compiledHeader
	proxyHeaders []compiledHeader
	// proxyHeaderSet holds the canonical names proxy_set_header defines, so
	// the client's own header of that name is not passed as well.
	proxyHeaderSet map[string]bool
	upstream       *upstream.Upstream
	pool           *proxy.Pool
	hashKey        *template
	ipHash         bool // the upstream balances by ip_hash: the client address is needed
	proxyOpts      proxy.Options
	accessLogs     []accessLogRT

	rewrite, access, content, headerFilter, bodyFilter, log *ngxlua.Handler

	// defaultType is default_type as a header value slice, shared by the
	// responses that get it (Lua output without a Content-Type).
	defaultType []string
	// root is set when `root` has variables; nil means loc.Root as is.
	root *template
	// hasLua: Lua runs for this location and may read $upstream_http_*.
	hasLua bool
	guard  *access.Guard // nil: nothing to check
	api    http.Handler
}

type compiledHeader struct {
	name   string
	value  *template
	always bool
	// static is a value without variables as a one-element slice (cap 1,
	// so an append copies it), shared by every request that sends it:
	// nginx's default "Connection: close" would otherwise allocate a slice
	// per proxied request. Never set for Host, which goes to Out.Host.
	static []string
}

func (h *Handler) prepareLocation(loc *config.Location) error {
	if loc == nil {
		return nil
	}
	if _, done := h.rt[loc]; done {
		return nil
	}
	rt := &locRuntime{proxyHeaderSet: map[string]bool{}, guard: h.newGuard(loc.Guard), defaultType: []string{loc.DefaultType}}
	if loc.API != nil && h.deps.API != nil {
		rt.api = h.deps.API(loc.API, loc.Pattern)
	}
	if loc.Return != nil {
		rt.returnText = h.template(loc.Return.Text)
	}
	if strings.Contains(loc.Root, "$") {
		rt.root = h.template(loc.Root)
	}
	for _, ah := range loc.AddHeaders {
		rt.addHeaders = append(rt.addHeaders, compiledHeader{name: ah.Name, value: h.template(ah.Value), always: ah.Always})
	}
	for _, ph := range loc.ProxySetHeaders {
		name := http.CanonicalHeaderKey(ph.Name)
		rt.proxyHeaderSet[name] = true
		ch := compiledHeader{name: name, value: h.template(ph.Value)}
		if name != "Host" && ph.Value != "" && !ch.value.hasVars() {
			// Without variables the template's text is the value.
			ch.static = []string{ph.Value}[:1:1]
		}
		rt.proxyHeaders = append(rt.proxyHeaders, ch)
	}
	for _, al := range loc.AccessLogs {
		var w *LogFile
		if !strings.Contains(al.Path, "$") {
			var err error
			if w, err = h.deps.Logs.Open(al.Path); err != nil {
				return err
			}
		}
		rt.accessLogs = append(rt.accessLogs, h.newAccessLog(w, al))
	}
	if p := loc.Proxy; p != nil {
		rt.upstream = h.deps.Upstreams.Get(p.Upstream)
		if rt.upstream == nil {
			return fmt.Errorf("upstream %q is not defined", p.Upstream)
		}
		rt.pool = h.deps.Pools[p.Upstream]
		for _, u := range h.cfg.HTTP.Upstreams {
			if u.Name == p.Upstream && u.HashKey != "" {
				rt.hashKey = h.template(u.HashKey)
			}
			if u.Name == p.Upstream && upstream.Method(u.Method) == upstream.IPHash {
				rt.ipHash = true
			}
		}
		rt.proxyOpts = proxy.Options{
			ConnectTimeout:      loc.ProxyConnectTimeout,
			SendTimeout:         loc.ProxySendTimeout,
			ReadTimeout:         loc.ProxyReadTimeout,
			NextUpstream:        proxy.NextUpstream(loc.ProxyNextUpstream),
			NextUpstreamTries:   loc.ProxyNextUpstreamTries,
			NextUpstreamTimeout: loc.ProxyNextUpstreamTimeout,
			Buffering:           loc.ProxyBuffering,
		}
	}
	var err error
	compile := func(c *config.LuaCode) *ngxlua.Handler {
		if c == nil || err != nil {
			return nil
		}
		if h.deps.Lua == nil {
			err = fmt.Errorf("Lua is not enabled")
			return nil
		}
		var hd *ngxlua.Handler
		hd, err = h.deps.Lua.Compile(LuaCode(c))
		return hd
	}
	rt.rewrite = compile(loc.Rewrite)
	rt.access = compile(loc.Access)
	rt.content = compile(loc.Content)
	rt.headerFilter = compile(loc.HeaderFilter)
	rt.bodyFilter = compile(loc.BodyFilter)
	rt.log = compile(loc.Log)
	rt.hasLua = rt.rewrite != nil || rt.access != nil || rt.content != nil || rt.headerFilter != nil || rt.bodyFilter != nil || rt.log != nil
	if err != nil {
		return err
	}
	h.rt[loc] = rt
	return nil
}

// LuaCode converts a config Lua directive into the engine's form.
func LuaCode(c *config.LuaCode) ngxlua.Code {
	return ngxlua.Code{Source: c.Source, File: c.File, ChunkName: c.ChunkName, Line: c.Line}
}

// addHeaderCodes are the statuses add_header applies to without "always".
func addHeaderApplies(status int) bool {
	switch status {
	case 200, 201, 204, 206, 301, 302, 303, 304, 307, 308:
		return true
	}
	return false
}

// headerFilter runs just before the response header goes out.
func (h *Handler) headerFilter(r *request) {
	if r.rt == nil {
		return
	}
	for _, ah := range r.rt.addHeaders {
		if ah.always || addHeaderApplies(r.w.status) {
			if v := ah.value.eval(r); v != "" {
				r.w.Header().Add(ah.name, v)
			}
		}
	}
	if r.rt.headerFilter != nil {
		r.runFilterLua()
	}
}

// doProxy runs proxy_pass for the current location.
func (r *request) doProxy() flow {
	rt := r.rt
	body, err := r.readBody()
	if err == errBodyTooLarge {
		r.logf(errlog.Error, "client intended to send too large body: %d bytes", len(body))
		return flow{kind: flowStatus, status: http.StatusRequestEntityTooLarge}
	}
	if err != nil {
		r.logf(errlog.Info, "client prematurely closed connection")
		return flow{kind: flowStatus, status: http.StatusBadRequest}
	}
	// r.out and its header map are the pooled request's own (emptied by
	// release); the client's header value slices are shared, not copied,
	// as before: the proxy only reads them.
	out := &r.out
	hdr := out.Header
	if hdr == nil {
		hdr = make(http.Header, len(r.req.Header)+len(rt.proxyHeaders))
	} else {
		clear(hdr)
	}
	*out = proxy.Out{
		Method:      r.method,
		URI:         r.proxyURI(),
		HTTPVersion: r.loc.ProxyHTTPVersion,
		Header:      hdr,
		Body:        body,
	}
	for _, ph := range rt.proxyHeaders {
		if ph.static != nil {
			if vs := out.Header[ph.name]; len(vs) == 0 {
				out.Header[ph.name] = ph.static
			} else {
				out.Header[ph.name] = append(vs, ph.static[0])
			}
			continue
		}
		v := ph.value.eval(r)
		if v == "" {
			continue // nginx: an empty value removes the header
		}
		if ph.name == "Host" {
			out.Host = v
			continue
		}
		out.Header[ph.name] = append(out.Header[ph.name], v)
	}
	for k, vs := range r.req.Header {
		if rt.proxyHeaderSet[k] || notPassedToUpstream[k] {
			continue
		}
		out.Header[k] = vs
	}
	if out.Host == "" && !rt.proxyHeaderSet["Host"] {
		out.Host = r.loc.Proxy.HostHeader
	}
	sel := upstream.Request{}
	if rt.ipHash {
		// Only ip_hash reads the client address: parsing it costs two
		// allocations, so the other methods skip it.
		if ip := net.ParseIP(mustVar(r, "remote_addr")); ip != nil {
			sel.ClientIP = ip
		}
	}
	if rt.hashKey != nil {
		sel.HashKey = rt.hashKey.eval(r)
	}
	r.upstreamName = rt.upstream.Name()
	// A new Result, reusing the slices' storage of this pooled request.
	u := &r.upstream
	*u = proxy.Result{Addrs: u.Addrs[:0], Statuses: u.Statuses[:0], ResponseTimes: u.ResponseTimes[:0],
		ConnectTimes: u.ConnectTimes[:0], HeaderTimes: u.HeaderTimes[:0]}
	// The proxy's own 502/504 go through error_page like any status this
	// server generates, so it hands them back instead of writing them
	// (proxyErrorPage). The options live in the request so that passing
	// them by pointer does not allocate.
	r.proxyOpts = rt.proxyOpts
	opts := &r.proxyOpts
	r.failStatus = 0
	opts.ErrorPage = r.errorPageFn
	if r.h.keepUpstreamHeaders || rt.hasLua {
		opts.HeaderFilter = r.headerFilterFn
	}
	proxy.Serve(r.req.Context(), r.w, out, proxy.Target{Upstream: rt.upstream, Pool: rt.pool, Select: sel}, opts, &r.upstream, r.proxyLogFn)
	failStatus := r.failStatus
	if r.upstream.Status == statusClientClosed && !r.w.wroteHeader {
		r.w.status = statusClientClosed
		panic(http.ErrAbortHandler)
	}
	if failStatus != 0 && !r.w.wroteHeader {
		return flow{kind: flowStatus, status: failStatus}
	}
	return flow{kind: flowDone}
}

// proxyErrorPage is proxy.Options.ErrorPage: it records the status for
// doProxy, which sends it through error_page.
func (r *request) proxyErrorPage(_ http.ResponseWriter, status int) bool {
	r.failStatus = status
	return true
}

// proxyHeaderFilter is proxy.Options.HeaderFilter: $upstream_http_* must
// see the upstream's own header, before add_header and header filters
// change the response. The copy is shallow (value slices are shared, as
// nothing here modifies a header value slice in place: headers are set by
// replacing the slice, added by appending to it) into a map the pooled
// request keeps, so it allocates nothing once the map has grown.
func (r *request) proxyHeaderFilter(w http.ResponseWriter, status int) int {
	if r.upHeaderBuf == nil {
		r.upHeaderBuf = make(http.Header, len(w.Header()))
	} else {
		clear(r.upHeaderBuf)
	}
	for k, vs := range w.Header() {
		r.upHeaderBuf[k] = vs
	}
	r.upstreamHeader = r.upHeaderBuf
	return status
}

// proxyLog is proxy.Serve's logf.
func (r *request) proxyLog(level errlog.Level, upstreamURL, msg string) {
	if r.h.deps.Log.Enabled(level) {
		r.logMsg(level, msg, upstreamURL)
	}
}

// notPassedToUpstream are client headers nginx's proxy module never
// forwards as they are (they describe the client connection, not the
// request).
var notPassedToUpstream = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Te": true, "Expect": true, "Upgrade": true,
	"Content-Length": true, "Transfer-Encoding": true, "Proxy-Connection": true,
}

func mustVar(r *request, name string) string {
	v, _ := r.variable(name)
	return v
}

// proxyURI is the request line URI sent upstream, per proxy_pass's rules:
// without a URI part the client's URI goes as received (or the changed $uri
// after a rewrite); with one, the part matching a prefix location is
// replaced by it, unless $uri changed without a new location search: then
// the whole new $uri goes and the URI part is ignored, as in nginx.
func (r *request) proxyURI() string {
	p := r.loc.Proxy
	var uri string
	switch {
	case !p.HasURI && !r.uriChanged:
		return r.req.RequestURI
	case !p.HasURI, r.uri != r.matchedURI:
		uri = escapePath(r.uri)
	default:
		tail := r.uri
		if (r.loc.Modifier == "" || r.loc.Modifier == "^~" || r.loc.Modifier == "=") && strings.HasPrefix(tail, r.loc.Pattern) {
			tail = tail[len(r.loc.Pattern):]
		}
		uri = escapePath(p.URI + tail)
	}
	if r.args != "" {
		uri += "?" + r.args
	}
	return uri
}

// logPhase runs log_by_lua and writes the access log lines.
func (r *request) logPhase() {
	if r.rt == nil {
		return
	}
	if r.rt.log != nil {
		r.runLogLua()
	}
	for i := range r.rt.accessLogs {
		al := &r.rt.accessLogs[i]
		line, ok := al.line(r)
		switch {
		case !ok:
		case al.w != nil:
			al.w.WriteLine(line)
		default:
			path := al.path.eval(r)
			if !filepath.IsAbs(path) {
				path = filepath.Join(r.h.cfg.Prefix, path)
			}
			if err := r.h.deps.Logs.writeDynamic(path, line); err != nil {
				// nginx: [crit] open() "..." failed (2: No such file or directory)
				r.logf(errlog.Crit, "open() \"%s\" failed (%s)", path, errlog.ErrnoText(err))
			}
		}
	}
}

// statusClientClosed is nginx's 499: the client went away first.
const statusClientClosed = 499

// Package admin is the NGINX Plus-compatible REST API (ngx_http_api_module,
// API version 9) over the live upstreams: the handler the HTTP server mounts
// for `location /api { api [write=on]; }`.
//
// It serves the upstream part of the API (/nginx, /http/upstreams/...) with
// NGINX Plus's paths, JSON shapes, status codes and error codes, so tools
// written for NGINX Plus work unchanged. Every change goes through
// internal/upstream's operations — the same ones ngx.upstream (Lua) uses — and
// is atomic: a request that fails changes nothing. docs/api.md is the user
// documentation, including where this API differs from NGINX Plus.
package admin

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"upstreamd/internal/upstream"
)

// Version is the API version served (NGINX Plus R33's). Versions 1 to
// Version are all accepted and answered with the same shapes.
const Version = 9

// docsHref is the "href" of every error object, as NGINX Plus sends it.
const docsHref = "https://nginx.org/en/docs/http/ngx_http_api_module.html"

// maxBody bounds a POST/PATCH body; a server object is a few hundred bytes
// (NGINX Plus answers 413 beyond client_body_buffer_size).
const maxBody = 64 << 10

// NginxInfo is what GET /api/N/nginx reports.
type NginxInfo struct {
	Version       string    // e.g. "1.27.4"
	Build         string    // build name
	Address       string    // address that accepted the request; empty = the request's local address
	Generation    int       // number of configuration reloads
	LoadTimestamp time.Time // last (re)load of the configuration
	Timestamp     time.Time // now; zero = the handler's clock
	PID, PPID     int
}

// Options configure the handler.
type Options struct {
	// Upstreams returns the current generation's registry (called per
	// request, so a reload is seen at once). nil or a nil result is an empty
	// registry.
	Upstreams func() *upstream.Registry
	// Write is `api write=on`: without it every write method answers 405
	// MethodDisabled.
	Write bool
	// Nginx reports the running instance; nil reports zero values.
	Nginx func() NginxInfo
	// OnChange is called after every successful change of an upstream's
	// servers (POST, PATCH, DELETE of a server), before answering, to
	// persist the upstream's `state` file. If it fails, the change stays
	// applied (it is live already, and undoing it would be a second change
	// that could fail the same way) and the answer is 500 StateNotSaved; the
	// next successful save writes the whole upstream, this change included.
	OnChange func(upstreamName string) error
	// Prefix is the location prefix, e.g. "/api"; the handler strips it.
	Prefix string
	// RequestID returns the request's $request_id for error objects; nil
	// makes a random 32-hex-digit one.
	RequestID func(*http.Request) string
	// Now is the clock for "timestamp"; nil = time.Now.
	Now func() time.Time
	// Keepalive returns the idle keepalive connections to an upstream (the
	// proxy's pool holds them, not the upstream); nil reports 0.
	Keepalive func(upstream string) int
}

type handler struct {
	o Options
}

// New returns the API handler.
func New(o Options) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &handler{o: o}
}

// apiError is one NGINX Plus error answer.
type apiError struct {
	status int
	text   string
	code   string
}

func errorf(status int, code, text string) *apiError {
	return &apiError{status: status, code: code, text: text}
}

var (
	errUnknownVersion = errorf(http.StatusNotFound, "UnknownVersion", "unknown version")
	errPathNotFound   = errorf(http.StatusNotFound, "PathNotFound", "path not found")
	errUpstreamNF     = errorf(http.StatusNotFound, "UpstreamNotFound", "upstream not found")
	errMethodDisabled = errorf(http.StatusMethodNotAllowed, "MethodDisabled", "method disabled")
	errBadServerID    = errorf(http.StatusBadRequest, "UpstreamBadServerId", "invalid server ID")
)

func serverNotFound(id string) *apiError {
	return errorf(http.StatusNotFound, "UpstreamServerNotFound", "server with ID \""+id+"\" does not exist")
}

// route is what a path names, before any upstream or server is looked up:
// NGINX Plus checks the method against the path first, so a write to a
// missing upstream with write=off is MethodDisabled, not UpstreamNotFound.
type route struct {
	kind     routeKind
	upstream string
	server   string
}

type routeKind int

const (
	rVersions routeKind = iota
	rRoot
	rNginx
	rHTTP
	rUpstreams
	rUpstream
	rServers
	rServer
)

// methods each route supports; writes are POST, PATCH and DELETE.
var routeMethods = map[routeKind][]string{
	rVersions:  {"GET", "HEAD"},
	rRoot:      {"GET", "HEAD"},
	rNginx:     {"GET", "HEAD"},
	rHTTP:      {"GET", "HEAD"},
	rUpstreams: {"GET", "HEAD"},
	rUpstream:  {"GET", "HEAD", "DELETE"},
	rServers:   {"GET", "HEAD", "POST"},
	rServer:    {"GET", "HEAD", "PATCH", "DELETE"},
}

// parsePath maps the path below the prefix to a route. A trailing slash is
// optional everywhere, as the NGINX Plus docs write some paths with and some
// without one.
func parsePath(rest string) (route, *apiError) {
	if rest == "" || rest == "/" {
		return route{kind: rVersions}, nil
	}
	if rest[0] != '/' {
		return route{}, errPathNotFound
	}
	rest = strings.TrimSuffix(rest[1:], "/")
	segs := strings.Split(rest, "/")
	if v, err := strconv.Atoi(segs[0]); err != nil || v < 1 || v > Version || segs[0][0] == '+' || segs[0][0] == '0' {
		return route{}, errUnknownVersion
	}
	segs = segs[1:]
	switch {
	case len(segs) == 0:
		return route{kind: rRoot}, nil
	case len(segs) == 1 && segs[0] == "nginx":
		return route{kind: rNginx}, nil
	case segs[0] != "http":
	case len(segs) == 1:
		return route{kind: rHTTP}, nil
	case segs[1] != "upstreams":
	case len(segs) == 2:
		return route{kind: rUpstreams}, nil
	case segs[2] == "":
	case len(segs) == 3:
		return route{kind: rUpstream, upstream: segs[2]}, nil
	case segs[3] != "servers":
	case len(segs) == 4:
		return route{kind: rServers, upstream: segs[2]}, nil
	case len(segs) == 5 && segs[4] != "":
		return route{kind: rServer, upstream: segs[2], server: segs[4]}, nil
	}
	return route{}, errPathNotFound
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, h.o.Prefix)
	if !ok {
		h.fail(w, r, errPathNotFound)
		return
	}
	rt, aerr := parsePath(rest)
	if aerr != nil {
		h.fail(w, r, aerr)
		return
	}
	allowed := routeMethods[rt.kind]
	method := r.Method
	if !contains(allowed, method) {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		h.fail(w, r, errorf(http.StatusMethodNotAllowed, "MethodNotSupported", "method not supported"))
		return
	}
	if method != "GET" && method != "HEAD" && !h.o.Write {
		h.fail(w, r, errMethodDisabled)
		return
	}
	var fields *fieldSet
	if q := r.URL.Query(); q.Has("fields") {
		fields = parseFields(q.Get("fields"))
	}
	switch rt.kind {
	case rVersions:
		vs := make([]int, Version)
		for i := range vs {
			vs[i] = i + 1
		}
		h.reply(w, http.StatusOK, vs)
	case rRoot:
		h.reply(w, http.StatusOK, []string{"nginx", "http"})
	case rHTTP:
		h.reply(w, http.StatusOK, []string{"upstreams"})
	case rNginx:
		h.reply(w, http.StatusOK, fields.filter(h.nginxObject(r)))
	case rUpstreams:
		out := object{}
		for _, u := range h.registry().All() {
			out = append(out, member{u.Name(), fields.filter(upstreamObject(u, h.keepalive(u.Name())))})
		}
		h.reply(w, http.StatusOK, out)
	default:
		u := h.registry().Get(rt.upstream)
		if u == nil {
			h.fail(w, r, errUpstreamNF)
			return
		}
		status, body, aerr := h.upstreamOp(r, rt, u, fields)
		if aerr != nil {
			h.fail(w, r, aerr)
			return
		}
		h.reply(w, status, body)
	}
}

// upstreamOp runs the operations on one upstream and its servers.
func (h *handler) upstreamOp(r *http.Request, rt route, u *upstream.Upstream, fields *fieldSet) (int, any, *apiError) {
	write := r.Method == "POST" || r.Method == "PATCH" || r.Method == "DELETE"
	var uid int
	if rt.kind == rServer {
		var aerr *apiError
		if uid, aerr = parseServerID(rt.server); aerr != nil {
			return 0, nil, aerr
		}
	}
	var (
		status int
		body   any
		aerr   *apiError
	)
	switch {
	case rt.kind == rUpstream && r.Method == "DELETE":
		// Resetting statistics is not a change of the servers: nothing to
		// persist.
		u.ResetStats()
		return http.StatusNoContent, nil, nil
	case rt.kind == rUpstream:
		return http.StatusOK, fields.filter(upstreamObject(u, h.keepalive(u.Name()))), nil
	case rt.kind == rServers && r.Method == "POST":
		status, body, aerr = h.addServer(r, u)
	case rt.kind == rServers:
		return http.StatusOK, serverList(u.Snapshot(), fields), nil
	case r.Method == "PATCH":
		status, body, aerr = h.patchServer(r, u, uid, rt.server)
	case r.Method == "DELETE":
		if err := u.RemoveUID(uid); err != nil {
			return 0, nil, serverNotFound(rt.server)
		}
		status, body = http.StatusOK, serverList(u.Snapshot(), fields)
	default:
		p, err := u.Snapshot().FindUID(uid)
		if err != nil {
			return 0, nil, serverNotFound(rt.server)
		}
		return http.StatusOK, fields.filter(serverObject(p)), nil
	}
	if aerr != nil {
		return 0, nil, aerr
	}
	if write && h.o.OnChange != nil {
		if err := h.o.OnChange(u.Name()); err != nil {
			return 0, nil, errorf(http.StatusInternalServerError, "StateNotSaved",
				"change applied but not saved: "+err.Error())
		}
	}
	if o, ok := body.(object); ok {
		body = fields.filter(o)
	}
	return status, body, nil
}

// parseServerID accepts a decimal uid, as NGINX Plus does; anything else is
// UpstreamBadServerId.
func parseServerID(s string) (int, *apiError) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errBadServerID
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errBadServerID
	}
	return n, nil
}

func (h *handler) keepalive(name string) int {
	if h.o.Keepalive == nil {
		return 0
	}
	return h.o.Keepalive(name)
}

func (h *handler) registry() *upstream.Registry {
	if h.o.Upstreams != nil {
		if r := h.o.Upstreams(); r != nil {
			return r
		}
	}
	return upstream.NewRegistry()
}

func (h *handler) nginxObject(r *http.Request) object {
	var in NginxInfo
	if h.o.Nginx != nil {
		in = h.o.Nginx()
	}
	if in.Address == "" {
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			in.Address = a.String()
			if host, _, err := net.SplitHostPort(in.Address); err == nil {
				in.Address = host
			}
		}
	}
	if in.Timestamp.IsZero() {
		in.Timestamp = h.o.Now()
	}
	return object{
		{"version", in.Version},
		{"build", in.Build},
		{"address", in.Address},
		{"generation", in.Generation},
		{"load_timestamp", isoTime(in.LoadTimestamp)},
		{"timestamp", isoTime(in.Timestamp)},
		{"pid", in.PID},
		{"ppid", in.PPID},
	}
}

// isoTime is NGINX Plus's time format: ISO 8601, UTC, milliseconds.
func isoTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func (h *handler) requestID(r *http.Request) string {
	if h.o.RequestID != nil {
		if id := h.o.RequestID(r); id != "" {
			return id
		}
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, e *apiError) {
	h.reply(w, e.status, object{
		{"error", object{{"status", e.status}, {"text", e.text}, {"code", e.code}}},
		{"request_id", h.requestID(r)},
		{"href", docsHref},
	})
}

func (h *handler) reply(w http.ResponseWriter, status int, body any) {
	if body == nil {
		w.WriteHeader(status)
		return
	}
	b, err := marshal(body)
	if err != nil {
		// Only our own values are marshalled; this is a bug, say so.
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

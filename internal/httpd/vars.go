package httpd

import (
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// template is a string with nginx variables ($name, ${name}) compiled once at
// load time so that evaluating it per request is a walk over literal and
// variable parts.
type template struct {
	raw   string
	parts []templatePart
	// upstreamHeaders: the template reads $upstream_http_*, so requests
	// must keep a copy of the upstream's response header.
	upstreamHeaders bool
}

type templatePart struct {
	literal string
	varName string // empty for a literal part
}

func compileTemplate(s string) *template {
	t := &template{raw: s}
	var lit strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			lit.WriteByte(c)
			i++
			continue
		}
		name, n := scanVarName(s[i+1:])
		if name == "" {
			lit.WriteByte(c)
			i++
			continue
		}
		if lit.Len() > 0 {
			t.parts = append(t.parts, templatePart{literal: lit.String()})
			lit.Reset()
		}
		t.parts = append(t.parts, templatePart{varName: strings.ToLower(name)})
		if strings.HasPrefix(strings.ToLower(name), "upstream_http_") {
			t.upstreamHeaders = true
		}
		i += 1 + n
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, templatePart{literal: lit.String()})
	}
	return t
}

// template compiles s for this generation, noting when requests must keep
// the upstream's response header for $upstream_http_*.
func (h *Handler) template(s string) *template {
	t := compileTemplate(s)
	if t.upstreamHeaders {
		h.keepUpstreamHeaders = true
	}
	return t
}

// scanVarName reads a variable name after '$': either {name} or the longest
// run of [A-Za-z0-9_]. It returns the name and the bytes consumed.
func scanVarName(s string) (string, int) {
	if strings.HasPrefix(s, "{") {
		end := strings.IndexByte(s, '}')
		if end <= 1 {
			return "", 0
		}
		return s[1:end], end + 1
	}
	n := 0
	for n < len(s) && isVarChar(s[n]) {
		n++
	}
	return s[:n], n
}

func isVarChar(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// hasVars reports whether evaluation depends on the request.
func (t *template) hasVars() bool {
	for _, p := range t.parts {
		if p.varName != "" {
			return true
		}
	}
	return false
}

func (t *template) eval(r *request) string {
	switch {
	case len(t.parts) == 0:
		return ""
	case len(t.parts) == 1 && t.parts[0].varName == "":
		return t.parts[0].literal
	case len(t.parts) == 1:
		// A lone variable ("$proxy_host", nginx's default Host): its value
		// as is, without copying it through a builder.
		v, _ := r.variable(t.parts[0].varName)
		return v
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.varName == "" {
			b.WriteString(p.literal)
			continue
		}
		v, _ := r.variable(p.varName)
		b.WriteString(v)
	}
	return b.String()
}

var hostname, _ = os.Hostname()

// variable returns the value of nginx variable name (lower case, no '$') and
// whether it exists. Unknown and unset variables are empty, as nginx logs
// them.
func (r *request) variable(name string) (string, bool) {
	if v, ok := r.setVars[name]; ok {
		return v, true
	}
	switch name {
	case "uri", "document_uri":
		return r.uri, true
	case "args", "query_string":
		return r.args, true
	case "is_args":
		if r.args != "" {
			return "?", true
		}
		return "", true
	case "request_uri":
		return r.req.RequestURI, true
	case "request_method":
		return r.method, true
	case "request":
		return r.req.Method + " " + r.req.RequestURI + " " + r.req.Proto, true
	case "server_protocol":
		return r.req.Proto, true
	case "scheme":
		return "http", true
	case "host":
		return r.hostVar(), true
	case "http_host":
		return r.req.Host, true
	case "hostname":
		return hostname, true
	case "remote_addr":
		host, _, _ := net.SplitHostPort(r.req.RemoteAddr)
		return host, true
	case "remote_port":
		_, port, _ := net.SplitHostPort(r.req.RemoteAddr)
		return port, true
	case "remote_user":
		user, _, _ := r.req.BasicAuth()
		return user, true
	case "server_addr", "server_port":
		addr, _ := r.req.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if addr == nil {
			return "", true
		}
		host, port, _ := net.SplitHostPort(addr.String())
		if name == "server_addr" {
			return host, true
		}
		return port, true
	case "server_name":
		return r.vs.primaryName(), true
	case "content_type":
		return r.req.Header.Get("Content-Type"), true
	case "content_length":
		return r.req.Header.Get("Content-Length"), true
	case "status":
		return strconv.Itoa(r.w.statusOrOK()), true
	case "body_bytes_sent":
		return strconv.FormatInt(r.w.bodyBytes, 10), true
	case "bytes_sent":
		return strconv.FormatInt(r.w.bodyBytes+r.w.headerBytes(), 10), true
	case "request_time":
		return formatSeconds(time.Since(r.start)), true
	case "msec":
		now := time.Now()
		return strconv.FormatInt(now.Unix(), 10) + "." + pad3(now.Nanosecond()/1e6), true
	case "time_local":
		return time.Now().Format("02/Jan/2006:15:04:05 -0700"), true
	case "time_iso8601":
		return time.Now().Format("2006-01-02T15:04:05-07:00"), true
	case "pid":
		return strconv.Itoa(os.Getpid()), true
	case "nginx_version":
		return NginxVersion, true
	case "connection":
		return strconv.FormatUint(connID(r.req), 10), true
	case "connection_requests":
		return strconv.FormatInt(r.connRequests, 10), true
	case "document_root":
		return r.documentRoot(), true
	case "proxy_host":
		if r.loc.Proxy != nil {
			return r.loc.Proxy.HostHeader, true
		}
		return "", true
	case "proxy_add_x_forwarded_for":
		remote, _ := r.variable("remote_addr")
		if xff := r.req.Header.Get("X-Forwarded-For"); xff != "" {
			return xff + ", " + remote, true
		}
		return remote, true
	case "upstream_addr":
		return strings.Join(r.upstream.Addrs, ", "), true
	case "upstream_status":
		return joinInts(r.upstream.Statuses), true
	case "upstream_response_time":
		return joinDurations(r.upstream.ResponseTimes), true
	case "upstream_connect_time":
		return joinDurations(r.upstream.ConnectTimes), true
	case "upstream_header_time":
		return joinDurations(r.upstream.HeaderTimes), true
	case "request_id":
		return r.requestID(), true
	}
	switch {
	case strings.HasPrefix(name, "http_"):
		return r.req.Header.Get(headerNameFromVar(name[5:])), true
	case strings.HasPrefix(name, "sent_http_"):
		return r.w.Header().Get(headerNameFromVar(name[10:])), true
	case strings.HasPrefix(name, "arg_"):
		return argValue(r.args, name[4:]), true
	case strings.HasPrefix(name, "cookie_"):
		if c, err := r.req.Cookie(name[7:]); err == nil {
			return c.Value, true
		}
		return "", true
	case strings.HasPrefix(name, "upstream_http_"):
		return r.upstreamHeader.Get(headerNameFromVar(name[14:])), true
	}
	return "", false
}

// writableVariable reports whether nginx lets ngx.var assign name.
func writableVariable(name string) bool {
	switch name {
	case "args", "query_string", "limit_rate":
		return true
	}
	return false
}

// headerNameFromVar maps nginx's variable spelling (user_agent) to a header
// name (User-Agent).
func headerNameFromVar(s string) string {
	return http.CanonicalHeaderKey(strings.ReplaceAll(s, "_", "-"))
}

// argValue finds the first argument named key (case-insensitive, as nginx)
// in a raw query string; the value stays percent-encoded, as nginx's $arg_.
func argValue(args, key string) string {
	for args != "" {
		var kv string
		kv, args, _ = strings.Cut(args, "&")
		k, v, _ := strings.Cut(kv, "=")
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

func formatSeconds(d time.Duration) string {
	ms := d.Milliseconds()
	return strconv.FormatInt(ms/1000, 10) + "." + pad3(int(ms%1000))
}

func pad3(n int) string {
	s := strconv.Itoa(n)
	for len(s) < 3 {
		s = "0" + s
	}
	return s
}

func joinInts(xs []int) string {
	var b strings.Builder
	for i, x := range xs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(x))
	}
	return b.String()
}

func joinDurations(ds []time.Duration) string {
	var b strings.Builder
	for i, d := range ds {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(formatSeconds(d))
	}
	return b.String()
}

// documentRoot is $document_root: root with its variables evaluated for
// this request (nginx allows variables in root, e.g. root /srv/$host).
func (r *request) documentRoot() string {
	if r.rt != nil && r.rt.root != nil {
		return r.rt.root.eval(r)
	}
	return r.loc.Root
}

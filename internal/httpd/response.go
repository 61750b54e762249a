package httpd

import (
	"net/http"

	"upstreamd/internal/proxy"
)

// responseWriter sits between handlers and net/http so that nginx's output
// filters run where nginx runs them: add_header and header_filter_by_lua
// when the header goes out, body_filter_by_lua on every chunk, and so that
// $status and $body_bytes_sent are known for logging.
type responseWriter struct {
	w      http.ResponseWriter
	r      *request
	status int
	// pending is the status set by ngx.status before the header went out.
	pending     int
	wroteHeader bool
	bodyBytes   int64
	// filtering is set while the header filter runs so that Lua code which
	// writes output from header_filter cannot recurse.
	filtering bool
}

func (rw *responseWriter) Header() http.Header { return rw.w.Header() }

// SetStatusText passes the proxy's upstream reason phrase on to the server,
// when it can send one (h1 can; net/http cannot, and then the standard
// text goes out).
func (rw *responseWriter) SetStatusText(code int, text string) {
	if rw.r.errorPageStatus > 0 {
		return // error_page sets the status: its standard text goes out
	}
	if hs, ok := rw.w.(proxy.HeadSetter); ok {
		hs.SetStatusText(code, text)
	}
}

// SetFieldOrder passes the upstream's field order on to the server, when it
// can keep it (h1 can; net/http sorts by name).
func (rw *responseWriter) SetFieldOrder(names []string) {
	if hs, ok := rw.w.(proxy.HeadSetter); ok {
		hs.SetFieldOrder(names)
	}
}

// statusOrOK is $status: what was sent, or 200 for a header still pending
// (nginx logs 000 for a request that never got a header; we only log after
// finishing, when a header has always gone out).
func (rw *responseWriter) statusOrOK() int {
	if rw.status == 0 {
		return http.StatusOK
	}
	return rw.status
}

func (rw *responseWriter) WriteHeader(code int) {
	if rw.wroteHeader {
		return
	}
	if rw.r.errorPageStatus > 0 {
		// After error_page, whatever the target produces goes out with the
		// error's status (or error_page's =CODE), as nginx's err_status.
		code = rw.r.errorPageStatus
	}
	rw.status = code
	if !rw.filtering {
		rw.filtering = true
		rw.r.h.headerFilter(rw.r)
		rw.filtering = false
	}
	rw.wroteHeader = true
	h := rw.w.Header()
	if emptyField(h, "Server") {
		h["Server"] = serverHeaderValue
	}
	rw.r.keepaliveHeaders(h)
	rw.w.WriteHeader(rw.status)
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(rw.defaultStatus())
	}
	out := p
	if rw.r.bodyFilterActive() {
		var err error
		out, err = rw.r.h.bodyFilter(rw.r, p, false)
		if err != nil {
			return 0, err
		}
	}
	n, err := rw.w.Write(out)
	if rw.r.req.Method != http.MethodHead {
		// net/http swallows a HEAD body; nginx's $body_bytes_sent is 0.
		rw.bodyBytes += int64(n)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// finish runs the last body-filter call (eof) so filters can append.
func (rw *responseWriter) finish() {
	if !rw.wroteHeader {
		rw.WriteHeader(rw.defaultStatus())
	}
	if rw.r.bodyFilterActive() {
		if tail, err := rw.r.h.bodyFilter(rw.r, nil, true); err == nil && len(tail) > 0 {
			n, _ := rw.w.Write(tail)
			rw.bodyBytes += int64(n)
		}
	}
}

func (rw *responseWriter) defaultStatus() int {
	if rw.pending != 0 {
		return rw.pending
	}
	return http.StatusOK
}

func (rw *responseWriter) Flush() {
	if !rw.wroteHeader {
		rw.WriteHeader(rw.defaultStatus())
	}
	if f, ok := rw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (rw *responseWriter) Unwrap() http.ResponseWriter { return rw.w }

// serverHeaderValue is the Server header's value slice, shared by every
// response instead of allocating one per response (http.Header.Set would).
// Its capacity is 1, so an Add appends to a copy; nothing in this server
// writes a header value slice in place.
var serverHeaderValue = []string{ServerHeader}

// headerBytes is the size of the response header for $bytes_sent (0 while
// it has not been sent). It is computed when $bytes_sent is read rather
// than in WriteHeader: walking the header map on every response cost ~1%
// of the CPU of scenario (c) for a variable few configurations use. The
// map cannot change in between: after WriteHeader, ngx.header assignments
// are refused (as in ngx_lua), add_header and header_filter_by_lua have
// run, the proxy has copied the upstream header (trailers are dropped) and
// neither h1 nor net/http modifies the handler's map.
func (rw *responseWriter) headerBytes() int64 {
	if !rw.wroteHeader {
		return 0
	}
	return estimateHeaderBytes(rw.status, rw.w.Header())
}

// emptyField is h.Get(key) == "" for a key that is already in canonical
// form, without CanonicalMIMEHeaderKey's validation and copy.
func emptyField(h http.Header, key string) bool {
	v := h[key]
	return len(v) == 0 || v[0] == ""
}

func estimateHeaderBytes(status int, h http.Header) int64 {
	n := int64(len("HTTP/1.1 200 ") + len(http.StatusText(status)) + 2 + digits(status) - 3)
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + 2 + len(v) + 2)
		}
	}
	return n + 2
}

// digits is len(strconv.Itoa(n)) for n >= 0, without formatting (Itoa
// allocates for numbers of 100 and above).
func digits(n int) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

package ngxlua

import (
	"context"
	"net/http"
	"time"

	"upstreamd/internal/errlog"
)

// Request is what the HTTP server must implement for one request so Lua code
// can inspect and drive it. All methods are called from the goroutine that
// called Engine.Run/RunBodyFilter for that request, except Capture (see
// there). Internal redirects (ngx.exec) and location jumps are not methods:
// they are reported in the Outcome of Engine.Run.
type Request interface {
	Method() string
	SetMethod(method string)

	// URI is $uri: the decoded, normalized path. SetURI changes it (ngx.req.set_uri).
	URI() string
	SetURI(uri string)

	// Args is $args: the query string without '?'. SetArgs replaces it.
	Args() string
	SetArgs(args string)

	// RequestURI is the original $request_uri (path + '?' + query as received).
	RequestURI() string

	// HTTPVersion is 1.0, 1.1, 2.0 (0.9 for HTTP/0.9).
	HTTPVersion() float64

	// Header returns the request headers; ngx.req.set_header/clear_header
	// mutate the returned map in place.
	Header() http.Header

	// ReadBody reads the whole request body once and caches it; later calls
	// return the cached bytes. A nil slice with nil error means no body.
	ReadBody() ([]byte, error)

	// RemoteAddr is the client address ($remote_addr, without port).
	RemoteAddr() string

	// StartTime is when the request started (ngx.req.start_time).
	StartTime() time.Time

	// Var returns an nginx variable by name (without '$'): uri, args,
	// arg_x, request_uri, host, http_x, cookie_x, upstream_addr, status,
	// and user variables from set/map. ok=false means the variable is not
	// defined (ngx.var.x yields nil).
	Var(name string) (value string, ok bool)

	// SetVar assigns a writable variable. The error text is surfaced to Lua
	// verbatim, as ngx_lua does, e.g. `variable "foo" not found for writing;
	// maybe it is a built-in variable that is not changeable or you forgot to
	// use "set $foo '';" in the config file to define it first` or
	// `variable "uri" not changeable`.
	SetVar(name, value string) error

	// Status is the response status (0 when not yet set). SetStatus sets it
	// (only called before headers are sent).
	Status() int
	SetStatus(status int)

	// ResponseHeader returns the response headers not yet sent (mutable).
	ResponseHeader() http.Header

	// HeadersSent reports whether the response header was already written.
	HeadersSent() bool

	// Write sends the response headers first if needed (status default 200,
	// chunked when no Content-Length) and then p, through the body filters.
	// Output may be buffered. Write must not retain p after returning.
	// Write(nil) just sends the headers (ngx.send_headers, ngx.eof).
	Write(p []byte) error

	// Flush flushes buffered output to the client.
	Flush() error

	// Capture issues a subrequest through the same location tree and returns
	// its full response (ngx.location.capture). uri has no query string; args
	// is the subrequest's query string. headers are the subrequest's request
	// headers (the engine passes a copy of the parent's headers unless the
	// Lua code gave its own). A non-nil err together with status > 0 means the
	// body is truncated (res.truncated = true); status 0 with err means the
	// subrequest failed (Lua sees status 500). Capture may be called from
	// several goroutines at once (ngx.location.capture_multi).
	Capture(method, uri, args string, body []byte, headers http.Header) (status int, header http.Header, respBody []byte, err error)

	// UpstreamName is the upstream (proxy_pass target) of the current
	// location for ngx.upstream.current_upstream_name(); "" when none.
	UpstreamName() string

	// Log writes an error-log line with the request's context suffix
	// (", client: ..., server: ..., request: ..., host: ...").
	Log(level errlog.Level, msg string)

	// Context is cancelled when the client goes away or the server stops.
	Context() context.Context
}

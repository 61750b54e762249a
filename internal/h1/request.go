package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// parseError is a request h1 answers itself before closing.
type parseError struct {
	status int
	reason string // nginx's second line on the page, if any
}

func (e *parseError) Error() string { return "h1: " + strconv.Itoa(e.status) + " " + e.reason }

var (
	errBadRequest     = &parseError{status: http.StatusBadRequest}
	errHeaderTooLarge = &parseError{status: http.StatusBadRequest, reason: "Request Header Or Cookie Too Large"}
	errURITooLong     = &parseError{status: http.StatusRequestURITooLong}
	errNotImplemented = &parseError{status: http.StatusNotImplemented}
	errBadVersion     = &parseError{status: http.StatusHTTPVersionNotSupported}
	errExpectation    = &parseError{status: http.StatusExpectationFailed}
)

// chunkedTE is Request.TransferEncoding for chunked bodies, shared:
// handlers read it, they do not change it.
var chunkedTE = []string{"chunked"}

// readRequest waits for, reads and parses the next request into c.req.
func (c *conn) readRequest() error {
	s := c.srv
	if c.br.Buffered() == 0 {
		// Idle until the first byte: the idle deadline, and Shutdown may
		// close us meanwhile.
		c.phase = phaseIdle
		c.setReadDeadline(c.clock(), s.idleTimeout())
		if s.inShutdown.Load() {
			return errServerShutdown
		}
		c.state.Store(stateIdle)
		_, err := c.br.Peek(1)
		if !c.state.CompareAndSwap(stateIdle, stateReading) {
			return errServerShutdown
		}
		if err != nil {
			return err
		}
		// The request arrived: this reading is its start time and the
		// base of the header deadline.
		c.now, c.clockFresh = time.Now(), true
	} else {
		// Pipelined: it arrived no later than now; the last reading
		// (taken when the previous response was committed) is usually
		// still fresh.
		c.state.Store(stateReading)
		c.clock()
	}
	c.reqTime = c.now
	c.phase, c.deadlineSet = phaseHeader, false
	c.served.Add(1)
	if err := c.readHead(); err != nil {
		return err
	}
	c.phase = phaseNone
	return c.parseHead()
}

// readHead copies the request line and header lines into c.head, checking
// and canonicalising header names in place (so that one string conversion
// later gives every key and value without further allocation).
func (c *conn) readHead() error {
	max := c.srv.maxHeaderBytes()
	c.head = c.head[:0]
	c.spans = c.spans[:0]
	lineStart, reqLine, skipped := 0, -1, 0
	for {
		line, err := c.br.ReadSlice('\n')
		if len(c.head)+len(line) > max {
			if reqLine < 0 {
				return errURITooLong
			}
			return errHeaderTooLarge
		}
		c.head = append(c.head, line...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return err // EOF or timeout: close without an answer, as nginx
		}
		end := len(c.head) - 1
		if end > lineStart && c.head[end-1] == '\r' {
			end--
		}
		if reqLine < 0 {
			if end == lineStart {
				// Empty lines before a request line are ignored (RFC 9112
				// 2.2), within reason.
				if skipped++; skipped > 16 {
					return errBadRequest
				}
				c.head = c.head[:0]
				continue
			}
			reqLine = end
			lineStart = len(c.head)
			continue
		}
		if end == lineStart {
			return nil
		}
		if err := c.scanHeaderLine(lineStart, end); err != nil {
			return err
		}
		lineStart = len(c.head)
	}
}

// tokenChar marks RFC 9110 tchar bytes.
var tokenChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-32] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return
}()

func (c *conn) scanHeaderLine(start, end int) error {
	b := c.head[start:end]
	if b[0] == ' ' || b[0] == '\t' {
		return errBadRequest // obsolete line folding
	}
	colon := bytes.IndexByte(b, ':')
	if colon <= 0 {
		return errBadRequest
	}
	upper := true
	for i := 0; i < colon; i++ {
		ch := b[i]
		if !tokenChar[ch] {
			return errBadRequest // includes a space before the colon
		}
		if upper && 'a' <= ch && ch <= 'z' {
			b[i] = ch - 32
		} else if !upper && 'A' <= ch && ch <= 'Z' {
			b[i] = ch + 32
		}
		upper = ch == '-'
	}
	vs, ve := colon+1, len(b)
	for vs < ve && (b[vs] == ' ' || b[vs] == '\t') {
		vs++
	}
	for ve > vs && (b[ve-1] == ' ' || b[ve-1] == '\t') {
		ve--
	}
	for _, ch := range b[vs:ve] {
		if badValueChar[ch] {
			return errBadRequest
		}
	}
	c.spans = append(c.spans, span{start, start + colon, start + vs, start + ve})
	return nil
}

// parseHead fills c.req from c.head.
func (c *conn) parseHead() error {
	// The one allocation for the whole head, unless the client sent the
	// same head as last time (a poller, a health check, a load test): the
	// string is immutable, so the previous one serves again.
	head := c.lastHead
	if string(c.head) != head { // compiled to a comparison, no conversion
		head = string(c.head)
		c.lastHead = head
	}
	nl := strings.IndexByte(head, '\n')
	rl := head[:nl]
	rl = strings.TrimSuffix(rl, "\r")
	method, rest, ok1 := strings.Cut(rl, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || method == "" || target == "" {
		return errBadRequest
	}
	for i := 0; i < len(method); i++ {
		if !tokenChar[method[i]] {
			return errBadRequest
		}
	}
	var major, minor int
	switch proto {
	case "HTTP/1.1":
		major, minor, proto = 1, 1, "HTTP/1.1"
	case "HTTP/1.0":
		major, minor, proto = 1, 0, "HTTP/1.0"
	default:
		var ok bool
		if major, minor, ok = http.ParseHTTPVersion(proto); !ok {
			return errBadRequest
		}
		if major != 1 {
			return errBadVersion
		}
	}

	r := &c.req
	*r = c.tmpl
	r.Method, r.RequestURI, r.Proto, r.ProtoMajor, r.ProtoMinor = method, target, proto, major, minor
	r.RemoteAddr = c.remote
	u, err := c.url.parse(method, target)
	if err != nil {
		return errBadRequest
	}
	r.URL = u

	h := c.hdr
	clear(h)
	r.Header = h
	if cap(c.vals) < len(c.spans) {
		c.vals = make([]string, 0, 2*len(c.spans))
	}
	vals := c.vals[:0]
	var (
		host, conn, te, cl, expect string
		hosts, cls                 int
	)
	for _, sp := range c.spans {
		k, v := head[sp.ks:sp.ke], head[sp.vs:sp.ve]
		switch k {
		case "Host":
			// net/http keeps Host out of Header; so do we.
			host = v
			hosts++
			continue
		case "Connection":
			conn = joinValue(conn, v)
		case "Transfer-Encoding":
			te = joinValue(te, v)
		case "Content-Length":
			if cls > 0 && v != cl {
				return errBadRequest
			}
			cl = v
			cls++
		case "Expect":
			expect = v
		}
		if old, ok := h[k]; ok {
			h[k] = append(old, v)
			continue
		}
		vals = append(vals, v)
		n := len(vals)
		h[k] = vals[n-1 : n : n]
	}
	c.vals = vals

	if hosts > 1 || (hosts == 0 && minor >= 1 && method != "CONNECT") || !validHost(host) {
		return errBadRequest
	}
	r.Host = host
	if u.Host != "" {
		r.Host = u.Host // absolute-form wins (RFC 9112 3.2.2)
	}
	if minor == 0 {
		r.Close = !hasToken(conn, "keep-alive")
	} else {
		r.Close = hasToken(conn, "close")
	}

	b := &c.body
	b.reset()
	r.Body = http.NoBody
	switch {
	case te != "" && minor >= 1:
		if !strings.EqualFold(te, "chunked") {
			return errNotImplemented
		}
		if cls > 0 {
			// nginx (1.21.1+) refuses a request framed both ways: the two
			// framings disagreeing is how requests are smuggled past a proxy.
			return errBadRequest
		}
		// The framing headers leave Header, as in net/http: nothing
		// downstream may forward them next to a body it frames itself.
		delete(h, "Content-Length")
		delete(h, "Transfer-Encoding")
		b.chunked, b.done = true, false
		r.TransferEncoding = chunkedTE
		r.ContentLength = -1
		r.Body = b
	case cls > 0:
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 || cl[0] == '+' {
			return errBadRequest
		}
		r.ContentLength = n
		if n > 0 {
			b.remaining, b.done = n, false
			r.Body = b
		}
	}
	if expect != "" {
		if !strings.EqualFold(expect, "100-continue") {
			return errExpectation
		}
		b.expect = minor >= 1 && !b.done
	}
	c.w.reset(r)
	return nil
}

func joinValue(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

// hasToken reports whether the comma-separated list v holds token,
// case-insensitively.
func hasToken(v, token string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.Trim(t, " \t"), token) {
			return true
		}
	}
	return false
}

func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		if badHostChar[h[i]] {
			return false
		}
	}
	return true
}

// badHostChar marks the bytes a Host may not hold: controls, space, DEL,
// '/' and '\\' (one lookup per byte instead of four comparisons).
var badHostChar = func() (t [256]bool) {
	for c := range t {
		t[c] = c <= ' ' || c == 0x7f || c == '/' || c == '\\'
	}
	return
}()

// badValueChar marks the bytes a field value may not hold: controls other
// than HTAB, and DEL.
var badValueChar = func() (t [256]bool) {
	for c := range t {
		t[c] = c < ' ' && c != '\t' || c == 0x7f
	}
	return
}()

// urlBuf is the connection's reused URL.
type urlBuf struct{ u url.URL }

// pathChar marks bytes url.URL.EscapedPath leaves as they are: for a
// target made only of these (and a query without control bytes), Path is
// the target itself and url.Parse would not set RawPath.
var pathChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-32] = true, true
	}
	for _, c := range "-._~!$&'()*+,;=:@/" {
		t[c] = true
	}
	return
}()

// parse parses a request target as url.ParseRequestURI would, without
// allocating for the common origin-form target.
func (ub *urlBuf) parse(method, target string) (*url.URL, error) {
	u := &ub.u
	if target[0] == '/' {
		path, query, hasQuery := strings.Cut(target, "?")
		fast := true
		for i := 0; i < len(path); i++ {
			if !pathChar[path[i]] {
				fast = false
				break
			}
		}
		for i := 0; fast && i < len(query); i++ {
			if ch := query[i]; ch < ' ' || ch == 0x7f || ch == '#' {
				fast = false
			}
		}
		if fast && !strings.HasPrefix(path, "//") {
			*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
			return u, nil
		}
	}
	if method == "CONNECT" && target[0] != '/' {
		p, err := url.ParseRequestURI("http://" + target)
		if err != nil {
			return nil, err
		}
		p.Scheme = ""
		*u = *p
		return u, nil
	}
	p, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, err
	}
	*u = *p
	return u, nil
}

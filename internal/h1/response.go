package h1

import (
	"bufio"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// response is the connection's http.ResponseWriter, reused per request.
//
// The body is held back (up to bufSize) until the handler returns, flushes
// or writes more, so that a short response gets a Content-Length (as
// net/http does); otherwise it is chunked (HTTP/1.1) or delimited by
// closing the connection (HTTP/1.0).
type response struct {
	c   *conn
	req *http.Request
	hdr http.Header

	status      int
	wroteHeader bool  // the status is fixed
	committed   bool  // the head is in the connection's buffer
	clen        int64 // Content-Length the handler declared, or -1
	written     int64 // body bytes the handler wrote
	chunked     bool
	noBody      bool // HEAD, 1xx, 204, 304
	pending     []byte
	rest        []field // scratch: the fields written after nginx's own, sorted

	// A status line text of the handler's (SetStatusText), used if the
	// status written is textCode.
	textCode int
	text     string
	// order lists field names to write in this order before the others
	// (SetFieldOrder); it is the response's own copy.
	order []string
}

func (w *response) reset(r *http.Request) {
	w.req = r
	clear(w.hdr)
	w.status, w.wroteHeader, w.committed = 0, false, false
	w.clen, w.written, w.chunked, w.noBody = -1, 0, false, r.Method == http.MethodHead
	w.pending = w.pending[:0]
	w.textCode, w.text = 0, ""
	clear(w.order)
	w.order = w.order[:0]
}

func (w *response) Header() http.Header { return w.hdr }

// SetStatusText makes the status line of a code response carry text
// instead of the standard reason phrase (the proxy passes the upstream's
// through, as nginx). It must be called before the head is committed;
// text must not hold CR or LF.
func (w *response) SetStatusText(code int, text string) {
	w.textCode, w.text = code, text
}

// SetFieldOrder makes the fields named in names (those h1 does not place
// itself, as nginx) go out in that order, before the other fields, which
// follow sorted by name. A name given n times puts one of its values at
// each place (the last place gets all that are left). The proxy passes
// the upstream's order, which nginx keeps. It must be called before the
// head is committed.
func (w *response) SetFieldOrder(names []string) {
	w.order = append(w.order[:0], names...)
}

// writeStatusLine writes the status line for code.
func (w *response) writeStatusLine(code int) {
	line := statusLine(code)
	if w.text == "" || code != w.textCode || (len(line) == len("HTTP/1.1 200 \r\n")+len(w.text) && line[13:len(line)-2] == w.text) {
		w.c.bw.WriteString(line)
		return
	}
	bw := w.c.bw
	bw.WriteString(line[:13]) // "HTTP/1.1 200 "
	writeOneLine(bw, w.text)
	bw.WriteString("\r\n")
}

func (w *response) WriteHeader(code int) {
	if w.c.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	if code == http.StatusNoContent || code == http.StatusNotModified || code < 200 {
		w.noBody = true
	}
	if v := w.hdr["Content-Length"]; len(v) > 0 {
		if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n >= 0 {
			w.clen = n
		} else {
			delete(w.hdr, "Content-Length")
		}
	}
}

func (w *response) writeInformational(code int) {
	if w.c.werr != nil {
		return
	}
	bw := w.c.bw
	bw.WriteString(statusLine(code))
	_, rest := w.collectFields(nil)
	for _, f := range rest {
		writeValues(bw, f.k, f.vs)
	}
	w.releaseFields(rest)
	bw.WriteString("\r\n")
	_ = bw.Flush()
}

func (w *response) Write(p []byte) (int, error) {
	c := w.c
	if c.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.noBody {
		if w.req.Method == http.MethodHead && w.status != http.StatusNoContent && w.status != http.StatusNotModified && w.status >= 200 {
			w.written += int64(len(p))
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.clen >= 0 && w.written+int64(len(p)) > w.clen {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.committed {
		if len(w.pending)+len(p) <= bufSize {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		w.commit(false)
	}
	if err := w.writeBody(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *response) writeBody(p []byte) error {
	bw := w.c.bw
	if w.chunked {
		// Built in bw's free space: a stack array would escape through
		// bw.Write (to the underlying writer) and cost an allocation.
		b := strconv.AppendInt(bw.AvailableBuffer(), int64(len(p)), 16)
		b = append(b, '\r', '\n')
		bw.Write(b)
		bw.Write(p)
		bw.WriteString("\r\n")
	} else {
		bw.Write(p)
	}
	return w.c.werr
}

// Flush sends the head and everything written so far.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is what http.ResponseController.Flush calls.
func (w *response) FlushError() error {
	c := w.c
	if c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false)
	}
	if c.werr != nil {
		return c.werr
	}
	return c.bw.Flush()
}

// Hijack is what http.ResponseController.Hijack calls (the proxy upgrades
// WebSocket connections with it).
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.c.hijack() }

func (w *response) SetReadDeadline(t time.Time) error {
	w.c.rdl = time.Time{} // unknown from now on: the next one is set for sure
	return w.c.rwc.SetReadDeadline(t)
}

// RequestStart returns when the request arrived (its first bytes were
// read, or the previous response was committed, for a pipelined one): the
// server reads the clock then anyway, so handlers that need the start time
// can take it from here (through an interface check) instead of calling
// time.Now again.
func (w *response) RequestStart() time.Time { return w.c.reqTime }

func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// EnableFullDuplex: reading the body while writing the response always
// works here.
func (w *response) EnableFullDuplex() error { return nil }

// finish completes the response after the handler returned.
func (w *response) finish() {
	c := w.c
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true)
	}
	if w.chunked {
		c.bw.WriteString("0\r\n\r\n")
	}
	if w.clen >= 0 && w.written < w.clen && !w.noBody {
		c.closeAfter = true // short body: the client can only tell by the close
	}
}

// commit writes the head and the held-back body to the connection's
// buffer. final means the handler has returned.
func (w *response) commit(final bool) {
	c := w.c
	w.committed = true
	req := w.req
	status := w.status

	// One pass over the map: the fields nginx's header filter writes
	// itself (in its order, below), and the others, sorted by name.
	var known [nKnownFields][]string
	present, rest := w.collectFields(&known)

	closing := req.Close || c.srv.inShutdown.Load()
	connClose := len(known[fConnection]) > 0 && hasToken(strings.Join(known[fConnection], ","), "close")
	if connClose {
		closing = true
	}
	setCL := false
	te := ""
	if v := known[fTransferEncoding]; len(v) > 0 {
		te = v[0]
	}
	switch {
	case w.noBody:
		if final && w.clen < 0 && req.Method == http.MethodHead && w.written > 0 {
			w.clen, setCL = w.written, true
		}
	case te != "" && !strings.EqualFold(te, "chunked"):
		closing = true // "identity" and friends: delimited by the close
	case te == "" && w.clen >= 0:
	case te == "" && final:
		w.clen, setCL = int64(len(w.pending)), true
	case req.ProtoAtLeast(1, 1):
		w.chunked = true
	default:
		closing = true // HTTP/1.0 with no length
	}
	if final && !closing && !c.body.done {
		// The handler left part of the body: keep the connection only
		// if draining it is cheap.
		b := &c.body
		if b.expect || (!b.chunked && b.remaining > maxDiscard) {
			closing = true
		}
	}
	if closing {
		c.closeAfter = true
	}
	if c.werr != nil {
		w.releaseFields(rest)
		return
	}

	bw := c.bw
	w.writeStatusLine(status)
	skipCL := w.chunked || status < 200 || status == http.StatusNoContent || status == http.StatusNotModified
	// nginx's order (ngx_http_header_filter): Server, Date, Content-Type,
	// Content-Length, Last-Modified, Location, Transfer-Encoding,
	// Connection, Keep-Alive, then the other fields (nginx: in the order
	// they were added; here by name, as a map does not keep an order).
	writeValues(bw, "Server", known[fServer])
	if present&(1<<fDate) != 0 {
		writeValues(bw, "Date", known[fDate]) // nil: the handler suppressed Date
	} else {
		// A fresh reading for Date (the handler may have run long). When
		// the handler has returned (final), the idle wait that follows
		// reuses it for its deadline instead of reading the clock again.
		c.now, c.clockFresh = time.Now(), final
		bw.Write(dateLine(c.now))
	}
	if status != http.StatusNotModified {
		writeValues(bw, "Content-Type", known[fContentType])
	}
	switch {
	case skipCL:
	case setCL:
		// In bw's free space, not a stack array: that escapes through
		// bw.Write and cost an allocation per response.
		b := append(bw.AvailableBuffer(), "Content-Length: "...)
		b = strconv.AppendInt(b, w.clen, 10)
		b = append(b, '\r', '\n')
		bw.Write(b)
	default:
		writeValues(bw, "Content-Length", known[fContentLength])
	}
	writeValues(bw, "Last-Modified", known[fLastModified])
	writeValues(bw, "Location", known[fLocation])
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n") // never the handler's
	}
	switch {
	case closing && !connClose:
		bw.WriteString("Connection: close\r\n") // on close we say so, unless the handler did
	case !closing && present&(1<<fConnection) == 0:
		bw.WriteString("Connection: keep-alive\r\n")
	default:
		writeValues(bw, "Connection", known[fConnection])
	}
	writeValues(bw, "Keep-Alive", known[fKeepAlive])
	for j, name := range w.order {
		// rest holds a name at most once; a written one is emptied. A name
		// given n times (the upstream sent the field on n lines) has a
		// value written at each of its places, the rest at the last one.
		for i := range rest {
			if rest[i].k != name {
				continue
			}
			if vs := rest[i].vs; len(vs) > 1 && slices.Contains(w.order[j+1:], name) {
				writeField(bw, name, vs[0])
				rest[i].vs = vs[1:]
			} else {
				writeValues(bw, name, vs)
				rest[i].k, rest[i].vs = "", nil
			}
			break
		}
	}
	for _, f := range rest {
		writeValues(bw, f.k, f.vs)
	}
	w.releaseFields(rest)
	bw.WriteString("\r\n")
	if len(w.pending) > 0 && !w.noBody {
		_ = w.writeBody(w.pending)
	}
	w.pending = w.pending[:0]
}

// The fields nginx's header filter writes itself, in its order.
const (
	fServer = iota
	fDate
	fContentType
	fContentLength
	fLastModified
	fLocation
	fTransferEncoding
	fConnection
	fKeepAlive
	nKnownFields
)

func knownField(k string) int {
	switch k {
	case "Server":
		return fServer
	case "Date":
		return fDate
	case "Content-Type":
		return fContentType
	case "Content-Length":
		return fContentLength
	case "Last-Modified":
		return fLastModified
	case "Location":
		return fLocation
	case "Transfer-Encoding":
		return fTransferEncoding
	case "Connection":
		return fConnection
	case "Keep-Alive":
		return fKeepAlive
	}
	return -1
}

// field is a header field of the response's map, for sorting.
type field struct {
	k  string
	vs []string
}

// collectFields goes once over the header map: with known, the fields of
// knownField go there (present has bit i for each known[i] set, even to
// nil); the others, with a valid name, come back sorted by name, in the
// response's scratch slice (give it back with releaseFields).
func (w *response) collectFields(known *[nKnownFields][]string) (present uint16, rest []field) {
	rest = w.rest[:0]
	for k, vs := range w.hdr {
		if i := knownField(k); known != nil && i >= 0 {
			known[i] = vs
			present |= 1 << i
		} else if validFieldName(k) {
			rest = append(rest, field{k, vs})
		}
	}
	slices.SortFunc(rest, func(a, b field) int { return strings.Compare(a.k, b.k) })
	return present, rest
}

func (w *response) releaseFields(rest []field) {
	clear(rest) // no references kept to the handler's values
	w.rest = rest[:0]
}

// writeValues writes a field line for each value.
func writeValues(bw *bufio.Writer, k string, vs []string) {
	for _, v := range vs {
		writeField(bw, k, v)
	}
}

func validFieldName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !tokenChar[k[i]] {
			return false
		}
	}
	return true
}

// writeField writes "k: v\r\n", v trimmed and with CR and LF replaced.
// The usual field (no CR or LF, fits the buffer) is assembled in bw's free
// space and written at once rather than piece by piece.
func writeField(bw *bufio.Writer, k, v string) {
	for v != "" && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for v != "" && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	if len(k)+len(v)+4 <= bw.Available() && strings.IndexByte(v, '\r') < 0 && strings.IndexByte(v, '\n') < 0 {
		b := append(bw.AvailableBuffer(), k...)
		b = append(b, ": "...)
		b = append(b, v...)
		b = append(b, "\r\n"...)
		bw.Write(b)
		return
	}
	bw.WriteString(k)
	bw.WriteString(": ")
	writeOneLine(bw, v)
	bw.WriteString("\r\n")
}

// writeOneLine writes s with CR and LF replaced by spaces, so that it
// cannot split the head.
func writeOneLine(bw *bufio.Writer, s string) {
	for i := 0; i < len(s); i++ {
		if ch := s[i]; ch == '\r' || ch == '\n' {
			bw.WriteString(s[:i])
			bw.WriteByte(' ')
			s = s[i+1:]
			i = -1
		}
	}
	bw.WriteString(s)
}

// nginxReasons are nginx's status line texts where they differ from Go's
// (ngx_http_status_lines): ops tooling and logs that grep raw responses see
// what nginx would send.
var nginxReasons = map[int]string{
	302: "Moved Temporarily",
	405: "Not Allowed",
	408: "Request Time-out",
	413: "Request Entity Too Large",
	414: "Request-URI Too Large",
	416: "Requested Range Not Satisfiable",
	503: "Service Temporarily Unavailable",
	504: "Gateway Time-out",
}

// statusLines["HTTP/1.1 200 OK\r\n", …] for the codes with a text.
var statusLines = func() (t [600]string) {
	for code := range t {
		text, ok := nginxReasons[code]
		if !ok {
			text = http.StatusText(code)
		}
		if text != "" {
			t[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
		}
	}
	return
}()

func statusLine(code int) string {
	if code < len(statusLines) && statusLines[code] != "" {
		return statusLines[code]
	}
	c := strconv.Itoa(code)
	return "HTTP/1.1 " + c + " status code " + c + "\r\n" // as net/http
}

// dateLine is "Date: <now, HTTP format>\r\n", formatted once a second.
func dateLine(now time.Time) []byte {
	sec := now.Unix()
	if d := cachedDate.Load(); d != nil && d.sec == sec {
		return d.line
	}
	d := &dateEntry{sec: sec}
	d.line = append([]byte("Date: "), now.UTC().AppendFormat(nil, http.TimeFormat)...)
	d.line = append(d.line, '\r', '\n')
	cachedDate.Store(d)
	return d.line
}

type dateEntry struct {
	sec  int64
	line []byte
}

var cachedDate atomic.Pointer[dateEntry]

// writeError answers a request h1 could not parse, with nginx's page, and
// marks the connection for closing.
func (c *conn) writeError(pe *parseError) {
	c.closeAfter = true
	text, ok := nginxReasons[pe.status]
	if !ok {
		text = http.StatusText(pe.status)
	}
	title := strconv.Itoa(pe.status) + " " + text
	page := "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title + "</h1></center>\r\n"
	if pe.reason != "" {
		page = "<html>\r\n<head><title>" + strconv.Itoa(pe.status) + " " + pe.reason + "</title></head>\r\n<body>\r\n<center><h1>" + title + "</h1></center>\r\n<center>" + pe.reason + "</center>\r\n"
	}
	name := c.srv.Name
	if name == "" {
		name = "upstreamd"
	}
	page += "<hr><center>" + name + "</center>\r\n</body>\r\n</html>\r\n"
	bw := c.bw
	bw.WriteString(statusLine(pe.status))
	bw.WriteString("Server: " + name + "\r\n")
	bw.Write(dateLine(time.Now()))
	bw.WriteString("Content-Type: text/html\r\nContent-Length: " + strconv.Itoa(len(page)) + "\r\nConnection: close\r\n\r\n")
	bw.WriteString(page)
	c.linger = true
}

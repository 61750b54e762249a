package proxy

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
)

// ---- request ----

// appendRequest serialises the request head (and, when small, the body)
// into b. It reports whether the request allows the connection to be kept
// alive afterwards (HTTP/1.1 without "Connection: close", or HTTP/1.0 with
// "Connection: keep-alive").
func appendRequest(b []byte, out *Out, withBody bool) ([]byte, bool) {
	v11 := out.HTTPVersion == "1.1"
	b = append(b, out.Method...)
	b = append(b, ' ')
	uri := out.URI
	if uri == "" {
		uri = "/"
	}
	b = appendClean(b, uri)
	if v11 {
		b = append(b, " HTTP/1.1\r\n"...)
	} else {
		b = append(b, " HTTP/1.0\r\n"...)
	}
	if out.Host != "" {
		b = append(b, "Host: "...)
		b = appendClean(b, out.Host)
		b = append(b, "\r\n"...)
	}
	keep, close := false, false
	for k, vs := range out.Header {
		switch {
		case eqFold(k, "Host"), eqFold(k, "Content-Length"), eqFold(k, "Transfer-Encoding"):
			// Serve writes these itself.
			continue
		case eqFold(k, "Connection"):
			for _, v := range vs {
				if hasToken(v, "close") {
					close = true
				}
				if hasToken(v, "keep-alive") {
					keep = true
				}
			}
		}
		for _, v := range vs {
			if v == "" {
				// nginx: a proxy_set_header with an empty value is not sent.
				continue
			}
			b = appendClean(b, k)
			b = append(b, ": "...)
			b = appendClean(b, v)
			b = append(b, "\r\n"...)
		}
	}
	if out.Body != nil {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(out.Body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	if withBody {
		b = append(b, out.Body...)
	}
	return b, !close && (v11 || keep)
}

// appendClean appends s with CR and LF replaced by spaces, so that no value
// can split the request head.
func appendClean(b []byte, s string) []byte {
	if strings.IndexByte(s, '\r') < 0 && strings.IndexByte(s, '\n') < 0 {
		return append(b, s...) // the usual case: one copy, not a byte at a time
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

// eqFold is an allocation-free ASCII case-insensitive comparison.
func eqFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], t[i]
		if a != b && lower(a) != lower(b) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// hasToken reports whether the comma-separated list v contains token
// (case-insensitively).
func hasToken(v, token string) bool {
	for v != "" {
		var item string
		if i := indexByteString(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, ""
		}
		if eqFold(trimOWS(item), token) {
			return true
		}
	}
	return false
}

func indexByteString(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// headerValue returns the first value of key in h, matching keys
// case-insensitively (the caller's map may hold non-canonical keys).
func headerValue(h http.Header, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	for k, vs := range h {
		if len(vs) > 0 && eqFold(k, key) {
			return vs[0]
		}
	}
	return ""
}

// ---- response ----

// field is one response header line, as offsets into respHeader.block.
type field struct {
	ks, ke, vs, ve int32
	drop           bool // not passed to the client (hop-by-hop, Date, Server, ...)
}

// respHeader is a parsed upstream response head.
type respHeader struct {
	status       int
	major, minor int
	// reason phrase: block[reasonStart:reasonEnd], empty when none
	reasonStart, reasonEnd int32
	block                  []byte // status line through the empty line; keys canonicalised in place
	fields                 []field
	nfields                int // fields not dropped

	clen          int64 // -1: none
	chunked       bool
	connClose     bool
	connKeepAlive bool
	accelBuffer   int8 // X-Accel-Buffering: 0 unset, 1 yes, -1 no

	// order is names' scratch.
	order []string

	// last is the string copyTo made of the previous head parsed into
	// this (pooled) respHeader. A peer tends to answer a location with
	// byte-identical heads (only Date changes, once a second), so copyTo
	// reuses it instead of allocating a new copy when the bytes match.
	last string
	// lastIsHead: last holds this head (headString compared it since the
	// head was parsed), so later calls need not compare again.
	lastIsHead bool
}

// keepAlive reports whether the response allows reusing the connection.
func (h *respHeader) keepAlive() bool {
	if h.connClose {
		return false
	}
	if h.major > 1 || (h.major == 1 && h.minor >= 1) {
		return true
	}
	return h.connKeepAlive
}

// parseStatusLine checks line ("HTTP/1.1 200 OK", without the line end) and
// returns the status, the version and where the reason phrase begins
// (len(line) when there is none).
func parseStatusLine(line []byte) (status, major, minor, reasonAt int, ok bool) {
	if len(line) < 12 || string(line[:5]) != "HTTP/" {
		return
	}
	p := 5
	major, p, ok = parseSmallInt(line, p)
	if !ok || p >= len(line) || line[p] != '.' {
		return 0, 0, 0, 0, false
	}
	minor, p, ok = parseSmallInt(line, p+1)
	if !ok || p >= len(line) || line[p] != ' ' {
		return 0, 0, 0, 0, false
	}
	for p < len(line) && line[p] == ' ' {
		p++
	}
	if p+3 > len(line) {
		return 0, 0, 0, 0, false
	}
	for i := p; i < p+3; i++ {
		if line[i] < '0' || line[i] > '9' {
			return 0, 0, 0, 0, false
		}
		status = status*10 + int(line[i]-'0')
	}
	if p+3 < len(line) && line[p+3] != ' ' {
		return 0, 0, 0, 0, false
	}
	if status < 100 {
		return 0, 0, 0, 0, false
	}
	reasonAt = min(p+4, len(line))
	return status, major, minor, reasonAt, true
}

func parseSmallInt(b []byte, p int) (int, int, bool) {
	start, n := p, 0
	for p < len(b) && b[p] >= '0' && b[p] <= '9' && p-start < 3 {
		n = n*10 + int(b[p]-'0')
		p++
	}
	return n, p, p > start
}

// headerError is an invalid response head: the message nginx logs (without
// the "while ..." part).
type headerError string

// Byte classes of header names, one table lookup per byte: OR-ing the
// classes of a whole name tells at once whether it is valid and a token.
const (
	nameNonToken = 1 << iota // allowed, but nginx ignores the line (not an RFC 9110 tchar)
	nameInvalid              // control, space or DEL: the head is invalid
)

var nameClass = func() (t [256]uint8) {
	for c := range t {
		switch {
		case c <= ' ' || c == 0x7f:
			t[c] = nameInvalid
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z',
			strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0:
		default:
			t[c] = nameNonToken
		}
	}
	return
}()

// parseFields parses the header lines of h.block (after the status line,
// whose end is at offset start), canonicalising keys in place. It returns a
// non-empty headerError if the head is invalid.
func (h *respHeader) parseFields(start int) headerError {
	b := h.block
	h.lastIsHead = false
	h.fields = h.fields[:0]
	h.nfields = 0
	h.clen = -1
	h.chunked, h.connClose, h.connKeepAlive = false, false, false
	h.accelBuffer = 0
	var clField, teField = -1, -1
	for p := start; p < len(b); {
		nl := bytes.IndexByte(b[p:], '\n')
		if nl < 0 {
			break
		}
		end := p + nl
		next := end + 1
		if end > p && b[end-1] == '\r' {
			end--
		}
		if end == p {
			break // the empty line
		}
		line := b[p:end]
		if line[0] == ' ' || line[0] == '\t' {
			return invalidHeader(line, 0)
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			colon = len(line)
		}
		var class uint8
		for _, c := range line[:colon] {
			class |= nameClass[c]
		}
		if class&nameInvalid != 0 {
			for i, c := range line[:colon] {
				if nameClass[c]&nameInvalid != 0 {
					return invalidHeader(line, i)
				}
			}
		}
		vs, ve := colon+1, len(line)
		if vs < ve {
			// The line ends at its LF, so a CR left inside is a bare one.
			cr, nul := bytes.IndexByte(line[vs:], '\r'), bytes.IndexByte(line[vs:], 0)
			if cr >= 0 || nul >= 0 {
				if cr < 0 || (nul >= 0 && nul < cr) {
					cr = nul
				}
				return invalidHeader(line, vs+cr)
			}
		}
		if class&nameNonToken != 0 || colon == 0 || colon == len(line) {
			p = next // nginx ignores such lines (r->invalid_header)
			continue
		}
		for vs < ve && (line[vs] == ' ' || line[vs] == '\t') {
			vs++
		}
		for ve > vs && (line[ve-1] == ' ' || line[ve-1] == '\t') {
			ve--
		}
		canonicalize(line[:colon])
		f := field{ks: int32(p), ke: int32(p + colon), vs: int32(p + vs), ve: int32(p + ve)}
		key, val := line[:colon], line[vs:ve]
		switch string(key) {
		case "Content-Length":
			if clField >= 0 {
				prev := h.fields[clField]
				return headerError("upstream sent duplicate header line: \"" + string(line) +
					"\", previous value: \"" + string(b[prev.ks:prev.ve]) + "\"")
			}
			n, ok := parseContentLength(val)
			if !ok {
				return headerError("upstream sent invalid \"Content-Length\" header: \"" + string(line) + "\"")
			}
			h.clen = n
			clField = len(h.fields)
		case "Transfer-Encoding":
			if teField >= 0 {
				return headerError("upstream sent duplicate header line: \"" + string(line) + "\"")
			}
			if !bytes.EqualFold(val, []byte("chunked")) {
				return headerError("upstream sent unknown \"Transfer-Encoding\": \"" + string(val) + "\"")
			}
			h.chunked = true
			teField = len(h.fields)
			f.drop = true
		case "Connection":
			switch {
			case bytes.EqualFold(val, []byte("keep-alive")): // the usual value: no list to split
				h.connKeepAlive = true
			case bytes.EqualFold(val, []byte("close")):
				h.connClose = true
			default:
				if hasToken(string(val), "close") {
					h.connClose = true
				}
				if hasToken(string(val), "keep-alive") {
					h.connKeepAlive = true
				}
			}
			f.drop = true
		case "X-Accel-Buffering":
			switch {
			case bytes.EqualFold(val, []byte("yes")):
				h.accelBuffer = 1
			case bytes.EqualFold(val, []byte("no")):
				h.accelBuffer = -1
			}
			f.drop = true
		case "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade",
			"Date", "Server", "X-Pad", "X-Accel-Expires", "X-Accel-Redirect",
			"X-Accel-Limit-Rate", "X-Accel-Charset":
			// Hop-by-hop headers, and nginx's default proxy_hide_header list.
			f.drop = true
		}
		if !f.drop {
			h.nfields++
		}
		h.fields = append(h.fields, f)
		p = next
	}
	if clField >= 0 && teField >= 0 {
		return "upstream sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time"
	}
	if h.chunked {
		h.clen = -1
	}
	return ""
}

// invalidHeader formats nginx's message for a bad header line, showing the
// line up to the offending byte.
func invalidHeader(line []byte, bad int) headerError {
	c := byte(0)
	if bad < len(line) {
		c = line[bad]
	}
	const hex = "0123456789abcdef"
	return headerError("upstream sent invalid header: \"" + string(line[:bad]) +
		"\\x" + string([]byte{hex[c>>4], hex[c&15]}) + "...\"")
}

func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// canonicalize rewrites a token header name in place into Go's canonical
// form ("content-type" → "Content-Type").
func canonicalize(k []byte) {
	// One table lookup per byte: the upper half of canonCase upper-cases (a
	// name's first byte and those after '-'), the lower half lower-cases.
	// The mask lets the compiler drop the bounds check.
	half := 256
	for i, c := range k {
		c = canonCase[(half+int(c))&511]
		k[i] = c
		half = int(canonHalf[c])
	}
}

var canonCase, canonHalf = func() (t [512]byte, half [256]uint16) {
	for c := range 256 {
		t[c], t[256+c] = byte(c), byte(c)
		if 'a' <= c && c <= 'z' {
			t[256+c] = byte(c) - 'a' + 'A'
		}
		if 'A' <= c && c <= 'Z' {
			t[c] = byte(c) + 'a' - 'A'
		}
	}
	half['-'] = 256
	return
}()

// copyTo adds the passed-through header fields to dst. It makes one string
// of the whole head (unless it equals the previous one, see last) and one
// backing array for the value slices, so a response costs one or two
// allocations plus the map's own. The strings are immutable, so sharing the
// head's string between responses is safe; the value slices are not
// shared, as a handler may append to them.
func (h *respHeader) copyTo(dst http.Header) {
	if h.nfields == 0 {
		return
	}
	blk := h.headString()
	vals := make([]string, h.nfields)
	i := 0
	for _, f := range h.fields {
		if f.drop {
			continue
		}
		k, v := blk[f.ks:f.ke], blk[f.vs:f.ve]
		if old, ok := dst[k]; ok {
			dst[k] = append(old, v)
			continue
		}
		vals[i] = v
		dst[k] = vals[i : i+1 : i+1]
		i++
	}
}

// headString returns the head as a string: the previous one when the
// bytes are the same (see last), so that it is not copied again.
func (h *respHeader) headString() string {
	if !h.lastIsHead {
		if string(h.block) != h.last { // compiled to a comparison, no conversion
			h.last = string(h.block)
		}
		h.lastIsHead = true
	}
	return h.last
}

// names returns the names of the passed-through fields in the upstream's
// order (a name repeated if the field was), as strings of headString's,
// like the Header map's keys. The slice is reused by the next head.
func (h *respHeader) names() []string {
	blk := h.headString()
	order := h.order[:0]
	for _, f := range h.fields {
		if !f.drop {
			order = append(order, blk[f.ks:f.ke])
		}
	}
	h.order = order
	return order
}

// reason returns the upstream's reason phrase ("OK" of "HTTP/1.1 200 OK"),
// or "" when there is none or it holds control characters other than HTAB
// (it could not be sent on as it is). The string is part of headString's,
// so that it stays valid after the session reuses its buffer.
func (h *respHeader) reason() string {
	r := h.block[h.reasonStart:h.reasonEnd]
	if len(r) == 0 || (h.status == 200 && string(r) == "OK") {
		return "" // none, or the text every server sends anyway
	}
	for _, c := range r {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return ""
		}
	}
	return h.headString()[h.reasonStart:h.reasonEnd]
}

// get returns the value of the first field named key (canonical), dropped
// or not.
func (h *respHeader) get(key string) string {
	for _, f := range h.fields {
		if string(h.block[f.ks:f.ke]) == key {
			return string(h.block[f.vs:f.ve])
		}
	}
	return ""
}

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
				switch {
				case eqFold(v, "close"): // nginx's default value: no list to split
					close = true
				case eqFold(v, "keep-alive"):
					keep = true
				default:
					close = close || hasToken(v, "close")
					keep = keep || hasToken(v, "keep-alive")
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

	clen             int64 // -1: none
	clField, teField int32 // index in fields of Content-Length, Transfer-Encoding (-1: none)
	chunked          bool
	connClose        bool
	connKeepAlive    bool
	accelBuffer      int8 // X-Accel-Buffering: 0 unset, 1 yes, -1 no

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
	// lastVals is the value array copyTo made for last (nil: none yet).
	// Its elements are never written again, and the slices copyTo hands
	// out have no room to append into, so the next response with the same
	// head can share it.
	lastVals []string
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

// Byte classes for the usual header name, in addLine's fast path: a
// token's letters by case, and its other bytes; 0 for anything else
// (':' included), which ends the name.
const (
	tokLower = 1 << iota
	tokUpper
	tokOther
)

var tokClass, tokMaskAfter = func() (t, after [256]uint8) {
	for c := range t {
		switch {
		case c >= 'a' && c <= 'z':
			t[c] = tokLower
		case c >= 'A' && c <= 'Z':
			t[c] = tokUpper
		case nameClass[c] == 0:
			t[c] = tokOther
		}
		// The case a letter must not have after c in a canonical name:
		// lower at a word's start (after '-'), upper inside a word.
		after[c] = tokUpper
	}
	after['-'] = tokLower
	return
}()

// beginFields resets the fields before the first line of a head.
func (h *respHeader) beginFields() {
	h.lastIsHead = false
	h.fields = h.fields[:0]
	h.nfields = 0
	h.clen = -1
	h.chunked, h.connClose, h.connKeepAlive = false, false, false
	h.accelBuffer = 0
	h.clField, h.teField = -1, -1
}

// endFields checks the fields as a whole, after the head's empty line.
func (h *respHeader) endFields() headerError {
	if h.clField >= 0 && h.teField >= 0 {
		return "upstream sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time"
	}
	if h.chunked {
		h.clen = -1
	}
	return ""
}

// addLine parses the header line b[p:end] (not empty; end excludes the
// line's LF and the CR before it). The usual line, a token name in
// canonical case, a colon and a value without CR or NUL, takes one pass
// over the name and one over the value; anything else goes to
// addLineStrict, which finds the exact error or the reason to ignore it.
func (h *respHeader) addLine(b []byte, p, end int) headerError {
	line := b[p:end]
	i := 0
	var wrongCase uint8
	mask := uint8(tokLower)
	for i < len(line) {
		c := line[i]
		t := tokClass[c]
		if t == 0 {
			break
		}
		wrongCase |= t & mask
		mask = tokMaskAfter[c]
		i++
	}
	if i == 0 || i == len(line) || line[i] != ':' {
		return h.addLineStrict(b, p, end)
	}
	colon := i
	vs, ve := colon+1, len(line)
	vs, ve = owsBounds(line, vs, ve)
	if hasCRorNUL(line[vs:ve]) {
		return h.addLineStrict(b, p, end)
	}
	if wrongCase != 0 {
		canonicalize(line[:colon])
	}
	return h.addField(b, p, end, colon, vs, ve)
}

// owsBounds narrows line[vs:ve] to exclude leading and trailing spaces
// and tabs (a field value's optional whitespace).
func owsBounds(line []byte, vs, ve int) (int, int) {
	for vs < ve && (line[vs] == ' ' || line[vs] == '\t') {
		vs++
	}
	for ve > vs && (line[ve-1] == ' ' || line[ve-1] == '\t') {
		ve--
	}
	return vs, ve
}

// hasCRorNUL reports whether v holds a CR or a NUL byte.
func hasCRorNUL(v []byte) bool {
	if len(v) > 32 {
		return bytes.IndexByte(v, '\r') >= 0 || bytes.IndexByte(v, 0) >= 0
	}
	for _, c := range v {
		if c <= '\r' && (c == '\r' || c == 0) {
			return true
		}
	}
	return false
}

// addLineStrict is addLine for any line: each rule checked in nginx's
// order, with nginx's error for the first one broken.
func (h *respHeader) addLineStrict(b []byte, p, end int) headerError {
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
		return "" // nginx ignores such lines (r->invalid_header)
	}
	vs, ve = owsBounds(line, vs, ve)
	canonicalize(line[:colon])
	return h.addField(b, p, end, colon, vs, ve)
}

// addField records the field of the line b[p:end]: name line[:colon],
// value line[vs:ve], noting what the proxy acts on.
func (h *respHeader) addField(b []byte, p, end, colon, vs, ve int) headerError {
	line := b[p:end]
	f := field{ks: int32(p), ke: int32(p + colon), vs: int32(p + vs), ve: int32(p + ve)}
	key, val := line[:colon], line[vs:ve]
	switch string(key) {
	case "Content-Length":
		if h.clField >= 0 {
			prev := h.fields[h.clField]
			return headerError("upstream sent duplicate header line: \"" + string(line) +
				"\", previous value: \"" + string(b[prev.ks:prev.ve]) + "\"")
		}
		n, ok := parseContentLength(val)
		if !ok {
			return headerError("upstream sent invalid \"Content-Length\" header: \"" + string(line) + "\"")
		}
		h.clen = n
		h.clField = int32(len(h.fields))
	case "Transfer-Encoding":
		if h.teField >= 0 {
			return headerError("upstream sent duplicate header line: \"" + string(line) + "\"")
		}
		if !bytes.EqualFold(val, []byte("chunked")) {
			return headerError("upstream sent unknown \"Transfer-Encoding\": \"" + string(val) + "\"")
		}
		h.chunked = true
		h.teField = int32(len(h.fields))
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
// of the whole head and one backing array for the value slices, unless
// the head equals the previous one (see last, lastVals), so a response
// costs at most two allocations plus the map's own. The strings are immutable, so sharing the
// head's string between responses is safe; the value slices are not
// shared, as a handler may append to them.
func (h *respHeader) copyTo(dst http.Header) {
	if h.nfields == 0 {
		return
	}
	blk := h.headString()
	// The same head into an empty map fills the same values in the same
	// order: the previous array serves again, unchanged.
	vals := h.lastVals
	fill := vals == nil || len(dst) != 0
	if fill {
		vals = make([]string, h.nfields)
		h.lastVals = nil
		if len(dst) == 0 {
			h.lastVals = vals
		}
	}
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
		if fill {
			vals[i] = v
		}
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
			h.lastVals = nil
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

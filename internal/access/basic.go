package access

import (
	"encoding/base64"
	"strings"
)

// RealmOff is the auth_basic value that disables authentication.
const RealmOff = "off"

// Challenge returns the WWW-Authenticate value for a 401: Basic realm="...".
//
// nginx pastes the realm between the quotes verbatim; we escape '"' and '\'
// as an RFC 7230 quoted-string requires and drop control characters, so a
// realm containing a quote cannot produce a broken or injected header. Realms
// without those characters come out byte-identical to nginx.
func Challenge(realm string) string {
	var b strings.Builder
	b.Grow(len(realm) + len(`Basic realm=""`))
	b.WriteString(`Basic realm="`)
	for i := 0; i < len(realm); i++ {
		c := realm[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 && c != '\t', c == 0x7f:
			// dropped
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// ParseAuthorization extracts Basic credentials from an Authorization header
// the way nginx does (ngx_http_auth_basic_user): the scheme is matched
// case-insensitively and must be followed by a space, extra spaces are
// skipped, base64 padding is optional (decoding stops at the first '='), and
// the decoded text must contain a ':' after a non-empty user name; the
// password may be empty. ok is false when no usable credentials are present,
// which nginx answers with 401 and a challenge.
func ParseAuthorization(header string) (user, password string, ok bool) {
	const scheme = "Basic "
	if len(header) < len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return "", "", false
	}
	enc := strings.TrimLeft(header[len(scheme):], " ")
	if i := strings.IndexByte(enc, '='); i >= 0 {
		enc = enc[:i]
	}
	// Go's decoder skips CR/LF inside the input; nginx treats them as
	// invalid characters, and so do we.
	if enc == "" || strings.ContainsAny(enc, "\r\n") {
		return "", "", false
	}
	raw, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	user, password, found := strings.Cut(string(raw), ":")
	if !found || user == "" {
		return "", "", false
	}
	return user, password, true
}

package access

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Supported password hash formats. nginx handles $apr1$, {PLAIN}, {SSHA} and
// {SHA} itself and hands everything else to the system crypt(3); of the libc
// formats we implement the ones htpasswd and "openssl passwd" produce today:
// bcrypt ($2a$/$2b$/$2y$, htpasswd -B) and MD5-crypt ($1$, openssl passwd -1).
// Traditional DES crypt (13 characters, htpasswd -d) and SHA-crypt ($5$/$6$)
// are not supported: such entries never match and are reported as
// ErrUnsupportedHash so the operator learns why a login fails.

const (
	prefixAPR1  = "$apr1$"
	prefixMD5   = "$1$"
	prefixPlain = "{PLAIN}"
	prefixSSHA  = "{SSHA}"
	prefixSHA   = "{SHA}"
)

// bcryptMaxPassword is where bcrypt stops reading the key; libxcrypt and
// Apache silently ignore the rest, while x/crypto refuses longer passwords at
// hashing time, so we truncate to keep accepting what nginx accepts.
const bcryptMaxPassword = 72

// verifyHash reports whether password matches the stored hash. supported is
// false when the hash format is not one we can check.
func verifyHash(hash, password string) (ok, supported bool) {
	switch {
	case strings.HasPrefix(hash, prefixAPR1):
		return equalStrings(md5Crypt(password, hash, prefixAPR1), hash), true
	case strings.HasPrefix(hash, prefixMD5):
		return equalStrings(md5Crypt(password, hash, prefixMD5), hash), true
	case strings.HasPrefix(hash, prefixPlain):
		return equalStrings(hash[len(prefixPlain):], password), true
	case strings.HasPrefix(hash, prefixSSHA):
		return verifySSHA(hash[len(prefixSSHA):], password), true
	case strings.HasPrefix(hash, prefixSHA):
		sum := sha1.Sum([]byte(password))
		return equalStrings(prefixSHA+base64.StdEncoding.EncodeToString(sum[:]), hash), true
	case isBcrypt(hash):
		pw := []byte(password)
		if len(pw) > bcryptMaxPassword {
			pw = pw[:bcryptMaxPassword]
		}
		// Malformed bcrypt strings (bad cost, short) also land here
		// as an error and simply do not match.
		return bcrypt.CompareHashAndPassword([]byte(hash), pw) == nil, true
	}
	return false, false
}

func isBcrypt(h string) bool {
	return strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$")
}

// equalStrings compares in constant time for equal lengths, so response time
// does not reveal how much of a guessed hash or plain password was right.
func equalStrings(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// verifySSHA checks RFC 2307 salted SHA-1: base64(sha1(password+salt)+salt).
// The salt is whatever follows the 20-byte digest; undecodable data is a
// mismatch rather than an error because one bad line must not break others.
func verifySSHA(encoded, password string) bool {
	raw, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil || len(raw) < sha1.Size {
		return false
	}
	digest, salt := raw[:sha1.Size], raw[sha1.Size:]
	h := sha1.New()
	h.Write([]byte(password))
	h.Write(salt)
	return subtle.ConstantTimeCompare(h.Sum(nil), digest) == 1
}

// crypt64 is the alphabet of crypt(3)'s base-64 encoding (not RFC 4648).
const crypt64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// md5Crypt computes Poul-Henning Kamp's MD5-based crypt, which Apache uses
// with the magic "$apr1$" and glibc with "$1$"; only the magic differs. The
// salt is read from setting (which may be a full stored hash): up to 8 bytes
// after the magic, ending early at '$'. The result is magic+salt+"$"+digest.
func md5Crypt(password, setting, magic string) string {
	salt := strings.TrimPrefix(setting, magic)
	if i := strings.IndexByte(salt, '$'); i >= 0 {
		salt = salt[:i]
	}
	if len(salt) > 8 {
		salt = salt[:8]
	}
	pw := []byte(password)

	// The "alternate" digest of password+salt+password is mixed into the
	// main one, one byte per password byte (repeating every 16).
	alt := md5.New()
	alt.Write(pw)
	alt.Write([]byte(salt))
	alt.Write(pw)
	altSum := alt.Sum(nil)

	main := md5.New()
	main.Write(pw)
	main.Write([]byte(magic))
	main.Write([]byte(salt))
	for n := len(pw); n > 0; n -= md5.Size {
		main.Write(altSum[:min(n, md5.Size)])
	}
	// Then, for each bit of the password length (low bit first), a zero
	// byte for a set bit and the first password byte for a clear one. This
	// quirk of the original C code (which wrote from a zeroed buffer) is
	// part of the format and must be kept.
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			main.Write([]byte{0})
		} else if len(pw) > 0 {
			main.Write(pw[:1])
		}
	}
	sum := main.Sum(nil)

	// 1000 rounds, deliberately slow, alternating inputs by round number.
	for i := 0; i < 1000; i++ {
		h := md5.New()
		if i&1 != 0 {
			h.Write(pw)
		} else {
			h.Write(sum)
		}
		if i%3 != 0 {
			h.Write([]byte(salt))
		}
		if i%7 != 0 {
			h.Write(pw)
		}
		if i&1 != 0 {
			h.Write(sum)
		} else {
			h.Write(pw)
		}
		sum = h.Sum(sum[:0])
	}

	// The 16 digest bytes are emitted in a fixed permuted order, three at a
	// time as four characters, the last byte alone as two.
	var b strings.Builder
	b.WriteString(magic)
	b.WriteString(salt)
	b.WriteByte('$')
	for _, g := range [5][3]int{{0, 6, 12}, {1, 7, 13}, {2, 8, 14}, {3, 9, 15}, {4, 10, 5}} {
		writeCrypt64(&b, uint32(sum[g[0]])<<16|uint32(sum[g[1]])<<8|uint32(sum[g[2]]), 4)
	}
	writeCrypt64(&b, uint32(sum[11]), 2)
	return b.String()
}

// writeCrypt64 emits n characters of v, least significant six bits first.
func writeCrypt64(b *strings.Builder, v uint32, n int) {
	for ; n > 0; n-- {
		b.WriteByte(crypt64[v&0x3f])
		v >>= 6
	}
}

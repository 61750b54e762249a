package ngxlua

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"hash/crc32"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

const upperHex = "0123456789ABCDEF"

// escapeURI implements ngx.escape_uri. Type 2 (default, URI component)
// keeps only ALPHA / DIGIT / "-" / "." / "_" / "~"; type 0 (URI) also
// keeps the characters nginx leaves alone in a path and escapes " ", "#",
// "%", "?", controls and bytes >= 0x7f.
func escapeURI(s string, typ int) string {
	keep := func(c byte) bool {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			return true
		}
		switch typ {
		case 0:
			return c > 0x20 && c < 0x7f && c != '#' && c != '%' && c != '?'
		default:
			return c == '-' || c == '.' || c == '_' || c == '~'
		}
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !keep(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if keep(c) {
			b = append(b, c)
		} else {
			b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return string(b)
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unescapeURI decodes %XX sequences (invalid ones are kept as is) and,
// with plus, "+" as a space (ngx.unescape_uri does both).
func unescapeURI(s string, plus bool) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s):
			h, ok1 := unhex(s[i+1])
			l, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, h<<4|l)
				i += 2
				continue
			}
			b = append(b, c)
		case c == '+' && plus:
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// quoteSQL implements ngx.quote_sql_str (MySQL escaping).
func quoteSQL(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			b.WriteString(`\0`)
		case '\b':
			b.WriteString(`\b`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case 26:
			b.WriteString(`\Z`)
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '"':
			b.WriteString(`\"`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// optString reads argument n as a string: nil becomes "", numbers are
// converted (as ngx_lua's luaL_checklstring-with-nil helpers do).
func optString(L *lua.LState, n int) string {
	switch x := L.Get(n).(type) {
	case *lua.LNilType:
		return ""
	case lua.LString:
		return string(x)
	case lua.LNumber:
		return numStr(x)
	default:
		L.ArgError(n, "string expected, got "+x.Type().String())
	}
	return ""
}

func (v *vm) addEncoding(ngx *lua.LTable) {
	L := v.L
	reg := func(name string, fn lua.LGFunction) { ngx.RawSetString(name, L.NewFunction(fn)) }
	str := func(fn func(string) string) lua.LGFunction {
		return func(L *lua.LState) int {
			L.Push(lua.LString(fn(optString(L, 1))))
			return 1
		}
	}
	reg("md5", str(func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }))
	reg("md5_bin", str(func(s string) string { h := md5.Sum([]byte(s)); return string(h[:]) }))
	reg("sha1_bin", str(func(s string) string { h := sha1.Sum([]byte(s)); return string(h[:]) }))
	reg("hmac_sha1", func(L *lua.LState) int {
		m := hmac.New(sha1.New, []byte(optString(L, 1)))
		m.Write([]byte(optString(L, 2)))
		L.Push(lua.LString(m.Sum(nil)))
		return 1
	})
	crc := func(L *lua.LState) int {
		L.Push(lua.LNumber(crc32.ChecksumIEEE([]byte(optString(L, 1)))))
		return 1
	}
	reg("crc32_short", crc)
	reg("crc32_long", crc)
	reg("encode_base64", func(L *lua.LState) int {
		s := optString(L, 1)
		enc := base64.StdEncoding
		if L.GetTop() >= 2 {
			if _, ok := L.Get(2).(lua.LBool); !ok {
				L.ArgError(2, "boolean expected, got "+L.Get(2).Type().String())
			}
			if lua.LVAsBool(L.Get(2)) {
				enc = base64.RawStdEncoding
			}
		}
		L.Push(lua.LString(enc.EncodeToString([]byte(s))))
		return 1
	})
	reg("decode_base64", func(L *lua.LState) int {
		s := optString(L, 1)
		if _, ok := L.Get(1).(lua.LString); !ok && L.Get(1) != lua.LNil {
			if _, ok := L.Get(1).(lua.LNumber); !ok {
				L.ArgError(1, "string expected")
			}
		}
		// nginx accepts missing padding.
		d, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil || (len(s)%4 != 0 && strings.HasSuffix(s, "=")) {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LString(d))
		return 1
	})
	reg("escape_uri", func(L *lua.LState) int {
		s := optString(L, 1)
		typ := 2
		if L.GetTop() >= 2 {
			typ = L.CheckInt(2)
			if typ != 0 && typ != 2 {
				L.ArgError(2, "\"type\" 0-2 expected")
			}
		}
		L.Push(lua.LString(escapeURI(s, typ)))
		return 1
	})
	reg("unescape_uri", str(func(s string) string { return unescapeURI(s, true) }))
	reg("encode_args", func(L *lua.LState) int {
		L.Push(lua.LString(encodeArgs(L, L.CheckTable(1))))
		return 1
	})
	reg("decode_args", func(L *lua.LState) int {
		s := L.CheckString(1)
		max := optMaxArgs(L, 2)
		t, _ := decodeArgsTable(L, s, max)
		L.Push(t)
		return 1
	})
	reg("quote_sql_str", func(L *lua.LState) int {
		L.Push(lua.LString(quoteSQL(L.CheckString(1))))
		return 1
	})
}

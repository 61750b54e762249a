package ngxlua

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	lua "github.com/yuin/gopher-lua"
)

// cjson / cjson.safe (lua-cjson 2.1 as bundled with OpenResty). Object
// keys are emitted sorted (lua-cjson uses table order, which is
// unspecified), numbers with "%.14g", "/" is escaped as "\/" unless
// encode_escape_forward_slash(false).

type cjsonCfg struct {
	emptyAsObject  bool
	escapeSlash    bool
	encodeMaxDepth int
	decodeMaxDepth int
	precision      int
	sparseRatio    int
	sparseSafe     int
	sparseConvert  bool
	arrayMT        bool
	invalidNumbers bool
}

func defaultCjsonCfg() *cjsonCfg {
	return &cjsonCfg{emptyAsObject: true, escapeSlash: true, encodeMaxDepth: 1000, decodeMaxDepth: 1000,
		precision: 14, sparseRatio: 2, sparseSafe: 10}
}

type cjsonMod struct {
	v          *vm
	cfg        *cjsonCfg
	emptyArray *lua.LUserData
	arrayMT    *lua.LTable
	emptyMT    *lua.LTable
}

// cjson shared markers (identical across VMs so values moved via ngx.ctx
// keep meaning).
var cjsonEmptyArray = &lua.LUserData{Value: "cjson.empty_array"}

func (v *vm) cjsonModule(safe bool) *lua.LTable {
	if v.cjsonArrayMT == nil {
		v.cjsonArrayMT = v.L.CreateTable(0, 1)
		v.cjsonArrayMT.RawSetString("__name", lua.LString("cjson.array"))
		v.cjsonEmptyMT = v.L.CreateTable(0, 1)
		v.cjsonEmptyMT.RawSetString("__name", lua.LString("cjson.empty_array"))
	}
	m := &cjsonMod{v: v, cfg: defaultCjsonCfg(), emptyArray: cjsonEmptyArray, arrayMT: v.cjsonArrayMT, emptyMT: v.cjsonEmptyMT}
	return m.table(safe)
}

func (m *cjsonMod) table(safe bool) *lua.LTable {
	L := m.v.L
	t := L.CreateTable(0, 24)
	reg := func(name string, fn lua.LGFunction) { t.RawSetString(name, L.NewFunction(fn)) }
	t.RawSetString("null", nullUD)
	t.RawSetString("empty_array", m.emptyArray)
	t.RawSetString("array_mt", m.arrayMT)
	t.RawSetString("empty_array_mt", m.emptyMT)
	t.RawSetString("_NAME", lua.LString("cjson"))
	t.RawSetString("_VERSION", lua.LString("2.1.0.11"))
	reg("encode", func(L *lua.LState) int {
		if L.GetTop() != 1 {
			L.RaiseError("bad argument #1 to 'encode' (expected 1 argument)")
		}
		var b strings.Builder
		if err := m.encode(L, &b, L.Get(1), 0); err != "" {
			if safe {
				L.Push(lua.LNil)
				L.Push(lua.LString(err))
				return 2
			}
			L.RaiseError("%s", err)
		}
		L.Push(lua.LString(b.String()))
		return 1
	})
	reg("decode", func(L *lua.LState) int {
		if L.GetTop() != 1 {
			L.RaiseError("bad argument #1 to 'decode' (expected 1 argument)")
		}
		var s string
		switch x := L.Get(1).(type) {
		case lua.LString:
			s = string(x)
		case lua.LNumber:
			s = x.String()
		default:
			L.ArgError(1, "string expected, got "+x.Type().String())
		}
		d := &jsonDecoder{L: L, m: m, s: s}
		val, err := d.decodeAll()
		if err != "" {
			if safe {
				L.Push(lua.LNil)
				L.Push(lua.LString(err))
				return 2
			}
			L.RaiseError("%s", err)
		}
		L.Push(val)
		return 1
	})
	boolCfg := func(name string, p *bool) {
		reg(name, func(L *lua.LState) int {
			if L.GetTop() >= 1 {
				switch x := L.Get(1).(type) {
				case lua.LBool:
					*p = bool(x)
				case lua.LString:
					*p = x == "on" || x == "true"
				case lua.LNumber:
					*p = x != 0
				}
			}
			L.Push(lua.LBool(*p))
			return 1
		})
	}
	boolCfg("encode_empty_table_as_object", &m.cfg.emptyAsObject)
	boolCfg("encode_escape_forward_slash", &m.cfg.escapeSlash)
	boolCfg("decode_array_with_array_mt", &m.cfg.arrayMT)
	boolCfg("encode_invalid_numbers", &m.cfg.invalidNumbers)
	boolCfg("decode_invalid_numbers", new(bool))
	boolCfg("encode_keep_buffer", new(bool))
	intCfg := func(name string, p *int) {
		reg(name, func(L *lua.LState) int {
			if L.GetTop() >= 1 && L.Get(1) != lua.LNil {
				*p = L.CheckInt(1)
			}
			L.Push(lua.LNumber(*p))
			return 1
		})
	}
	intCfg("encode_max_depth", &m.cfg.encodeMaxDepth)
	intCfg("decode_max_depth", &m.cfg.decodeMaxDepth)
	intCfg("encode_number_precision", &m.cfg.precision)
	reg("encode_sparse_array", func(L *lua.LState) int {
		if L.GetTop() >= 1 && L.Get(1) != lua.LNil {
			m.cfg.sparseConvert = lua.LVAsBool(L.Get(1))
		}
		if L.GetTop() >= 2 && L.Get(2) != lua.LNil {
			m.cfg.sparseRatio = L.CheckInt(2)
		}
		if L.GetTop() >= 3 && L.Get(3) != lua.LNil {
			m.cfg.sparseSafe = L.CheckInt(3)
		}
		L.Push(lua.LBool(m.cfg.sparseConvert))
		L.Push(lua.LNumber(m.cfg.sparseRatio))
		L.Push(lua.LNumber(m.cfg.sparseSafe))
		return 3
	})
	reg("new", func(L *lua.LState) int {
		nm := &cjsonMod{v: m.v, cfg: defaultCjsonCfg(), emptyArray: m.emptyArray, arrayMT: m.arrayMT, emptyMT: m.emptyMT}
		L.Push(nm.table(safe))
		return 1
	})
	return t
}

func (m *cjsonMod) formatNumber(n float64) (string, string) {
	if math.IsNaN(n) || math.IsInf(n, 0) {
		if !m.cfg.invalidNumbers {
			return "", "Cannot serialise number: must not be NaN or Infinity"
		}
		switch {
		case math.IsNaN(n):
			return "nan", ""
		case n > 0:
			return "inf", ""
		default:
			return "-inf", ""
		}
	}
	if n == math.Trunc(n) && math.Abs(n) < 1e15 {
		return strconv.FormatInt(int64(n), 10), ""
	}
	return strconv.FormatFloat(n, 'g', m.cfg.precision, 64), ""
}

func (m *cjsonMod) encodeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '/':
			if m.cfg.escapeSlash {
				b.WriteString(`\/`)
			} else {
				b.WriteByte('/')
			}
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(b, `\u%04x`, c)
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}

func (m *cjsonMod) encode(L *lua.LState, b *strings.Builder, val lua.LValue, depth int) string {
	switch x := val.(type) {
	case *lua.LNilType:
		b.WriteString("null")
	case lua.LBool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case lua.LNumber:
		s, err := m.formatNumber(float64(x))
		if err != "" {
			return err
		}
		b.WriteString(s)
	case lua.LString:
		m.encodeString(b, string(x))
	case *lua.LUserData:
		if isNull(x) {
			b.WriteString("null")
			return ""
		}
		if x == m.emptyArray {
			b.WriteString("[]")
			return ""
		}
		return "Cannot serialise userdata: type not supported"
	case *lua.LTable:
		depth++
		if depth > m.cfg.encodeMaxDepth {
			return fmt.Sprintf("Cannot serialise, excessive nesting (%d)", depth)
		}
		return m.encodeTable(L, b, x, depth)
	default:
		return "Cannot serialise " + val.Type().String() + ": type not supported"
	}
	return ""
}

func (m *cjsonMod) encodeTable(L *lua.LState, b *strings.Builder, t *lua.LTable, depth int) string {
	// array detection
	max, items := 0, 0
	isArray := true
	var badKey lua.LValue
	t.ForEach(func(k, _ lua.LValue) {
		if !isArray {
			return
		}
		if n, ok := k.(lua.LNumber); ok && float64(n) >= 1 && float64(n) == math.Floor(float64(n)) {
			if int(n) > max {
				max = int(n)
			}
			items++
			return
		}
		isArray = false
		badKey = k
	})
	_ = badKey
	mt := t.Metatable
	if isArray && items == 0 {
		if mt == lua.LValue(m.arrayMT) || mt == lua.LValue(m.emptyMT) || !m.cfg.emptyAsObject {
			b.WriteString("[]")
			return ""
		}
		b.WriteString("{}")
		return ""
	}
	if isArray && max > items*m.cfg.sparseRatio && max > m.cfg.sparseSafe && m.cfg.sparseRatio > 0 {
		if !m.cfg.sparseConvert {
			return "Cannot serialise table: excessively sparse array"
		}
		isArray = false
	}
	if isArray {
		b.WriteByte('[')
		for i := 1; i <= max; i++ {
			if i > 1 {
				b.WriteByte(',')
			}
			if err := m.encode(L, b, t.RawGetInt(i), depth); err != "" {
				return err
			}
		}
		b.WriteByte(']')
		return ""
	}
	type kv struct {
		k string
		v lua.LValue
	}
	var kvs []kv
	var keyErr string
	t.ForEach(func(k, val lua.LValue) {
		switch kk := k.(type) {
		case lua.LString:
			kvs = append(kvs, kv{string(kk), val})
		case lua.LNumber:
			s, _ := m.formatNumber(float64(kk))
			kvs = append(kvs, kv{s, val})
		default:
			if keyErr == "" {
				keyErr = "Cannot serialise " + k.Type().String() + ": table key must be a number or string"
			}
		}
	})
	if keyErr != "" {
		return keyErr
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].k < kvs[j].k })
	b.WriteByte('{')
	for i, e := range kvs {
		if i > 0 {
			b.WriteByte(',')
		}
		m.encodeString(b, e.k)
		b.WriteByte(':')
		if err := m.encode(L, b, e.v, depth); err != "" {
			return err
		}
	}
	b.WriteByte('}')
	return ""
}

// ---- decoding ----------------------------------------------------------------

type jsonDecoder struct {
	L     *lua.LState
	m     *cjsonMod
	s     string
	i     int
	depth int
}

func (d *jsonDecoder) skipWS() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// tokenName names the token at the current position as lua-cjson does.
func (d *jsonDecoder) tokenName() string {
	if d.i >= len(d.s) {
		return "T_END"
	}
	switch c := d.s[d.i]; {
	case c == '{':
		return "T_OBJ_BEGIN"
	case c == '}':
		return "T_OBJ_END"
	case c == '[':
		return "T_ARR_BEGIN"
	case c == ']':
		return "T_ARR_END"
	case c == ':':
		return "T_COLON"
	case c == ',':
		return "T_COMMA"
	case c == '"':
		return "T_STRING"
	case c == '-' || (c >= '0' && c <= '9'):
		return "T_NUMBER"
	case strings.HasPrefix(d.s[d.i:], "true") || strings.HasPrefix(d.s[d.i:], "false"):
		return "T_BOOLEAN"
	case strings.HasPrefix(d.s[d.i:], "null"):
		return "T_NULL"
	}
	return "invalid token"
}

func (d *jsonDecoder) errf(expected string) string {
	return fmt.Sprintf("Expected %s but found %s at character %d", expected, d.tokenName(), d.i+1)
}

func (d *jsonDecoder) decodeAll() (lua.LValue, string) {
	d.skipWS()
	v, err := d.value()
	if err != "" {
		return nil, err
	}
	d.skipWS()
	if d.i < len(d.s) {
		return nil, d.errf("the end")
	}
	return v, ""
}

func (d *jsonDecoder) value() (lua.LValue, string) {
	if d.i >= len(d.s) {
		return nil, d.errf("value")
	}
	c := d.s[d.i]
	switch {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		s, err := d.str()
		if err != "" {
			return nil, err
		}
		return lua.LString(s), ""
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	case strings.HasPrefix(d.s[d.i:], "true"):
		d.i += 4
		return lua.LTrue, ""
	case strings.HasPrefix(d.s[d.i:], "false"):
		d.i += 5
		return lua.LFalse, ""
	case strings.HasPrefix(d.s[d.i:], "null"):
		d.i += 4
		return nullUD, ""
	}
	return nil, d.errf("value")
}

func (d *jsonDecoder) enter() string {
	d.depth++
	if d.depth > d.m.cfg.decodeMaxDepth {
		return fmt.Sprintf("Found too many nested data structures (%d) at character %d", d.depth, d.i+1)
	}
	return ""
}

func (d *jsonDecoder) object() (lua.LValue, string) {
	if err := d.enter(); err != "" {
		return nil, err
	}
	d.i++
	t := d.L.CreateTable(0, 4)
	d.skipWS()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		d.depth--
		return t, ""
	}
	for {
		d.skipWS()
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return nil, d.errf("object key string")
		}
		k, err := d.str()
		if err != "" {
			return nil, err
		}
		d.skipWS()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return nil, d.errf("colon")
		}
		d.i++
		d.skipWS()
		val, err := d.value()
		if err != "" {
			return nil, err
		}
		t.RawSetString(k, val)
		d.skipWS()
		if d.i < len(d.s) && d.s[d.i] == ',' {
			d.i++
			continue
		}
		if d.i < len(d.s) && d.s[d.i] == '}' {
			d.i++
			d.depth--
			return t, ""
		}
		return nil, d.errf("comma or object end")
	}
}

func (d *jsonDecoder) array() (lua.LValue, string) {
	if err := d.enter(); err != "" {
		return nil, err
	}
	d.i++
	t := d.L.CreateTable(4, 0)
	if d.m.cfg.arrayMT {
		t.Metatable = d.m.arrayMT
	}
	d.skipWS()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		d.depth--
		return t, ""
	}
	for n := 1; ; n++ {
		d.skipWS()
		val, err := d.value()
		if err != "" {
			return nil, err
		}
		t.RawSetInt(n, val)
		d.skipWS()
		if d.i < len(d.s) && d.s[d.i] == ',' {
			d.i++
			continue
		}
		if d.i < len(d.s) && d.s[d.i] == ']' {
			d.i++
			d.depth--
			return t, ""
		}
		return nil, d.errf("comma or array end")
	}
}

func (d *jsonDecoder) number() (lua.LValue, string) {
	start := d.i
	j := d.i
	if j < len(d.s) && d.s[j] == '-' {
		j++
	}
	for j < len(d.s) {
		c := d.s[j]
		if (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' {
			j++
			continue
		}
		break
	}
	f, err := strconv.ParseFloat(d.s[start:j], 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			d.i = j
			return lua.LNumber(f), ""
		}
		return nil, fmt.Sprintf("Expected value but found invalid number at character %d", start+1)
	}
	d.i = j
	return lua.LNumber(f), ""
}

func (d *jsonDecoder) str() (string, string) {
	start := d.i
	d.i++ // opening quote
	var b strings.Builder
	for {
		if d.i >= len(d.s) {
			d.i = start
			return "", fmt.Sprintf("Expected value but found unexpected end of string at character %d", len(d.s)+1)
		}
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			return b.String(), ""
		case c == '\\':
			if d.i+1 >= len(d.s) {
				return "", fmt.Sprintf("Expected value but found invalid escape code at character %d", start+1)
			}
			e := d.s[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return "", fmt.Sprintf("Expected value but found invalid unicode escape code at character %d", start+1)
				}
				if utf16.IsSurrogate(r) {
					if strings.HasPrefix(d.s[d.i:], `\u`) {
						d.i += 2
						r2, ok := d.hex4()
						if !ok {
							return "", fmt.Sprintf("Expected value but found invalid unicode escape code at character %d", start+1)
						}
						r = utf16.DecodeRune(r, r2)
					} else {
						return "", fmt.Sprintf("Expected value but found invalid unicode escape code at character %d", start+1)
					}
				}
				var buf [4]byte
				n := utf8.EncodeRune(buf[:], r)
				b.Write(buf[:n])
			default:
				return "", fmt.Sprintf("Expected value but found invalid escape code at character %d", start+1)
			}
		case c < 0x20:
			return "", fmt.Sprintf("Expected value but found invalid token at character %d", start+1)
		default:
			b.WriteByte(c)
			d.i++
		}
	}
}

func (d *jsonDecoder) hex4() (rune, bool) {
	if d.i+4 > len(d.s) {
		return 0, false
	}
	n, err := strconv.ParseUint(d.s[d.i:d.i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	d.i += 4
	return rune(n), true
}

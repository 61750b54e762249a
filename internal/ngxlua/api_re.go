package ngxlua

import (
	"regexp"
	"strconv"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"
)

// ngx.re on Go's regexp (RE2) instead of PCRE. Differences:
//
//   - Not supported (compile error → nil, err "failed to compile regex"):
//     backreferences (\1 in the pattern), lookahead/lookbehind ((?=, (?!,
//     (?<=, (?<!), atomic groups (?>), possessive quantifiers (a*+),
//     recursion, conditionals, \K, \R, \G, callouts.
//   - Supported: everything RE2 has, incl. (?<name>..) and (?P<name>..)
//     named captures, lazy quantifiers, \Q..\E, POSIX classes, \A, \z;
//     \h/\H are translated to [\t ]/[^\t ], \Z is treated as \z.
//   - Options: i, m, s, x (whitespace and #-comments stripped by us), u/U
//     (no-op: Go always matches UTF-8; without "u" PCRE matches bytes, so
//     "." matches one byte of a multi-byte character there but a whole
//     character here), a (anchored at the start position), j, o, d, D, J
//     are accepted and ignored (compiled patterns are always cached).
//   - "$" without "m" matches only at the very end (PCRE also before a
//     final "\n").
//   - ngx.re.match/find with ctx.pos > 1 match against the subject from
//     that byte on, so "^" and "\b" see that position as the start.
//   - Unmatched captures are false in capture tables, as in ngx_lua.

type reKey struct{ pat, opts string }

type compiledRe struct {
	re       *regexp.Regexp
	anchored bool
	names    []string
}

var (
	reCacheMu sync.RWMutex
	reCache   = make(map[reKey]*compiledRe)
)

const reCacheMax = 4096

func compileRe(pat, opts string) (*compiledRe, string) {
	k := reKey{pat, opts}
	reCacheMu.RLock()
	c := reCache[k]
	reCacheMu.RUnlock()
	if c != nil {
		return c, ""
	}
	var flags strings.Builder
	anchored, extended := false, false
	for _, o := range opts {
		switch o {
		case 'i':
			flags.WriteByte('i')
		case 'm':
			flags.WriteByte('m')
		case 's':
			flags.WriteByte('s')
		case 'x':
			extended = true
		case 'a':
			anchored = true
		case 'u', 'U', 'j', 'o', 'd', 'D', 'J':
		default:
			return nil, "unknown flag \"" + string(o) + "\" (flags \"" + opts + "\")"
		}
	}
	src := translatePCRE(pat, extended)
	if anchored {
		src = `\A(?:` + src + `)`
	}
	if flags.Len() > 0 {
		src = "(?" + flags.String() + ")" + src
	}
	re, err := regexp.Compile(src)
	if err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "error parsing regexp: ")
		return nil, "failed to compile regex \"" + pat + "\": " + msg
	}
	c = &compiledRe{re: re, anchored: anchored, names: re.SubexpNames()}
	reCacheMu.Lock()
	if len(reCache) >= reCacheMax {
		reCache = make(map[reKey]*compiledRe)
	}
	reCache[k] = c
	reCacheMu.Unlock()
	return c, ""
}

// translatePCRE rewrites the few PCRE constructs RE2 spells differently.
func translatePCRE(p string, extended bool) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			n := p[i+1]
			switch n {
			case 'h':
				if inClass {
					b.WriteString(`\t `)
				} else {
					b.WriteString(`[\t ]`)
				}
			case 'H':
				b.WriteString(`[^\t ]`)
			case 'Z':
				b.WriteString(`\z`)
			case 'e':
				b.WriteString(`\x1b`)
			default:
				b.WriteByte(c)
				b.WriteByte(n)
			}
			i++
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte(c)
			// a leading ']' (or '^]') is literal
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
			if i+1 < len(p) && p[i+1] == ']' {
				b.WriteString(`\]`)
				i++
			}
		case c == '[' && inClass && i+1 < len(p) && p[i+1] == ':':
			// POSIX class [:alpha:]
			end := strings.Index(p[i:], ":]")
			if end > 0 {
				b.WriteString(p[i : i+end+2])
				i += end + 1
			} else {
				b.WriteByte(c)
			}
		case c == ']' && inClass:
			inClass = false
			b.WriteByte(c)
		case extended && !inClass && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'):
		case extended && !inClass && c == '#':
			for i < len(p) && p[i] != '\n' {
				i++
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (v *vm) newRe() *lua.LTable {
	L := v.L
	t := L.CreateTable(0, 6)
	reg := func(name string, fn lua.LGFunction) { t.RawSetString(name, L.NewFunction(fn)) }
	reg("match", func(L *lua.LState) int { return v.reMatch(L, false) })
	reg("find", func(L *lua.LState) int { return v.reMatch(L, true) })
	reg("gmatch", v.reGmatch)
	reg("sub", func(L *lua.LState) int { return v.reSub(L, false) })
	reg("gsub", func(L *lua.LState) int { return v.reSub(L, true) })
	reg("opt", func(L *lua.LState) int { return 0 })
	reg("split", v.reSplit)
	return t
}

func reArgs(L *lua.LState) (subject string, c *compiledRe, errs string) {
	subject = optString(L, 1)
	pat := L.CheckString(2)
	opts := ""
	if o := L.Get(3); o != lua.LNil {
		opts = L.CheckString(3)
	}
	c, errs = compileRe(pat, opts)
	raiseFlagError(L, errs)
	return
}

// raiseFlagError raises bad option errors: lua-resty-core raises them,
// while patterns that don't compile give nil, err.
func raiseFlagError(L *lua.LState, errs string) {
	if strings.HasPrefix(errs, "unknown flag") {
		L.RaiseError("%s", errs)
	}
}

// capturesTable builds ngx_lua's captures table for match m (indices into
// s, already offset).
func capturesTable(L *lua.LState, c *compiledRe, s string, m []int, res *lua.LTable) *lua.LTable {
	n := len(m) / 2
	t := res
	if t == nil {
		t = L.CreateTable(n-1, 0)
	}
	for i := 0; i < n; i++ {
		var val lua.LValue = lua.LFalse
		if m[2*i] >= 0 {
			val = lua.LString(s[m[2*i]:m[2*i+1]])
		}
		t.RawSetInt(i, val)
		if i > 0 && c.names[i] != "" {
			t.RawSetString(c.names[i], val)
		}
	}
	return t
}

func (v *vm) reMatch(L *lua.LState, find bool) int {
	s, c, errs := reArgs(L)
	if errs != "" {
		L.Push(lua.LNil)
		if find {
			L.Push(lua.LNil)
		}
		L.Push(lua.LString(errs))
		if find {
			return 3
		}
		return 2
	}
	pos := 0
	ctx, _ := L.Get(4).(*lua.LTable)
	if ctx != nil {
		if p, ok := ctx.RawGetString("pos").(lua.LNumber); ok && p > 0 {
			pos = int(p) - 1
		}
	}
	if pos > len(s) {
		L.Push(lua.LNil)
		return 1
	}
	m := c.re.FindStringSubmatchIndex(s[pos:])
	if m == nil {
		L.Push(lua.LNil)
		return 1
	}
	if pos > 0 {
		for i := range m {
			if m[i] >= 0 {
				m[i] += pos
			}
		}
	}
	if ctx != nil {
		ctx.RawSetString("pos", lua.LNumber(m[1]+1))
	}
	if find {
		nth := 0
		if L.GetTop() >= 5 && L.Get(5) != lua.LNil {
			nth = L.CheckInt(5)
		}
		if nth < 0 || 2*nth+1 >= len(m) {
			L.Push(lua.LNil)
			L.Push(lua.LNil)
			L.Push(lua.LString("nth out of bound"))
			return 3
		}
		if m[2*nth] < 0 {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LNumber(m[2*nth] + 1))
		L.Push(lua.LNumber(m[2*nth+1]))
		return 2
	}
	res, _ := L.Get(5).(*lua.LTable)
	L.Push(capturesTable(L, c, s, m, res))
	return 1
}

func (v *vm) reGmatch(L *lua.LState) int {
	s, c, errs := reArgs(L)
	if errs != "" {
		L.Push(lua.LNil)
		L.Push(lua.LString(errs))
		return 2
	}
	var all [][]int
	computed := false
	idx := 0
	L.Push(L.NewFunction(func(L *lua.LState) int {
		if !computed {
			all = findAll(c, s)
			computed = true
		}
		if idx >= len(all) {
			L.Push(lua.LNil)
			return 1
		}
		m := all[idx]
		idx++
		L.Push(capturesTable(L, c, s, m, nil))
		return 1
	}))
	return 1
}

// findAll returns all non-overlapping matches; with the "a" option each
// match must start where the previous one ended.
func findAll(c *compiledRe, s string) [][]int {
	if !c.anchored {
		return c.re.FindAllStringSubmatchIndex(s, -1)
	}
	var out [][]int
	pos := 0
	for pos <= len(s) {
		m := c.re.FindStringSubmatchIndex(s[pos:])
		if m == nil {
			break
		}
		for i := range m {
			if m[i] >= 0 {
				m[i] += pos
			}
		}
		out = append(out, m)
		if m[1] == m[0] {
			break
		}
		pos = m[1]
	}
	return out
}

// replacement template segments: literal text or capture reference
type tmplPart struct {
	lit string
	ref int // -1 for literal
}

func parseTemplate(t string, ncap int, names []string) ([]tmplPart, string) {
	var parts []tmplPart
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, tmplPart{lit: lit.String(), ref: -1})
			lit.Reset()
		}
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c != '$' {
			lit.WriteByte(c)
			continue
		}
		if i+1 >= len(t) {
			return nil, "invalid capturing variable name"
		}
		n := t[i+1]
		switch {
		case n == '$':
			lit.WriteByte('$')
			i++
		case n >= '0' && n <= '9':
			j := i + 1
			for j < len(t) && t[j] >= '0' && t[j] <= '9' {
				j++
			}
			idx, _ := strconv.Atoi(t[i+1 : j])
			flush()
			parts = append(parts, tmplPart{ref: idx})
			i = j - 1
		case n == '{':
			end := strings.IndexByte(t[i+2:], '}')
			if end < 0 {
				return nil, "invalid capturing variable name"
			}
			name := t[i+2 : i+2+end]
			idx, err := strconv.Atoi(name)
			if err != nil {
				idx = -1
				for k, nm := range names {
					if nm == name && k > 0 {
						idx = k
						break
					}
				}
				if idx < 0 {
					return nil, "invalid capturing variable name"
				}
			}
			flush()
			parts = append(parts, tmplPart{ref: idx})
			i += 2 + end
		default:
			return nil, "invalid capturing variable name"
		}
	}
	flush()
	return parts, ""
}

func (v *vm) reSub(L *lua.LState, global bool) int {
	s, c, errs := reArgs3(L)
	fail := func(msg string) int {
		L.Push(lua.LNil)
		L.Push(lua.LNil)
		L.Push(lua.LString(msg))
		return 3
	}
	if errs != "" {
		return fail(errs)
	}
	repl := L.Get(3)
	var tmpl []tmplPart
	var fn *lua.LFunction
	switch r := repl.(type) {
	case lua.LString:
		var terr string
		tmpl, terr = parseTemplate(string(r), c.re.NumSubexp(), c.names)
		if terr != "" {
			return fail("failed to compile the replacement template")
		}
	case lua.LNumber:
		tmpl = []tmplPart{{lit: numStr(r), ref: -1}}
	case *lua.LFunction:
		fn = r
	default:
		L.ArgError(3, "string, number, or function expected, got "+repl.Type().String())
	}
	var matches [][]int
	if global {
		matches = findAll(c, s)
	} else if m := c.re.FindStringSubmatchIndex(s); m != nil {
		matches = [][]int{m}
	}
	if len(matches) == 0 {
		L.Push(lua.LString(s))
		L.Push(lua.LNumber(0))
		return 2
	}
	var b strings.Builder
	last := 0
	for _, m := range matches {
		b.WriteString(s[last:m[0]])
		if fn != nil {
			L.Push(fn)
			L.Push(capturesTable(L, c, s, m, nil))
			L.Call(1, 1)
			r := L.Get(-1)
			L.Pop(1)
			switch x := r.(type) {
			case lua.LString:
				b.WriteString(string(x))
			case lua.LNumber:
				b.WriteString(numStr(x))
			case *lua.LNilType:
			default:
				L.RaiseError("attempt to use %s as a replacement", r.Type().String())
			}
		} else {
			for _, p := range tmpl {
				if p.ref < 0 {
					b.WriteString(p.lit)
				} else if 2*p.ref+1 < len(m) && m[2*p.ref] >= 0 {
					b.WriteString(s[m[2*p.ref]:m[2*p.ref+1]])
				}
			}
		}
		last = m[1]
	}
	b.WriteString(s[last:])
	L.Push(lua.LString(b.String()))
	L.Push(lua.LNumber(len(matches)))
	return 2
}

// reArgs3 is reArgs for sub/gsub (options are argument 4).
func reArgs3(L *lua.LState) (string, *compiledRe, string) {
	subject := optString(L, 1)
	pat := L.CheckString(2)
	opts := ""
	if o := L.Get(4); o != lua.LNil {
		opts = L.CheckString(4)
	}
	c, errs := compileRe(pat, opts)
	raiseFlagError(L, errs)
	return subject, c, errs
}

// reSplit implements ngx.re.split(subject, regex, options?, ctx?, max?, res?)
// from lua-resty-core's ngx.re module.
func (v *vm) reSplit(L *lua.LState) int {
	s, c, errs := reArgs(L)
	if errs != "" {
		L.Push(lua.LNil)
		L.Push(lua.LString(errs))
		return 2
	}
	max := 0
	if L.GetTop() >= 5 && L.Get(5) != lua.LNil {
		max = L.CheckInt(5)
	}
	res, _ := L.Get(6).(*lua.LTable)
	if res == nil {
		res = L.CreateTable(4, 0)
	}
	ms := c.re.FindAllStringSubmatchIndex(s, -1)
	last := 0
	n := 0
	for _, m := range ms {
		if max > 0 && n >= max-1 {
			break
		}
		if m[1] == m[0] && (m[0] == 0 || m[0] == len(s)) {
			continue
		}
		n++
		res.RawSetInt(n, lua.LString(s[last:m[0]]))
		for i := 1; i < len(m)/2; i++ {
			if m[2*i] >= 0 {
				n++
				res.RawSetInt(n, lua.LString(s[m[2*i]:m[2*i+1]]))
			}
		}
		last = m[1]
	}
	if last < len(s) || n == 0 {
		n++
		res.RawSetInt(n, lua.LString(s[last:]))
	}
	L.Push(res)
	return 1
}

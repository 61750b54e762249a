package ngxlua

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	lua "github.com/yuin/gopher-lua"
)

// Internal is optionally implemented by a Request to answer
// ngx.req.is_internal().
type Internal interface{ IsInternal() bool }

func (v *vm) newReq() *lua.LTable {
	L := v.L
	t := L.CreateTable(0, 24)
	reg := func(name string, fn lua.LGFunction) { t.RawSetString(name, L.NewFunction(fn)) }

	v.hdrMeta = L.CreateTable(0, 1)
	v.hdrMeta.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		tb := L.CheckTable(1)
		k, ok := L.Get(2).(lua.LString)
		if !ok {
			L.Push(lua.LNil)
			return 1
		}
		norm := strings.ToLower(strings.ReplaceAll(string(k), "_", "-"))
		if norm == string(k) {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(tb.RawGetString(norm))
		return 1
	}))

	reg("get_method", func(L *lua.LState) int {
		v.check(L, mRequest)
		L.Push(lua.LString(v.request(L).Method()))
		return 1
	})
	reg("set_method", func(L *lua.LState) int {
		v.check(L, mSet|mRAC)
		id := L.CheckInt(1)
		m, ok := methodByID[id]
		if !ok {
			L.RaiseError("unsupported HTTP method: %d", id)
		}
		v.request(L).SetMethod(m)
		return 0
	})
	reg("http_version", func(L *lua.LState) int {
		v.check(L, mRequest)
		L.Push(lua.LNumber(v.request(L).HTTPVersion()))
		return 1
	})
	reg("start_time", func(L *lua.LState) int {
		v.check(L, mRequest)
		t := v.request(L).StartTime()
		L.Push(lua.LNumber(float64(t.UnixMilli()) / 1000))
		return 1
	})
	reg("is_internal", func(L *lua.LState) int {
		v.check(L, mRequest)
		in, ok := v.request(L).(Internal)
		L.Push(lua.LBool(ok && in.IsInternal()))
		return 1
	})
	reg("get_uri_args", func(L *lua.LState) int {
		v.check(L, mRequest)
		max := optMaxArgs(L, 1)
		tbl, trunc := decodeArgsTable(L, v.request(L).Args(), max)
		L.Push(tbl)
		if trunc {
			L.Push(lua.LString("truncated"))
			return 2
		}
		return 1
	})
	reg("set_uri_args", func(L *lua.LState) int {
		v.check(L, mSet|mRAC)
		req := v.request(L)
		switch a := L.Get(1).(type) {
		case lua.LString:
			req.SetArgs(string(a))
		case lua.LNumber:
			req.SetArgs(numStr(a))
		case *lua.LTable:
			req.SetArgs(encodeArgs(L, a))
		default:
			L.ArgError(1, "string, number, or table expected, but got "+a.Type().String())
		}
		return 0
	})
	reg("set_uri", func(L *lua.LState) int {
		v.check(L, mSet|mRAC)
		req := v.request(L)
		uri := L.CheckString(1)
		if uri == "" {
			L.RaiseError("attempt to use zero-length uri")
		}
		jump := lua.LVAsBool(L.Get(2))
		if jump && v.phase != PhaseRewrite {
			L.RaiseError("attempt to call ngx.req.set_uri to do location jump in contexts other than rewrite_by_lua and rewrite_by_lua_file")
		}
		req.SetURI(uri)
		if jump {
			v.out.Exited = true
			v.out.Action = ActionRematch
			v.exit(L)
		}
		return 0
	})
	reg("get_headers", func(L *lua.LState) int {
		v.check(L, mRequest)
		max := optMaxArgs(L, 1)
		raw := lua.LVAsBool(L.Get(2))
		t, trunc := v.headerTable(L, v.request(L).Header(), max, raw)
		L.Push(t)
		if trunc {
			L.Push(lua.LString("truncated"))
			return 2
		}
		return 1
	})
	reg("set_header", func(L *lua.LState) int {
		v.check(L, mSet|mRAC)
		req := v.request(L)
		name := L.CheckString(1)
		if name == "" {
			L.ArgError(1, "invalid header name")
		}
		key := http.CanonicalHeaderKey(name)
		h := req.Header()
		switch x := L.Get(2).(type) {
		case *lua.LNilType:
			h.Del(key)
		case lua.LString:
			h[key] = []string{escapeHeaderValue(string(x))}
		case lua.LNumber:
			h[key] = []string{numStr(x)}
		case *lua.LTable:
			var vals []string
			for i := 1; i <= x.Len(); i++ {
				vals = append(vals, escapeHeaderValue(lua.LVAsString(x.RawGetInt(i))))
			}
			if len(vals) == 0 {
				h.Del(key)
			} else {
				h[key] = vals
			}
		default:
			L.ArgError(2, "string, number, table or nil expected, got "+x.Type().String())
		}
		return 0
	})
	reg("clear_header", func(L *lua.LState) int {
		v.check(L, mSet|mRAC)
		v.request(L).Header().Del(http.CanonicalHeaderKey(L.CheckString(1)))
		return 0
	})
	reg("read_body", func(L *lua.LState) int {
		v.check(L, mRAC)
		v.readBody(L)
		return 0
	})
	reg("discard_body", func(L *lua.LState) int {
		v.check(L, mRAC)
		return 0
	})
	reg("get_body_data", func(L *lua.LState) int {
		v.check(L, mRAC|mLog)
		v.request(L)
		if v.st == nil || !v.st.bodyRead || len(v.st.body) == 0 {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LString(v.st.body))
		return 1
	})
	reg("get_body_file", func(L *lua.LState) int {
		v.check(L, mRAC)
		L.Push(lua.LNil)
		return 1
	})
	reg("get_post_args", func(L *lua.LState) int {
		v.check(L, mRAC|mLog)
		v.request(L)
		max := optMaxArgs(L, 1)
		if v.st == nil || !v.st.bodyRead {
			L.RaiseError("no request body found; maybe you should turn on lua_need_request_body?")
		}
		tbl, trunc := decodeArgsTable(L, string(v.st.body), max)
		L.Push(tbl)
		if trunc {
			L.Push(lua.LString("truncated"))
			return 2
		}
		return 1
	})
	return t
}

func (v *vm) readBody(L *lua.LState) {
	req := v.request(L)
	if v.st != nil && v.st.bodyRead {
		return
	}
	body, err := req.ReadBody()
	if err != nil {
		L.RaiseError("failed to read request body: %s", err.Error())
	}
	if v.st != nil {
		v.st.bodyRead = true
		v.st.body = body
	}
}

func optMaxArgs(L *lua.LState, n int) int {
	if L.GetTop() < n || L.Get(n) == lua.LNil {
		return 100
	}
	m := L.CheckInt(n)
	if m < 0 {
		return 0
	}
	return m
}

// appendArg sets t[k] = v, turning repeated keys into arrays.
func appendArg(L *lua.LState, t *lua.LTable, k string, val lua.LValue) {
	switch old := t.RawGetString(k).(type) {
	case *lua.LNilType:
		t.RawSetString(k, val)
	case *lua.LTable:
		old.Append(val)
	default:
		nt := L.CreateTable(2, 0)
		nt.Append(old)
		nt.Append(val)
		t.RawSetString(k, nt)
	}
}

// decodeArgsTable parses a query string as ngx.req.get_uri_args does:
// "+" is a space, %XX is unescaped, a key without "=" is true, repeated
// keys become arrays, empty keys are skipped. max <= 0 means unlimited.
func decodeArgsTable(L *lua.LState, s string, max int) (*lua.LTable, bool) {
	t := L.CreateTable(0, 4)
	count := 0
	for len(s) > 0 {
		var part string
		if i := strings.IndexByte(s, '&'); i >= 0 {
			part, s = s[:i], s[i+1:]
		} else {
			part, s = s, ""
		}
		if part == "" {
			continue
		}
		if max > 0 && count >= max {
			return t, true
		}
		var key string
		var val lua.LValue
		if i := strings.IndexByte(part, '='); i >= 0 {
			key = unescapeURI(part[:i], true)
			val = lua.LString(unescapeURI(part[i+1:], true))
		} else {
			key = unescapeURI(part, true)
			val = lua.LTrue
		}
		if key == "" {
			continue
		}
		count++
		appendArg(L, t, key, val)
	}
	return t, false
}

// encodeArgs implements ngx.encode_args (keys sorted for determinism).
func encodeArgs(L *lua.LState, t *lua.LTable) string {
	type kv struct {
		k string
		v lua.LValue
	}
	var items []kv
	t.ForEach(func(k, val lua.LValue) {
		var ks string
		switch x := k.(type) {
		case lua.LString:
			ks = string(x)
		case lua.LNumber:
			ks = numStr(x)
		default:
			L.ArgError(1, "bad argument #1 to 'encode_args' (string, number, or table expected)")
		}
		items = append(items, kv{ks, val})
	})
	sort.Slice(items, func(i, j int) bool { return items[i].k < items[j].k })
	var b strings.Builder
	add := func(k string, val lua.LValue) {
		switch x := val.(type) {
		case lua.LBool:
			if !x {
				return
			}
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(escapeURI(k, 2))
		case lua.LString, lua.LNumber:
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(escapeURI(k, 2))
			b.WriteByte('=')
			b.WriteString(escapeURI(luaStr(x), 2))
		default:
			L.RaiseError("attempt to use %s as query arg value", val.Type().String())
		}
	}
	for _, it := range items {
		if sub, ok := it.v.(*lua.LTable); ok {
			for i := 1; i <= sub.Len(); i++ {
				add(it.k, sub.RawGetInt(i))
			}
			continue
		}
		add(it.k, it.v)
	}
	return b.String()
}

// ---- ngx.location ------------------------------------------------------------

type captureReq struct {
	method, uri, args string
	body              []byte
	header            http.Header
}

type captureRes struct {
	status    int
	header    http.Header
	body      []byte
	truncated bool
}

func (v *vm) newLocation() *lua.LTable {
	L := v.L
	t := L.CreateTable(0, 2)
	t.RawSetString("capture", L.NewFunction(func(L *lua.LState) int {
		v.check(L, mRAC)
		req := v.request(L)
		cr := v.parseCapture(L, L.CheckString(1), L.Get(2), 2)
		res := doCapture(req, cr)
		L.Push(v.captureTable(L, res))
		return 1
	}))
	t.RawSetString("capture_multi", L.NewFunction(func(L *lua.LState) int {
		v.check(L, mRAC)
		req := v.request(L)
		list := L.CheckTable(1)
		n := list.Len()
		if n == 0 {
			L.RaiseError("at least one subrequest should be specified")
		}
		crs := make([]captureReq, n)
		for i := 1; i <= n; i++ {
			item, ok := list.RawGetInt(i).(*lua.LTable)
			if !ok {
				L.RaiseError("only array-like tables are allowed")
			}
			uri, ok := item.RawGetInt(1).(lua.LString)
			if !ok {
				L.RaiseError("the 1st element of the subrequest spec must be a string")
			}
			crs[i-1] = v.parseCapture(L, string(uri), item.RawGetInt(2), 2)
		}
		ress := make([]captureRes, n)
		var wg sync.WaitGroup
		for i := range crs {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				ress[i] = doCapture(req, crs[i])
			}(i)
		}
		wg.Wait()
		for _, r := range ress {
			L.Push(v.captureTable(L, r))
		}
		return n
	}))
	return t
}

func (v *vm) parseCapture(L *lua.LState, uri string, opts lua.LValue, arg int) captureReq {
	req := v.request(L)
	if uri == "" {
		L.RaiseError("attempt to use zero-length uri")
	}
	cr := captureReq{method: "GET", uri: uri}
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		cr.uri, cr.args = uri[:i], uri[i+1:]
	}
	forward := false
	var body []byte
	hasBody := false
	if ot, ok := opts.(*lua.LTable); ok {
		if m := ot.RawGetString("method"); m != lua.LNil {
			n, ok := m.(lua.LNumber)
			if !ok {
				L.RaiseError("Bad http request method")
			}
			name, ok := methodByID[int(n)]
			if !ok {
				L.RaiseError("unsupported HTTP method: %d", int(n))
			}
			cr.method = name
		}
		switch a := ot.RawGetString("args").(type) {
		case *lua.LNilType:
		case lua.LString:
			cr.args = joinArgs(cr.args, string(a))
		case lua.LNumber:
			cr.args = joinArgs(cr.args, numStr(a))
		case *lua.LTable:
			cr.args = joinArgs(cr.args, encodeArgs(L, a))
		default:
			L.RaiseError("Bad args option value")
		}
		switch b := ot.RawGetString("body").(type) {
		case *lua.LNilType:
		case lua.LString:
			body, hasBody = []byte(b), true
		case lua.LNumber:
			body, hasBody = []byte(numStr(b)), true
		default:
			L.RaiseError("Bad http request body")
		}
		forward = lua.LVAsBool(ot.RawGetString("always_forward_body"))
	} else if opts != lua.LNil {
		L.ArgError(arg, "table expected")
	}
	if !hasBody && v.st != nil && v.st.bodyRead && (forward || cr.method == "POST" || cr.method == "PUT") {
		body = v.st.body
	}
	cr.body = body
	cr.header = req.Header().Clone()
	if hasBody || body != nil {
		cr.header.Set("Content-Length", strconv.Itoa(len(body)))
	} else {
		cr.header.Del("Content-Length")
	}
	return cr
}

func joinArgs(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "&" + b
}

func doCapture(req Request, cr captureReq) captureRes {
	status, hdr, body, err := req.Capture(cr.method, cr.uri, cr.args, cr.body, cr.header)
	res := captureRes{status: status, header: hdr, body: body}
	if err != nil {
		if status == 0 {
			res.status = 500
		} else {
			res.truncated = true
		}
	}
	return res
}

func (v *vm) captureTable(L *lua.LState, r captureRes) *lua.LTable {
	t := L.CreateTable(0, 4)
	t.RawSetString("status", lua.LNumber(r.status))
	h := L.CreateTable(0, len(r.header))
	for k, vals := range r.header {
		switch len(vals) {
		case 0:
		case 1:
			h.RawSetString(k, lua.LString(vals[0]))
		default:
			vt := L.CreateTable(len(vals), 0)
			for _, s := range vals {
				vt.Append(lua.LString(s))
			}
			h.RawSetString(k, vt)
		}
	}
	t.RawSetString("header", h)
	t.RawSetString("body", lua.LString(r.body))
	t.RawSetString("truncated", lua.LBool(r.truncated))
	return t
}

func luaStr(v lua.LValue) string {
	if n, ok := v.(lua.LNumber); ok {
		return numStr(n)
	}
	return lua.LVAsString(v)
}

package ngxlua

import (
	"net/http"
	"sort"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// BodySetter is optionally implemented by a Request to support
// ngx.req.set_body_data (replaces the request body for the upstream).
type BodySetter interface{ SetBody(body []byte) }

// addExtra adds ngx.req.raw_header, ngx.req.set_body_data, ngx.on_abort
// and the ngx.resp table (require "ngx.resp").
func (v *vm) addExtra(ngx *lua.LTable) {
	L := v.L
	req := ngx.RawGetString("req").(*lua.LTable)
	req.RawSetString("raw_header", L.NewFunction(func(L *lua.LState) int {
		v.check(L, mRequest)
		r := v.request(L)
		noReqLine := lua.LVAsBool(L.Get(1))
		var b strings.Builder
		if !noReqLine {
			proto := "HTTP/" + strconv.FormatFloat(r.HTTPVersion(), 'f', 1, 64)
			if r.HTTPVersion() >= 2 {
				proto = "HTTP/2.0"
			}
			b.WriteString(r.Method() + " " + r.RequestURI() + " " + proto + "\r\n")
		}
		h := r.Header()
		keys := make([]string, 0, len(h))
		for k := range h {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, val := range h[k] {
				b.WriteString(k + ": " + val + "\r\n")
			}
		}
		b.WriteString("\r\n")
		L.Push(lua.LString(b.String()))
		return 1
	}))
	req.RawSetString("set_body_data", L.NewFunction(func(L *lua.LState) int {
		v.check(L, mRAC)
		r := v.request(L)
		data := L.CheckString(1)
		bs, ok := r.(BodySetter)
		if !ok {
			L.RaiseError("request body setting is not supported")
		}
		if v.st != nil && !v.st.bodyRead {
			L.RaiseError("request body not read yet")
		}
		bs.SetBody([]byte(data))
		if v.st != nil {
			v.st.body = []byte(data)
		}
		r.Header().Set("Content-Length", strconv.Itoa(len(data)))
		return 0
	}))
	ngx.RawSetString("on_abort", L.NewFunction(func(L *lua.LState) int {
		v.check(L, mRAC)
		L.CheckFunction(1)
		L.Push(lua.LNil)
		L.Push(lua.LString("lua_check_client_abort is off"))
		return 2
	}))

	resp := L.CreateTable(0, 2)
	resp.RawSetString("get_headers", L.NewFunction(func(L *lua.LState) int {
		v.check(L, mRequest)
		max := optMaxArgs(L, 1)
		raw := lua.LVAsBool(L.Get(2))
		h := v.request(L).ResponseHeader()
		t, trunc := v.headerTable(L, h, max, raw)
		L.Push(t)
		if trunc {
			L.Push(lua.LString("truncated"))
			return 2
		}
		return 1
	}))
	resp.RawSetString("add_header", L.NewFunction(func(L *lua.LState) int {
		v.check(L, mRACHeadBody)
		r := v.request(L)
		name := L.CheckString(1)
		if r.HeadersSent() {
			L.RaiseError("attempt to set ngx.header.HEADER after sending out response headers")
		}
		key := normHeaderKey(name)
		switch x := L.Get(2).(type) {
		case lua.LString:
			r.ResponseHeader().Add(key, escapeHeaderValue(string(x)))
		case lua.LNumber:
			r.ResponseHeader().Add(key, numStr(x))
		case *lua.LTable:
			for i := 1; i <= x.Len(); i++ {
				r.ResponseHeader().Add(key, escapeHeaderValue(luaStr(x.RawGetInt(i))))
			}
		default:
			L.ArgError(2, "string, number, or table expected")
		}
		return 0
	}))
	ngx.RawSetString("resp", resp)
	L.PreloadModule("ngx.resp", func(L *lua.LState) int {
		L.Push(resp)
		return 1
	})
}

// headerTable converts headers as ngx.req.get_headers does.
func (v *vm) headerTable(L *lua.LState, h http.Header, max int, raw bool) (*lua.LTable, bool) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t := L.CreateTable(0, len(keys))
	count := 0
	for _, k := range keys {
		name := k
		if !raw {
			name = strings.ToLower(k)
		}
		for _, val := range h[k] {
			if max > 0 && count >= max {
				if !raw {
					t.Metatable = v.hdrMeta
				}
				return t, true
			}
			count++
			appendArg(L, t, name, lua.LString(val))
		}
	}
	if !raw {
		t.Metatable = v.hdrMeta
	}
	return t, false
}

package ngxlua

import (
	"net/http"
	"os"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"upstreamd/internal/errlog"
)

const (
	ngxOK       = 0
	ngxERROR    = -1
	ngxAGAIN    = -2
	ngxDONE     = -4
	ngxDECLINED = -5
)

var ngxConstants = map[string]int{
	"OK": ngxOK, "ERROR": ngxERROR, "AGAIN": ngxAGAIN, "DONE": ngxDONE, "DECLINED": ngxDECLINED,

	"HTTP_GET": 2, "HTTP_HEAD": 4, "HTTP_POST": 8, "HTTP_PUT": 16, "HTTP_DELETE": 32,
	"HTTP_MKCOL": 64, "HTTP_COPY": 128, "HTTP_MOVE": 256, "HTTP_OPTIONS": 512,
	"HTTP_PROPFIND": 1024, "HTTP_PROPPATCH": 2048, "HTTP_LOCK": 4096, "HTTP_UNLOCK": 8192,
	"HTTP_PATCH": 16384, "HTTP_TRACE": 32768,

	"HTTP_CONTINUE": 100, "HTTP_SWITCHING_PROTOCOLS": 101,
	"HTTP_OK": 200, "HTTP_CREATED": 201, "HTTP_ACCEPTED": 202, "HTTP_NO_CONTENT": 204,
	"HTTP_PARTIAL_CONTENT": 206, "HTTP_SPECIAL_RESPONSE": 300,
	"HTTP_MOVED_PERMANENTLY": 301, "HTTP_MOVED_TEMPORARILY": 302, "HTTP_SEE_OTHER": 303,
	"HTTP_NOT_MODIFIED": 304, "HTTP_TEMPORARY_REDIRECT": 307, "HTTP_PERMANENT_REDIRECT": 308,
	"HTTP_BAD_REQUEST": 400, "HTTP_UNAUTHORIZED": 401, "HTTP_PAYMENT_REQUIRED": 402,
	"HTTP_FORBIDDEN": 403, "HTTP_NOT_FOUND": 404, "HTTP_NOT_ALLOWED": 405,
	"HTTP_NOT_ACCEPTABLE": 406, "HTTP_REQUEST_TIMEOUT": 408, "HTTP_CONFLICT": 409,
	"HTTP_GONE": 410, "HTTP_UPGRADE_REQUIRED": 426, "HTTP_TOO_MANY_REQUESTS": 429,
	"HTTP_CLOSE": 444, "HTTP_ILLEGAL": 451, "HTTP_INTERNAL_SERVER_ERROR": 500,
	"HTTP_METHOD_NOT_IMPLEMENTED": 501, "HTTP_BAD_GATEWAY": 502,
	"HTTP_SERVICE_UNAVAILABLE": 503, "HTTP_GATEWAY_TIMEOUT": 504,
	"HTTP_VERSION_NOT_SUPPORTED": 505, "HTTP_INSUFFICIENT_STORAGE": 507,

	"STDERR": int(errlog.Stderr), "EMERG": int(errlog.Emerg), "ALERT": int(errlog.Alert),
	"CRIT": int(errlog.Crit), "ERR": int(errlog.Error), "WARN": int(errlog.Warn),
	"NOTICE": int(errlog.Notice), "INFO": int(errlog.Info), "DEBUG": int(errlog.Debug),
}

var methodByID = map[int]string{
	2: "GET", 4: "HEAD", 8: "POST", 16: "PUT", 32: "DELETE", 64: "MKCOL", 128: "COPY",
	256: "MOVE", 512: "OPTIONS", 1024: "PROPFIND", 2048: "PROPPATCH", 4096: "LOCK",
	8192: "UNLOCK", 16384: "PATCH", 32768: "TRACE",
}

// EOFer is optionally implemented by a Request: ngx.eof calls EOF to end
// the response body right away (Lua code may go on running afterwards).
// Without it the body is ended when the handler returns (ActionFinish).
type EOFer interface{ EOF() error }

// Subrequester is optionally implemented by a Request that can be a
// subrequest (ngx.is_subrequest).
type Subrequester interface{ IsSubrequest() bool }

// newNgx builds this VM's ngx table.
func (v *vm) newNgx() *lua.LTable {
	L := v.L
	ngx := L.CreateTable(0, 128)
	for k, n := range ngxConstants {
		ngx.RawSetString(k, lua.LNumber(n))
	}
	ngx.RawSetString("null", nullUD)
	reg := func(t *lua.LTable, name string, fn lua.LGFunction) {
		t.RawSetString(name, L.NewFunction(fn))
	}
	reg(ngx, "say", func(L *lua.LState) int { return v.output(L, "say", true) })
	reg(ngx, "print", func(L *lua.LState) int { return v.output(L, "print", false) })
	reg(ngx, "log", v.ngxLog)
	reg(ngx, "exit", v.ngxExit)
	reg(ngx, "flush", v.ngxFlush)
	reg(ngx, "eof", v.ngxEOF)
	reg(ngx, "redirect", v.ngxRedirect)
	reg(ngx, "exec", v.ngxExec)
	reg(ngx, "get_phase", func(L *lua.LState) int {
		L.Push(lua.LString(v.phase.String()))
		return 1
	})
	reg(ngx, "send_headers", func(L *lua.LState) int {
		v.check(L, mRAC)
		req := v.request(L)
		if !req.HeadersSent() {
			if err := req.Write(nil); err != nil {
				L.Push(lua.LNil)
				L.Push(lua.LString(err.Error()))
				return 2
			}
		}
		L.Push(lua.LNumber(1))
		return 1
	})

	// ngx.var
	varT := L.CreateTable(0, 0)
	varMeta := L.CreateTable(0, 2)
	reg(varMeta, "__index", v.varIndex)
	reg(varMeta, "__newindex", v.varNewIndex)
	varT.Metatable = varMeta
	ngx.RawSetString("var", varT)

	// ngx.header
	hdrT := L.CreateTable(0, 0)
	hdrMeta := L.CreateTable(0, 2)
	reg(hdrMeta, "__index", v.headerIndex)
	reg(hdrMeta, "__newindex", v.headerNewIndex)
	hdrT.Metatable = hdrMeta
	ngx.RawSetString("header", hdrT)

	// ngx.arg (body_filter_by_lua)
	argT := L.CreateTable(0, 0)
	argMeta := L.CreateTable(0, 2)
	reg(argMeta, "__index", v.argIndex)
	reg(argMeta, "__newindex", v.argNewIndex)
	argT.Metatable = argMeta
	ngx.RawSetString("arg", argT)

	// dynamic fields: ngx.status, ngx.ctx, ngx.headers_sent, ngx.is_subrequest
	meta := L.CreateTable(0, 2)
	reg(meta, "__index", v.ngxIndex)
	reg(meta, "__newindex", v.ngxNewIndex)
	ngx.Metatable = meta

	// ngx.config, ngx.worker
	cfg := L.CreateTable(0, 8)
	cfg.RawSetString("subsystem", lua.LString("http"))
	cfg.RawSetString("debug", lua.LFalse)
	cfg.RawSetString("nginx_version", lua.LNumber(1027001))
	cfg.RawSetString("ngx_lua_version", lua.LNumber(10027))
	cfg.RawSetString("is_console", lua.LFalse)
	reg(cfg, "prefix", func(L *lua.LState) int {
		p := v.e.opts.Prefix
		if p != "" && !strings.HasSuffix(p, "/") {
			p += "/"
		}
		L.Push(lua.LString(p))
		return 1
	})
	reg(cfg, "nginx_configure", func(L *lua.LState) int {
		L.Push(lua.LString(""))
		return 1
	})
	ngx.RawSetString("config", cfg)

	worker := L.CreateTable(0, 6)
	reg(worker, "id", func(L *lua.LState) int {
		if v.phase == PhaseInit {
			L.Push(lua.LNil)
		} else {
			L.Push(lua.LNumber(0))
		}
		return 1
	})
	reg(worker, "count", func(L *lua.LState) int { L.Push(lua.LNumber(1)); return 1 })
	reg(worker, "pid", func(L *lua.LState) int { L.Push(lua.LNumber(os.Getpid())); return 1 })
	reg(worker, "exiting", func(L *lua.LState) int { L.Push(lua.LBool(v.e.exiting.Load())); return 1 })
	ngx.RawSetString("worker", worker)

	ngx.RawSetString("req", v.newReq())
	ngx.RawSetString("location", v.newLocation())
	ngx.RawSetString("shared", v.newShared())
	ngx.RawSetString("timer", v.newTimer())
	ngx.RawSetString("re", v.newRe())
	v.addTime(ngx)
	v.addEncoding(ngx)
	ngx.RawSetString("socket", v.newSocket())
	v.addExtra(ngx)
	return ngx
}

func (v *vm) ngxIndex(L *lua.LState) int {
	key := L.CheckString(2)
	switch key {
	case "status":
		req := v.request(L)
		L.Push(lua.LNumber(req.Status()))
		return 1
	case "ctx":
		L.Push(v.ctx(L))
		return 1
	case "headers_sent":
		req := v.request(L)
		L.Push(lua.LBool(req.HeadersSent()))
		return 1
	case "is_subrequest":
		req := v.request(L)
		sr, ok := req.(Subrequester)
		L.Push(lua.LBool(ok && sr.IsSubrequest()))
		return 1
	}
	L.Push(lua.LNil)
	return 1
}

func (v *vm) ngxNewIndex(L *lua.LState) int {
	key := L.CheckString(2)
	val := L.Get(3)
	switch key {
	case "status":
		v.check(L, mRACHeadBody|mLog)
		req := v.request(L)
		if req.HeadersSent() {
			v.logMsg(errlog.Error, "attempt to set ngx.status after sending out response headers")
			return 0
		}
		var n int
		switch x := val.(type) {
		case lua.LNumber:
			n = int(x)
		case lua.LString:
			i, err := strconv.Atoi(string(x))
			if err != nil {
				L.RaiseError("bad argument to 'ngx.status' (number expected, got string)")
			}
			n = i
		default:
			L.RaiseError("bad argument to 'ngx.status' (number expected, got %s)", val.Type().String())
		}
		req.SetStatus(n)
		return 0
	case "ctx":
		t, ok := val.(*lua.LTable)
		if !ok {
			L.RaiseError("bad argument #1 to 'ngx.ctx' (table expected, got %s)", val.Type().String())
		}
		if v.st != nil {
			v.st.ctx = t
		} else {
			v.timerCtx = t
		}
		return 0
	}
	L.RawSet(L.CheckTable(1), lua.LString(key), val)
	return 0
}

func (v *vm) ctx(L *lua.LState) *lua.LTable {
	if v.st != nil {
		if v.st.ctx == nil {
			v.st.ctx = L.CreateTable(0, 4)
		}
		return v.st.ctx
	}
	if v.phase == PhaseInit {
		L.RaiseError("API disabled in the context of %s", v.phase.directive())
	}
	if v.timerCtx == nil {
		v.timerCtx = L.CreateTable(0, 4)
	}
	return v.timerCtx
}

// ---- output ----------------------------------------------------------------

func (v *vm) output(L *lua.LState, name string, nl bool) int {
	v.check(L, mRAC)
	req := v.request(L)
	if v.st != nil && v.st.eof {
		L.Push(lua.LNil)
		L.Push(lua.LString("seen eof"))
		return 2
	}
	buf := v.buf[:0]
	top := L.GetTop()
	for i := 1; i <= top; i++ {
		buf = v.appendPrintArg(L, buf, L.Get(i), i, name, 0)
	}
	if nl {
		buf = append(buf, '\n')
	}
	v.buf = buf
	if err := req.Write(buf); err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(lua.LNumber(1))
	return 1
}

func (v *vm) appendPrintArg(L *lua.LState, buf []byte, val lua.LValue, arg int, name string, depth int) []byte {
	switch x := val.(type) {
	case lua.LString:
		return append(buf, x...)
	case lua.LNumber:
		return strconv.AppendFloat(buf, float64(x), 'g', 14, 64)
	case lua.LBool:
		if x {
			return append(buf, "true"...)
		}
		return append(buf, "false"...)
	case *lua.LNilType:
		return append(buf, "nil"...)
	case *lua.LTable:
		n := 0
		bad := false
		x.ForEach(func(k, _ lua.LValue) {
			if kn, ok := k.(lua.LNumber); ok && kn >= 1 && float64(kn) == float64(int(kn)) {
				n++
			} else {
				bad = true
			}
		})
		if bad {
			L.ArgError(arg, "non-array table found")
		}
		if depth > 100 {
			L.ArgError(arg, "nested table too deep")
		}
		for i := 1; i <= n; i++ {
			buf = v.appendPrintArg(L, buf, x.RawGetInt(i), arg, name, depth+1)
		}
		return buf
	case *lua.LUserData:
		if isNull(x) {
			return append(buf, "null"...)
		}
	}
	L.ArgError(arg, "string, number, boolean, nil, ngx.null, or array table expected, got "+val.Type().String())
	return buf
}

func (v *vm) ngxFlush(L *lua.LState) int {
	v.check(L, mRAC)
	req := v.request(L)
	if v.st != nil && v.st.eof {
		L.Push(lua.LNil)
		L.Push(lua.LString("seen eof"))
		return 2
	}
	if err := req.Flush(); err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(lua.LNumber(1))
	return 1
}

func (v *vm) ngxEOF(L *lua.LState) int {
	v.check(L, mRAC)
	req := v.request(L)
	if L.GetTop() != 0 {
		L.RaiseError("no argument is expected")
	}
	if v.st != nil && v.st.eof {
		L.Push(lua.LNil)
		L.Push(lua.LString("seen eof"))
		return 2
	}
	if v.st != nil {
		v.st.eof = true
	}
	var err error
	if e, ok := req.(EOFer); ok {
		err = e.EOF()
	} else if !req.HeadersSent() {
		err = req.Write(nil)
	}
	if err == nil {
		err = req.Flush()
	}
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(lua.LNumber(1))
	return 1
}

func (v *vm) ngxExit(L *lua.LState) int {
	// ngx_lua allows ngx.exit in rewrite, access, content, header_filter
	// and timers only.
	v.check(L, mRAC|mHeader|mTimer)
	code := L.CheckInt(1)
	if v.req != nil && v.phase != PhaseHeaderFilter && code >= 300 && code != 408 && code != 444 && code != 499 &&
		v.req.HeadersSent() && code != v.req.Status() {
		v.logMsg(errlog.Error, "attempt to set status "+strconv.Itoa(code)+" via ngx.exit after sending out the response status "+strconv.Itoa(v.req.Status()))
	}
	if (v.phase == PhaseHeaderFilter || v.phase == PhaseBodyFilter) && code != ngxERROR && code != ngxOK && v.req != nil && !v.req.HeadersSent() && code >= 200 {
		v.req.SetStatus(code)
	}
	v.out.Exited = true
	v.out.ExitCode = code
	v.exit(L)
	return 0
}

func (v *vm) ngxRedirect(L *lua.LState) int {
	v.check(L, mRAC)
	req := v.request(L)
	uri := L.CheckString(1)
	status := 302
	if L.GetTop() >= 2 {
		status = L.CheckInt(2)
	}
	switch status {
	case 301, 302, 303, 307, 308:
	default:
		L.RaiseError("only ngx.HTTP_MOVED_TEMPORARILY, ngx.HTTP_MOVED_PERMANENTLY, ngx.HTTP_PERMANENT_REDIRECT, ngx.HTTP_SEE_OTHER, and ngx.HTTP_TEMPORARY_REDIRECT are allowed")
	}
	if req.HeadersSent() {
		L.RaiseError("attempt to call ngx.redirect after sending out the headers")
	}
	req.ResponseHeader().Set("Location", escapeHeaderValue(uri))
	req.SetStatus(status)
	v.out.Exited = true
	v.out.ExitCode = status
	v.exit(L)
	return 0
}

func (v *vm) ngxExec(L *lua.LState) int {
	if n := L.GetTop(); n != 1 && n != 2 {
		L.RaiseError("expecting one or two arguments, but got %d", n)
	}
	v.check(L, mRAC)
	req := v.request(L)
	uri := L.CheckString(1)
	if uri == "" {
		L.RaiseError("The uri argument is empty")
	}
	var args string
	switch a := L.Get(2).(type) {
	case *lua.LNilType:
	case lua.LString:
		args = string(a)
	case lua.LNumber:
		args = numStr(a)
	case *lua.LTable:
		args = encodeArgs(L, a)
	default:
		L.ArgError(2, "string, number, or table expected, but got "+a.Type().String())
	}
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		uargs := uri[i+1:]
		uri = uri[:i]
		if args != "" && uargs != "" {
			args = uargs + "&" + args
		} else if uargs != "" {
			args = uargs
		}
	}
	if req.HeadersSent() {
		L.RaiseError("attempt to call ngx.exec after sending out response headers")
	}
	v.out.Exited = true
	v.out.Action = ActionExec
	v.out.ExecURI = uri
	v.out.ExecArgs = args
	v.exit(L)
	return 0
}

// ---- logging ---------------------------------------------------------------

func (v *vm) ngxLog(L *lua.LState) int {
	lv := L.CheckInt(1)
	if lv < int(errlog.Stderr) || lv > int(errlog.Debug) {
		L.ArgError(1, "bad log level: "+strconv.Itoa(lv))
	}
	return v.logImpl(L, errlog.Level(lv), 2)
}

// logImpl implements ngx.log and print: "[lua] SRC:LINE: [FUNC(): ]MSG".
func (v *vm) logImpl(L *lua.LState, level errlog.Level, first int) int {
	if v.replay {
		return 0
	}
	if v.req == nil && !v.e.log.Enabled(level) {
		return 0
	}
	var b strings.Builder
	b.WriteString("[lua] ")
	for lvl := 1; ; lvl++ {
		dbg, ok := L.GetStack(lvl)
		if !ok {
			break
		}
		if _, err := L.GetInfo("nSl", dbg, lua.LNil); err != nil {
			break
		}
		if dbg.What == "G" {
			continue
		}
		// ngx_lua logs the base name of a file chunk's path.
		src := dbg.Source
		if i := strings.LastIndexAny(src, `/\`); i >= 0 {
			src = src[i+1:]
		}
		b.WriteString(src)
		b.WriteByte(':')
		line := dbg.CurrentLine
		if line <= 0 {
			line = dbg.LineDefined
		}
		b.WriteString(strconv.Itoa(line))
		b.WriteString(": ")
		if n := dbg.Name; n != "" && n != "main chunk" && n != "corountine" && n[0] != '<' && n[0] != '(' {
			b.WriteString(n)
			b.WriteString("(): ")
		}
		break
	}
	top := L.GetTop()
	for i := first; i <= top; i++ {
		switch x := L.Get(i).(type) {
		case lua.LString:
			b.WriteString(string(x))
		case lua.LNumber:
			b.WriteString(numStr(x))
		case lua.LBool:
			if x {
				b.WriteString("true")
			} else {
				b.WriteString("false")
			}
		case *lua.LNilType:
			b.WriteString("nil")
		case *lua.LTable:
			if mf := L.GetMetaField(x, "__tostring"); mf != lua.LNil {
				b.WriteString(L.ToStringMeta(x).String())
			} else {
				L.ArgError(i, "expected table to have __tostring metamethod")
			}
		case *lua.LUserData:
			if isNull(x) {
				b.WriteString("null")
				continue
			}
			L.ArgError(i, "string, number, boolean, or nil expected, got userdata")
		default:
			L.ArgError(i, "string, number, boolean, or nil expected, got "+x.Type().String())
		}
	}
	v.logMsg(level, b.String())
	return 0
}

// ---- ngx.var ---------------------------------------------------------------

func (v *vm) varIndex(L *lua.LState) int {
	req := v.request(L)
	var name string
	switch k := L.Get(2).(type) {
	case lua.LString:
		name = string(k)
	case lua.LNumber:
		name = numStr(k)
	default:
		L.RaiseError("bad variable name")
	}
	val, ok := req.Var(strings.ToLower(name))
	if !ok {
		L.Push(lua.LNil)
		return 1
	}
	L.Push(lua.LString(val))
	return 1
}

func (v *vm) varNewIndex(L *lua.LState) int {
	req := v.request(L)
	name := strings.ToLower(L.CheckString(2))
	var val string
	switch x := L.Get(3).(type) {
	case lua.LString:
		val = string(x)
	case lua.LNumber:
		val = numStr(x)
	case *lua.LNilType:
	default:
		L.RaiseError("bad variable value")
	}
	if err := req.SetVar(name, val); err != nil {
		L.RaiseError("%s", err.Error())
	}
	return 0
}

// ---- ngx.header ------------------------------------------------------------

func normHeaderKey(k string) string {
	return http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))
}

func (v *vm) headerIndex(L *lua.LState) int {
	req := v.request(L)
	key := normHeaderKey(L.CheckString(2))
	vals := req.ResponseHeader()[key]
	switch len(vals) {
	case 0:
		L.Push(lua.LNil)
	case 1:
		L.Push(lua.LString(vals[0]))
	default:
		t := L.CreateTable(len(vals), 0)
		for _, s := range vals {
			t.Append(lua.LString(s))
		}
		L.Push(t)
	}
	return 1
}

func escapeHeaderValue(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	s = strings.ReplaceAll(s, "\r", "%0D")
	return strings.ReplaceAll(s, "\n", "%0A")
}

func (v *vm) headerNewIndex(L *lua.LState) int {
	v.check(L, mRACHeadBody)
	req := v.request(L)
	raw := L.CheckString(2)
	key := normHeaderKey(raw)
	if req.HeadersSent() {
		v.logMsg(errlog.Error, "attempt to set ngx.header.HEADER after sending out response headers")
		return 0
	}
	h := req.ResponseHeader()
	switch x := L.Get(3).(type) {
	case *lua.LNilType:
		h.Del(key)
	case lua.LString:
		h[key] = []string{escapeHeaderValue(string(x))}
	case lua.LNumber:
		h[key] = []string{numStr(x)}
	case *lua.LTable:
		n := x.Len()
		if n == 0 {
			h.Del(key)
			return 0
		}
		vals := make([]string, 0, n)
		for i := 1; i <= n; i++ {
			switch e := x.RawGetInt(i).(type) {
			case lua.LString:
				vals = append(vals, escapeHeaderValue(string(e)))
			case lua.LNumber:
				vals = append(vals, numStr(e))
			default:
				L.RaiseError("attempt to set header %s with invalid value type %s", raw, e.Type().String())
			}
		}
		h[key] = vals
	default:
		L.RaiseError("attempt to set header %s with invalid value type %s", raw, x.Type().String())
	}
	return 0
}

// ---- ngx.arg ---------------------------------------------------------------

func (v *vm) argIndex(L *lua.LState) int {
	if v.phase == PhaseSet {
		n := L.CheckInt(2)
		if n >= 1 && n <= len(v.setArgs) {
			L.Push(lua.LString(v.setArgs[n-1]))
		} else {
			L.Push(lua.LNil)
		}
		return 1
	}
	if v.phase != PhaseBodyFilter {
		L.Push(lua.LNil)
		return 1
	}
	switch L.CheckInt(2) {
	case 1:
		L.Push(v.argChunk)
	case 2:
		L.Push(lua.LBool(v.argEOF))
	default:
		L.Push(lua.LNil)
	}
	return 1
}

func (v *vm) argNewIndex(L *lua.LState) int {
	if v.phase != PhaseBodyFilter {
		L.RaiseError("API disabled in the context of %s", v.phase.directive())
	}
	switch L.CheckInt(2) {
	case 1:
		switch x := L.Get(3).(type) {
		case *lua.LNilType:
			v.argChunk = ""
		case lua.LString:
			v.argChunk = x
		case lua.LNumber:
			v.argChunk = lua.LString(numStr(x))
		case *lua.LTable:
			v.argChunk = lua.LString(v.appendPrintArg(L, nil, x, 3, "ngx.arg", 0))
		default:
			L.RaiseError("bad chunk data type: %s", x.Type().String())
		}
	case 2:
		v.argEOF = lua.LVAsBool(L.Get(3))
	default:
		L.RaiseError("bad index: %d", L.CheckInt(2))
	}
	return 0
}

// numStr formats a Lua number as LuaJIT's tostring does ("%.14g").
func numStr(n lua.LNumber) string {
	return strconv.FormatFloat(float64(n), 'g', 14, 64)
}

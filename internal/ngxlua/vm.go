package ngxlua

import (
	"errors"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"upstreamd/internal/errlog"
)

// vm is one pooled Lua state with its ngx API bound to "the current
// request" (fields below), set by bind for the duration of one run.
type vm struct {
	e       *Engine
	L       *lua.LState
	ngx     *lua.LTable
	envMeta *lua.LTable // {__index = _G} for per-run globals tables
	exitUD  *lua.LUserData

	// current binding
	req      Request
	st       *RequestState
	phase    Phase
	out      Outcome
	replay   bool
	timer    bool // running a timer callback
	argChunk lua.LString
	argEOF   bool
	setArgs  []string // set_by_lua arguments (ngx.arg[n])
	buf      []byte
	timerCtx *lua.LTable // ngx.ctx outside requests (timers)
	// fns holds, per handler, a function whose globals table is still
	// empty after its last run, for reuse (see recycle).
	fns     map[*Handler]*lua.LFunction
	hdrMeta *lua.LTable // metatable of ngx.req.get_headers() results

	cjsonArrayMT, cjsonEmptyMT *lua.LTable

	// pool/timer bookkeeping, guarded by e.poolMu
	inUse         bool
	noCache       bool // lua_code_cache off for the run that created it: never pooled
	waiting       []*timerJob
	pendingTimers int
}

// nullUD is ngx.null / cjson.null: one light-userdata-like sentinel shared
// by all VMs (never mutated, so sharing is safe).
var nullUD = &lua.LUserData{Value: nil}

func init() {
	// tostring(ngx.null) == "userdata: NULL" as in ngx_lua.
	mt := &lua.LTable{}
	mt.RawSetString("__tostring", &lua.LFunction{IsG: true, Env: &lua.LTable{}, GFunction: func(L *lua.LState) int {
		L.Push(lua.LString("userdata: NULL"))
		return 1
	}})
	nullUD.Metatable = mt
}

func isNull(v lua.LValue) bool { return v == lua.LValue(nullUD) }

func newVMNoInit(e *Engine) (*vm, error) {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:        true,
		CallStackSize:       200,
		RegistrySize:        256,
		RegistryMaxSize:     1024 * 256,
		RegistryGrowStep:    128,
		MinimizeStackMemory: true,
	})
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
		{lua.OsLibName, lua.OpenOs},
		{lua.IoLibName, lua.OpenIo},
		{lua.CoroutineLibName, lua.OpenCoroutine},
		{lua.DebugLibName, lua.OpenDebug},
	} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	v := &vm{e: e, L: L, exitUD: L.NewUserData()}
	v.envMeta = L.NewTable()
	v.envMeta.RawSetString("__index", L.G.Global)
	v.setupPackage()
	v.setupBase()
	v.ngx = v.newNgx()
	L.SetGlobal("ngx", v.ngx)
	v.setupModules()
	return v, nil
}

// newVM creates a VM and replays init_by_lua code in it.
func newVM(e *Engine) (*vm, error) {
	v, err := newVMNoInit(e)
	if err != nil {
		return nil, err
	}
	e.initMu.Lock()
	inits := e.inits
	e.initMu.Unlock()
	for _, h := range inits {
		if err := v.runGlobal(h, PhaseInit, false); err != nil {
			e.log.Log(errlog.Error, 0, err.Error())
		}
	}
	return v, nil
}

func (v *vm) setupPackage() {
	L := v.L
	pkg := L.GetGlobal("package").(*lua.LTable)
	path := v.e.opts.PackagePath
	if path == "" {
		prefix := v.e.opts.Prefix
		if prefix != "" {
			prefix = strings.TrimSuffix(prefix, "/") + "/"
			path = prefix + "?.lua;" + prefix + "?/init.lua;"
		}
		path += "./?.lua;./?/init.lua;" + lua.LuaPathDefault
	}
	pkg.RawSetString("path", lua.LString(path))
	pkg.RawSetString("cpath", lua.LString(v.e.opts.PackageCPath))
}

// setupBase replaces print and the protected-call functions so that
// ngx.exit / ngx.exec (implemented as a special error) can't be caught.
func (v *vm) setupBase() {
	L := v.L
	L.SetGlobal("print", L.NewFunction(func(L *lua.LState) int {
		return v.logImpl(L, errlog.Notice, 1)
	}))
	// os.exit would terminate the whole server (nginx: one worker).
	if osT, ok := L.GetGlobal("os").(*lua.LTable); ok {
		osT.RawSetString("exit", L.NewFunction(func(L *lua.LState) int {
			L.RaiseError("os.exit is disabled")
			return 0
		}))
	}
	L.SetGlobal("pcall", L.NewFunction(v.pcall))
	L.SetGlobal("xpcall", L.NewFunction(v.xpcall))
	co := L.GetGlobal("coroutine").(*lua.LTable)
	resume := co.RawGetString("resume").(*lua.LFunction).GFunction
	co.RawSetString("resume", L.NewFunction(func(L *lua.LState) int {
		top := L.GetTop()
		n := resume(L)
		if n >= 2 {
			base := L.GetTop() - n
			if L.Get(base+1) == lua.LFalse && L.Get(base+2) == lua.LValue(v.exitUD) {
				L.Error(v.exitUD, 0)
			}
		}
		_ = top
		return n
	}))
}

func (v *vm) pcall(L *lua.LState) int {
	L.CheckAny(1)
	f := L.Get(1)
	if f.Type() != lua.LTFunction && L.GetMetaField(f, "__call").Type() != lua.LTFunction {
		L.Push(lua.LFalse)
		L.Push(lua.LString("attempt to call a " + f.Type().String() + " value"))
		return 2
	}
	nargs := L.GetTop() - 1
	if err := L.PCall(nargs, lua.MultRet, nil); err != nil {
		var ae *lua.ApiError
		if errors.As(err, &ae) {
			if ae.Object == lua.LValue(v.exitUD) {
				L.Error(v.exitUD, 0)
			}
			L.Push(lua.LFalse)
			L.Push(fixArgError(ae.Object))
			return 2
		}
		L.Push(lua.LFalse)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Insert(lua.LTrue, 1)
	return L.GetTop()
}

func (v *vm) xpcall(L *lua.LState) int {
	fn := L.CheckFunction(1)
	handler := L.CheckFunction(2)
	top := L.GetTop()
	wrapped := L.NewFunction(func(L *lua.LState) int {
		ev := L.Get(1)
		if ev == lua.LValue(v.exitUD) {
			L.Push(ev)
			return 1
		}
		L.Push(handler)
		L.Push(ev)
		L.Call(1, 1)
		return 1
	})
	L.Push(fn)
	if err := L.PCall(0, lua.MultRet, wrapped); err != nil {
		var ae *lua.ApiError
		if errors.As(err, &ae) {
			if ae.Object == lua.LValue(v.exitUD) {
				L.Error(v.exitUD, 0)
			}
			L.Push(lua.LFalse)
			L.Push(fixArgError(ae.Object))
			return 2
		}
		L.Push(lua.LFalse)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Insert(lua.LTrue, top+1)
	return L.GetTop() - top
}

// function instantiates h in this VM with a fresh globals table: a
// function kept by recycle when h may reuse one and its globals table is
// still empty, else a new one.
func (v *vm) function(h *Handler, cache bool) (*lua.LFunction, error) {
	if cache && h.reusable {
		if fn := v.fns[h]; fn != nil && fn.Proto == h.proto && envEmpty(fn.Env, v.envMeta) {
			return fn, nil
		}
	}
	p, err := v.e.proto(h, cache)
	if err != nil {
		return nil, err
	}
	fn := v.L.NewFunctionFromProto(p)
	env := v.L.CreateTable(0, 0)
	env.Metatable = v.envMeta
	fn.Env = env
	return fn, nil
}

// recycle keeps fn, which just ran h, for h's next run in this VM when
// that run cannot tell the difference: h.reusable (the chunk defines no
// function and does not use getfenv & co., so nothing outside this run can
// hold on to fn or to its globals table) and the run left its globals table
// empty (it assigned no global, or only nil). function checks again that
// the table is empty before reusing it. This saves a function and a table
// per run.
func (v *vm) recycle(h *Handler, fn *lua.LFunction, cache bool) {
	if !cache || !h.reusable || fn.Proto != h.proto || !envEmpty(fn.Env, v.envMeta) {
		if v.fns[h] == fn {
			delete(v.fns, h)
		}
		return
	}
	if v.fns == nil {
		v.fns = make(map[*Handler]*lua.LFunction)
	}
	v.fns[h] = fn
}

// envEmpty reports whether env is still a pristine per-run globals table:
// no entries and the shared {__index = _G} metatable.
func envEmpty(env *lua.LTable, meta *lua.LTable) bool {
	if env == nil || env.Metatable != lua.LValue(meta) {
		return false
	}
	k, _ := env.Next(lua.LNil)
	return k == lua.LNil
}

func (v *vm) bind(req Request, st *RequestState, phase Phase) {
	v.req = req
	v.st = st
	v.phase = phase
	v.out = Outcome{}
}

func (v *vm) unbind() {
	v.req = nil
	v.st = nil
	v.L.SetTop(0)
}

func (v *vm) isExit(err error) bool {
	var ae *lua.ApiError
	return errors.As(err, &ae) && ae.Object == lua.LValue(v.exitUD)
}

// exit ends the running code (ngx.exit & co).
func (v *vm) exit(L *lua.LState) {
	L.Error(v.exitUD, 0)
}

// phase masks
const (
	mInit        = 1 << PhaseInit
	mInitWorker  = 1 << PhaseInitWorker
	mSet         = 1 << PhaseSet
	mRewrite     = 1 << PhaseRewrite
	mAccess      = 1 << PhaseAccess
	mContent     = 1 << PhaseContent
	mHeader      = 1 << PhaseHeaderFilter
	mBody        = 1 << PhaseBodyFilter
	mLog         = 1 << PhaseLog
	mTimer       = 1 << PhaseTimer
	mRAC         = mRewrite | mAccess | mContent
	mRequest     = mSet | mRAC | mHeader | mBody | mLog
	mAll         = mRequest | mInit | mInitWorker | mTimer
	mYieldable   = mRAC | mTimer
	mNotInit     = mAll &^ mInit
	mRACTimer    = mRAC | mTimer
	mRACHeadBody = mRAC | mHeader | mBody
)

// check raises "API disabled in the context of X" unless the current phase
// is in mask.
func (v *vm) check(L *lua.LState, mask int) {
	if mask&(1<<v.phase) == 0 {
		L.RaiseError("API disabled in the context of %s", v.phase.directive())
	}
}

// request returns the bound request or raises "no request found".
func (v *vm) request(L *lua.LState) Request {
	if v.req == nil {
		if v.phase == PhaseTimer || v.phase == PhaseInit || v.phase == PhaseInitWorker {
			L.RaiseError("API disabled in the context of %s", v.phase.directive())
		}
		L.RaiseError("no request found")
	}
	return v.req
}

// logf writes to the request's log or the engine's.
func (v *vm) logMsg(level errlog.Level, msg string) {
	if v.replay {
		return
	}
	if v.req != nil {
		v.req.Log(level, msg)
		return
	}
	switch v.phase {
	case PhaseTimer:
		msg += ", context: ngx.timer"
	case PhaseInitWorker:
		msg += ", context: init_worker_by_lua*"
	}
	v.e.log.Log(level, 0, msg)
}

// fixArgError adds the quotes Lua puts around the function name in
// "bad argument #1 to 'f' (...)" to gopher-lua's messages.
func fixArgError(v lua.LValue) lua.LValue {
	s, ok := v.(lua.LString)
	if !ok || !strings.Contains(string(s), "bad argument #") {
		return v
	}
	return lua.LString(argErrRe.ReplaceAllString(string(s), "bad argument #$1 to '$2' ("))
}

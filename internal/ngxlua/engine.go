// Package ngxlua embeds Lua (gopher-lua, Lua 5.1) and implements the
// OpenResty ngx_lua API ("ngx" table, ngx.shared dicts, timers, cjson,
// ngx.upstream) for the HTTP server.
//
// Execution model:
//
//   - Every *_by_lua* directive is compiled once by Engine.Compile into a
//     gopher-lua FunctionProto (syntax errors surface at config load).
//   - Code runs in pooled *lua.LState "VMs". Each VM has its own globals,
//     its own package.loaded and its own ngx table whose Go functions read
//     the request currently bound to the VM; binding a request allocates
//     nothing but the per-run globals table.
//   - As in ngx_lua, every run gets a fresh globals table whose __index is
//     the VM's _G: globals assigned by request code don't leak to other
//     requests. Module-level state (tables in modules) is per VM, i.e. it
//     behaves like nginx running several workers: don't use module tables as
//     a cross-request cache that must be coherent; use ngx.shared.DICT,
//     which lives in Go and is shared by every VM and timer.
//   - A VM is used by one goroutine at a time. A request's phases may run on
//     different VMs; ngx.ctx (a plain table kept in RequestState) moves with
//     the request. Keep data in ngx.ctx: a function stored in ngx.ctx still
//     refers to the globals of the VM that created it.
//   - Blocking APIs (ngx.sleep, ngx.location.capture, cosockets) block the
//     request's goroutine only; they honour Request.Context().
//   - lua_code_cache off: every run gets a brand-new VM (fresh
//     package.loaded, so modules are re-required) and *_by_lua_file code is
//     re-read from disk.
package ngxlua

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"

	"upstreamd/internal/errlog"
	"upstreamd/internal/upstream"
)

// Phase is the nginx phase (or pseudo phase) a chunk runs in.
type Phase int

const (
	PhaseInit Phase = iota
	PhaseInitWorker
	PhaseSet
	PhaseRewrite
	PhaseAccess
	PhaseContent
	PhaseHeaderFilter
	PhaseBodyFilter
	PhaseLog
	PhaseTimer
	numPhases
)

var phaseNames = [...]string{"init", "init_worker", "set", "rewrite", "access", "content", "header_filter", "body_filter", "log", "timer"}

// String is the ngx.get_phase() name.
func (p Phase) String() string {
	if p < 0 || p >= numPhases {
		return "unknown"
	}
	return phaseNames[p]
}

// directive is the name used in ngx_lua's messages ("content_by_lua*").
func (p Phase) directive() string {
	if p == PhaseTimer {
		return "ngx.timer"
	}
	return p.String() + "_by_lua*"
}

// Options configures an Engine.
type Options struct {
	// PackagePath and PackageCPath are lua_package_path/lua_package_cpath
	// (";;" already expanded by the config). Empty PackagePath uses
	// "<Prefix>/?.lua;<Prefix>/?/init.lua;./?.lua;./?/init.lua;" plus
	// gopher-lua's defaults. C modules can't be loaded; cpath is only
	// exposed as package.cpath.
	PackagePath, PackageCPath string
	// CodeCache is lua_code_cache.
	CodeCache bool
	// SharedDicts maps lua_shared_dict names to their size in bytes.
	SharedDicts map[string]int64
	// Keep are dicts of the previous generation: one with the same name and
	// size is reused, so its data survives a reload as an nginx zone does.
	Keep func(name string) *SharedDict
	// Upstreams returns the current generation's upstream registry (nil
	// allowed: ngx.upstream then sees no upstreams).
	Upstreams func() *upstream.Registry
	// Log is used for init/init_worker/timer code and as a fallback.
	Log *errlog.Logger
	// Prefix is the nginx prefix (ngx.config.prefix()).
	Prefix string
	// ConfPrefix is the directory of nginx.conf (for relative *_by_lua_file
	// paths); defaults to Prefix + "/conf".
	ConfPrefix string
	// MaxPendingTimers and MaxRunningTimers are lua_max_pending_timers /
	// lua_max_running_timers (defaults 1024 / 256).
	MaxPendingTimers, MaxRunningTimers int
	// Now, when set, replaces time.Now (tests).
	Now func() time.Time
}

// Code is one *_by_lua* directive.
type Code struct {
	// Source is the inline Lua code: for *_by_lua_block the raw text between
	// "{" and "}" (so its first line is the rest of the directive's line,
	// and Lua line numbers count from the directive's line as ngx_lua's do).
	Source string
	// File is the path of *_by_lua_file code (Source is then ignored).
	// Relative paths are resolved against Options.Prefix.
	File string
	// ChunkName is the name in error messages and tracebacks, e.g.
	// "content_by_lua(nginx.conf:12)". Empty: derived from File or
	// "=lua(<Line>)".
	ChunkName string
	// Line is the config line of the directive (informational).
	Line int
}

// Handler is compiled code.
type Handler struct {
	code  Code
	name  string
	path  string // resolved File
	proto *lua.FunctionProto
	// reusable: a VM may run this code again with the function and
	// (empty) globals table of a previous run; see reusableProto.
	reusable bool
}

// reusableProto reports whether the main chunk p can never leak its
// function or its globals table out of a run: it defines no nested
// function (a closure would keep the table and could assign globals into
// it later) and names none of the globals that reach environments or
// functions by other ways (getfenv, setfenv, debug, load, loadstring).
func reusableProto(p *lua.FunctionProto) bool {
	if p == nil || len(p.FunctionPrototypes) > 0 {
		return false
	}
	for _, c := range p.Constants {
		if s, ok := c.(lua.LString); ok {
			switch s {
			case "getfenv", "setfenv", "debug", "load", "loadstring", "dofile", "module":
				return false
			}
		}
	}
	return true
}

// Name is the chunk name.
func (h *Handler) Name() string { return h.name }

// Engine runs Lua for one configuration generation.
type Engine struct {
	opts   Options
	log    *errlog.Logger
	now    func() time.Time
	dicts  map[string]*SharedDict
	closed atomic.Bool
	// exiting is set by Close so ngx.worker.exiting() is true for premature
	// timers.
	exiting atomic.Bool

	poolMu sync.Mutex
	free   []*vm

	fileMu    sync.Mutex
	fileProto map[string]*lua.FunctionProto

	timers timerManager

	initMu sync.Mutex
	inits  []*Handler // init_by_lua handlers, replayed in every new VM

	pool connPool // cosocket keepalive pool
}

// NewEngine creates an engine. Shared dicts are created here.
func NewEngine(opts Options) (*Engine, error) {
	e := &Engine{opts: opts, log: opts.Log, now: opts.Now}
	if e.log == nil {
		e.log = errlog.Discard()
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.opts.MaxPendingTimers <= 0 {
		e.opts.MaxPendingTimers = 1024
	}
	if e.opts.MaxRunningTimers <= 0 {
		e.opts.MaxRunningTimers = 256
	}
	e.dicts = make(map[string]*SharedDict, len(opts.SharedDicts))
	for name, size := range opts.SharedDicts {
		if size <= 0 {
			return nil, fmt.Errorf("invalid lua shared dict size for %q", name)
		}
		if old := e.keep(name); old != nil && old.capacity == size {
			e.dicts[name] = old
			continue
		}
		e.dicts[name] = newSharedDict(name, size, e.now)
	}
	e.fileProto = make(map[string]*lua.FunctionProto)
	e.timers.init(e)
	return e, nil
}

func (e *Engine) keep(name string) *SharedDict {
	if e.opts.Keep == nil {
		return nil
	}
	return e.opts.Keep(name)
}

// SharedDict returns a shared dict by name (nil if not configured); the
// server may use it to carry dicts across reloads or for introspection.
func (e *Engine) SharedDict(name string) *SharedDict { return e.dicts[name] }

// Close stops timers: pending timers run once with premature = true, as
// nginx does on shutdown, and Close waits for running timer callbacks for
// at most the given grace period (0 = don't wait).
func (e *Engine) Close() { e.Shutdown(0) }

// Shutdown is Close with a grace period for running timers.
func (e *Engine) Shutdown(grace time.Duration) {
	if !e.closed.CompareAndSwap(false, true) {
		return
	}
	e.exiting.Store(true)
	// Close idle VMs without timers; VMs with pending timers are closed
	// when their last (premature) timer finished.
	e.poolMu.Lock()
	var idle []*vm
	keep := e.free[:0]
	for _, v := range e.free {
		if v.pendingTimers == 0 {
			idle = append(idle, v)
		} else {
			keep = append(keep, v)
		}
	}
	e.free = keep
	e.poolMu.Unlock()
	for _, v := range idle {
		v.L.Close()
	}
	e.timers.shutdown(grace)
	e.pool.closeAll()
}

// Compile compiles c. Syntax errors are returned in ngx_lua's wording.
func (e *Engine) Compile(c Code) (*Handler, error) {
	h := &Handler{code: c, name: c.ChunkName}
	if c.File != "" {
		h.path = c.File
		if !filepath.IsAbs(h.path) && e.opts.Prefix != "" {
			h.path = filepath.Join(e.opts.Prefix, h.path)
		}
		if h.name == "" {
			h.name = h.path
		}
		p, err := e.compileFile(h.path, h.name)
		if err != nil {
			return nil, err
		}
		if e.opts.CodeCache {
			h.proto = p
			h.reusable = reusableProto(p)
		}
		return h, nil
	}
	if h.name == "" {
		h.name = fmt.Sprintf("=lua(%d)", c.Line)
	}
	p, err := compileString(c.Source, h.name)
	if err != nil {
		return nil, err
	}
	h.proto = p
	h.reusable = reusableProto(p)
	return h, nil
}

func (e *Engine) compileFile(path, name string) (*lua.FunctionProto, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to load external Lua file %q: cannot open %s", path, path)
	}
	p, err := compileString(string(src), name)
	if err != nil {
		return nil, fmt.Errorf("failed to load external Lua file %q: %v", path, err)
	}
	return p, nil
}

func compileString(src, name string) (*lua.FunctionProto, error) {
	name = strings.TrimPrefix(name, "=")
	name = strings.TrimPrefix(name, "@")
	chunk, err := parse.Parse(strings.NewReader(src), name)
	if err != nil {
		return nil, syntaxError(name, err)
	}
	p, err := lua.Compile(chunk, name)
	if err != nil {
		return nil, syntaxError(name, err)
	}
	// The main chunk never has a Lua 5.0 style "arg" table; without this
	// gopher-lua allocates one on every run.
	p.IsVarArg &^= lua.VarArgNeedsArg
	return p, nil
}

// syntaxError renders gopher-lua's parse error like Lua's
// "chunk:LINE: message near 'token'".
func syntaxError(name string, err error) error {
	var pe *parse.Error
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d: %s near '%s'", name, pe.Pos.Line, pe.Message, pe.Token)
	}
	return fmt.Errorf("%s: %v", name, err)
}

// proto is h's compiled code; with the code cache off for this run a
// *_by_lua_file chunk is read again from disk.
func (e *Engine) proto(h *Handler, cache bool) (*lua.FunctionProto, error) {
	if h.proto != nil && (cache || h.path == "") {
		return h.proto, nil
	}
	return e.compileFile(h.path, h.name)
}

// CodeCacher is optionally implemented by a Request whose location sets
// lua_code_cache itself (nginx allows it in http, server and location);
// without it Options.CodeCache applies.
type CodeCacher interface{ CodeCache() bool }

func (e *Engine) codeCache(req Request) bool {
	if cc, ok := req.(CodeCacher); ok {
		return cc.CodeCache()
	}
	return e.opts.CodeCache
}

// LuaError is a Lua runtime error. Error() is the complete message ngx_lua
// logs (at level error) for the phase, including the traceback:
//
//	lua entry thread aborted: runtime error: content_by_lua(nginx.conf:12):3: boom
//	stack traceback:
//	coroutine 0:
//		[C]: in function 'error'
//		content_by_lua(nginx.conf:12):3: in main chunk
//
// (rewrite/access/content/timer) or "failed to run header_filter_by_lua*:
// ..." (header_filter, body_filter, log, init_worker) or "init_by_lua
// error: ..." (init).
type LuaError struct {
	Phase     Phase
	Msg       string // the Lua error value, e.g. "content_by_lua(nginx.conf:12):3: boom"
	Traceback string // "stack traceback:\ncoroutine 0:\n\t..."
}

func (e *LuaError) Error() string {
	var prefix string
	switch e.Phase {
	case PhaseRewrite, PhaseAccess, PhaseContent, PhaseTimer:
		prefix = "lua entry thread aborted: runtime error: "
	case PhaseInit:
		prefix = "init_by_lua error: "
	default:
		prefix = "failed to run " + e.Phase.directive() + ": "
	}
	if e.Traceback == "" {
		return prefix + e.Msg
	}
	return prefix + e.Msg + "\n" + e.Traceback
}

// formatTraceback converts gopher-lua's traceback to ngx_lua's layout.
func formatTraceback(tb string) string {
	if tb == "" {
		return ""
	}
	lines := strings.Split(tb, "\n")
	var b strings.Builder
	b.WriteString("stack traceback:\ncoroutine 0:")
	for _, l := range lines[1:] {
		t := strings.TrimSpace(l)
		if t == "[G]: ?" || t == "" {
			continue
		}
		if strings.Contains(t, "ngxlua-internal") {
			continue
		}
		t = strings.Replace(t, "[G]:", "[C]:", 1)
		b.WriteString("\n\t")
		b.WriteString(t)
	}
	return b.String()
}

// argErrRe matches gopher-lua's "bad argument #1 to say (" to add the
// quotes Lua's luaL_argerror puts around the function name.
var argErrRe = regexp.MustCompile(`bad argument #(\d+) to ([^ ('][^ (]*) \(`)

func (e *Engine) luaError(phase Phase, err error) *LuaError {
	var ae *lua.ApiError
	if errors.As(err, &ae) {
		msg := luaValueString(ae.Object)
		msg = argErrRe.ReplaceAllString(msg, "bad argument #$1 to '$2' (")
		return &LuaError{Phase: phase, Msg: msg, Traceback: formatTraceback(ae.StackTrace)}
	}
	return &LuaError{Phase: phase, Msg: err.Error()}
}

func luaValueString(v lua.LValue) string {
	switch v := v.(type) {
	case lua.LString:
		return string(v)
	case lua.LNumber:
		return v.String()
	case *lua.LNilType:
		return "nil"
	case *lua.LTable:
		return "table: " + fmt.Sprintf("%p", v)
	}
	return v.String()
}

// ---- VM pool -------------------------------------------------------------

func (e *Engine) acquire() (*vm, error) { return e.acquireFor(e.opts.CodeCache) }

// acquireFor takes a pooled VM, or with cache=false (lua_code_cache off) a
// brand-new one that release closes, so modules are loaded again.
func (e *Engine) acquireFor(cache bool) (*vm, error) {
	if cache {
		e.poolMu.Lock()
		if n := len(e.free); n > 0 {
			v := e.free[n-1]
			e.free[n-1] = nil
			e.free = e.free[:n-1]
			v.inUse = true
			e.poolMu.Unlock()
			return v, nil
		}
		e.poolMu.Unlock()
	}
	v, err := newVM(e)
	if err != nil {
		return nil, err
	}
	v.inUse = true
	v.noCache = !cache
	return v, nil
}

// release returns v to the pool, or hands it to a timer waiting for it.
func (e *Engine) release(v *vm) {
	e.poolMu.Lock()
	if len(v.waiting) > 0 {
		job := v.waiting[0]
		v.waiting = v.waiting[1:]
		e.poolMu.Unlock()
		go e.timers.runOn(v, job)
		return
	}
	v.inUse = false
	if !e.opts.CodeCache || v.noCache || e.closed.Load() {
		pending := v.pendingTimers
		e.poolMu.Unlock()
		if pending == 0 {
			v.L.Close()
		}
		return
	}
	e.free = append(e.free, v)
	e.poolMu.Unlock()
}

// ---- running -------------------------------------------------------------

// RequestState is the per-request Lua state the server keeps across phases
// (create with NewRequestState, one per request; subrequests get their own).
type RequestState struct {
	ctx *lua.LTable // ngx.ctx; nil until first used
	// bodyRead is set once ngx.req.read_body ran.
	bodyRead bool
	body     []byte
	// eof is set by ngx.eof.
	eof bool
}

// NewRequestState returns an empty state.
func NewRequestState() *RequestState { return &RequestState{} }

// Action tells the server what to do after a phase handler returned.
type Action int

const (
	// ActionContinue: go on with the request normally. After rewrite or
	// access: run the next phase. After content: finish the response (send
	// headers if not sent yet, with req.Status() or 200, then end the body).
	// After header/body filters and log: nothing special.
	ActionContinue Action = iota
	// ActionFinish: the response is complete as far as Lua is concerned
	// (ngx.exit(200) / ngx.exit(ngx.OK) in content, output already sent by
	// rewrite/access code, ngx.eof). Skip the remaining handler phases; if
	// headers are not sent, send them with Outcome.Status (or req.Status()
	// or 200) and an empty body; end the body; then run the log phase.
	ActionFinish
	// ActionSpecial: finalize with Outcome.Status as nginx does for
	// ngx.exit(status >= 300) / ngx.redirect / Lua errors (500): if headers
	// were not sent, send the special response (error_page or nginx's
	// default page) for Status, keeping headers Lua set (e.g. Location);
	// if they were sent, just end the body. Then run the log phase.
	ActionSpecial
	// ActionExec: internal redirect (ngx.exec) to Outcome.ExecURI with
	// Outcome.ExecArgs; ExecURI may be a named location "@name". The request
	// restarts at the rewrite phase of the new location with a fresh ngx.ctx
	// (call RequestState.ResetCtx).
	ActionExec
	// ActionRematch: ngx.req.set_uri(uri, true) in rewrite_by_lua: like
	// "rewrite ... last": find the location again for req.URI().
	ActionRematch
	// ActionAbort: ngx.exit(ngx.ERROR) or ngx.exit(444): close the
	// connection without (further) response; run the log phase.
	ActionAbort
)

var actionNames = [...]string{"continue", "finish", "special", "exec", "rematch", "abort"}

func (a Action) String() string { return actionNames[a] }

// Outcome is the result of running a handler.
type Outcome struct {
	Action Action
	// Status is the status for ActionFinish/ActionSpecial (0 = keep
	// req.Status()).
	Status int
	// Exited is true when ngx.exit, ngx.redirect or ngx.exec ended the code;
	// ExitCode is ngx.exit's argument (ngx.OK=0, ngx.ERROR=-1,
	// ngx.DECLINED=-5, or an HTTP status).
	Exited   bool
	ExitCode int
	// ExecURI/ExecArgs for ActionExec.
	ExecURI, ExecArgs string
}

// Reset makes st empty again, as NewRequestState returns it, so that a
// server can reuse one RequestState for the next request instead of
// allocating a new one.
func (st *RequestState) Reset() { *st = RequestState{} }

// ResetCtx drops ngx.ctx (nginx does so on internal redirects).
func (st *RequestState) ResetCtx() { st.ctx = nil }

// Run runs a rewrite/access/content/header_filter/log handler for req.
// On a Lua error it returns a *LuaError (log its Error() at level error via
// req.Log) and an Outcome that already says what to do (ActionSpecial 500
// if headers weren't sent, ActionAbort otherwise; ActionContinue for
// log and header filter errors — ngx_lua answers 500 for header_filter
// errors too when headers aren't sent, see the Action).
func (e *Engine) Run(h *Handler, phase Phase, req Request, st *RequestState) (Outcome, error) {
	cache := e.codeCache(req)
	v, err := e.acquireFor(cache)
	if err != nil {
		return e.errorOutcome(phase, req), err
	}
	defer e.release(v)
	fn, err := v.function(h, cache)
	if err != nil {
		return e.errorOutcome(phase, req), err
	}
	v.bind(req, st, phase)
	L := v.L
	L.Push(fn)
	err = L.PCall(0, 0, nil)
	out := v.out
	v.unbind()
	v.recycle(h, fn, cache)
	if err != nil && !v.isExit(err) {
		return e.errorOutcome(phase, req), e.luaError(phase, err)
	}
	return e.finishOutcome(phase, req, st, out), nil
}

func (e *Engine) errorOutcome(phase Phase, req Request) Outcome {
	switch phase {
	case PhaseLog, PhaseBodyFilter:
		return Outcome{Action: ActionContinue}
	}
	if req != nil && req.HeadersSent() {
		return Outcome{Action: ActionAbort}
	}
	return Outcome{Action: ActionSpecial, Status: 500}
}

// finishOutcome turns what the Lua code did into an Action.
func (e *Engine) finishOutcome(phase Phase, req Request, st *RequestState, out Outcome) Outcome {
	switch {
	case out.Action == ActionExec || out.Action == ActionRematch:
		return out
	case out.Exited:
		code := out.ExitCode
		switch {
		case code == ngxERROR || code == 444:
			out.Action = ActionAbort
		case phase == PhaseHeaderFilter || phase == PhaseBodyFilter || phase == PhaseLog:
			out.Action = ActionContinue
		case code == ngxOK || code == ngxDECLINED:
			if phase == PhaseContent || (req != nil && req.HeadersSent()) {
				out.Action = ActionFinish
			} else {
				out.Action = ActionContinue
			}
		case code == ngxDONE:
			out.Action = ActionFinish
		case code >= 200 && code < 300 && code != 204:
			out.Action = ActionFinish
			out.Status = code
		case code >= 100:
			if req != nil && req.HeadersSent() {
				out.Action = ActionFinish
				out.Status = 0
			} else {
				out.Action = ActionSpecial
				out.Status = code
			}
		default:
			out.Action = ActionFinish
		}
		return out
	case st != nil && st.eof:
		out.Action = ActionFinish
		return out
	case (phase == PhaseRewrite || phase == PhaseAccess) && req != nil && req.HeadersSent():
		// ngx_lua: response header already generated in rewrite/access_by_lua,
		// so it's no longer safe to proceed to later phases.
		out.Action = ActionFinish
		return out
	}
	out.Action = ActionContinue
	return out
}

// RunBodyFilter runs body_filter_by_lua for one chunk: ngx.arg[1] is chunk
// and ngx.arg[2] eof; it returns the (possibly modified) chunk and eof flag.
// The returned slice may alias chunk. On a Lua error the chunk is returned
// unchanged with the error (ngx_lua then aborts the response: the server
// should log err and close the connection).
func (e *Engine) RunBodyFilter(h *Handler, req Request, st *RequestState, chunk []byte, eof bool) ([]byte, bool, error) {
	cache := e.codeCache(req)
	v, err := e.acquireFor(cache)
	if err != nil {
		return chunk, eof, err
	}
	defer e.release(v)
	fn, err := v.function(h, cache)
	if err != nil {
		return chunk, eof, err
	}
	v.bind(req, st, PhaseBodyFilter)
	v.argChunk = lua.LString(chunk)
	v.argEOF = eof
	L := v.L
	L.Push(fn)
	err = L.PCall(0, 0, nil)
	outChunk, outEOF := v.argChunk, v.argEOF
	v.argChunk = ""
	v.unbind()
	v.recycle(h, fn, cache)
	if err != nil && !v.isExit(err) {
		return chunk, eof, e.luaError(PhaseBodyFilter, err)
	}
	if string(outChunk) == string(chunk) {
		return chunk, outEOF, nil
	}
	return []byte(outChunk), outEOF, nil
}

// RunSet runs set_by_lua code: args are the directive's extra arguments
// (ngx.arg[1..n]); the code's first return value (tostring'ed; nil gives
// "") is the value for the variable. On a Lua error the server logs the
// error and answers 500, as nginx does.
func (e *Engine) RunSet(h *Handler, req Request, st *RequestState, args []string) (string, error) {
	cache := e.codeCache(req)
	v, err := e.acquireFor(cache)
	if err != nil {
		return "", err
	}
	defer e.release(v)
	fn, err := v.function(h, cache)
	if err != nil {
		return "", err
	}
	v.bind(req, st, PhaseSet)
	v.setArgs = args
	L := v.L
	L.Push(fn)
	err = L.PCall(0, 1, nil)
	var res string
	if err == nil {
		switch x := L.Get(-1).(type) {
		case lua.LString:
			res = string(x)
		case lua.LNumber:
			res = numStr(x)
		case lua.LBool:
			res = strconv.FormatBool(bool(x))
		case *lua.LNilType:
		default:
			res = x.String()
		}
	}
	v.setArgs = nil
	v.unbind()
	v.recycle(h, fn, cache)
	if err != nil && !v.isExit(err) {
		return "", e.luaError(PhaseSet, err)
	}
	return res, nil
}

// RunInit runs init_by_lua code (call it before serving). Globals and
// modules it defines must exist in every VM, so the code is replayed in
// each new VM (ngx_lua runs it once before forking workers, which then
// inherit the Lua state). Only the first run has side effects: during
// replays ngx.log/print write nothing and ngx.shared.DICT writes are
// ignored (they report success), so shared dict values initialized here
// are not reset later.
func (e *Engine) RunInit(h *Handler) error {
	v, err := newVM(e)
	if err != nil {
		return err
	}
	defer v.L.Close()
	if err := v.runGlobal(h, PhaseInit, true); err != nil {
		return err
	}
	e.initMu.Lock()
	e.inits = append(e.inits, h)
	e.initMu.Unlock()
	// Drop pooled VMs created before this init ran.
	e.poolMu.Lock()
	free := e.free
	e.free = nil
	e.poolMu.Unlock()
	for _, fv := range free {
		fv.L.Close()
	}
	return nil
}

// RunInitWorker runs init_worker_by_lua code (once; timers it creates run
// on the VM it ran in, which then serves requests too).
func (e *Engine) RunInitWorker(h *Handler) error {
	v, err := e.acquire()
	if err != nil {
		return err
	}
	defer e.release(v)
	return v.runGlobal(h, PhaseInitWorker, true)
}

// runGlobal runs h without a request. Errors are returned, not logged.
// real=false marks a replay of init code in a fresh VM (side-effects such
// as ngx.log are suppressed then).
func (v *vm) runGlobal(h *Handler, phase Phase, real bool) error {
	fn, err := v.function(h, v.e.opts.CodeCache)
	if err != nil {
		return err
	}
	v.bind(nil, nil, phase)
	v.replay = !real
	if phase == PhaseInit {
		// init_by_lua runs in the real _G.
		fn.Env = v.L.G.Global
	}
	v.L.Push(fn)
	err = v.L.PCall(0, 0, nil)
	v.replay = false
	v.unbind()
	if err != nil && !v.isExit(err) {
		return v.e.luaError(phase, err)
	}
	return nil
}

var errClosed = errors.New("lua engine closed")

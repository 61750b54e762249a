package ngxlua

import (
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// A VM reuses a chunk's function and globals table for its next run only
// when nothing can tell: these tests pin the isolation of globals between
// runs (as in ngx_lua, each run gets a fresh globals table).

func TestReusableProto(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	for src, want := range map[string]bool{
		`ngx.say("hello world")`:                    true,
		`ngx.header["X-A"] = "1"`:                   true,
		`x = 1`:                                     true, // caught by the empty-table check
		`local f = function() end`:                  false,
		`ngx.timer.at(0, function() g = 1 end)`:     false,
		`local e = getfenv(1)`:                      false,
		`setfenv(1, {})`:                            false,
		`local i = debug.getinfo(1, "f")`:           false,
		`local f = loadstring("y = 1")`:             false,
		`local f = load(function() return nil end)`: false,
	} {
		if got := compile(t, e, src).reusable; got != want {
			t.Errorf("%s: reusable = %v, want %v", src, got, want)
		}
	}
}

func runSay(t *testing.T, e *Engine, h *Handler, args string) string {
	t.Helper()
	r := newFakeReq()
	r.args = args
	if v, _, ok := cutArg(args); ok {
		r.vars["arg_n"] = v
	}
	if _, err := e.Run(h, PhaseContent, r, NewRequestState()); err != nil {
		t.Fatal(err)
	}
	return r.out.String()
}

func cutArg(args string) (string, string, bool) {
	if len(args) > 2 && args[:2] == "n=" {
		return args[2:], "", true
	}
	return "", "", false
}

// TestRecycleGlobalsDoNotLeak alternates runs that assign a global with
// runs that don't: a run never sees a global of an earlier run.
func TestRecycleGlobalsDoNotLeak(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	h := compile(t, e, `
		local before = tostring(x)
		local n = ngx.var.arg_n
		if n then x = n end
		ngx.say(before, " ", tostring(x))
	`)
	if !h.reusable {
		t.Fatal("chunk should be reusable")
	}
	for i := 0; i < 6; i++ {
		if got := runSay(t, e, h, ""); got != "nil nil\n" {
			t.Fatalf("run %d without n: %q", i, got)
		}
		if got := runSay(t, e, h, "n=7"); got != "nil 7\n" {
			t.Fatalf("run %d with n: %q", i, got)
		}
		if got := runSay(t, e, h, ""); got != "nil nil\n" {
			t.Fatalf("run %d after n: %q", i, got)
		}
	}
}

// TestRecycleChecksTableBeforeReuse: a kept globals table that something
// filled between runs is not reused.
func TestRecycleChecksTableBeforeReuse(t *testing.T) {
	e, _ := newTestEngine(t, Options{})
	h := compile(t, e, `ngx.say(tostring(x))`)
	if got := runSay(t, e, h, ""); got != "nil\n" {
		t.Fatalf("first run: %q", got)
	}
	e.poolMu.Lock()
	if len(e.free) != 1 {
		e.poolMu.Unlock()
		t.Fatalf("%d pooled VMs, want 1", len(e.free))
	}
	v := e.free[0]
	e.poolMu.Unlock()
	fn := v.fns[h]
	if fn == nil {
		t.Fatal("the function was not kept for reuse")
	}
	fn.Env.RawSetString("x", lua.LString("stale"))
	if got := runSay(t, e, h, ""); got != "nil\n" {
		t.Fatalf("run after the kept table was written: %q", got)
	}
	if v.fns[h] == fn {
		t.Fatal("the written function is still kept")
	}
}

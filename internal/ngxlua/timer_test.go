package ngxlua

import (
	"strings"
	"testing"
	"time"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func dictNum(e *Engine, dict, key string) float64 {
	v, _, _, _, _ := e.SharedDict(dict).get(key, false)
	return v.n
}

func dictStr(e *Engine, dict, key string) string {
	v, _, _, _, _ := e.SharedDict(dict).get(key, false)
	return v.s
}

func TestTimerAt(t *testing.T) {
	e, _ := newTestEngine(t, Options{SharedDicts: map[string]int64{"d": 1 << 20}})
	r := newFakeReq()
	body := runOK(t, e, r, `
local upvalue = "captured"
local ok, err = ngx.timer.at(0.01, function(premature, a, b)
  ngx.shared.d:set("res", table.concat({tostring(premature), a, b, upvalue, ngx.get_phase()}, " "))
end, "x", 42)
ngx.say(tostring(ok), " ", tostring(err), " ", ngx.timer.pending_count())`)
	if body != "true nil 1\n" {
		t.Fatalf("%q", body)
	}
	waitFor(t, "timer", func() bool { return dictStr(e, "d", "res") != "" })
	if got := dictStr(e, "d", "res"); got != "false x 42 captured timer" {
		t.Fatalf("%q", got)
	}
	waitFor(t, "counts", func() bool { return e.timers.pending.Load() == 0 && e.timers.running.Load() == 0 })
}

func TestTimerEveryAndErrors(t *testing.T) {
	e, logs := newTestEngine(t, Options{SharedDicts: map[string]int64{"d": 1 << 20}})
	runOK(t, e, newFakeReq(), `
ngx.timer.every(0.01, function(premature)
  local n = ngx.shared.d:incr("n", 1, 0)
  if premature then ngx.shared.d:set("premature", true) end
end)
ngx.timer.at(0, function() error("timer boom") end)
ngx.timer.at(0, function() ngx.log(ngx.WARN, "from timer ", ngx.worker.id(), " ", ngx.worker.count()) end)
local ok, err = pcall(ngx.timer.every, 0, function() end)
ngx.say(tostring(ok))`)
	waitFor(t, "every x3", func() bool { return dictNum(e, "d", "n") >= 3 })
	waitFor(t, "logs", func() bool {
		s := logs.String()
		return strings.Contains(s, "timer boom") && strings.Contains(s, "from timer")
	})
	s := logs.String()
	if !strings.Contains(s, "[error]") || !strings.Contains(s, "lua entry thread aborted: runtime error: content_by_lua(nginx.conf:10):6: timer boom") ||
		!strings.Contains(s, ", context: ngx.timer") {
		t.Fatalf("log: %s", s)
	}
	if !strings.Contains(s, "[warn]") || !strings.Contains(s, "[lua] content_by_lua(nginx.conf:10):7: from timer 0 1, context: ngx.timer") {
		t.Fatalf("log: %s", s)
	}
	e.Shutdown(time.Second)
	waitFor(t, "premature", func() bool {
		v, _, _, _, _ := e.SharedDict("d").get("premature", false)
		return v.b
	})
}

func TestTimerVMBusy(t *testing.T) {
	// a timer created by a request runs even though the request keeps its VM
	// busy; it runs after the request released the VM
	e, _ := newTestEngine(t, Options{SharedDicts: map[string]int64{"d": 1 << 20}})
	runOK(t, e, newFakeReq(), `
ngx.timer.at(0, function() ngx.shared.d:set("ran", ngx.now()) end)
ngx.sleep(0.05)
ngx.shared.d:set("req_done", ngx.now())`)
	waitFor(t, "timer", func() bool { return dictNum(e, "d", "ran") > 0 })
	if dictNum(e, "d", "ran") < dictNum(e, "d", "req_done") {
		t.Fatal("timer ran on a busy VM")
	}
	// timers can sleep and use the API
	runOK(t, e, newFakeReq(), `
ngx.timer.at(0, function()
  ngx.sleep(0.01)
  ngx.timer.at(0, function() ngx.shared.d:set("nested", "yes") end)
end)`)
	waitFor(t, "nested", func() bool { return dictStr(e, "d", "nested") == "yes" })
}

func TestTimerLimits(t *testing.T) {
	e, _ := newTestEngine(t, Options{MaxPendingTimers: 2})
	r := newFakeReq()
	body := runOK(t, e, r, `
for i = 1, 3 do
  local ok, err = ngx.timer.at(10, function() end)
  ngx.say(tostring(ok), " ", tostring(err))
end`)
	if body != "true nil\ntrue nil\nnil too many pending timers\n" {
		t.Fatalf("%q", body)
	}
	h, _ := e.Compile(Code{Source: `ngx.timer.at(0, function() end)`, ChunkName: "init_by_lua"})
	if err := e.RunInit(h); err == nil || !strings.Contains(err.Error(), "API disabled in the context of init_by_lua*") {
		t.Fatal(err)
	}
	e.Close()
	r = newFakeReq()
	_, err := run(t, e, r, `local ok, err = ngx.timer.at(0, function() end) ngx.say(tostring(ok), " ", err, " ", tostring(ngx.worker.exiting()))`)
	if err != nil || r.out.String() != "nil process exiting true\n" {
		t.Fatalf("%v %q", err, r.out.String())
	}
}

func TestTimerCodeCacheOff(t *testing.T) {
	e, err := NewEngine(Options{CodeCache: false, SharedDicts: map[string]int64{"d": 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	h, _ := e.Compile(Code{Source: `local v = "up" ngx.timer.at(0.01, function() ngx.shared.d:set("x", v) end)`})
	if _, err := e.Run(h, PhaseContent, newFakeReq(), NewRequestState()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "timer", func() bool { return dictStr(e, "d", "x") == "up" })
}

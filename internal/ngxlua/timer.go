package ngxlua

import (
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"

	"upstreamd/internal/errlog"
)

// Timers (ngx.timer.at / ngx.timer.every).
//
// A gopher-lua function belongs to the Lua state that created it, so a
// timer callback runs on the VM that created the timer ("VM affinity"):
// when the timer fires and that VM is idle, the VM is taken out of the
// pool for the callback; when it is busy (serving a request or another
// timer), the callback is queued on the VM and runs as soon as the VM is
// released, before the VM goes back to the pool. Callbacks of one VM
// therefore run one at a time; a callback that blocks for long (a loop
// with ngx.sleep) delays the other timers created on the same VM. A VM
// with pending timers is never closed (with lua_code_cache off it is
// closed after its last timer ran).
//
// ngx.timer.every re-arms the timer after the callback returned (so runs
// never overlap). On Engine.Close every pending timer runs once more with
// premature = true and ngx.worker.exiting() returning true.
type timerManager struct {
	e       *Engine
	mu      sync.Mutex
	jobs    map[*timerJob]struct{}
	pending atomic.Int64
	running atomic.Int64
	done    chan struct{}
}

type timerJob struct {
	v     *vm
	fn    *lua.LFunction
	args  []lua.LValue
	every time.Duration
	// state: 0 armed, 1 claimed by fire or shutdown
	state     atomic.Int32
	timer     *time.Timer // guarded by timerManager.mu
	premature bool
}

func (tm *timerManager) init(e *Engine) {
	tm.e = e
	tm.jobs = make(map[*timerJob]struct{})
	tm.done = make(chan struct{})
}

// add arms a new timer. Returns an error text for nil, err.
func (tm *timerManager) add(v *vm, delay time.Duration, every time.Duration, fn *lua.LFunction, args []lua.LValue) string {
	if tm.e.closed.Load() {
		return "process exiting"
	}
	if tm.pending.Load() >= int64(tm.e.opts.MaxPendingTimers) {
		return "too many pending timers"
	}
	job := &timerJob{v: v, fn: fn, args: args, every: every}
	tm.e.poolMu.Lock()
	v.pendingTimers++
	tm.e.poolMu.Unlock()
	tm.pending.Add(1)
	if !tm.arm(job, delay, true) {
		tm.pending.Add(-1)
		tm.e.poolMu.Lock()
		v.pendingTimers--
		tm.e.poolMu.Unlock()
		return "process exiting"
	}
	return ""
}

// arm (re)starts job's timer; it fails once the engine is closed.
func (tm *timerManager) arm(job *timerJob, delay time.Duration, register bool) bool {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if tm.e.closed.Load() {
		return false
	}
	if register {
		tm.jobs[job] = struct{}{}
	}
	job.state.Store(0)
	job.timer = time.AfterFunc(delay, func() {
		if job.state.CompareAndSwap(0, 1) {
			tm.fire(job)
		}
	})
	return true
}

func (tm *timerManager) fire(job *timerJob) {
	tm.pending.Add(-1)
	if !job.premature && tm.running.Load() >= int64(tm.e.opts.MaxRunningTimers) {
		tm.e.log.Logf(errlog.Alert, 0, "%d lua_max_running_timers are not enough", tm.e.opts.MaxRunningTimers)
		tm.finish(job)
		return
	}
	tm.running.Add(1)
	e := tm.e
	v := job.v
	e.poolMu.Lock()
	if v.inUse {
		v.waiting = append(v.waiting, job)
		e.poolMu.Unlock()
		return
	}
	for i, f := range e.free {
		if f == v {
			copy(e.free[i:], e.free[i+1:])
			e.free[len(e.free)-1] = nil
			e.free = e.free[:len(e.free)-1]
			break
		}
	}
	v.inUse = true
	e.poolMu.Unlock()
	tm.runOn(v, job)
}

// runOn runs job on v (which the caller marked in use) and releases v.
func (tm *timerManager) runOn(v *vm, job *timerJob) {
	e := tm.e
	L := v.L
	v.bind(nil, nil, PhaseTimer)
	v.timerCtx = nil
	L.Push(job.fn)
	L.Push(lua.LBool(job.premature))
	for _, a := range job.args {
		L.Push(a)
	}
	err := L.PCall(1+len(job.args), 0, nil)
	v.unbind()
	v.timerCtx = nil
	if err != nil && !v.isExit(err) {
		e.log.Log(errlog.Error, 0, e.luaError(PhaseTimer, err).Error()+", context: ngx.timer")
	}
	tm.running.Add(-1)
	rearmed := false
	if job.every > 0 && !job.premature {
		tm.pending.Add(1)
		rearmed = tm.arm(job, job.every, false)
		if !rearmed {
			tm.pending.Add(-1)
		}
	}
	switch {
	case rearmed:
	case job.every > 0 && !job.premature:
		// closed while running: run once more prematurely
		job.premature = true
		e.poolMu.Lock()
		v.waiting = append(v.waiting, job)
		e.poolMu.Unlock()
		tm.running.Add(1)
	default:
		tm.finish(job)
	}
	e.release(v)
}

func (tm *timerManager) finish(job *timerJob) {
	tm.mu.Lock()
	delete(tm.jobs, job)
	tm.mu.Unlock()
	tm.e.poolMu.Lock()
	job.v.pendingTimers--
	tm.e.poolMu.Unlock()
}

func (tm *timerManager) shutdown(grace time.Duration) {
	close(tm.done)
	tm.mu.Lock()
	jobs := make([]*timerJob, 0, len(tm.jobs))
	for j := range tm.jobs {
		jobs = append(jobs, j)
		if j.timer != nil {
			j.timer.Stop()
		}
	}
	tm.mu.Unlock()
	for _, j := range jobs {
		if j.state.CompareAndSwap(0, 1) {
			j.premature = true
			go tm.fire(j)
		}
	}
	if grace <= 0 {
		return
	}
	// Poll rather than wait on a WaitGroup: timers fire from their own
	// goroutines, so a WaitGroup's Add could race with the Wait here.
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) && tm.active() > 0 {
		time.Sleep(5 * time.Millisecond)
	}
}

// active is the number of timers not yet finished.
func (tm *timerManager) active() int {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return len(tm.jobs)
}

// ---- Lua API ---------------------------------------------------------------

func (v *vm) newTimer() *lua.LTable {
	L := v.L
	t := L.CreateTable(0, 4)
	add := func(every bool) lua.LGFunction {
		return func(L *lua.LState) int {
			v.check(L, mNotInit)
			d := L.CheckNumber(1)
			fn := L.CheckFunction(2)
			if d < 0 || (every && d <= 0) {
				L.ArgError(1, "bad \"delay\" argument")
			}
			var args []lua.LValue
			for i := 3; i <= L.GetTop(); i++ {
				args = append(args, L.Get(i))
			}
			delay := time.Duration(float64(d) * float64(time.Second))
			var ev time.Duration
			if every {
				ev = delay
			}
			if errs := v.e.timers.add(v, delay, ev, fn, args); errs != "" {
				L.Push(lua.LNil)
				L.Push(lua.LString(errs))
				return 2
			}
			L.Push(lua.LTrue)
			return 1
		}
	}
	t.RawSetString("at", L.NewFunction(add(false)))
	t.RawSetString("every", L.NewFunction(add(true)))
	t.RawSetString("running_count", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(v.e.timers.running.Load()))
		return 1
	}))
	t.RawSetString("pending_count", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LNumber(v.e.timers.pending.Load()))
		return 1
	}))
	return t
}

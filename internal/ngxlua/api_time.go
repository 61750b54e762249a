package ngxlua

import (
	"context"
	"strconv"
	"time"

	lua "github.com/yuin/gopher-lua"
)

var gmt = time.FixedZone("GMT", 0)

// httpTime formats like nginx's ngx_http_time.
func httpTime(t time.Time) string {
	return t.In(gmt).Format("Mon, 02 Jan 2006 15:04:05 GMT")
}

// cookieTime formats like nginx's ngx_http_cookie_time (2-digit years up
// to 2037, as Netscape needs).
func cookieTime(t time.Time) string {
	t = t.In(gmt)
	if t.Year() > 2037 {
		return t.Format("Mon, 02-Jan-2006 15:04:05 GMT")
	}
	return t.Format("Mon, 02-Jan-06 15:04:05 GMT")
}

var httpTimeLayouts = []string{
	"Mon, 02 Jan 2006 15:04:05 GMT",
	"Monday, 02-Jan-06 15:04:05 GMT",
	"Mon Jan _2 15:04:05 2006",
	"Mon, 02-Jan-2006 15:04:05 GMT",
	"Mon, 02-Jan-06 15:04:05 GMT",
}

func parseHTTPTime(s string) (time.Time, bool) {
	for _, l := range httpTimeLayouts {
		if t, err := time.ParseInLocation(l, s, gmt); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func (v *vm) addTime(ngx *lua.LTable) {
	L := v.L
	reg := func(name string, fn lua.LGFunction) { ngx.RawSetString(name, L.NewFunction(fn)) }
	now := v.e.now
	reg("now", func(L *lua.LState) int {
		L.Push(lua.LNumber(float64(now().UnixMilli()) / 1000))
		return 1
	})
	reg("time", func(L *lua.LState) int {
		L.Push(lua.LNumber(now().Unix()))
		return 1
	})
	reg("update_time", func(L *lua.LState) int { return 0 })
	reg("today", func(L *lua.LState) int {
		L.Push(lua.LString(now().Format("2006-01-02")))
		return 1
	})
	reg("localtime", func(L *lua.LState) int {
		L.Push(lua.LString(now().Format("2006-01-02 15:04:05")))
		return 1
	})
	reg("utctime", func(L *lua.LState) int {
		L.Push(lua.LString(now().UTC().Format("2006-01-02 15:04:05")))
		return 1
	})
	reg("http_time", func(L *lua.LState) int {
		L.Push(lua.LString(httpTime(time.Unix(int64(L.CheckNumber(1)), 0))))
		return 1
	})
	reg("cookie_time", func(L *lua.LState) int {
		L.Push(lua.LString(cookieTime(time.Unix(int64(L.CheckNumber(1)), 0))))
		return 1
	})
	reg("parse_http_time", func(L *lua.LState) int {
		t, ok := parseHTTPTime(L.CheckString(1))
		if !ok {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LNumber(t.Unix()))
		return 1
	})
	reg("sleep", func(L *lua.LState) int {
		v.check(L, mYieldable)
		d := float64(L.CheckNumber(1))
		if d < 0 {
			L.RaiseError("invalid sleep duration \"%s\"", strconv.FormatFloat(d, 'g', -1, 64))
		}
		if err := v.sleep(time.Duration(d * float64(time.Second))); err != nil {
			// the client went away / the server is stopping: abort the
			// request silently, like nginx finalizing a dead request
			v.out.Exited = true
			v.out.ExitCode = ngxERROR
			v.exit(L)
		}
		return 0
	})
}

// sleep blocks the current goroutine, waking early when the request's
// context ends (the error aborts the Lua code) or, for timers, when the
// engine shuts down (sleep then just returns, so the callback can see
// ngx.worker.exiting()).
func (v *vm) sleep(d time.Duration) error {
	var ctx context.Context
	if v.req != nil {
		ctx = v.req.Context()
	}
	if d <= 0 {
		if ctx != nil {
			return ctx.Err()
		}
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	var ctxDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	var exiting <-chan struct{}
	if v.phase == PhaseTimer {
		exiting = v.e.timers.done
	}
	select {
	case <-t.C:
		return nil
	case <-ctxDone:
		return ctx.Err()
	case <-exiting:
		return nil
	}
}

package ngxlua

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	lua "github.com/yuin/gopher-lua"

	"upstreamd/internal/upstream"
)

// require "ngx.upstream": lua-upstream-nginx-module's API with its names,
// argument order, field names and error strings, working on the live
// upstreams every request shares (the original changed one worker's copy),
// plus add_server, remove_server, set_peer_weight and set_peer_drain.
// docs/upstream-api.md is the reference, including where we differ.
//
// Error policy: a wrong number of arguments raises a Lua error, as in the
// original (a programming error); the original's functions also raise on a
// non-number peer id. Everything else the caller can get wrong at run time
// (unknown upstream or peer, bad address, bad option, bad weight) returns
// nil and a message, and then nothing has changed.

func (v *vm) registry() *upstream.Registry {
	if v.e.opts.Upstreams == nil {
		return nil
	}
	return v.e.opts.Upstreams()
}

func (v *vm) findUpstream(name string) *upstream.Upstream {
	r := v.registry()
	if r == nil {
		return nil
	}
	return r.Get(name)
}

// fail pushes the nil, err pair every function returns on failure.
func fail(L *lua.LState, msg string) int {
	L.Push(lua.LNil)
	L.Push(lua.LString(msg))
	return 2
}

func (v *vm) upstreamModule() *lua.LTable {
	L := v.L
	t := L.CreateTable(0, 10)
	reg := func(name string, fn lua.LGFunction) { t.RawSetString(name, L.NewFunction(fn)) }

	reg("get_upstreams", func(L *lua.LState) int {
		if L.GetTop() != 0 {
			L.RaiseError("no argument expected")
		}
		var names []string
		if r := v.registry(); r != nil {
			names = r.Names()
		}
		res := L.CreateTable(len(names), 0)
		for _, n := range names {
			res.Append(lua.LString(n))
		}
		L.Push(res)
		return 1
	})
	oneName := func(L *lua.LState) *upstream.Upstream {
		if L.GetTop() != 1 {
			L.RaiseError("exactly one argument expected")
		}
		return v.findUpstream(L.CheckString(1))
	}
	reg("get_servers", func(L *lua.LState) int {
		u := oneName(L)
		if u == nil {
			return fail(L, "upstream not found")
		}
		L.Push(serversTable(L, u.Snapshot()))
		return 1
	})
	peers := func(backup bool) lua.LGFunction {
		return func(L *lua.LState) int {
			u := oneName(L)
			if u == nil {
				return fail(L, "upstream not found")
			}
			list := u.Snapshot().Peers(backup)
			res := L.CreateTable(len(list), 0)
			for _, p := range list {
				res.Append(peerTable(L, p))
			}
			L.Push(res)
			return 1
		}
	}
	reg("get_primary_peers", peers(false))
	reg("get_backup_peers", peers(true))

	// peerFlag is set_peer_down and its siblings: (name, is_backup, id, x).
	// strictID makes a non-integer id a nil, err result instead of the
	// original's argument error (set_peer_down keeps the original's).
	peerFlag := func(fn string, strictID bool, op func(L *lua.LState, u *upstream.Upstream, backup bool, id int) (string, bool)) {
		reg(fn, func(L *lua.LState) int {
			if L.GetTop() != 4 {
				L.RaiseError("exactly 4 arguments expected")
			}
			name := L.CheckString(1)
			backup := lua.LVAsBool(L.Get(2))
			var id int
			if strictID {
				var ok bool
				if id, ok = peerID(L.Get(3)); !ok {
					return fail(L, "bad peer id")
				}
			} else {
				id = L.CheckInt(3)
			}
			u := v.findUpstream(name)
			if u == nil {
				return fail(L, "upstream not found")
			}
			if msg, ok := op(L, u, backup, id); !ok {
				return fail(L, msg)
			}
			L.Push(lua.LTrue)
			return 1
		})
	}
	peerFlag("set_peer_down", false, func(L *lua.LState, u *upstream.Upstream, backup bool, id int) (string, bool) {
		return opResult(u.SetDown(backup, id, lua.LVAsBool(L.Get(4))))
	})
	peerFlag("set_peer_drain", true, func(L *lua.LState, u *upstream.Upstream, backup bool, id int) (string, bool) {
		return opResult(u.SetDrain(backup, id, lua.LVAsBool(L.Get(4))))
	})
	peerFlag("set_peer_weight", true, func(L *lua.LState, u *upstream.Upstream, backup bool, id int) (string, bool) {
		w, ok := intArg(L.Get(4))
		if !ok || w < 1 {
			return "bad weight " + luaRepr(L.Get(4)) + ": positive integer expected", false
		}
		return opResult(u.SetWeight(backup, id, w))
	})

	reg("remove_server", func(L *lua.LState) int {
		top := L.GetTop()
		if top != 2 && top != 3 {
			L.RaiseError("expecting 2 or 3 arguments")
		}
		u := v.findUpstream(L.CheckString(1))
		// remove_server(name, is_backup, id) names a backup peer the way
		// set_peer_down does; remove_server(name, id) means a primary one.
		backup, target := false, L.Get(2)
		if top == 3 {
			backup, target = lua.LVAsBool(L.Get(2)), L.Get(3)
		}
		if s, isStr := target.(lua.LString); isStr && top == 2 {
			if u == nil {
				return fail(L, "upstream not found")
			}
			if _, _, err := u.RemoveAddr(string(s)); err != nil {
				return fail(L, upstreamErr(err))
			}
			L.Push(lua.LTrue)
			return 1
		}
		id, ok := peerID(target)
		if !ok {
			return fail(L, "bad peer id")
		}
		if u == nil {
			return fail(L, "upstream not found")
		}
		if msg, ok := opResult(u.Remove(backup, id)); !ok {
			return fail(L, msg)
		}
		L.Push(lua.LTrue)
		return 1
	})

	reg("add_server", func(L *lua.LState) int {
		top := L.GetTop()
		if top < 2 || top > 3 {
			L.RaiseError("expecting 2 or 3 arguments")
		}
		name := L.CheckString(1)
		spec, msg := addServerSpec(L.Get(2), L.Get(3))
		if msg != "" {
			return fail(L, msg)
		}
		u := v.findUpstream(name)
		if u == nil {
			return fail(L, "upstream not found")
		}
		id, err := u.Add(spec)
		if err != nil {
			return fail(L, upstreamErr(err))
		}
		L.Push(lua.LNumber(id))
		return 1
	})

	reg("current_upstream_name", func(L *lua.LState) int {
		name := v.request(L).UpstreamName()
		if name == "" {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LString(name))
		return 1
	})
	return t
}

// serversTable is get_servers: one entry per server entry (a `server` line,
// or an add_server call), primary entries first, then backup ones, in list
// order. A name resolved to several addresses gives one entry whose addr is
// a table. down and drain are live and always present: true when every
// address of the entry is down (draining) — an entry that still takes
// traffic on some address is not reported down; get_primary_peers has the
// per-address truth. weight is the first address's.
func serversTable(L *lua.LState, snap *upstream.Snapshot) *lua.LTable {
	res := L.CreateTable(len(snap.Primary)+len(snap.Backup), 0)
	for _, list := range [][]*upstream.Peer{snap.Primary, snap.Backup} {
		for i := 0; i < len(list); {
			j := i + 1
			for j < len(list) && list[j].Group() == list[i].Group() {
				j++
			}
			s := list[i].Spec()
			down, drain := true, true
			for _, p := range list[i:j] {
				down = down && p.Spec().Down
				drain = drain && p.Spec().Drain
			}
			e := L.CreateTable(0, 9)
			if j-i == 1 {
				e.RawSetString("addr", lua.LString(s.Addr))
			} else {
				at := L.CreateTable(j-i, 0)
				for _, p := range list[i:j] {
					at.Append(lua.LString(p.Addr()))
				}
				e.RawSetString("addr", at)
			}
			e.RawSetString("name", lua.LString(s.Name))
			e.RawSetString("weight", lua.LNumber(s.Weight))
			e.RawSetString("max_fails", lua.LNumber(s.MaxFails))
			e.RawSetString("fail_timeout", lua.LNumber(int64(s.FailTimeout/time.Second)))
			e.RawSetString("backup", lua.LBool(s.Backup))
			e.RawSetString("down", lua.LBool(down))
			e.RawSetString("drain", lua.LBool(drain))
			if s.MaxConns > 0 {
				e.RawSetString("max_conns", lua.LNumber(s.MaxConns))
			}
			res.Append(e)
			i = j
		}
	}
	return res
}

// peerTable is one entry of get_primary_peers/get_backup_peers. name is the
// peer's socket address, as nginx's peer->name.
func peerTable(L *lua.LState, p *upstream.Peer) *lua.LTable {
	s := p.Spec()
	st := p.State()
	pt := L.CreateTable(0, 14)
	pt.RawSetString("id", lua.LNumber(p.ID()))
	pt.RawSetString("name", lua.LString(s.Addr))
	pt.RawSetString("weight", lua.LNumber(s.Weight))
	pt.RawSetString("current_weight", lua.LNumber(st.CurrentWeight))
	pt.RawSetString("effective_weight", lua.LNumber(st.EffectiveWeight))
	pt.RawSetString("conns", lua.LNumber(st.Conns))
	pt.RawSetString("fails", lua.LNumber(st.Fails))
	pt.RawSetString("max_fails", lua.LNumber(s.MaxFails))
	pt.RawSetString("fail_timeout", lua.LNumber(int64(s.FailTimeout/time.Second)))
	if s.MaxConns > 0 {
		pt.RawSetString("max_conns", lua.LNumber(s.MaxConns))
	}
	if !st.Accessed.IsZero() {
		pt.RawSetString("accessed", lua.LNumber(st.Accessed.Unix()))
	}
	if !st.Checked.IsZero() {
		pt.RawSetString("checked", lua.LNumber(st.Checked.Unix()))
	}
	pt.RawSetString("down", lua.LBool(s.Down))
	pt.RawSetString("drain", lua.LBool(s.Drain))
	if h := st.Health; h.State != upstream.HealthNone {
		pt.RawSetString("health", healthTable(L, h))
	}
	return pt
}

// healthTable is a peer's `health` field, present when its upstream has
// active health checks: the verdict ("healthy", "unhealthy", "checking";
// down and drain are separate fields and win over it) and the NGINX Plus
// counters, with last_passed once a check ran on the peer.
func healthTable(L *lua.LState, h upstream.PeerHealth) *lua.LTable {
	t := L.CreateTable(0, 5)
	t.RawSetString("state", lua.LString(h.State.String()))
	t.RawSetString("checks", lua.LNumber(h.Checks))
	t.RawSetString("fails", lua.LNumber(h.Fails))
	t.RawSetString("unhealthy", lua.LNumber(h.Unhealthy))
	if h.Probed {
		t.RawSetString("last_passed", lua.LBool(h.LastPassed))
	}
	return t
}

// addServerOptions are add_server's option keys, the `server` parameters
// that make sense at run time.
var addServerOptions = map[string]bool{
	"weight": true, "max_fails": true, "fail_timeout": true, "max_conns": true, "backup": true, "down": true,
}

// addServerSpec validates add_server's address and options completely
// before anything is changed; it returns a message on the first problem.
func addServerSpec(addrV, optsV lua.LValue) (upstream.ServerSpec, string) {
	as, ok := addrV.(lua.LString)
	if !ok {
		return upstream.ServerSpec{}, "bad server address: string expected, got " + addrV.Type().String()
	}
	name, addr, err := upstream.ParseServerAddr(string(as))
	if err != nil {
		return upstream.ServerSpec{}, fmt.Sprintf("bad server address %q: %v", string(as), err)
	}
	spec := upstream.DefaultSpec(name, addr)
	if optsV == lua.LNil {
		return spec, ""
	}
	opts, ok := optsV.(*lua.LTable)
	if !ok {
		return spec, "bad options: table expected, got " + optsV.Type().String()
	}
	var msg string
	opts.ForEach(func(k, val lua.LValue) {
		if msg != "" {
			return
		}
		key, isStr := k.(lua.LString)
		if !isStr || !addServerOptions[string(key)] {
			msg = "unknown option " + luaRepr(k)
			return
		}
		bad := func(want string) { msg = fmt.Sprintf("bad %q option %s: %s expected", string(key), luaRepr(val), want) }
		switch key {
		case "backup", "down":
			b, isBool := val.(lua.LBool)
			if !isBool {
				bad("boolean")
				return
			}
			if key == "backup" {
				spec.Backup = bool(b)
			} else {
				spec.Down = bool(b)
			}
		case "fail_timeout":
			n, isNum := val.(lua.LNumber)
			if !isNum || n < 0 || math.IsInf(float64(n), 0) || n != n {
				bad("non-negative number of seconds")
				return
			}
			spec.FailTimeout = time.Duration(float64(n) * float64(time.Second))
		default:
			n, isInt := intArg(val)
			switch {
			case !isInt:
				bad("integer")
			case key == "weight" && n < 1:
				bad("positive integer")
			case n < 0:
				bad("non-negative integer")
			case key == "weight":
				spec.Weight = n
			case key == "max_fails":
				spec.MaxFails = n
			default:
				spec.MaxConns = n
			}
		}
	})
	return spec, msg
}

// peerID accepts a non-negative integral number.
func peerID(v lua.LValue) (int, bool) {
	n, ok := intArg(v)
	return n, ok && n >= 0
}

func intArg(v lua.LValue) (int, bool) {
	n, ok := v.(lua.LNumber)
	if !ok || float64(n) != math.Trunc(float64(n)) || math.Abs(float64(n)) > math.MaxInt32 {
		return 0, false
	}
	return int(n), true
}

// luaRepr shows a bad argument in an error message.
func luaRepr(v lua.LValue) string {
	if s, ok := v.(lua.LString); ok {
		return strconv.Quote(string(s))
	}
	if n, ok := v.(lua.LNumber); ok {
		return n.String()
	}
	return v.Type().String()
}

func opResult(err error) (string, bool) {
	if err != nil {
		return upstreamErr(err), false
	}
	return "", true
}

func upstreamErr(err error) string {
	switch {
	case errors.Is(err, upstream.ErrBadPeerID):
		return "bad peer id"
	case errors.Is(err, upstream.ErrNoBackupPeers):
		return "no backup peers"
	}
	return err.Error()
}

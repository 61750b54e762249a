package ngxlua

import (
	"errors"
	"time"

	lua "github.com/yuin/gopher-lua"

	"upstreamd/internal/upstream"
)

// require "ngx.upstream" (lua-upstream-nginx-module), plus add_server,
// remove_server and set_peer_weight runtime extensions.
//
// get_servers lists the configured servers grouped by their config name
// (a name resolving to several addresses gives one entry whose addr is a
// table), primary servers first, then backup ones, in config order;
// "backup" and "down" are always present (down is the live value).
// Peers' "name" is the peer's socket address, as nginx's peer->name.

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
	oneName := func(L *lua.LState) (*upstream.Upstream, bool) {
		if L.GetTop() != 1 {
			L.RaiseError("exactly one argument expected")
		}
		u := v.findUpstream(L.CheckString(1))
		if u == nil {
			L.Push(lua.LNil)
			L.Push(lua.LString("upstream not found"))
			return nil, false
		}
		return u, true
	}
	reg("get_servers", func(L *lua.LState) int {
		u, ok := oneName(L)
		if !ok {
			return 2
		}
		snap := u.Snapshot()
		res := L.CreateTable(len(snap.Primary)+len(snap.Backup), 0)
		for _, list := range [][]*upstream.Peer{snap.Primary, snap.Backup} {
			var cur *lua.LTable
			var curName string
			var addrs []string
			flush := func() {
				if cur == nil {
					return
				}
				if len(addrs) == 1 {
					cur.RawSetString("addr", lua.LString(addrs[0]))
				} else {
					at := L.CreateTable(len(addrs), 0)
					for _, a := range addrs {
						at.Append(lua.LString(a))
					}
					cur.RawSetString("addr", at)
				}
				res.Append(cur)
			}
			for _, p := range list {
				s := p.Spec()
				if cur != nil && s.Name == curName {
					addrs = append(addrs, s.Addr)
					if s.Down {
						cur.RawSetString("down", lua.LTrue)
					}
					continue
				}
				flush()
				curName = s.Name
				addrs = []string{s.Addr}
				cur = L.CreateTable(0, 8)
				cur.RawSetString("name", lua.LString(s.Name))
				cur.RawSetString("weight", lua.LNumber(s.Weight))
				cur.RawSetString("max_fails", lua.LNumber(s.MaxFails))
				cur.RawSetString("fail_timeout", lua.LNumber(int64(s.FailTimeout/time.Second)))
				cur.RawSetString("backup", lua.LBool(s.Backup))
				cur.RawSetString("down", lua.LBool(s.Down))
				if s.MaxConns > 0 {
					cur.RawSetString("max_conns", lua.LNumber(s.MaxConns))
				}
			}
			flush()
		}
		L.Push(res)
		return 1
	})
	peers := func(backup bool) lua.LGFunction {
		return func(L *lua.LState) int {
			u, ok := oneName(L)
			if !ok {
				return 2
			}
			list := u.Snapshot().Peers(backup)
			res := L.CreateTable(len(list), 0)
			for i, p := range list {
				s := p.Spec()
				st := p.State()
				pt := L.CreateTable(0, 12)
				pt.RawSetString("id", lua.LNumber(i))
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
				res.Append(pt)
			}
			L.Push(res)
			return 1
		}
	}
	reg("get_primary_peers", peers(false))
	reg("get_backup_peers", peers(true))

	// peerOp validates (name, is_backup, id) and runs op.
	peerOp := func(L *lua.LState, op func(u *upstream.Upstream, backup bool, id int) error) int {
		name := L.CheckString(1)
		u := v.findUpstream(name)
		if u == nil {
			L.Push(lua.LNil)
			L.Push(lua.LString("upstream not found"))
			return 2
		}
		backup := lua.LVAsBool(L.Get(2))
		if backup && len(u.Snapshot().Backup) == 0 {
			L.Push(lua.LNil)
			L.Push(lua.LString("no backup peers"))
			return 2
		}
		id := L.CheckInt(3)
		if err := op(u, backup, id); err != nil {
			L.Push(lua.LNil)
			L.Push(lua.LString(upstreamErr(err)))
			return 2
		}
		L.Push(lua.LTrue)
		return 1
	}
	reg("set_peer_down", func(L *lua.LState) int {
		if L.GetTop() != 4 {
			L.RaiseError("exactly 4 arguments expected")
		}
		down := lua.LVAsBool(L.Get(4))
		return peerOp(L, func(u *upstream.Upstream, backup bool, id int) error {
			return u.SetDown(backup, id, down)
		})
	})
	reg("set_peer_weight", func(L *lua.LState) int {
		if L.GetTop() != 4 {
			L.RaiseError("exactly 4 arguments expected")
		}
		w := L.CheckInt(4)
		if w < 1 {
			L.ArgError(4, "weight must be positive")
		}
		return peerOp(L, func(u *upstream.Upstream, backup bool, id int) error {
			return u.SetWeight(backup, id, w)
		})
	})
	reg("remove_server", func(L *lua.LState) int {
		if L.GetTop() != 3 {
			L.RaiseError("exactly 3 arguments expected")
		}
		return peerOp(L, func(u *upstream.Upstream, backup bool, id int) error {
			return u.Remove(backup, id)
		})
	})
	reg("add_server", func(L *lua.LState) int {
		top := L.GetTop()
		if top < 2 || top > 3 {
			L.RaiseError("expecting 2 or 3 arguments")
		}
		name := L.CheckString(1)
		addr := L.CheckString(2)
		if addr == "" {
			L.ArgError(2, "empty server address")
		}
		spec := upstream.DefaultSpec(addr, "")
		if top == 3 && L.Get(3) != lua.LNil {
			opts := L.CheckTable(3)
			num := func(k string) (int, bool) {
				val := opts.RawGetString(k)
				if val == lua.LNil {
					return 0, false
				}
				n, ok := val.(lua.LNumber)
				if !ok {
					L.ArgError(3, "bad \""+k+"\" option: number expected, got "+val.Type().String())
				}
				return int(n), true
			}
			if n, ok := num("weight"); ok {
				spec.Weight = n
				if n < 1 {
					L.ArgError(3, "bad \"weight\" option")
				}
			}
			if n, ok := num("max_fails"); ok {
				spec.MaxFails = n
			}
			if val := opts.RawGetString("fail_timeout"); val != lua.LNil {
				n, ok := val.(lua.LNumber)
				if !ok {
					L.ArgError(3, "bad \"fail_timeout\" option: number expected, got "+val.Type().String())
				}
				spec.FailTimeout = time.Duration(float64(n) * float64(time.Second))
			}
			if n, ok := num("max_conns"); ok {
				spec.MaxConns = n
			}
			spec.Backup = lua.LVAsBool(opts.RawGetString("backup"))
			spec.Down = lua.LVAsBool(opts.RawGetString("down"))
		}
		u := v.findUpstream(name)
		if u == nil {
			L.Push(lua.LNil)
			L.Push(lua.LString("upstream not found"))
			return 2
		}
		id, err := u.Add(spec)
		if err != nil {
			L.Push(lua.LNil)
			L.Push(lua.LString(upstreamErr(err)))
			return 2
		}
		L.Push(lua.LNumber(id))
		return 1
	})
	reg("current_upstream_name", func(L *lua.LState) int {
		req := v.request(L)
		name := req.UpstreamName()
		if name == "" {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(lua.LString(name))
		return 1
	})
	return t
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

package ngxlua

import (
	"fmt"

	lua "github.com/yuin/gopher-lua"
)

// setupModules registers the built-in modules in package.preload:
// ngx.upstream, cjson, cjson.safe, ngx.re (split/opt), resty.core (a no-op:
// everything it provides is built in), and the LuaJIT "bit" library (also
// as global bit).
func (v *vm) setupModules() {
	L := v.L
	pre := func(name string, fn func() lua.LValue) {
		L.PreloadModule(name, func(L *lua.LState) int {
			L.Push(fn())
			return 1
		})
	}
	pre("ngx.upstream", func() lua.LValue { return v.upstreamModule() })
	pre("cjson", func() lua.LValue { return v.cjsonModule(false) })
	pre("cjson.safe", func() lua.LValue { return v.cjsonModule(true) })
	pre("ngx.re", func() lua.LValue {
		t := L.CreateTable(0, 2)
		re := v.ngx.RawGetString("re").(*lua.LTable)
		t.RawSetString("split", re.RawGetString("split"))
		t.RawSetString("opt", re.RawGetString("opt"))
		return t
	})
	for _, name := range []string{"resty.core", "resty.core.base", "resty.core.regex", "resty.core.shdict", "resty.core.time", "resty.core.var", "resty.core.ctx"} {
		pre(name, func() lua.LValue {
			t := L.CreateTable(0, 1)
			t.RawSetString("version", lua.LNumber(0.1))
			return t
		})
	}
	bit := v.bitModule()
	L.SetGlobal("bit", bit)
	pre("bit", func() lua.LValue { return bit })
}

// bitModule implements LuaJIT's bit library (32-bit two's complement).
func (v *vm) bitModule() *lua.LTable {
	L := v.L
	t := L.CreateTable(0, 12)
	tobit := func(L *lua.LState, n int) int32 {
		f := float64(L.CheckNumber(n))
		return int32(uint32(int64(f)))
	}
	push := func(L *lua.LState, x int32) int {
		L.Push(lua.LNumber(x))
		return 1
	}
	fold := func(op func(a, b int32) int32) lua.LGFunction {
		return func(L *lua.LState) int {
			r := tobit(L, 1)
			for i := 2; i <= L.GetTop(); i++ {
				r = op(r, tobit(L, i))
			}
			return push(L, r)
		}
	}
	reg := func(name string, fn lua.LGFunction) { t.RawSetString(name, L.NewFunction(fn)) }
	reg("tobit", func(L *lua.LState) int { return push(L, tobit(L, 1)) })
	reg("bnot", func(L *lua.LState) int { return push(L, ^tobit(L, 1)) })
	reg("band", fold(func(a, b int32) int32 { return a & b }))
	reg("bor", fold(func(a, b int32) int32 { return a | b }))
	reg("bxor", fold(func(a, b int32) int32 { return a ^ b }))
	reg("lshift", func(L *lua.LState) int { return push(L, int32(uint32(tobit(L, 1))<<(uint32(tobit(L, 2))&31))) })
	reg("rshift", func(L *lua.LState) int { return push(L, int32(uint32(tobit(L, 1))>>(uint32(tobit(L, 2))&31))) })
	reg("arshift", func(L *lua.LState) int { return push(L, tobit(L, 1)>>(uint32(tobit(L, 2))&31)) })
	reg("rol", func(L *lua.LState) int {
		x, n := uint32(tobit(L, 1)), uint32(tobit(L, 2))&31
		return push(L, int32(x<<n|x>>((32-n)&31)))
	})
	reg("ror", func(L *lua.LState) int {
		x, n := uint32(tobit(L, 1)), uint32(tobit(L, 2))&31
		return push(L, int32(x>>n|x<<((32-n)&31)))
	})
	reg("bswap", func(L *lua.LState) int {
		x := uint32(tobit(L, 1))
		return push(L, int32(x>>24|(x>>8)&0xff00|(x<<8)&0xff0000|x<<24))
	})
	reg("tohex", func(L *lua.LState) int {
		x := uint32(tobit(L, 1))
		n := 8
		if L.GetTop() >= 2 {
			n = L.CheckInt(2)
		}
		upper := n < 0
		if upper {
			n = -n
		}
		if n > 8 {
			n = 8
		}
		s := fmt.Sprintf("%08x", x)
		if upper {
			s = fmt.Sprintf("%08X", x)
		}
		L.Push(lua.LString(s[8-n:]))
		return 1
	})
	return t
}

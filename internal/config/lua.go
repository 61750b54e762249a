package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"upstreamd/internal/nginxconf"
)

// phase is a per-request Lua phase.
type phase int

const (
	phRewrite phase = iota
	phAccess
	phContent
	phHeaderFilter
	phBodyFilter
	phLog
	nPhases
)

var phaseNames = [nPhases]string{"rewrite", "access", "content", "header_filter", "body_filter", "log"}

func (s *Settings) phase(p phase) **LuaCode {
	switch p {
	case phRewrite:
		return &s.Rewrite
	case phAccess:
		return &s.Access
	case phContent:
		return &s.Content
	case phHeaderFilter:
		return &s.HeaderFilter
	case phBodyFilter:
		return &s.BodyFilter
	default:
		return &s.Log
	}
}

// luaLibDir is where the stock Lua 5.1 search path looks (what gopher-lua
// and LuaJIT use by default).
const (
	luaShareDir = "/usr/local/share/lua/5.1"
	luaLibDir   = "/usr/local/lib/lua/5.1"
)

// DefaultLuaPath is package.path when lua_package_path is not set, and what
// ";;" stands for in it: PREFIX/lualib first (where OpenResty keeps its
// Lua libraries), then Lua's own default.
func DefaultLuaPath(prefix string) string {
	lib := filepath.Join(prefix, "lualib")
	return lib + "/?.lua;" + lib + "/?/init.lua;./?.lua;" + luaShareDir + "/?.lua;" + luaShareDir + "/?/init.lua"
}

// DefaultLuaCPath is package.cpath when lua_package_cpath is not set (kept
// for compatibility: C modules cannot be loaded).
func DefaultLuaCPath(prefix string) string {
	return filepath.Join(prefix, "lualib") + "/?.so;./?.so;" + luaLibDir + "/?.so;" + luaLibDir + "/loadall.so"
}

func registerLua() {
	for ph := phase(0); ph < nPhases; ph++ {
		ctx := cHSL
		if ph == phContent {
			ctx = cLocation
		}
		registerLuaForms(phaseNames[ph], ctx, phaseHandler(ph))
	}
	registerLuaForms("init", cHTTP, hLuaInit)
	registerLuaForms("init_worker", cHTTP, hLuaInit)

	def("lua_package_path", cHTTP, 1, 1, hLuaPackagePath)
	def("lua_package_cpath", cHTTP, 1, 1, hLuaPackagePath)
	def("lua_code_cache", cHSL, 1, 1, hLuaCodeCache)
	def("lua_shared_dict", cHTTP, 2, 2, hLuaSharedDict)
	def("lua_socket_connect_timeout", cHSL, 1, 1, hTimeout(func(l *level) **time.Duration { return &l.luaConnectTimeout }))
	def("lua_socket_send_timeout", cHSL, 1, 1, hTimeout(func(l *level) **time.Duration { return &l.luaSendTimeout }))
	def("lua_socket_read_timeout", cHSL, 1, 1, hTimeout(func(l *level) **time.Duration { return &l.luaReadTimeout }))
	def("lua_socket_keepalive_timeout", cHSL, 1, 1, hTimeout(func(l *level) **time.Duration { return &l.luaKeepalive }))
	def("lua_socket_pool_size", cHSL, 1, 1, hLuaSocketPoolSize)
}

// registerLuaForms defines X_by_lua 'code', X_by_lua_block { code } and
// X_by_lua_file path.
func registerLuaForms(name string, ctx ctxSet, fn handler) {
	def(name+"_by_lua", ctx, 1, 1, fn)
	defBlock(name+"_by_lua_block", ctx, 0, 0, fn)
	def(name+"_by_lua_file", ctx, 1, 1, fn)
}

// luaCode builds the LuaCode of one *_by_lua* directive whose phase is
// called phaseName (the part before "_by_lua").
func (b *builder) luaCode(d *nginxconf.Directive, phaseName string) (*LuaCode, error) {
	c := &LuaCode{ConfFile: d.File, Line: d.Line}
	var src string
	switch {
	case strings.HasSuffix(d.Name, "_by_lua_block"):
		src = d.LuaBody
		if d.LuaLine > 0 {
			c.Line = d.LuaLine
		}
	default:
		src = d.Args[0]
	}
	if src == "" {
		return nil, errf(d, "invalid location config: no runnable Lua code")
	}
	if strings.HasSuffix(d.Name, "_by_lua_file") {
		path := src
		if !strings.Contains(path, "$") {
			path = b.full(path)
		}
		c.File, c.ChunkName, c.Line = path, path, 1
		return c, nil
	}
	c.Source = src
	c.ChunkName = fmt.Sprintf("%s_by_lua(%s:%d)", phaseName, filepath.Base(d.File), d.Line)
	return c, nil
}

func phaseHandler(ph phase) handler {
	return func(b *builder, s *scope, d *nginxconf.Directive) error {
		// The three forms share one slot per level.
		if err := s.lvl.once(d, phaseNames[ph]+"_by_lua"); err != nil {
			return err
		}
		c, err := b.luaCode(d, phaseNames[ph])
		if err != nil {
			return err
		}
		s.lvl.lua[ph] = c
		if ph == phContent {
			s.lvl.contentIsLua = true
		}
		return nil
	}
}

func hLuaInit(b *builder, s *scope, d *nginxconf.Directive) error {
	h := b.http
	name := strings.SplitN(d.Name, "_by_lua", 2)[0]
	if h.luaSeen[name] {
		return errDup(d)
	}
	h.luaSeen[name] = true
	c, err := b.luaCode(d, name)
	if err != nil {
		return err
	}
	if name == "init" {
		h.lua.Init = c
	} else {
		h.lua.InitWorker = c
	}
	return nil
}

// hLuaPackagePath handles lua_package_path and lua_package_cpath: ";;"
// stands for the default path and $prefix / ${prefix} for the prefix (with
// its trailing slash, as in ngx_lua).
func hLuaPackagePath(b *builder, s *scope, d *nginxconf.Directive) error {
	h := b.http
	if h.luaSeen[d.Name] {
		return errDup(d)
	}
	h.luaSeen[d.Name] = true
	dflt := DefaultLuaPath(b.prefix)
	if d.Name == "lua_package_cpath" {
		dflt = DefaultLuaCPath(b.prefix)
	}
	p := strings.ReplaceAll(d.Args[0], ";;", ";"+dflt+";")
	prefix := b.prefix + "/"
	p = strings.ReplaceAll(p, "${prefix}", prefix)
	p = strings.ReplaceAll(p, "$prefix", prefix)
	if d.Name == "lua_package_path" {
		h.lua.PackagePath = p
	} else {
		h.lua.PackageCPath = p
	}
	return nil
}

func hLuaCodeCache(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.lvl.once(d, d.Name); err != nil {
		return err
	}
	v, err := flag(d)
	if err != nil {
		return err
	}
	s.lvl.luaCodeCache = &v
	return nil
}

func hLuaSharedDict(b *builder, s *scope, d *nginxconf.Directive) error {
	h := b.http
	name := d.Args[0]
	if name == "" {
		return errf(d, `invalid lua shared dict name "%s"`, name)
	}
	n, err := ParseSize(d.Args[1])
	if err != nil || n <= 8191 {
		return errf(d, `invalid lua shared dict size "%s"`, d.Args[1])
	}
	for _, sd := range h.lua.SharedDicts {
		if sd.Name == name {
			return errf(d, `lua_shared_dict "%s" is already defined as "%s"`, name, sd.Name)
		}
	}
	h.lua.SharedDicts = append(h.lua.SharedDicts, SharedDict{Name: name, Size: n})
	return nil
}

func hLuaSocketPoolSize(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.lvl.once(d, d.Name); err != nil {
		return err
	}
	n, err := num(d, d.Args[0])
	if err != nil {
		return err
	}
	if n == 0 {
		return errInvalidNumber(d)
	}
	s.lvl.luaPoolSize = &n
	return nil
}

package app

import (
	"path/filepath"
	"testing"
)

// The three forms of every *_by_lua directive, init*, lua_package_path with
// require, and lua_code_cache on/off with files that change between
// requests.
func TestLuaDirectiveForms(t *testing.T) {
	conf := `
error_log stderr info;
events {}
http {
    lua_package_path "$prefix/lib/?.lua;;";
    lua_package_cpath "$prefix/clib/?.so;;";
    init_by_lua_file conf/init.lua;
    init_worker_by_lua 'ngx.log(ngx.INFO, "init worker ran in ", ngx.get_phase())';
    server {
        listen LISTEN;
        default_type text/plain;

        location /strings {
            rewrite_by_lua 'ngx.ctx.t = "rewrite"';
            access_by_lua 'ngx.ctx.t = ngx.ctx.t .. ",access"';
            content_by_lua 'ngx.say(ngx.ctx.t, ",content")';
            header_filter_by_lua 'ngx.header["X-HF"] = "string"';
            body_filter_by_lua 'ngx.arg[1] = ngx.arg[1]:gsub("content", "CONTENT")';
            log_by_lua 'ngx.log(ngx.INFO, "log string form ", ngx.ctx.t)';
        }
        location /files {
            rewrite_by_lua_file lua/rewrite.lua;
            access_by_lua_file lua/access.lua;
            content_by_lua_file lua/content.lua;
            header_filter_by_lua_file lua/header.lua;
            body_filter_by_lua_file lua/body.lua;
            log_by_lua_file lua/log.lua;
        }
        location /require {
            content_by_lua_block {
                local m = require "mymod"
                local d = require "deflib"
                ngx.say(m.hello(), " ", d.name, " ", package.cpath:find("/clib/?.so", 1, true) ~= nil, " ", init_global)
            }
        }
        location /require_missing { content_by_lua_block { require "no.such.module" } }
        location /cached { content_by_lua_file lua/cached.lua; }
        location /uncached {
            lua_code_cache off;
            content_by_lua_file lua/uncached.lua;
        }
    }
}`
	files := map[string]string{
		"conf/init.lua":     `init_global = "from init file"`,
		"lua/rewrite.lua":   `ngx.ctx.t = "rewrite"`,
		"lua/access.lua":    `ngx.ctx.t = ngx.ctx.t .. ",access"`,
		"lua/content.lua":   `ngx.say(ngx.ctx.t, ",content")`,
		"lua/header.lua":    `ngx.header["X-HF"] = "file"`,
		"lua/body.lua":      `if ngx.arg[2] then ngx.arg[1] = ngx.arg[1] .. "eof\n" end`,
		"lua/log.lua":       `ngx.log(ngx.INFO, "log file form ", ngx.ctx.t)`,
		"lib/mymod.lua":     "local _M = {}\nfunction _M.hello() return \"mymod hello\" end\nreturn _M\n",
		"lualib/deflib.lua": `return {name = "default path"}`,
		"lua/cached.lua":    `ngx.say("cached v1")`,
		"lua/uncached.lua":  "local m = require \"changing\"\nngx.say(\"uncached v1 \", m.v)\n",
		"lib/changing.lua":  `return {v = "mod v1"}`,
	}
	base, prefix, logs := startLuaServer(t, conf, files)
	runLuaCases(t, base, logs, []luaCase{
		{name: "by_lua string forms", path: "/strings", body: "rewrite,access,CONTENT\n",
			hdr: map[string]string{"X-HF": "string"}, logs: []string{"log string form rewrite,access", "init worker ran in init_worker"}},
		{name: "by_lua_file forms", path: "/files", body: "rewrite,access,content\neof\n",
			hdr: map[string]string{"X-HF": "file"}, logs: []string{"[lua] log.lua:1: log file form rewrite,access"}},
		{name: "lua_package_path and require", path: "/require", body: "mymod hello default path true from init file\n"},
		{name: "require of a missing module", path: "/require_missing", status: 500,
			logs: []string{"module no.such.module not found"}},
		{name: "code cache on", path: "/cached", body: "cached v1\n"},
		{name: "code cache off", path: "/uncached", body: "uncached v1 mod v1\n"},
	})
	writeFile(t, filepath.Join(prefix, "lua/cached.lua"), `ngx.say("cached v2")`)
	writeFile(t, filepath.Join(prefix, "lua/uncached.lua"), "local m = require \"changing\"\nngx.say(\"uncached v2 \", m.v)\n")
	writeFile(t, filepath.Join(prefix, "lib/changing.lua"), `return {v = "mod v2"}`)
	runLuaCases(t, base, logs, []luaCase{
		{name: "code cache on keeps the compiled file", path: "/cached", body: "cached v1\n"},
		{name: "code cache off re-reads file and modules", path: "/uncached", body: "uncached v2 mod v2\n"},
	})
}

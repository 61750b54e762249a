package nginxconf

import (
	"strings"
	"testing"
	"time"
)

func TestLuaBodies(t *testing.T) {
	tests := []struct {
		name, body string
	}{
		{"empty", ""},
		{"plain", " ngx.say('hi') "},
		{"nested tables", "\n local t = {a = {b = {}}, {1}}\n ngx.say(#t)\n"},
		{"brace in double quotes", ` ngx.say("}") `},
		{"brace in single quotes", ` ngx.say('}{') `},
		{"escaped quote", ` ngx.say("\"}") ngx.say('\'}') `},
		{"escaped backslash before quote", ` ngx.say("\\") ngx.say("}") `},
		{"other quote inside string", ` ngx.say("it's }") ngx.say('say "}"') `},
		{"escaped newline in string", " ngx.say(\"a\\\n}\") "},
		{"long string", " local s = [[ } { ]] "},
		{"long string with level", " local s = [==[ ]] } ]=] ]==] "},
		{"multi-line long string", " local s = [[\n}\n}\n]] "},
		{"line comment", " -- a } here\n ngx.say(1)\n"},
		{"line comment with quote", " -- it's } fine\n"},
		{"long comment", " --[[ } \n } ]] x = 1 "},
		{"long comment with level", " --[==[ ]] } ]==] x = 1 "},
		{"comment with single bracket", " --[ } \n"},
		{"comment at end before brace", " x = 1 -- done\n"},
		{"indexing is not a long bracket", " t[1] = t[ [=[}]=] ] "},
		{"minus is not a comment", " x = 1 - -1 "},
		{"unterminated quote is an ordinary byte", " x = \"{ \n } "},
		{"escaped quote in unterminated string", " x = \"\\\" {\n } "},
		{"nginx-looking text", " ngx.say('location / { return 200; }') "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "content_by_lua_block {" + tt.body + "}\nafter;"
			ds, err := Parse("c.conf", []byte(src))
			if err != nil {
				t.Fatalf("Parse(%q): %v", src, err)
			}
			if len(ds) != 2 || ds[1].Name != "after" {
				t.Fatalf("Parse(%q) =\n%s", src, outline(ds))
			}
			d := ds[0]
			if d.LuaBody != tt.body {
				t.Errorf("LuaBody = %q, want %q", d.LuaBody, tt.body)
			}
			if !d.IsBlock || d.Block != nil || d.LuaLine != 1 {
				t.Errorf("IsBlock=%v Block=%v LuaLine=%d", d.IsBlock, d.Block, d.LuaLine)
			}
		})
	}
}

func TestLuaPositions(t *testing.T) {
	src := `http {
    init_by_lua_block
    {
        local s = "}"
    }
    server {
        header_filter_by_lua_block { ngx.header.x = [[
}]] }
        listen 80;
    }
}
`
	ds, err := Parse("c.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := `c.conf:1 "http" {
  c.conf:2 "init_by_lua_block" lua@3 "\n        local s = \"}\"\n    "
  c.conf:6 "server" {
    c.conf:7 "header_filter_by_lua_block" lua@7 " ngx.header.x = [[\n}]] "
    c.conf:9 "listen" "80"
`
	if got := outline(ds); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// Only directives named *_by_lua_block get a Lua body; other blocks are
// parsed as directives even when they look like Lua.
func TestLuaSuffixOnly(t *testing.T) {
	ds, err := Parse("c.conf", []byte(`content_by_lua_file x; by_lua_block_x { a; }`))
	if err != nil {
		t.Fatal(err)
	}
	want := `c.conf:1 "content_by_lua_file" "x"
c.conf:1 "by_lua_block_x" {
  c.conf:1 "a"
`
	if got := outline(ds); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// A long line of unterminated strings must not make scanning quadratic.
func TestLuaUnterminatedStringsLinear(t *testing.T) {
	body := " x = " + strings.Repeat(`\"'`, 200000) + "\n"
	start := time.Now()
	ds, err := Parse("c.conf", []byte("init_by_lua_block {"+body+"}"))
	if err != nil {
		t.Fatal(err)
	}
	if ds[0].LuaBody != body {
		t.Errorf("body mismatch")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

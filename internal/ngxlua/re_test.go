package ngxlua

import (
	"strings"
	"testing"
)

func TestRegex(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"match", `local m = ngx.re.match("hello, 1234", "([0-9])[0-9]+") ngx.print(m[0], " ", m[1])`, "1234 1"},
		{"no match", `ngx.print(tostring(ngx.re.match("hello", "\\d")))`, "nil"},
		{"named", `local m = ngx.re.match("hello, 1234", "(?<num>\\d+)") ngx.print(m.num, " ", m[1])`, "1234 1234"},
		{"unmatched false", `local m = ngx.re.match("ab", "(a)(x)?(b)") ngx.print(m[1], tostring(m[2]), m[3])`, "afalseb"},
		{"case", `local m = ngx.re.match("HELLO", "hello", "i") ngx.print(m[0])`, "HELLO"},
		{"ctx pos", `local ctx = {pos = 2} local m = ngx.re.match("1234, hello", "[0-9]+", "", ctx) ngx.print(m[0], " ", ctx.pos)`, "234 5"},
		{"anchored", `ngx.print(tostring(ngx.re.match("xa", "a", "a")), " ", ngx.re.match("ax", "a", "a")[0])`, "nil a"},
		{"extended", `ngx.print(ngx.re.match("abc", [[ a  b # comment
 c ]], "x")[0])`, "abc"},
		{"multiline", `ngx.print(ngx.re.match("a\nb", "^b$", "m")[0])`, "b"},
		{"dotall", `ngx.print(ngx.re.match("a\nb", "a.b", "s")[0])`, "a\nb"},
		{"find", `ngx.print(ngx.re.find("hello, 1234", "([0-9])([0-9]+)", "jo"))`, "811"},
		{"find nth", `ngx.print(ngx.re.find("hello, 1234", "([0-9])([0-9]+)", "jo", nil, 2))`, "911"},
		{"gmatch", `local out = {} for m in ngx.re.gmatch("hello, world", "([a-z]+)", "i") do out[#out+1] = m[0] end ngx.print(table.concat(out, "|"))`, "hello|world"},
		{"sub", `ngx.print(ngx.re.sub("hello, 1234", "([0-9])[0-9]", "[$0][$1]"))`, "hello, [12][1]341"},
		{"gsub", `ngx.print(ngx.re.gsub("hello, world", "([a-z])[a-z]+", "[$0,$1]", "i"))`, "[hello,h], [world,w]2"},
		{"gsub braces dollar", `ngx.print(ngx.re.gsub("abc", "b", "${0}$$"))`, "ab$c1"},
		{"gsub func", `ngx.print(ngx.re.gsub("hello, world", "([a-z])[a-z]+", function(m) return "[" .. m[0] .. "," .. m[1] .. "]" end, "i"))`, "[hello,h], [world,w]2"},
		{"gsub anchored ^", `ngx.print(ngx.re.gsub("aaa", "^a", "b"))`, "baa1"},
		{"gsub empty matches", `ngx.print(ngx.re.gsub("abc", "x*", "-"))`, "-a-b-c-4"},
		{"bad template", `local s, n, err = ngx.re.sub("abc", "b", "$x") ngx.print(tostring(s), tostring(n), err)`, "nilnilfailed to compile the replacement template"},
		{"lookahead unsupported", `local m, err = ngx.re.match("abc", "a(?=b)") ngx.print(tostring(m), " ", err)`, "nil failed to compile regex \"a(?=b)\": invalid or unsupported Perl syntax: `(?=`"},
		{"bad flag", `local ok, err = pcall(ngx.re.match, "abc", "a", "z") ngx.print(ok, " ", err)`, `false content_by_lua(nginx.conf:10):1: unknown flag "z" (flags "z")`},
		{"split", `local res = require("ngx.re").split("a,b,,c", ",") ngx.print(#res, table.concat(res, "|"))`, "4a|b||c"},
		{"split max", `local res = ngx.re.split("a,b,c", ",", nil, nil, 2) ngx.print(#res, table.concat(res, "|"))`, "2a|b,c"},
		{"\\h", `ngx.print(ngx.re.match("a \tb", "a\\h+b")[0] == "a \tb")`, "true"},
	}
	e, _ := newTestEngine(t, Options{})
	for _, tt := range tests {
		r := newFakeReq()
		if got := runOK(t, e, r, tt.src); got != tt.want {
			t.Errorf("%s: got %q want %q", tt.name, got, tt.want)
		}
	}
}

func TestCjson(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"encode scalars", `local cjson = require "cjson" ngx.print(cjson.encode({1, "a/b", true, cjson.null, 1.5}))`, `[1,"a\/b",true,null,1.5]`},
		{"encode object sorted", `local cjson = require "cjson" ngx.print(cjson.encode({b = 1, a = {c = "x\n"}}))`, `{"a":{"c":"x\n"},"b":1}`},
		{"empty", `local cjson = require "cjson" ngx.print(cjson.encode({}), cjson.encode(cjson.empty_array), cjson.encode(setmetatable({}, cjson.empty_array_mt)))`, `{}[][]`},
		{"empty as array", `local cjson = require "cjson" cjson.encode_empty_table_as_object(false) ngx.print(cjson.encode({a = {}}))`, `{"a":[]}`},
		{"null equal", `local cjson = require "cjson" ngx.print(tostring(cjson.null == ngx.null), cjson.encode(ngx.null))`, "truenull"},
		{"sparse", `local cjson = require "cjson" local ok, err = pcall(cjson.encode, {[1] = 1, [20] = 2}) ngx.print(err)`, "content_by_lua(nginx.conf:10):1: Cannot serialise table: excessively sparse array"},
		{"small sparse ok", `local cjson = require "cjson" ngx.print(cjson.encode({[1] = 1, [3] = 3}))`, "[1,null,3]"},
		{"func", `local cjson = require "cjson.safe" ngx.print(select(2, cjson.encode({f = print})))`, "Cannot serialise function: type not supported"},
		{"number keys", `local cjson = require "cjson" ngx.print(cjson.encode({[1] = "a", x = 1}))`, `{"1":"a","x":1}`},
		{"decode", `local cjson = require "cjson" local t = cjson.decode('{"a":[1,2,{"b":null}],"s":"\\u00e9\\ud83d\\ude00\\/","t":true,"n":-1.5e2}')
ngx.print(t.a[1], t.a[2], tostring(t.a[3].b == cjson.null), t.s, tostring(t.t), t.n)`, "12trueé😀/true-150"},
		{"decode error", `local cjson = require "cjson" local ok, err = pcall(cjson.decode, "{bad") ngx.print(err)`, "content_by_lua(nginx.conf:10):1: Expected object key string but found invalid token at character 2"},
		{"decode empty", `local cjson = require "cjson.safe" local v, err = cjson.decode("") ngx.print(tostring(v), " ", err)`, "nil Expected value but found T_END at character 1"},
		{"decode trailing", `local cjson = require "cjson.safe" local v, err = cjson.decode("[1] x") ngx.print(err)`, "Expected the end but found invalid token at character 5"},
		{"roundtrip", `local cjson = require "cjson" ngx.print(cjson.encode(cjson.decode('{"k":[1,"two",{"3":false}]}')))`, `{"k":[1,"two",{"3":false}]}`},
		{"slash off", `local cjson = require("cjson").new() cjson.encode_escape_forward_slash(false) ngx.print(cjson.encode("a/b"))`, `"a/b"`},
		{"depth", `local cjson = require "cjson.safe" local t = {} local c = t for i = 1, 1100 do c[1] = {} c = c[1] end ngx.print(select(2, cjson.encode(t)))`, "Cannot serialise, excessive nesting (1001)"},
	}
	e, _ := newTestEngine(t, Options{})
	for _, tt := range tests {
		r := newFakeReq()
		if got := runOK(t, e, r, tt.src); got != tt.want {
			t.Errorf("%s: got %q want %q", tt.name, got, tt.want)
		}
	}
}

func TestBitAndMisc(t *testing.T) {
	e, _ := newTestEngine(t, Options{Prefix: "/usr/local/openresty/nginx"})
	r := newFakeReq()
	body := runOK(t, e, r, `local bit = require "bit"
ngx.say(bit.band(0xff, 0x0f), " ", bit.bor(1, 2), " ", bit.bxor(3, 1), " ", bit.lshift(1, 4), " ", bit.rshift(-1, 28), " ", bit.tohex(255, 4), " ", bit.bnot(0))
ngx.say(ngx.config.prefix(), " ", ngx.config.subsystem, " ", ngx.worker.id(), " ", ngx.worker.count(), " ", type(ngx.worker.pid()), " ", tostring(ngx.worker.exiting()))
require "resty.core"
ngx.say(tostring(ngx.is_subrequest), " ", tostring(ngx.headers_sent))`)
	want := "15 3 2 16 15 00ff -1\n/usr/local/openresty/nginx/ http 0 1 number false\nfalse true\n"
	if body != want {
		t.Fatalf("got %q want %q", body, want)
	}
	if strings.Contains(body, "error") {
		t.Fatal(body)
	}
}

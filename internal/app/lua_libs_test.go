package app

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"

	"upstreamd/internal/testutil"
)

// lineServer is a loopback TCP server speaking a line protocol for the
// cosocket tests: "ping" → "pong\n", "data" → a stream with a boundary,
// "slow" → nothing, "bye" → "bye-bye" and close.
func lineServer(t *testing.T) string {
	t.Helper()
	return testutil.TCPServer(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch strings.TrimSpace(line) {
			case "ping":
				c.Write([]byte("pong\n"))
			case "data":
				c.Write([]byte("12345abc--END--tail"))
			case "bye":
				c.Write([]byte("bye-bye"))
				return
			}
		}
	})
}

// Encoding functions, ngx.re, cjson and cosockets, through real requests.
func TestLuaLibraries(t *testing.T) {
	tcp := lineServer(t)
	host, port, _ := net.SplitHostPort(tcp)
	conf := fmt.Sprintf(`
error_log stderr info;
events {}
http {
    server {
        listen LISTEN;
        default_type text/plain;

        location /encoding {
            content_by_lua_block {
                ngx.say(ngx.md5("hello"), " ", #ngx.md5_bin("hello"), " ", ngx.encode_base64(ngx.sha1_bin("hello")))
                ngx.say(ngx.crc32_short("hello"), " ", ngx.crc32_long("hello"))
                ngx.say(ngx.encode_base64("hello"), " ", ngx.decode_base64("aGVsbG8="), " ", tostring(ngx.decode_base64("!!")))
                ngx.say(ngx.escape_uri("a b/c?d=é"), " ", ngx.unescape_uri("a%%20b%%2Fc"))
                ngx.say(ngx.encode_args({a = 1, b = {"x", "y z"}, c = true, d = false}))
                local args = ngx.decode_args("a=1&a=2&b&c=x%%20y")
                ngx.say(args.a[1], args.a[2], " ", tostring(args.b), " ", args.c)
                ngx.say(ngx.quote_sql_str("it's \"q\"\n\\"))
                ngx.say(ngx.encode_base64(ngx.hmac_sha1("key", "msg")))
            }
        }
        location /md5_bad { content_by_lua_block { ngx.md5({}) } }
        location /encode_args_bad { content_by_lua_block { ngx.encode_args({a = print}) } }

        location /re {
            content_by_lua_block {
                local m = ngx.re.match("hello 123 world", [[(?<word>[a-z]+) (\d+)]], "jo")
                ngx.say(m[0], "|", m[1], "|", m[2], "|", m.word)
                ngx.say(ngx.re.find("hello 123", [[\d+]], "jo"))
                local out = {}
                for mm in ngx.re.gmatch("a1b22c333", [[\d+]]) do out[#out + 1] = mm[0] end
                ngx.say(table.concat(out, ","))
                ngx.say(ngx.re.sub("hello world", "o", "0"))
                ngx.say(ngx.re.gsub("hello world", "(o)", "[$1]"))
                ngx.say(ngx.re.gsub("abc", "[a-c]", function(m) return m[0]:upper() end))
                ngx.say(ngx.re.match("HeLLo", "hello", "i")[0], " ", tostring(ngx.re.match("abc", "x")))
                local ctx = {pos = 3}
                ngx.say(ngx.re.find("abcabc", "a", "jo", ctx), " ", ctx.pos)
                local parts = ngx.re.split("a,b,,c", ",")
                ngx.say(#parts, " ", table.concat(parts, "|"))
            }
        }
        location /re_bad_pattern {
            content_by_lua_block {
                local m, err = ngx.re.match("x", "(")
                ngx.say(tostring(m), " ", err)
                local m2, err2 = ngx.re.match("x", "(?=x)")
                ngx.say(tostring(m2), " ", err2)
                local s, n, err3 = ngx.re.gsub("x", "(", "y")
                ngx.say(tostring(s), " ", tostring(n), " ", err3)
            }
        }
        location /re_bad_flag { content_by_lua_block { ngx.re.match("x", "x", "Q") } }

        location /cjson {
            content_by_lua_block {
                local cjson = require "cjson"
                ngx.say(cjson.encode({1, 2, "x", true, cjson.null}))
                ngx.say(cjson.encode({a = {b = 1}}))
                ngx.say(cjson.encode(cjson.empty_array), cjson.encode({}))
                local t = cjson.decode([[{"a":[1,2,null],"s":"\u00e9"}]])
                ngx.say(#t.a, " ", t.a[3] == cjson.null, " ", t.s, " ", cjson.null == ngx.null)
                local safe = require "cjson.safe"
                local v, err = safe.decode("{bad")
                ngx.say(tostring(v), " ", err)
            }
        }
        location /cjson_decode_bad { content_by_lua_block { require("cjson").decode("{bad") } }
        location /cjson_encode_bad { content_by_lua_block { require("cjson").encode({f = print}) } }

        location /sock {
            content_by_lua_block {
                local sock = ngx.socket.tcp()
                sock:settimeout(2000)
                local ok, err = sock:connect("%[1]s", %[2]s)
                if not ok then ngx.say("connect failed: ", err) return end
                ngx.say("reused ", sock:getreusedtimes())
                ngx.say("sent ", sock:send("ping\n"))
                ngx.say(sock:receive())
                sock:send({"da", "ta\n"})
                ngx.say(sock:receive(5))
                local reader = sock:receiveuntil("--END--")
                ngx.say(reader())
                ngx.say(sock:receive(4))
                ngx.say(sock:setkeepalive())
            }
        }
        location /sock_all {
            content_by_lua_block {
                local sock = ngx.socket.connect("%[1]s", %[2]s)
                sock:send("bye\n")
                ngx.say(sock:receive("*a"))
                ngx.say(sock:close())
                ngx.say(sock:send("x"))
            }
        }
        location /sock_timeout {
            content_by_lua_block {
                local sock = ngx.socket.tcp()
                sock:settimeouts(1000, 1000, 50)
                assert(sock:connect("%[1]s", %[2]s))
                sock:send("slow\n")
                ngx.say(sock:receive())
                sock:close()
            }
        }
        location /sock_timeout_directive {
            lua_socket_read_timeout 50ms;
            content_by_lua_block {
                local sock = ngx.socket.tcp()
                assert(sock:connect("%[1]s", %[2]s))
                sock:send("slow\n")
                ngx.say(sock:receive())
            }
        }
        location /sock_refused {
            content_by_lua_block { ngx.say(ngx.socket.tcp():connect("127.0.0.1", %[3]s)) }
        }
        location /sock_unconnected { content_by_lua_block { ngx.say(ngx.socket.tcp():send("x")) } }
        location /sock_bad_pattern {
            content_by_lua_block {
                local sock = ngx.socket.tcp()
                assert(sock:connect("%[1]s", %[2]s))
                sock:receive("*x")
            }
        }
        location /sock_in_log {
            content_by_lua_block { ngx.say("ok") }
            log_by_lua_block { ngx.socket.tcp() }
        }
    }
}`, host, port, strings.Split(deadAddr(t), ":")[1])
	base, _, logs := startLuaServer(t, conf, nil)
	runLuaCases(t, base, logs, []luaCase{
		{name: "encoding", path: "/encoding", body: "5d41402abc4b2a76b9719d911017c592 16 qvTGHdzF6KLavt4PO0gs2a6pQ00=\n" +
			"907060870 907060870\n" +
			"aGVsbG8= hello nil\n" +
			"a%20b%2Fc%3Fd%3D%C3%A9 a b/c\n" +
			"a=1&b=x&b=y%20z&c\n" +
			"12 true x y\n" +
			`'it\'s \"q\"\n\\'` + "\n" +
			"ECkAtyt78QMe7Ha0gEtmBSN2iWs=\n"},
		{name: "md5 bad argument", path: "/md5_bad", status: 500, logs: []string{"bad argument #1 to 'md5' (string expected, got table)"}},
		{name: "encode_args bad value", path: "/encode_args_bad", status: 500, logs: []string{"attempt to use function as query arg value"}},
		{name: "ngx.re", path: "/re", body: "hello 123|hello|123|hello\n79\n1,22,333\nhell0 world1\nhell[o] w[o]rld2\nABC3\nHeLLo nil\n4 5\n4 a|b||c\n"},
		{name: "ngx.re bad patterns give nil, err", path: "/re_bad_pattern",
			has: []string{"nil failed to compile regex \"(\"", "nil failed to compile regex \"(?=x)\"", "nil nil failed to compile regex"}},
		{name: "ngx.re unknown flag", path: "/re_bad_flag", status: 500, logs: []string{`unknown flag "Q"`}},
		{name: "cjson", path: "/cjson", body: "[1,2,\"x\",true,null]\n{\"a\":{\"b\":1}}\n[]{}\n3 true é true\n" +
			"nil Expected object key string but found invalid token at character 2\n"},
		{name: "cjson decode error", path: "/cjson_decode_bad", status: 500,
			logs: []string{"Expected object key string but found invalid token at character 2"}},
		{name: "cjson encode error", path: "/cjson_encode_bad", status: 500,
			logs: []string{"Cannot serialise function: type not supported"}},
		{name: "cosocket round trip", path: "/sock", body: "reused 0\nsent 5\npong\n12345\nabc\ntail\n1\n"},
		{name: "cosocket keepalive reuse", path: "/sock", body: "reused 1\nsent 5\npong\n12345\nabc\ntail\n1\n"},
		{name: "cosocket receive all and close", path: "/sock_all", body: "bye-bye\n1\nnilclosed\n"},
		{name: "cosocket read timeout", path: "/sock_timeout", body: "niltimeout\n",
			logs: []string{"lua tcp socket read timed out"}},
		{name: "lua_socket_read_timeout", path: "/sock_timeout_directive", body: "niltimeout\n"},
		{name: "cosocket connection refused", path: "/sock_refused", body: "nilconnection refused\n"},
		{name: "cosocket not connected", path: "/sock_unconnected", body: "nilclosed\n"},
		{name: "cosocket bad pattern", path: "/sock_bad_pattern", status: 500, logs: []string{"bad pattern argument"}},
		{name: "cosocket in log phase", path: "/sock_in_log", body: "ok\n",
			logs: []string{"API disabled in the context of log_by_lua*"}},
	})
}

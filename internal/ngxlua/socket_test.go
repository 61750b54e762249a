package ngxlua

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"upstreamd/internal/testutil"
)

// echoServer answers each line "PING x" with "PONG x\r\n", "BIG" with a
// 10-byte body, "MULTI" with "a--b--c--", "QUIT" closes.
func echoServer(t *testing.T) (port int, accepted *atomic.Int32) {
	t.Helper()
	accepted = &atomic.Int32{}
	addr := testutil.TCPServer(t, func(c net.Conn) {
		accepted.Add(1)
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case strings.HasPrefix(line, "PING"):
				c.Write([]byte("PONG" + line[4:] + "\r\n"))
			case line == "BIG":
				c.Write([]byte("0123456789"))
			case line == "MULTI":
				c.Write([]byte("a--b--ccccc--"))
			case line == "QUIT":
				c.Write([]byte("bye"))
				return
			}
		}
	})
	_, p, _ := net.SplitHostPort(addr)
	port, _ = strconv.Atoi(p)
	return port, accepted
}

func TestCosocket(t *testing.T) {
	port, accepted := echoServer(t)
	e, _ := newTestEngine(t, Options{})
	src := `local port = ` + strconv.Itoa(port) + `
local sock = ngx.socket.tcp()
sock:settimeout(1000)
local ok, err = sock:connect("127.0.0.1", port)
ngx.say("connect: ", ok, " ", err, " reused ", sock:getreusedtimes())
ngx.say("send: ", sock:send({"PING", " 1", "\n"}))
ngx.say("line: ", sock:receive())
sock:send("BIG\n")
ngx.say("n: ", sock:receive(4), " ", sock:receive("6"))
sock:send("MULTI\n")
local it = sock:receiveuntil("--")
ngx.say("until: ", it(), " ", it())
local it2 = sock:receiveuntil("--")
local parts = {}
while true do
  local d, err = it2(2)
  if not d then break end
  parts[#parts+1] = d
end
ngx.say("sized: ", table.concat(parts, "|"))
ngx.say("keepalive: ", sock:setkeepalive())
`
	r := newFakeReq()
	body := runOK(t, e, r, src)
	want := "connect: 1 nil reused 0\nsend: 7\nline: PONG 1\nn: 0123 456789\nuntil: a b\nsized: cc|cc|c\nkeepalive: 1\n"
	if body != want {
		t.Fatalf("got %q\nwant %q", body, want)
	}
	// second request reuses the pooled connection
	r = newFakeReq()
	body = runOK(t, e, r, `local sock = ngx.socket.tcp()
assert(sock:connect("127.0.0.1", `+strconv.Itoa(port)+`))
ngx.say(sock:getreusedtimes())
sock:send("QUIT\n")
ngx.say(sock:receive("*a"))
local d, err, partial = sock:receive()
ngx.say(tostring(d), " ", err)
ngx.say(select(2, sock:close()))`)
	if body != "1\nbye\nnil closed\nclosed\n" {
		t.Fatalf("%q", body)
	}
	if accepted.Load() != 1 {
		t.Fatalf("accepted %d", accepted.Load())
	}
	// errors
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r = newFakeReq()
	body = runOK(t, e, r, `local sock = ngx.socket.tcp()
ngx.say(select(2, sock:connect("127.0.0.1", `+strconv.Itoa(dead)+`)))
local s2 = ngx.socket.tcp()
s2:settimeout(50)
assert(s2:connect("127.0.0.1", `+strconv.Itoa(port)+`))
local d, err, partial = s2:receive()
ngx.say(tostring(d), " ", err, " [", partial, "]")
ngx.say(select(2, s2:send("x")))`)
	if !strings.HasPrefix(body, "connection refused\nnil timeout []\n") {
		t.Fatalf("%q", body)
	}
}

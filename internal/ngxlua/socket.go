package ngxlua

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"upstreamd/internal/errlog"
)

// ngx.socket.tcp cosockets. Operations block the calling goroutine (each
// request runs on its own goroutine) with the socket's timeouts and are
// aborted when the request's context ends. Keepalive pools are per Engine,
// keyed by the pool name (default "host:port" or the unix socket path).

const defaultSocketTimeout = 60 * time.Second

// SocketConfig is the lua_socket_* settings in effect for a request.
type SocketConfig struct {
	ConnectTimeout, SendTimeout, ReadTimeout, KeepaliveTimeout time.Duration
	PoolSize                                                   int
}

// SocketConfigurer is optionally implemented by a Request to give its
// location's lua_socket_* directives; without it (and in timers) nginx's
// defaults apply: 60s timeouts, pools of 30.
type SocketConfigurer interface{ SocketConfig() SocketConfig }

func (v *vm) socketConfig() SocketConfig {
	c := SocketConfig{defaultSocketTimeout, defaultSocketTimeout, defaultSocketTimeout, defaultSocketTimeout, 30}
	if sc, ok := v.req.(SocketConfigurer); ok {
		got := sc.SocketConfig()
		pick := func(d *time.Duration, x time.Duration) {
			if x > 0 {
				*d = x
			}
		}
		pick(&c.ConnectTimeout, got.ConnectTimeout)
		pick(&c.SendTimeout, got.SendTimeout)
		pick(&c.ReadTimeout, got.ReadTimeout)
		pick(&c.KeepaliveTimeout, got.KeepaliveTimeout)
		if got.PoolSize > 0 {
			c.PoolSize = got.PoolSize
		}
	}
	return c
}

type tcpSock struct {
	conn      net.Conn
	r         *bufio.Reader
	key       string
	reused    int
	connectTO time.Duration
	sendTO    time.Duration
	readTO    time.Duration
	untilBusy bool
	cfg       SocketConfig // the directives' values, for 0/nil arguments
}

type pooledConn struct {
	conn   net.Conn
	r      *bufio.Reader
	reused int
	timer  *time.Timer
}

type connPool struct {
	mu    sync.Mutex
	conns map[string][]*pooledConn
}

func (p *connPool) get(key string) *pooledConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.conns[key]
	if len(list) == 0 {
		return nil
	}
	pc := list[len(list)-1]
	p.conns[key] = list[:len(list)-1]
	if pc.timer != nil {
		pc.timer.Stop()
	}
	return pc
}

func (p *connPool) put(key string, pc *pooledConn, idle time.Duration, size int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		p.conns = make(map[string][]*pooledConn)
	}
	list := p.conns[key]
	if len(list) >= size {
		// drop the oldest
		old := list[0]
		if old.timer != nil {
			old.timer.Stop()
		}
		old.conn.Close()
		list = list[1:]
	}
	if idle > 0 {
		pc.timer = time.AfterFunc(idle, func() {
			p.mu.Lock()
			l := p.conns[key]
			for i, c := range l {
				if c == pc {
					p.conns[key] = append(l[:i:i], l[i+1:]...)
					break
				}
			}
			p.mu.Unlock()
			pc.conn.Close()
		})
	}
	p.conns[key] = append(list, pc)
}

func (p *connPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.conns {
		for _, pc := range l {
			if pc.timer != nil {
				pc.timer.Stop()
			}
			pc.conn.Close()
		}
	}
	p.conns = nil
}

func (v *vm) sockContext() context.Context {
	if v.req != nil {
		return v.req.Context()
	}
	return context.Background()
}

// sockErr maps Go network errors to ngx_lua's error strings.
func sockErr(err error) string {
	if err == nil {
		return ""
	}
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "closed"
	}
	s := err.Error()
	switch {
	case strings.Contains(s, "connection refused"):
		return "connection refused"
	case strings.Contains(s, "connection reset"):
		return "connection reset by peer"
	case strings.Contains(s, "broken pipe"):
		return "broken pipe"
	case strings.Contains(s, "no such host"):
		return "no such host"
	}
	return s
}

// sockErr is sockErr plus the error-log line ngx_lua writes for timeouts
// (lua_socket_log_errors is on by default): "lua tcp socket read timed out".
func (v *vm) sockErr(err error, op string) string {
	e := sockErr(err)
	if e == "timeout" {
		v.logMsg(errlog.Error, "lua tcp socket "+op+" timed out")
	}
	return e
}

func (v *vm) newSocket() *lua.LTable {
	L := v.L
	t := L.CreateTable(0, 3)
	methods := L.CreateTable(0, 16)
	meta := L.CreateTable(0, 2)
	meta.RawSetString("__index", methods)
	meta.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		L.Push(lua.LString("tcp socket"))
		return 1
	}))
	newSock := func(L *lua.LState) *lua.LUserData {
		ud := L.NewUserData()
		c := v.socketConfig()
		ud.Value = &tcpSock{connectTO: c.ConnectTimeout, sendTO: c.SendTimeout, readTO: c.ReadTimeout, cfg: c}
		ud.Metatable = meta
		return ud
	}
	t.RawSetString("tcp", L.NewFunction(func(L *lua.LState) int {
		v.check(L, mRACTimer)
		L.Push(newSock(L))
		return 1
	}))
	t.RawSetString("connect", L.NewFunction(func(L *lua.LState) int {
		v.check(L, mRACTimer)
		ud := newSock(L)
		L.Insert(ud, 1)
		n := v.sockConnect(L)
		if n == 1 {
			L.Push(ud)
			return 1
		}
		return n
	}))
	reg := func(name string, fn lua.LGFunction) { methods.RawSetString(name, L.NewFunction(fn)) }
	reg("connect", v.sockConnect)
	reg("settimeout", func(L *lua.LState) int {
		s := checkSock(L)
		s.connectTO = msDuration(L, 2, s.cfg.ConnectTimeout)
		s.sendTO = msDuration(L, 2, s.cfg.SendTimeout)
		s.readTO = msDuration(L, 2, s.cfg.ReadTimeout)
		return 0
	})
	reg("settimeouts", func(L *lua.LState) int {
		s := checkSock(L)
		s.connectTO = msDuration(L, 2, s.cfg.ConnectTimeout)
		s.sendTO = msDuration(L, 3, s.cfg.SendTimeout)
		s.readTO = msDuration(L, 4, s.cfg.ReadTimeout)
		return 0
	})
	reg("setoption", func(L *lua.LState) int {
		checkSock(L)
		L.Push(lua.LTrue)
		return 1
	})
	reg("getreusedtimes", func(L *lua.LState) int {
		s, ok := connectedSock(L)
		if !ok {
			return 2
		}
		L.Push(lua.LNumber(s.reused))
		return 1
	})
	reg("send", func(L *lua.LState) int {
		s, ok := connectedSock(L)
		if !ok {
			return 2
		}
		var data []byte
		switch x := L.Get(2).(type) {
		case lua.LString:
			data = []byte(x)
		case lua.LNumber:
			data = []byte(numStr(x))
		case lua.LBool:
			data = []byte(strconv.FormatBool(bool(x)))
		case *lua.LTable:
			data = v.appendPrintArg(L, nil, x, 2, "send", 0)
		default:
			L.ArgError(2, "string, number, boolean, nil, or array table expected, got "+x.Type().String())
		}
		stop := v.watch(s, s.sendTO, true)
		n, err := s.conn.Write(data)
		stop()
		if err != nil {
			e := v.sockErr(err, "send")
			s.close()
			L.Push(lua.LNil)
			L.Push(lua.LString(e))
			return 2
		}
		L.Push(lua.LNumber(n))
		return 1
	})
	reg("receive", v.sockReceive)
	reg("receiveany", func(L *lua.LState) int {
		s := checkSock(L)
		max := L.CheckInt(2)
		if max <= 0 {
			L.ArgError(2, "bad max argument")
		}
		if s.conn == nil {
			L.Push(lua.LNil)
			L.Push(lua.LString("closed"))
			return 2
		}
		buf := make([]byte, max)
		stop := v.watch(s, s.readTO, false)
		n, err := s.r.Read(buf)
		stop()
		if err != nil && n == 0 {
			e := v.sockErr(err, "read")
			if e != "timeout" {
				s.close()
			}
			L.Push(lua.LNil)
			L.Push(lua.LString(e))
			return 2
		}
		L.Push(lua.LString(buf[:n]))
		return 1
	})
	reg("receiveuntil", v.sockReceiveUntil)
	reg("close", func(L *lua.LState) int {
		s, ok := connectedSock(L)
		if !ok {
			return 2
		}
		s.close()
		L.Push(lua.LNumber(1))
		return 1
	})
	reg("setkeepalive", func(L *lua.LState) int {
		s, ok := connectedSock(L)
		if !ok {
			return 2
		}
		idle := s.cfg.KeepaliveTimeout
		if L.GetTop() >= 2 && L.Get(2) != lua.LNil {
			idle = msDuration(L, 2, idle)
		}
		size := s.cfg.PoolSize
		if L.GetTop() >= 3 && L.Get(3) != lua.LNil {
			size = L.CheckInt(3)
			if size <= 0 {
				L.ArgError(3, "bad \"pool_size\" option value: "+strconv.Itoa(size))
			}
		}
		if s.r.Buffered() > 0 || s.untilBusy {
			s.close()
			L.Push(lua.LNil)
			L.Push(lua.LString("unread data in buffer"))
			return 2
		}
		pc := &pooledConn{conn: s.conn, r: s.r, reused: s.reused}
		s.conn, s.r = nil, nil
		v.e.pool.put(s.key, pc, idle, size)
		L.Push(lua.LNumber(1))
		return 1
	})
	reg("sslhandshake", func(L *lua.LState) int {
		s, ok := connectedSock(L)
		if !ok {
			return 2
		}
		serverName := ""
		if sn, ok := L.Get(3).(lua.LString); ok {
			serverName = string(sn)
		}
		verify := lua.LVAsBool(L.Get(4))
		if s.reused > 0 {
			if _, ok := s.conn.(*tls.Conn); ok {
				L.Push(lua.LTrue)
				return 1
			}
		}
		cfg := &tls.Config{ServerName: serverName, InsecureSkipVerify: !verify}
		tc := tls.Client(s.conn, cfg)
		stop := v.watch(s, s.connectTO, true)
		err := tc.Handshake()
		stop()
		if err != nil {
			s.close()
			L.Push(lua.LNil)
			e := v.sockErr(err, "handshake")
			if e == err.Error() {
				e = "handshake failed"
				if verify {
					e = "certificate verify failed"
				}
			}
			L.Push(lua.LString(e))
			return 2
		}
		s.conn = tc
		s.r = bufio.NewReader(tc)
		L.Push(lua.LTrue)
		return 1
	})
	return t
}

// msDuration reads a millisecond argument; nil or 0 mean the directive's
// value dflt.
func msDuration(L *lua.LState, n int, dflt time.Duration) time.Duration {
	if L.Get(n) == lua.LNil {
		return dflt
	}
	ms := float64(L.CheckNumber(n))
	if ms < 0 {
		L.ArgError(n, "bad timeout value")
	}
	if ms == 0 {
		return dflt
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// connectedSock is checkSock for the methods that need a connection: on a
// closed socket it pushes nil, "closed" (ngx_lua's answer) and returns false.
func connectedSock(L *lua.LState) (*tcpSock, bool) {
	s := checkSock(L)
	if s.conn == nil {
		L.Push(lua.LNil)
		L.Push(lua.LString("closed"))
		return nil, false
	}
	return s, true
}

func checkSock(L *lua.LState) *tcpSock {
	ud, ok := L.Get(1).(*lua.LUserData)
	if ok {
		if s, ok := ud.Value.(*tcpSock); ok {
			return s
		}
	}
	L.RaiseError("bad argument #1 (table expected)")
	return nil
}

func (s *tcpSock) close() {
	if s.conn != nil {
		s.conn.Close()
	}
	s.conn, s.r = nil, nil
	s.untilBusy = false
}

// watch sets the deadline for one operation and aborts it when the request
// context ends. The returned func must be called when the operation is done.
func (v *vm) watch(s *tcpSock, d time.Duration, write bool) func() {
	c := s.conn
	if write {
		c.SetWriteDeadline(time.Now().Add(d))
	} else {
		c.SetReadDeadline(time.Now().Add(d))
	}
	ctx := v.sockContext()
	if ctx.Done() == nil {
		return func() {}
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	return func() { stop() }
}

func (v *vm) sockConnect(L *lua.LState) int {
	v.check(L, mRACTimer)
	s := checkSock(L)
	host := L.CheckString(2)
	var network, addr, key string
	argOpts := 3
	if strings.HasPrefix(host, "unix:") {
		network, addr = "unix", host[5:]
		key = host
	} else {
		port := L.CheckInt(3)
		if port < 0 || port > 65535 {
			L.Push(lua.LNil)
			L.Push(lua.LString("bad port number: " + strconv.Itoa(port)))
			return 2
		}
		network, addr = "tcp", net.JoinHostPort(host, strconv.Itoa(port))
		key = host + ":" + strconv.Itoa(port)
		argOpts = 4
	}
	if opts, ok := L.Get(argOpts).(*lua.LTable); ok {
		if p, ok := opts.RawGetString("pool").(lua.LString); ok {
			key = string(p)
		}
	}
	if s.conn != nil {
		s.close()
	}
	s.key = key
	if pc := v.e.pool.get(key); pc != nil {
		s.conn, s.r, s.reused = pc.conn, pc.r, pc.reused+1
		L.Push(lua.LNumber(1))
		return 1
	}
	ctx, cancel := context.WithTimeout(v.sockContext(), s.connectTO)
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	cancel()
	if err != nil {
		L.Push(lua.LNil)
		L.Push(lua.LString(v.sockErr(err, "connect")))
		return 2
	}
	s.conn, s.r, s.reused = conn, bufio.NewReader(conn), 0
	L.Push(lua.LNumber(1))
	return 1
}

func (v *vm) sockReceive(L *lua.LState) int {
	s, ok := connectedSock(L)
	if !ok {
		return 2
	}
	fail := func(err error, partial []byte) int {
		e := v.sockErr(err, "read")
		if e != "timeout" {
			s.close()
		}
		L.Push(lua.LNil)
		L.Push(lua.LString(e))
		L.Push(lua.LString(partial))
		return 3
	}
	pat := L.Get(2)
	stop := v.watch(s, s.readTO, false)
	defer stop()
	switch p := pat.(type) {
	case lua.LNumber:
		n := int(p)
		if n < 0 {
			L.ArgError(2, "bad pattern argument")
		}
		buf := make([]byte, n)
		got, err := io.ReadFull(s.r, buf)
		if err != nil {
			return fail(err, buf[:got])
		}
		L.Push(lua.LString(buf))
		return 1
	case *lua.LNilType, lua.LString:
		mode := "*l"
		if ps, ok := p.(lua.LString); ok {
			mode = string(ps)
		}
		switch mode {
		case "*l", "l":
			line, err := s.r.ReadSlice('\n')
			var full []byte
			if err == bufio.ErrBufferFull {
				full = append(full, line...)
				for err == bufio.ErrBufferFull {
					line, err = s.r.ReadSlice('\n')
					full = append(full, line...)
				}
				line = full
			}
			if err != nil {
				return fail(err, bytes.ReplaceAll(line, []byte("\r"), nil))
			}
			line = bytes.ReplaceAll(line[:len(line)-1], []byte("\r"), nil)
			L.Push(lua.LString(line))
			return 1
		case "*a", "a":
			// Reading up to EOF succeeds and, as in ngx_lua, leaves the
			// socket for the caller to close.
			data, err := io.ReadAll(s.r)
			if err != nil {
				return fail(err, data)
			}
			L.Push(lua.LString(data))
			return 1
		}
		if n, err := strconv.Atoi(mode); err == nil && n >= 0 {
			buf := make([]byte, n)
			got, err := io.ReadFull(s.r, buf)
			if err != nil {
				return fail(err, buf[:got])
			}
			L.Push(lua.LString(buf))
			return 1
		}
		L.ArgError(2, "bad pattern argument: "+mode)
	default:
		L.ArgError(2, "bad pattern argument")
	}
	return 0
}

// sockReceiveUntil returns an iterator reading up to the pattern.
func (v *vm) sockReceiveUntil(L *lua.LState) int {
	s := checkSock(L)
	pat := L.CheckString(2)
	if pat == "" {
		L.ArgError(2, "pattern is empty")
	}
	inclusive := false
	if o, ok := L.Get(3).(*lua.LTable); ok {
		inclusive = lua.LVAsBool(o.RawGetString("inclusive"))
	}
	done := false
	var pend []byte // bytes read past a sized chunk, consumed first
	readByte := func() (byte, error) {
		if len(pend) > 0 {
			b := pend[0]
			pend = pend[1:]
			return b, nil
		}
		return s.r.ReadByte()
	}
	L.Push(L.NewFunction(func(L *lua.LState) int {
		if s.conn == nil {
			L.Push(lua.LNil)
			L.Push(lua.LString("closed"))
			return 2
		}
		if done {
			done = false
			s.untilBusy = false
			L.Push(lua.LNil)
			L.Push(lua.LNil)
			L.Push(lua.LNil)
			return 3
		}
		size := 0
		if L.GetTop() >= 1 && L.Get(1) != lua.LNil {
			size = L.CheckInt(1)
		}
		stop := v.watch(s, s.readTO, false)
		defer stop()
		var acc []byte
		for {
			// the longest prefix that can't start a match may be returned
			b, err := readByte()
			if err != nil {
				e := v.sockErr(err, "read")
				if e != "timeout" {
					s.close()
				}
				L.Push(lua.LNil)
				L.Push(lua.LString(e))
				L.Push(lua.LString(acc))
				return 3
			}
			acc = append(acc, b)
			if bytes.HasSuffix(acc, []byte(pat)) {
				data := acc
				if !inclusive {
					data = acc[:len(acc)-len(pat)]
				}
				if size > 0 {
					// sized reads end with the remainder, then nil
					done = true
					s.untilBusy = true
				} else {
					s.untilBusy = len(pend) > 0
				}
				L.Push(lua.LString(data))
				return 1
			}
			if size > 0 && len(acc) >= size+len(pat)-1 {
				// return size bytes that certainly precede the pattern
				safe := len(acc) - (len(pat) - 1)
				if safe >= size {
					out := acc[:size]
					pend = append(append([]byte(nil), acc[size:]...), pend...)
					s.untilBusy = true
					L.Push(lua.LString(out))
					return 1
				}
			}
		}
	}))
	return 1
}

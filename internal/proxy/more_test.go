package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStaleKeepaliveReset: the peer resets an idle keepalive connection
// (RST, so the next write fails at once): GET is repeated on a new
// connection, POST finds the connection dead before using it.
func TestStaleKeepaliveReset(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			closed := make(chan struct{}, 4)
			b := newRaw(t, func(c net.Conn, br *bufio.Reader) {
				if _, err := readReq(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				c.(*net.TCPConn).SetLinger(0) // close with RST
				c.Close()
				closed <- struct{}{}
			})
			u := newUpstream(t, b.addr)
			pool := NewPool(4, time.Minute, 0)
			defer pool.Close()
			for i := 0; i < 3; i++ {
				out := getOut("/")
				out.Method = method
				rec, res, logs, _ := serve(t, context.Background(), out, Target{Upstream: u, Pool: pool}, baseOptions())
				if rec.Code != 200 || len(res.Addrs) != 1 || len(logs.all()) != 0 {
					t.Fatalf("request %d: %d, result %+v, logs %q", i, rec.Code, res, logs.all())
				}
				<-closed
			}
			if st := peerOf(t, u, b.addr).State(); st.Fails != 0 {
				t.Errorf("peer state %+v", st)
			}
		})
	}
}

// TestClientGoneMidBody: the client disconnects while the body streams;
// Serve stops, closes the upstream connection and does not count a failure.
func TestClientGoneMidBody(t *testing.T) {
	backendDone := make(chan struct{})
	backend, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(backendDone)
		chunk := []byte(strings.Repeat("z", 1024) + "\n")
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			default:
			}
		}
	}))
	u := newUpstream(t, addrOf(backend))
	o := baseOptions()
	o.Buffering = false
	front, results := frontend(t, Target{Upstream: u}, o, func(r *http.Request) *Out { return getOut("/") })
	c, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := io.ReadFull(c, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case res := <-results:
		if res.Status != 200 || len(res.Addrs) != 1 {
			t.Errorf("result %+v", res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the client left")
	}
	select {
	case <-backendDone:
	case <-time.After(10 * time.Second):
		t.Fatal("upstream connection not closed")
	}
	if st := peerOf(t, u, addrOf(backend)).State(); st.Fails != 0 || st.Conns != 0 {
		t.Errorf("peer state %+v", st)
	}
}

func TestUnixSocketPeer(t *testing.T) {
	path := t.TempDir() + "/up.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Skip(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "unix") })}
	go srv.Serve(ln)
	defer srv.Close()
	u := newUpstream(t, "unix:"+path)
	rec, _, logs, _ := serve(t, context.Background(), getOut("/"), Target{Upstream: u}, baseOptions())
	if rec.Code != 200 || rec.Body.String() != "unix" {
		t.Fatalf("%d %q %q", rec.Code, rec.Body.String(), logs.all())
	}
}

func TestParseChunkSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "a": 10, "1F": 31, "10;name=v": 16, "ff  ;x": 255, "7fffffffffffff": 0x7fffffffffffff} {
		if n, ok := parseChunkSize([]byte(in)); !ok || n != want {
			t.Errorf("%q: %d %v", in, n, ok)
		}
	}
	for _, in := range []string{"", ";x", "g", "1 2", "-1", "1000000000000000"} {
		if _, ok := parseChunkSize([]byte(in)); ok {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestParseStatusLine(t *testing.T) {
	good := map[string]int{"HTTP/1.1 200 OK": 200, "HTTP/1.0 404": 404, "HTTP/1.1  503 Busy": 503, "HTTP/2.0 200 x": 200}
	for in, want := range good {
		if st, _, _, _, ok := parseStatusLine([]byte(in)); !ok || st != want {
			t.Errorf("%q: %d %v", in, st, ok)
		}
	}
	for _, in := range []string{"HTTP/1.1 20 OK", "HTTP/1.1 2000", "HTTP/1.1 099 x", "http/1.1 200 OK", "HTTP/1 200 OK", "HTTP/1.1200 OK", "ICY 200 OK"} {
		if _, _, _, _, ok := parseStatusLine([]byte(in)); ok {
			t.Errorf("%q accepted", in)
		}
	}
}

// FuzzResponseHead runs arbitrary bytes through the response head parser.
func FuzzResponseHead(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 204 No\nA:b\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		line, rest, ok := bytes.Cut(data, []byte("\n"))
		if !ok {
			return
		}
		if _, _, _, _, ok := parseStatusLine(bytes.TrimSuffix(line, []byte("\r"))); !ok {
			return
		}
		var h respHeader
		h.block = append([]byte(nil), data...)
		if h.parseFields(len(line)+1, (*respHeader).addLine) != "" {
			return
		}
		hdr := http.Header{}
		h.copyTo(hdr)
		for k, vs := range hdr {
			if k == "" || strings.ContainsAny(k, " \r\n:") {
				t.Fatalf("bad key %q", k)
			}
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n\x00") {
					t.Fatalf("bad value %q", v)
				}
			}
		}
		_ = rest
	})
}

// parseFields parses the header lines of h.block after the status line
// (which ends at start) with add, as readHeader does while they arrive.
func (h *respHeader) parseFields(start int, add func(*respHeader, []byte, int, int) headerError) headerError {
	b := h.block
	h.beginFields()
	for p := start; p < len(b); {
		nl := bytes.IndexByte(b[p:], '\n')
		if nl < 0 {
			break
		}
		end := p + nl
		next := end + 1
		if end > p && b[end-1] == '\r' {
			end--
		}
		if end == p {
			break // the empty line
		}
		if e := add(h, b, p, end); e != "" {
			return e
		}
		p = next
	}
	return h.endFields()
}

// FuzzAddLineMatchesStrict: addLine's fast path gives what the strict,
// rule-by-rule parse gives, errors included, for any head.
func FuzzAddLineMatchesStrict(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nserver: x\r\ncontent-length:  12 \r\nx-A-b: c\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 200 OK\r\nA\x00b: x\r\nB: c\rd\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\n folded\r\nX(y): z\r\nNoColon\r\n:empty\r\nV: \t a\x00\r\n\r\n",
		"HTTP/1.1 200 OK\nSet-Cookie: " + strings.Repeat("a=b; ", 20) + "\rx\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return
		}
		var fast, strict respHeader
		fast.block = append([]byte(nil), data...)
		strict.block = append([]byte(nil), data...)
		ef := fast.parseFields(i+1, (*respHeader).addLine)
		es := strict.parseFields(i+1, (*respHeader).addLineStrict)
		if ef != es {
			t.Fatalf("errors differ: fast %q, strict %q", ef, es)
		}
		if ef != "" {
			return
		}
		if !bytes.Equal(fast.block, strict.block) {
			t.Fatalf("canonicalised heads differ: fast %q, strict %q", fast.block, strict.block)
		}
		if !slices.Equal(fast.fields, strict.fields) || fast.nfields != strict.nfields || fast.clen != strict.clen ||
			fast.chunked != strict.chunked || fast.connClose != strict.connClose ||
			fast.connKeepAlive != strict.connKeepAlive || fast.accelBuffer != strict.accelBuffer {
			t.Fatalf("parsed state differs:\nfast   %+v\nstrict %+v", fast, strict)
		}
	})
}

func TestCanonicalize(t *testing.T) {
	for in, want := range map[string]string{
		"content-type": "Content-Type", "CONTENT-LENGTH": "Content-Length", "x-a-b": "X-A-B",
		"etag": "Etag", "-x": "-X", "a--b": "A--B", "x_y": "X_y", "Server": "Server", "1a-2b": "1a-2b",
	} {
		k := []byte(in)
		canonicalize(k)
		if string(k) != want {
			t.Errorf("canonicalize(%q) = %q, want %q", in, k, want)
		}
	}
}

// TestCopyToSharesValues: the same head into an empty map reuses the
// previous value array without allocating; what a handler appends to one
// response's values does not reach another's; a new head gets new values
// and leaves the earlier maps as they were.
func TestCopyToSharesValues(t *testing.T) {
	head := func(s string) *respHeader {
		var h respHeader
		h.block = []byte(s)
		return &h
	}
	a := "HTTP/1.1 200 OK\r\nX-A: 1\r\nSet-Cookie: c=1\r\nX-B: 2\r\nSet-Cookie: c=2\r\n\r\n"
	h := head(a)
	line := strings.Index(a, "\n") + 1
	parse := func(block string) http.Header {
		t.Helper()
		h.block = append(h.block[:0], block...)
		if e := h.parseFields(line, (*respHeader).addLine); e != "" {
			t.Fatal(e)
		}
		dst := http.Header{}
		h.copyTo(dst)
		return dst
	}
	first := parse(a)
	second := parse(a)
	want := http.Header{"X-A": {"1"}, "Set-Cookie": {"c=1", "c=2"}, "X-B": {"2"}}
	for _, got := range []http.Header{first, second} {
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("copyTo gave %v, want %v", got, want)
		}
	}
	if &first["X-A"][0] != &second["X-A"][0] {
		t.Fatal("the same head did not share the value array")
	}
	first["X-A"] = append(first["X-A"], "added")
	if len(second["X-A"]) != 1 {
		t.Fatalf("an append to one response reached another: %v", second["X-A"])
	}
	third := parse(strings.Replace(a, "X-A: 1", "X-A: 3", 1))
	if third.Get("X-A") != "3" || second.Get("X-A") != "1" {
		t.Fatalf("after a new head: new %q, earlier %q", third.Get("X-A"), second.Get("X-A"))
	}
	// Into a map that already holds fields, values are not shared (their
	// order depends on what was there).
	pre := http.Header{"X-B": {"0"}}
	h.copyTo(pre)
	if got := pre["X-B"]; !reflect.DeepEqual(got, []string{"0", "2"}) {
		t.Fatalf("copyTo into a non-empty map: X-B %v", got)
	}
	dst := http.Header{}
	h.copyTo(dst) // fills the array for this head again
	if n := testing.AllocsPerRun(100, func() {
		clear(dst)
		h.copyTo(dst)
	}); n > 1 {
		t.Fatalf("%v allocations per copyTo of an unchanged head; want at most 1 (the second Set-Cookie)", n)
	}
}

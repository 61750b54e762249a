package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// start serves h on a loopback listener until the test ends.
func start(t *testing.T, h http.Handler, adjust ...func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	for _, f := range adjust {
		f(s)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange writes raw and returns everything until the server closes.
func exchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c := dial(t, addr)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, b)
	}
	return string(b)
}

// echo answers with what it saw of the request.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(599)
		return
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	fmt.Fprintf(w, "%s %s|%s|%s|%s|%d.%d|host=%s|cl=%d|te=%v|close=%v|body=%s|local=%v|xa=%q|ua=%q|hosthdr=%q|tehdr=%q",
		r.Method, r.RequestURI, r.URL.Path, r.URL.RawQuery, r.Proto, r.ProtoMajor, r.ProtoMinor, r.Host,
		r.ContentLength, r.TransferEncoding, r.Close, body, local != nil, r.Header["X-A"], r.Header.Get("User-Agent"), r.Header.Get("Host"), r.Header.Get("Transfer-Encoding"))
})

func TestParse(t *testing.T) {
	_, addr := start(t, echo)
	tests := []struct {
		name, raw string
		status    string // status line
		body      string // substring of the body
	}{
		{"simple 1.1", "GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "HTTP/1.1 200 OK",
			"GET /a/b?x=1|/a/b|x=1|HTTP/1.1|1.1|host=h|cl=0|te=[]|close=true|body=|local=true"},
		{"1.0 without Host", "GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK", "|HTTP/1.0|1.0|host=|"},
		{"leading CRLF, bare LF, names canonicalised", "\r\nGET / HTTP/1.0\nx-a:  v1 \nX-A: v2\nuser-AGENT: ua\n\n", "HTTP/1.1 200 OK",
			`xa=["v1" "v2"]|ua="ua"|hosthdr=""`},
		{"escaped path", "GET /a%20b?q HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK", "GET /a%20b?q|/a b|q|"},
		{"absolute form", "GET http://abs.test/p HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n", "HTTP/1.1 200 OK", "|/p||HTTP/1.1|1.1|host=abs.test|"},
		{"content-length body", "POST /p HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", "HTTP/1.1 200 OK", "|cl=5|te=[]|close=true|body=hello|"},
		{"chunked body", "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nTrailer: x\r\n\r\n",
			"HTTP/1.1 200 OK", "|cl=-1|te=[chunked]|close=true|body=hello|"},
		{"chunked coding leaves Header", "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
			"HTTP/1.1 200 OK", `|cl=-1|te=[chunked]|close=true|body=|local=true|xa=[]|ua=""|hosthdr=""|tehdr=""`},
		{"both chunked and a length is refused, as nginx", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\nx\r\n0\r\n\r\n",
			"HTTP/1.1 400 Bad Request", "400 Bad Request"},

		{"1.1 without Host", "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request", "<center><h1>400 Bad Request</h1></center>"},
		{"two Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"space before colon", "GET / HTTP/1.0\r\nX-A : v\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"folded header", "GET / HTTP/1.0\r\nX-A: v\r\n w\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"no colon", "GET / HTTP/1.0\r\nX-A\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"control byte in value", "GET / HTTP/1.0\r\nX-A: a\x01b\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"DEL in value", "GET / HTTP/1.0\r\nX-A: a\x7fb\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"HTAB in value is fine", "GET / HTTP/1.0\r\nX-A: a\tb\r\n\r\n", "HTTP/1.1 200 OK", `xa=["a\tb"]`},
		{"slash in Host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"backslash in Host", "GET / HTTP/1.1\r\nHost: a\\b\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"request line without version", "GET /\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"bad method", "G(T / HTTP/1.0\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"bad version", "GET / HTTP/x\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"HTTP/2", "GET / HTTP/2.0\r\n\r\n", "HTTP/1.1 505 HTTP Version Not Supported", ""},
		{"bad length", "POST / HTTP/1.0\r\nContent-Length: x\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
		{"conflicting lengths", "POST / HTTP/1.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy", "HTTP/1.1 400 Bad Request", ""},
		{"unknown coding", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 501 Not Implemented", ""},
		{"unknown expectation", "POST / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\nContent-Length: 1\r\n\r\nx", "HTTP/1.1 417 Expectation Failed", ""},
		{"header too large", "GET / HTTP/1.0\r\nX-A: " + strings.Repeat("a", 40<<10) + "\r\n\r\n", "HTTP/1.1 400 Bad Request",
			"<title>400 Request Header Or Cookie Too Large</title>"},
		{"request line too long", "GET /" + strings.Repeat("a", 40<<10) + " HTTP/1.0\r\n\r\n", "HTTP/1.1 414 Request-URI Too Large", ""},
		{"bad chunk", "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "HTTP/1.1 599 status code 599", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := exchange(t, addr, tc.raw)
			line, _, _ := strings.Cut(got, "\r\n")
			if line != tc.status || !strings.Contains(got, tc.body) {
				t.Fatalf("got:\n%.400s\nwant status %q and body containing %q", got, tc.status, tc.body)
			}
			if strings.HasPrefix(tc.status, "HTTP/1.1 200") {
				return
			}
			if !strings.Contains(got, "\r\nConnection: close\r\n") && !strings.HasPrefix(tc.status, "HTTP/1.1 599") {
				t.Errorf("error response without Connection: close:\n%s", got)
			}
		})
	}
}

// readResponses reads n responses from one connection.
func readResponses(t *testing.T, br *bufio.Reader, method string, n int) []string {
	t.Helper()
	var out []string
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", i, err)
		}
		out = append(out, fmt.Sprintf("%d %s cl=%d te=%v close=%v", resp.StatusCode, b, resp.ContentLength, resp.TransferEncoding, resp.Close))
	}
	return out
}

func TestKeepalive(t *testing.T) {
	var n atomic.Int64
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/close":
			w.Header().Set("Connection", "close")
		case "/ignore-body":
			// the body is left unread: the server drains it
		}
		fmt.Fprintf(w, "%d", n.Add(1))
	}))
	tests := []struct {
		name   string
		raw    string
		want   []string
		closed bool // the server closes after the responses
	}{
		{"pipelined 1.1", "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n",
			[]string{"200 1 cl=1 te=[] close=false", "200 2 cl=1 te=[] close=false", "200 3 cl=1 te=[] close=false"}, false},
		{"1.0 keep-alive", "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
			[]string{"200 1 cl=1 te=[] close=false", "200 2 cl=1 te=[] close=true"}, true},
		{"client close", "GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: h\r\n\r\n",
			[]string{"200 1 cl=1 te=[] close=true"}, true},
		{"handler close", "GET /close HTTP/1.1\r\nHost: h\r\n\r\nGET /never HTTP/1.1\r\nHost: h\r\n\r\n",
			[]string{"200 1 cl=1 te=[] close=true"}, true},
		{"unread body drained", "POST /ignore-body HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
			[]string{"200 1 cl=1 te=[] close=false", "200 2 cl=1 te=[] close=false"}, false},
		{"unread chunked body drained", "POST /ignore-body HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n",
			[]string{"200 1 cl=1 te=[] close=false", "200 2 cl=1 te=[] close=false"}, false},
		{"too much unread body closes", "POST /ignore-body HTTP/1.1\r\nHost: h\r\nContent-Length: 10000000\r\n\r\n0123",
			[]string{"200 1 cl=1 te=[] close=true"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n.Store(0)
			c := dial(t, addr)
			io.WriteString(c, tc.raw)
			br := bufio.NewReader(c)
			got := readResponses(t, br, "GET", len(tc.want))
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			_, err := br.ReadByte()
			var ne net.Error
			timedOut := errors.As(err, &ne) && ne.Timeout()
			if tc.closed == timedOut {
				t.Fatalf("closed=%v, but next read: %v", tc.closed, err)
			}
		})
	}
}

func TestResponseFraming(t *testing.T) {
	big := strings.Repeat("x", 10000)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/small":
			io.WriteString(w, "hello")
		case "/empty":
		case "/big":
			io.WriteString(w, big)
		case "/flush":
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			io.WriteString(w, "b")
		case "/declared":
			h.Set("Content-Length", "3")
			io.WriteString(w, "abc")
		case "/short":
			h.Set("Content-Length", "5")
			io.WriteString(w, "abc")
		case "/204":
			h.Set("Content-Length", "3")
			w.WriteHeader(204)
			if _, err := io.WriteString(w, "no"); err != http.ErrBodyNotAllowed {
				panic("write to 204: " + fmt.Sprint(err))
			}
		case "/304":
			h.Set("Content-Type", "text/plain")
			w.WriteHeader(304)
		case "/multi":
			h.Add("X-M", "1")
			h.Add("X-M", "2\r\nInjected: yes")
			h["Date"] = nil // suppresses Date, as in net/http
			io.WriteString(w, "m")
		}
	}))
	tests := []struct {
		raw, want string // want: the whole response with Date blanked
	}{
		{"GET /small HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 5\r\n\r\nhello"},
		{"GET /empty HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 0\r\n\r\n"},
		{"HEAD /small HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 5\r\n\r\n"},
		{"HEAD /empty HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK\r\nDate: D\r\n\r\n"},
		{"GET /big HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK\r\nDate: D\r\nTransfer-Encoding: chunked\r\n\r\n2710\r\n" + big + "\r\n0\r\n\r\n"},
		{"GET /flush HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK\r\nDate: D\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n"},
		{"GET /declared HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 3\r\n\r\nabc"},
		{"GET /204 HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 204 No Content\r\nDate: D\r\n\r\n"},
		{"GET /304 HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 304 Not Modified\r\nDate: D\r\n\r\n"},
		{"GET /multi HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\nX-M: 1\r\nX-M: 2  Injected: yes\r\n\r\nm"},
	}
	for _, tc := range tests {
		t.Run(strings.Fields(tc.raw)[0]+" "+strings.Fields(tc.raw)[1], func(t *testing.T) {
			// A connection per case, closed by the client's request, so
			// the whole response is what the server sends until it closes.
			got := blankDate(exchange(t, addr, strings.Replace(tc.raw, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1)))
			want := tc.want
			if !strings.Contains(want, "Connection:") { // nginx's order: before the handler's other fields
				want = strings.Replace(want, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1)
			}
			if got != want {
				t.Fatalf("got\n%.300q\nwant\n%.300q", got, want)
			}
		})
	}
	// HTTP/1.0 with no length: close-delimited; a short body closes too.
	for raw, want := range map[string]string{
		"GET /big HTTP/1.0\r\nConnection: keep-alive\r\n\r\n": "HTTP/1.1 200 OK\r\nDate: D\r\nConnection: close\r\n\r\n" + big,
		"GET /short HTTP/1.1\r\nHost: h\r\n\r\n":              "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nabc",
	} {
		if got := blankDate(exchange(t, addr, raw)); got != want {
			t.Errorf("%q: got %.300q", raw, got)
		}
	}
}

func blankDate(s string) string {
	i := strings.Index(s, "Date: ")
	if i < 0 {
		return s
	}
	j := strings.Index(s[i:], "\r\n")
	return s[:i] + "Date: D" + s[i+j:]
}

func TestExpectContinue(t *testing.T) {
	_, addr := start(t, echo)
	c := dial(t, addr)
	io.WriteString(c, "POST /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("interim: %q %v", line, err)
	}
	if l, _ := br.ReadString('\n'); l != "\r\n" {
		t.Fatalf("interim end: %q", l)
	}
	io.WriteString(c, "abc")
	got := readResponses(t, br, "POST", 1)
	if !strings.Contains(got[0], "body=abc") {
		t.Fatalf("got %v", got)
	}

	// A handler that answers without reading: no 100, and the connection
	// closes (the client may or may not send the body).
	_, addr2 := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(413) }))
	got2 := exchange(t, addr2, "POST /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
	if !strings.HasPrefix(got2, "HTTP/1.1 413 ") || strings.Contains(got2, "100 Continue") || !strings.Contains(got2, "Connection: close") {
		t.Fatalf("got %q", got2)
	}
}

func TestPanicsAndHijack(t *testing.T) {
	var logs bytes.Buffer
	var logMu = make(chan struct{}, 1)
	logMu <- struct{}{}
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abort":
			io.WriteString(w, "partial")
			panic(http.ErrAbortHandler)
		case "/abort-streaming":
			w.(http.Flusher).Flush()
			io.WriteString(w, "partial")
			panic(http.ErrAbortHandler)
		case "/panic":
			panic("boom")
		case "/hijack":
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err)
			}
			defer c.Close()
			ahead := make([]byte, brw.Reader.Buffered())
			io.ReadFull(brw, ahead)
			fmt.Fprintf(c, "RAW %s|", ahead)
			line, _ := bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, "echo "+line)
			if _, err := w.Write([]byte("x")); err != http.ErrHijacked {
				io.WriteString(c, "write after hijack: "+fmt.Sprint(err))
			}
		}
	}), func(s *Server) {
		s.ErrorLog = log.New(writerFunc(func(p []byte) (int, error) {
			<-logMu
			defer func() { logMu <- struct{}{} }()
			return logs.Write(p)
		}), "", 0)
	})
	tests := []struct{ name, raw, want string }{
		{"abort before the head", "GET /abort HTTP/1.1\r\nHost: h\r\n\r\n", ""},
		{"abort while streaming: cut chunked body", "GET /abort-streaming HTTP/1.1\r\nHost: h\r\n\r\n",
			"HTTP/1.1 200 OK\r\nDate: D\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n7\r\npartial\r\n"},
		{"panic", "GET /panic HTTP/1.1\r\nHost: h\r\n\r\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := blankDate(exchange(t, addr, tc.raw)); got != tc.want {
				t.Fatalf("got %q want %q", got, tc.want)
			}
		})
	}
	<-logMu
	if !strings.Contains(logs.String(), "h1: panic serving") || !strings.Contains(logs.String(), "boom") || strings.Contains(logs.String(), "abort") {
		t.Errorf("log: %s", logs.String())
	}
	logMu <- struct{}{}

	c := dial(t, addr)
	io.WriteString(c, "GET /hijack HTTP/1.1\r\nHost: h\r\n\r\nAHEAD")
	br := bufio.NewReader(c)
	if got, _ := br.ReadString('|'); got != "RAW AHEAD|" {
		t.Fatalf("hijack: %q", got)
	}
	io.WriteString(c, "ping\n")
	if got, _ := io.ReadAll(br); string(got) != "echo ping\n" {
		t.Fatalf("hijack echo: %q", got)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestTimeouts(t *testing.T) {
	_, addr := start(t, echo, func(s *Server) {
		s.IdleTimeout = 100 * time.Millisecond
		s.ReadHeaderTimeout = 200 * time.Millisecond
		s.BodyReadTimeout = 200 * time.Millisecond
	})
	tests := []struct {
		name, raw string
		want      string // prefix of what the server sends before closing
	}{
		{"idle", "", ""},
		{"idle after a request", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK"},
		{"slow header", "GET / HTTP/1.1\r\nHost:", ""},
		{"slow body", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab", "HTTP/1.1 599"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			got := exchange(t, addr, tc.raw)
			if !strings.HasPrefix(got, tc.want) || (tc.want == "" && got != "") {
				t.Fatalf("got %q", got)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("closed after %v", d)
			}
		})
	}
}

func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	}))
	// An idle keepalive connection, and one with a request in flight.
	idle := dial(t, addr)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	ibr := bufio.NewReader(idle)
	readResponses(t, ibr, "GET", 1)
	busy := dial(t, addr)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	<-entered

	// An expired context: Shutdown reports it and leaves the busy one.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a busy connection: %v", err)
	}
	if _, err := ibr.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("listener still accepts")
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	close(release)
	got := readResponses(t, bufio.NewReader(busy), "GET", 1)
	if got[0] != "200 done cl=4 te=[] close=true" {
		t.Fatalf("in-flight request: %v", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestClientGone: a handler waiting on the context learns that the client
// left, through the client check.
func TestClientGone(t *testing.T) {
	gone := make(chan time.Duration, 1)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		select {
		case <-r.Context().Done():
			gone <- time.Since(start)
		case <-time.After(5 * time.Second):
			gone <- -1
		}
	}), func(s *Server) { s.ClientCheckInterval = 50 * time.Millisecond })
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(20 * time.Millisecond)
	c.Close()
	if d := <-gone; d < 0 || d > time.Second {
		t.Fatalf("context cancelled after %v", d)
	}
}

// TestReuse: the request, header and URL are reused per connection, so
// what a handler keeps must be a Clone; a Clone is unaffected by the next
// request, and context values (ConnContext, local address) stay.
func TestReuse(t *testing.T) {
	type key struct{}
	var kept []*http.Request
	var firstReq *http.Request
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if firstReq == nil {
			firstReq = r
		} else if firstReq != r {
			w.Header().Set("X-New-Request", "1")
		}
		kept = append(kept, r.Clone(r.Context()))
		fmt.Fprint(w, r.Context().Value(key{}))
	}), func(s *Server) {
		s.ConnContext = func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, key{}, "conn") }
	})
	c := dial(t, addr)
	io.WriteString(c, "GET /one?a HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\nGET /two?b HTTP/1.1\r\nHost: h\r\nX-A: 2\r\n\r\n")
	got := readResponses(t, bufio.NewReader(c), "GET", 2)
	if got[0] != got[1] || !strings.HasPrefix(got[0], "200 conn") {
		t.Fatalf("responses %v", got)
	}
	if k := kept[0]; k.URL.Path != "/one" || k.URL.RawQuery != "a" || k.Header.Get("X-A") != "1" {
		t.Fatalf("clone of the first request changed: %s %s %v", k.URL.Path, k.URL.RawQuery, k.Header)
	}
	if k := kept[1]; k.URL.Path != "/two" || k.Header.Get("X-A") != "2" {
		t.Fatalf("second: %s %v", k.URL.Path, k.Header)
	}
}

// TestResponseFieldValues: values are trimmed and cannot split the head,
// whether a field fits the write buffer (assembled at once) or not.
func TestResponseFieldValues(t *testing.T) {
	long := strings.Repeat("v", 2*bufSize)
	tests := []struct {
		name, value, want string
	}{
		{"plain", "text/plain", "X-V: text/plain\r\n"},
		{"trimmed", " \t a b \t ", "X-V: a b\r\n"},
		{"CR and LF replaced", "a\r\nInjected: 1\nb\rc", "X-V: a  Injected: 1 b c\r\n"},
		{"empty", "", "X-V: \r\n"},
		{"larger than the buffer", long, "X-V: " + long + "\r\n"},
		{"larger than the buffer, with LF", long + "\n" + long, "X-V: " + long + " " + long + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header()["X-V"] = []string{tt.value}
				w.Header().Set("A-First", "1")
			}))
			got := exchange(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			head, _, _ := strings.Cut(got, "\r\n\r\n")
			if !strings.Contains(head+"\r\n", "\r\n"+tt.want) || !strings.Contains(head, "\r\nA-First: 1\r\n") {
				t.Fatalf("head %q does not have %q", head, tt.want)
			}
			if strings.Contains(head, "\r\nInjected") || strings.Contains(head, "\nInjected") {
				t.Fatalf("value split the head: %q", head)
			}
		})
	}
}

// TestResponseFieldOrder: nginx's order for the fields its header filter
// writes itself, then the others by name.
func TestResponseFieldOrder(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-B", "b")
		h.Set("Location", "/l")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Content-Type", "text/plain")
		h.Set("A-First", "a")
		h.Set("Last-Modified", "Mon, 01 Jan 2001 00:00:00 GMT")
		h.Set("Server", "s")
		io.WriteString(w, "body")
	}))
	got := blankDate(exchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"))
	want := "HTTP/1.1 200 OK\r\nServer: s\r\nDate: D\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n" +
		"Last-Modified: Mon, 01 Jan 2001 00:00:00 GMT\r\nLocation: /l\r\nConnection: close\r\nKeep-Alive: timeout=5\r\n" +
		"A-First: a\r\nX-B: b\r\n\r\nbody"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}

// TestConnectionHeaderAlways: as nginx, every response says whether the
// connection stays open, HTTP/1.1 included.
func TestConnectionHeaderAlways(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") }))
	raw := exchange(t, addr, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	first, second, _ := strings.Cut(raw, "\r\n\r\nx")
	got := blankDate(first) + "\r\n\r\nx" + blankDate(second)
	want := "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\nx" +
		"HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}

// TestSetFieldOrder: named fields first in the given order (a name given
// twice has a value at each place, the last place all that are left; an
// absent one changes nothing), nginx's own fields before them, the rest
// sorted after them.
func TestSetFieldOrder(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Zulu"] = []string{"1"}
		h["X-Alpha"] = []string{"2"}
		h["Set-Cookie"] = []string{"a", "b", "c"}
		h["X-Once"] = []string{"6"}
		h["B-Later"] = []string{"4"}
		h["A-Later"] = []string{"5"}
		w.(interface{ SetFieldOrder([]string) }).SetFieldOrder([]string{"X-Zulu", "X-Once", "Content-Type", "Set-Cookie", "X-Missing", "X-Alpha", "Set-Cookie", "X-Once"})
		io.WriteString(w, "x")
	}))
	got := blankDate(exchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"))
	want := "HTTP/1.1 200 OK\r\nDate: D\r\nContent-Length: 1\r\nConnection: close\r\n" +
		"X-Zulu: 1\r\nX-Once: 6\r\nSet-Cookie: a\r\nX-Alpha: 2\r\nSet-Cookie: b\r\nSet-Cookie: c\r\nA-Later: 5\r\nB-Later: 4\r\n\r\nx"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
}

// TestSameHeadSharesString: a request head equal to the previous one on
// the connection reuses its string (no allocation), and a different one
// gets its own.
func TestSameHeadSharesString(t *testing.T) {
	var uris []string
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uris = append(uris, r.RequestURI) // strings are immutable: keeping them is allowed
		io.WriteString(w, r.Header.Get("X-N"))
	}))
	c := dial(t, addr)
	br := bufio.NewReader(c)
	for _, n := range []string{"1", "1", "2"} {
		io.WriteString(c, "GET /same HTTP/1.1\r\nHost: h\r\nX-N: "+n+"\r\n\r\n")
		got := readResponses(t, br, "GET", 1)
		if !strings.HasPrefix(got[0], "200 "+n+" ") {
			t.Fatalf("request X-N %s answered %q", n, got[0])
		}
	}
	if len(uris) != 3 || unsafe.StringData(uris[0]) != unsafe.StringData(uris[1]) {
		t.Fatal("the same head twice did not share its string")
	}
	if unsafe.StringData(uris[1]) == unsafe.StringData(uris[2]) || uris[2] != "/same" {
		t.Fatalf("a different head shared the previous string (%q)", uris[2])
	}
}

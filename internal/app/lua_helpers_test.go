package app

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
)

// startLuaServer starts a server with files in its prefix (Lua files,
// modules) and returns the prefix too, so a test can change a file between
// requests.
func startLuaServer(t *testing.T, conf string, files map[string]string) (base, prefix string, logs *syncBuffer) {
	t.Helper()
	_, base, prefix, logs = startServerWithFiles(t, conf, files)
	return base, prefix, logs
}

// luaCase is one request against a running server and what must come of it.
type luaCase struct {
	name    string
	method  string // GET when empty
	path    string
	reqBody string
	reqHdr  map[string]string

	status int // 200 when 0
	// body is the exact response body when not empty; "<empty>" asserts an
	// empty body.
	body  string
	has   []string // substrings of the body
	lacks []string // substrings the body must not have
	// hdr are response headers; several values are joined with "|"; ""
	// asserts the header is absent.
	hdr map[string]string
	// logs must appear in the error log (polled: the log phase may finish
	// after the client got the response); noLogs must not, once logs did.
	logs   []string
	noLogs []string
}

func runLuaCases(t *testing.T, base string, logs *syncBuffer, cases []luaCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body, hdr := doRequest(t, c.method, base+c.path, c.reqBody, c.reqHdr)
			want := c.status
			if want == 0 {
				want = 200
			}
			if status != want {
				t.Errorf("status %d, want %d (body %q)", status, want, body)
			}
			switch {
			case c.body == "<empty>":
				if body != "" {
					t.Errorf("body %q, want empty", body)
				}
			case c.body != "":
				if body != c.body {
					t.Errorf("body %q, want %q", body, c.body)
				}
			}
			for _, s := range c.has {
				if !strings.Contains(body, s) {
					t.Errorf("body %q lacks %q", body, s)
				}
			}
			for _, s := range c.lacks {
				if strings.Contains(body, s) {
					t.Errorf("body %q has %q", body, s)
				}
			}
			for k, v := range c.hdr {
				if got := strings.Join(hdr.Values(k), "|"); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if len(c.logs) > 0 {
				waitForLog(t, logs, c.logs...)
			}
			for _, s := range c.noLogs {
				if strings.Contains(logs.String(), s) {
					t.Errorf("log has %q:\n%s", s, logs.String())
				}
			}
		})
	}
}

func doRequest(t *testing.T, method, url, body string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	if method == "" {
		method = http.MethodGet
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		for _, one := range strings.Split(v, "|") {
			req.Header.Add(k, one)
		}
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		// A Go panic in a handler shows up here: net/http drops the
		// connection.
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// noRedirects lets tests see redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

// waitForLog polls the error log until it holds every substring.
func waitForLog(t *testing.T, logs *syncBuffer, subs ...string) {
	t.Helper()
	missing := func() string {
		text := logs.String()
		for _, s := range subs {
			if !strings.Contains(text, s) {
				return s
			}
		}
		return ""
	}
	waitForMsg(t, func() bool { return missing() == "" }, func() string {
		return fmt.Sprintf("log lacks %q:\n%s", missing(), logs.String())
	})
}

// waitForMsg is waitFor with a failure message computed at the deadline.
func waitForMsg(t *testing.T, cond func() bool, msg func() string) {
	t.Helper()
	ok := false
	defer func() {
		if !ok {
			t.Fatal(msg())
		}
	}()
	waitFor(t, cond)
	ok = true
}

// echoBackend answers with the request line and all request headers, so
// tests see what the proxy sent upstream.
func echoBackend(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", "echo")
		w.Header().Add("X-Multi", "one")
		w.Header().Add("X-Multi", "two")
		body, _ := io.ReadAll(r.Body)
		var keys []string
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(w, "%s %s\n", r.Method, r.RequestURI)
		for _, k := range keys {
			fmt.Fprintf(w, "%s: %s\n", k, strings.Join(r.Header[k], ","))
		}
		if len(body) > 0 {
			fmt.Fprintf(w, "body: %s\n", body)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// lineOf is the 1-based line of conf holding marker, to predict the
// "chunk:line" positions ngx_lua reports.
func lineOf(t *testing.T, conf, marker string) int {
	t.Helper()
	for i, l := range strings.Split(conf, "\n") {
		if strings.Contains(l, marker) {
			return i + 1
		}
	}
	t.Fatalf("%q not in config", marker)
	return 0
}

// doRequestNoFatal is a GET usable from goroutines other than the test's.
func doRequestNoFatal(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

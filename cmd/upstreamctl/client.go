package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// preferredVersion is the API version whose object shapes this tool was
// written against.
const preferredVersion = 9

// maxBody bounds what is read from the API; a full status of a large
// installation is a few MB, so this only stops a runaway or hostile server.
const maxBody = 64 << 20

// client talks to one NGINX Plus API endpoint.
type client struct {
	base    string // API base URL, no trailing slash, no version
	shown   string // base with any password redacted, for messages
	version int    // 0 until discovered
	user    string
	pass    string
	auth    bool
	json    bool // --json: print the API's responses verbatim (indented)
	http    *http.Client
	tr      *http.Transport
}

func newClient(g *globals) (*client, error) {
	u, err := url.Parse(g.api)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("invalid --api URL %q: want http://HOST[:PORT]/PATH", g.api)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, usagef("invalid --api URL %q: no query or fragment allowed", g.api)
	}
	if g.timeout <= 0 {
		return nil, usagef("invalid --timeout %s: must be positive", g.timeout)
	}
	c := &client{json: g.json}
	if g.user != "" {
		user, pass, ok := strings.Cut(g.user, ":")
		if !ok {
			// We cannot prompt for a password the way curl does: scripts run
			// without a terminal, so insist on the full form.
			return nil, usagef("invalid --user: want USER:PASS")
		}
		c.user, c.pass, c.auth = user, pass, true
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	// A base that already ends in a version ("/api/8") pins it: discovery
	// would only produce "/api/8/9/...".
	if i := strings.LastIndexByte(u.Path, '/'); i >= 0 {
		if v, err := strconv.Atoi(u.Path[i+1:]); err == nil && v > 0 {
			c.version = v
			u.Path = u.Path[:i]
		}
	}
	c.base = u.String()
	c.shown = u.Redacted()
	// A private transport, closed at the end, leaves no idle connections
	// (or their goroutines) behind when run is called repeatedly in tests.
	c.tr = http.DefaultTransport.(*http.Transport).Clone()
	c.http = &http.Client{Transport: c.tr, Timeout: g.timeout}
	return c, nil
}

func (c *client) close() { c.tr.CloseIdleConnections() }

// apiPath returns the URL of an endpoint of the negotiated API version.
// Every segment is escaped, so an upstream name cannot smuggle in a path.
func (c *client) apiPath(segments ...string) (string, error) {
	if err := c.discover(); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(c.base)
	b.WriteString("/")
	b.WriteString(strconv.Itoa(c.version))
	for _, s := range segments {
		b.WriteString("/")
		b.WriteString(url.PathEscape(s))
	}
	return b.String(), nil
}

// discover picks the API version. NGINX Plus answers `GET /api/` with the
// versions it supports, e.g. [1,2,...,9]. We use 9 when it is listed (or
// when the list is unavailable: an API that does not implement the root still
// gets a chance to answer the real request), otherwise the highest listed,
// on the grounds that newer versions have so far only added fields.
func (c *client) discover() error {
	if c.version != 0 {
		return nil
	}
	body, err := c.do(http.MethodGet, c.base+"/", nil)
	var ee *exitError
	if errors.As(err, &ee) && ee.code == exitAPI {
		c.version = preferredVersion
		return nil
	}
	if err != nil {
		return err
	}
	c.version = pickVersion(body)
	return nil
}

func pickVersion(body []byte) int {
	var versions []int
	if json.Unmarshal(body, &versions) != nil || len(versions) == 0 || slices.Contains(versions, preferredVersion) {
		return preferredVersion
	}
	return slices.Max(versions)
}

// apiError is the NGINX Plus error object:
// {"error":{"status":404,"text":"upstream not found","code":"UpstreamNotFound"},"request_id":"...","href":"..."}
type apiError struct {
	Error struct {
		Status int    `json:"status"`
		Text   string `json:"text"`
		Code   string `json:"code"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

// call sends a request to a versioned endpoint and returns the body of a
// 2xx response.
func (c *client) call(method string, body any, segments ...string) ([]byte, error) {
	u, err := c.apiPath(segments...)
	if err != nil {
		return nil, err
	}
	return c.do(method, u, body)
}

// do performs one request and classifies every failure into an exitError.
func (c *client) do(method, u string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, &exitError{exitUsage, fmt.Sprintf("bad request URL: %v", err)}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "upstreamctl")
	if c.auth {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &exitError{exitUnreachable, fmt.Sprintf("cannot reach %s: %s", c.shown, transportReason(err, c.http.Timeout))}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, &exitError{exitUnreachable, fmt.Sprintf("cannot reach %s: reading response: %s", c.shown, transportReason(err, c.http.Timeout))}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return data, nil
	}
	return nil, c.statusError(resp.StatusCode, data)
}

// statusError turns a non-2xx answer into a message. The API's own error
// text and code are the most useful thing to show; a proxy or auth_basic
// in front of the API answers in HTML, so fall back to the status line.
func (c *client) statusError(status int, data []byte) error {
	code := exitAPI
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		code = exitAuth
	}
	var ae apiError
	if json.Unmarshal(data, &ae) == nil && ae.Error.Text != "" {
		st := ae.Error.Status
		if st == 0 {
			st = status
		}
		detail := strconv.Itoa(st)
		if ae.Error.Code != "" {
			detail += " " + ae.Error.Code
		}
		return &exitError{code, fmt.Sprintf("%s (%s)", ae.Error.Text, detail)}
	}
	line := fmt.Sprintf("%d %s", status, http.StatusText(status))
	switch {
	case status == http.StatusUnauthorized && !c.auth:
		return &exitError{code, fmt.Sprintf("authentication required (%s): use --user or $UPSTREAMCTL_USER", line)}
	case status == http.StatusUnauthorized:
		return &exitError{code, fmt.Sprintf("authentication failed (%s)", line)}
	case status == http.StatusForbidden:
		return &exitError{code, fmt.Sprintf("access denied (%s)", line)}
	}
	return &exitError{code, fmt.Sprintf("unexpected response from %s: %s", c.shown, line)}
}

// transportReason reduces a transport error to its cause. The full chain
// ("Get \"http://...\": dial tcp 127.0.0.1:1: connect: connection refused")
// repeats the URL we already print and buries the cause at the end.
func transportReason(err error, timeout time.Duration) string {
	var ne net.Error
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.As(err, &dns):
		return dns.Err
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("timed out after %s", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Err.Error()
	}
	return err.Error()
}

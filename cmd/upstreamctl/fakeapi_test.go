package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// fakeAPI is an in-memory NGINX Plus API (version 9 shapes) for the
// upstream endpoints, with nginx's error objects, optional basic auth and a
// log of every request it received.
type fakeAPI struct {
	mu        sync.Mutex
	versions  []int // answer of GET /api/; nil: the root is not implemented (404)
	user      string
	pass      string // user != "": basic auth required, as auth_basic would
	readOnly  string // a user that may only GET (403 on writes)
	writeOff  bool   // like `api write=off`: writes fail with 405 MethodDisabled
	intercept http.HandlerFunc
	upstreams map[string]*fakeUpstream
	requests  []string
	mux       *http.ServeMux
}

type fakeUpstream struct {
	zone    string
	static  bool
	nextID  int
	servers []*fakeServer
}

// fakeServer is one server: its dynamic configuration plus live counters.
type fakeServer struct {
	conf     confServer
	health   string // up, unavail, unhealthy or checking, before down/drain
	active   int
	requests uint64
	fails    uint64
}

// confServer is the "HTTP Upstream Server" object of /servers, in the field
// order nginx emits.
type confServer struct {
	ID          int    `json:"id"`
	Server      string `json:"server"`
	Weight      int    `json:"weight"`
	MaxConns    int    `json:"max_conns"`
	MaxFails    int    `json:"max_fails"`
	FailTimeout string `json:"fail_timeout"`
	SlowStart   string `json:"slow_start"`
	Route       string `json:"route"`
	Backup      bool   `json:"backup"`
	Down        bool   `json:"down"`
	Drain       bool   `json:"drain"`
}

// peerJSON is the "HTTP Upstream Peer" object of an upstream GET.
type peerJSON struct {
	ID        int    `json:"id"`
	Server    string `json:"server"`
	Name      string `json:"name"`
	Backup    bool   `json:"backup"`
	Weight    int    `json:"weight"`
	State     string `json:"state"`
	Active    int    `json:"active"`
	Requests  uint64 `json:"requests"`
	Responses struct {
		R1xx  uint64            `json:"1xx"`
		R2xx  uint64            `json:"2xx"`
		R3xx  uint64            `json:"3xx"`
		R4xx  uint64            `json:"4xx"`
		R5xx  uint64            `json:"5xx"`
		Codes map[string]uint64 `json:"codes"`
		Total uint64            `json:"total"`
	} `json:"responses"`
	Sent         uint64 `json:"sent"`
	Received     uint64 `json:"received"`
	Fails        uint64 `json:"fails"`
	Unavail      uint64 `json:"unavail"`
	HealthChecks struct {
		Checks     uint64 `json:"checks"`
		Fails      uint64 `json:"fails"`
		Unhealthy  uint64 `json:"unhealthy"`
		LastPassed bool   `json:"last_passed"`
	} `json:"health_checks"`
	Downtime     uint64 `json:"downtime"`
	Selected     string `json:"selected,omitempty"`
	HeaderTime   uint64 `json:"header_time,omitempty"`
	ResponseTime uint64 `json:"response_time,omitempty"`
}

type upstreamJSON struct {
	Peers     []peerJSON `json:"peers"`
	Keepalive int        `json:"keepalive"`
	Zombies   int        `json:"zombies"`
	Zone      string     `json:"zone,omitempty"`
}

func newFakeServer(id int, addr string) *fakeServer {
	return &fakeServer{health: "up", conf: confServer{
		ID: id, Server: addr, Weight: 1, MaxFails: 1, FailTimeout: "10s", SlowStart: "0s",
	}}
}

// newFakeAPI returns the fixture every test starts from:
//
//	backend: 0 up (weight 5), 1 down, 2 backup
//	api:     0 up, 1 draining, 2 unhealthy, 3 unavail
//	static:  one server; the group is not dynamically configurable
func newFakeAPI() *fakeAPI {
	f := &fakeAPI{versions: []int{1, 2, 3, 4, 5, 6, 7, 8, 9}, upstreams: map[string]*fakeUpstream{}}
	b0, b1, b2 := newFakeServer(0, "10.0.0.1:8081"), newFakeServer(1, "10.0.0.2:8081"), newFakeServer(2, "10.0.0.3:8081")
	b0.conf.Weight, b0.active, b0.requests = 5, 2, 1200
	b1.conf.Down, b1.requests, b1.fails = true, 30, 1
	b2.conf.Backup = true
	f.upstreams["backend"] = &fakeUpstream{zone: "backend", nextID: 3, servers: []*fakeServer{b0, b1, b2}}
	a0, a1, a2, a3 := newFakeServer(0, "10.0.1.1:9000"), newFakeServer(1, "10.0.1.2:9000"), newFakeServer(2, "10.0.1.3:9000"), newFakeServer(3, "10.0.1.4:9000")
	a0.requests = 50
	a1.conf.Drain, a1.active = true, 1
	a2.health, a2.fails = "unhealthy", 12
	a3.health, a3.fails = "unavail", 3
	f.upstreams["api"] = &fakeUpstream{zone: "api_zone", nextID: 4, servers: []*fakeServer{a0, a1, a2, a3}}
	s0 := newFakeServer(0, "10.0.2.1:80")
	s0.requests = 7
	f.upstreams["static"] = &fakeUpstream{static: true, nextID: 1, servers: []*fakeServer{s0}}

	m := http.NewServeMux()
	m.HandleFunc("GET /api/{$}", f.root)
	m.HandleFunc("GET /api/{v}/http/upstreams", f.listUpstreams)
	m.HandleFunc("GET /api/{v}/http/upstreams/{$}", f.listUpstreams)
	m.HandleFunc("GET /api/{v}/http/upstreams/{name}", f.getUpstream)
	m.HandleFunc("GET /api/{v}/http/upstreams/{name}/{$}", f.getUpstream)
	m.HandleFunc("GET /api/{v}/http/upstreams/{name}/servers", f.listServers)
	m.HandleFunc("GET /api/{v}/http/upstreams/{name}/servers/{$}", f.listServers)
	m.HandleFunc("POST /api/{v}/http/upstreams/{name}/servers", f.addServer)
	m.HandleFunc("POST /api/{v}/http/upstreams/{name}/servers/{$}", f.addServer)
	m.HandleFunc("GET /api/{v}/http/upstreams/{name}/servers/{id}", f.getServer)
	m.HandleFunc("PATCH /api/{v}/http/upstreams/{name}/servers/{id}", f.patchServer)
	m.HandleFunc("DELETE /api/{v}/http/upstreams/{name}/servers/{id}", f.deleteServer)
	f.mux = m
	return f
}

func (f *fakeAPI) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// ServeHTTP records the request, then applies what sits in front of the
// API handlers in nginx: auth_basic, access control and the api directive's
// version and write checks.
func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	entry := r.Method + " " + r.URL.EscapedPath()
	if len(body) > 0 {
		entry += " " + string(body)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, entry)
	r.Body = io.NopCloser(strings.NewReader(string(body)))

	if f.intercept != nil {
		f.intercept(w, r)
		return
	}
	if f.user != "" {
		u, p, ok := r.BasicAuth()
		switch {
		case ok && u == f.user && p == f.pass:
		case ok && u == f.readOnly && p == f.pass && r.Method == http.MethodGet:
		case ok && u == f.readOnly && p == f.pass:
			htmlError(w, http.StatusForbidden, "403 Forbidden")
			return
		default:
			w.Header().Set("WWW-Authenticate", `Basic realm="api"`)
			htmlError(w, http.StatusUnauthorized, "401 Authorization Required")
			return
		}
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/api/"); ok && rest != "" {
		seg, _, _ := strings.Cut(rest, "/")
		n, err := strconv.Atoi(seg)
		if err != nil || !slices.Contains(f.supported(), n) {
			apiError404(w, "unknown version", "UnknownVersion")
			return
		}
	}
	if f.writeOff && r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "method disabled", "MethodDisabled")
		return
	}
	f.mux.ServeHTTP(w, r)
}

func (f *fakeAPI) supported() []int {
	if f.versions == nil {
		return []int{9}
	}
	return f.versions
}

// The handlers below run with f.mu held by ServeHTTP.

func (f *fakeAPI) root(w http.ResponseWriter, r *http.Request) {
	if f.versions == nil {
		apiError404(w, "path not found", "PathNotFound")
		return
	}
	writeJSON(w, http.StatusOK, f.versions)
}

func (f *fakeAPI) listUpstreams(w http.ResponseWriter, r *http.Request) {
	out := map[string]upstreamJSON{}
	for name, u := range f.upstreams {
		out[name] = u.render()
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *fakeAPI) getUpstream(w http.ResponseWriter, r *http.Request) {
	if u := f.lookup(w, r, false); u != nil {
		writeJSON(w, http.StatusOK, u.render())
	}
}

func (f *fakeAPI) listServers(w http.ResponseWriter, r *http.Request) {
	if u := f.lookup(w, r, true); u != nil {
		writeJSON(w, http.StatusOK, u.confs())
	}
}

func (f *fakeAPI) getServer(w http.ResponseWriter, r *http.Request) {
	if _, s := f.lookupServer(w, r); s != nil {
		writeJSON(w, http.StatusOK, s.conf)
	}
}

func (f *fakeAPI) addServer(w http.ResponseWriter, r *http.Request) {
	u := f.lookup(w, r, true)
	if u == nil {
		return
	}
	s := newFakeServer(u.nextID, "")
	params, ok := decodeParams(w, r)
	if !ok || !applyParams(w, s, params, true) {
		return
	}
	if s.conf.Server == "" {
		writeError(w, http.StatusBadRequest, `missing "server" argument`, "UpstreamConfFormatError")
		return
	}
	u.nextID++
	u.servers = append(u.servers, s)
	writeJSON(w, http.StatusCreated, s.conf)
}

func (f *fakeAPI) patchServer(w http.ResponseWriter, r *http.Request) {
	_, s := f.lookupServer(w, r)
	if s == nil {
		return
	}
	params, ok := decodeParams(w, r)
	if !ok {
		return
	}
	// Validate on a copy so a rejected PATCH changes nothing, as in nginx.
	c := *s
	if !applyParams(w, &c, params, false) {
		return
	}
	*s = c
	writeJSON(w, http.StatusOK, s.conf)
}

func (f *fakeAPI) deleteServer(w http.ResponseWriter, r *http.Request) {
	u, s := f.lookupServer(w, r)
	if s == nil {
		return
	}
	u.servers = slices.DeleteFunc(u.servers, func(x *fakeServer) bool { return x == s })
	writeJSON(w, http.StatusOK, u.confs())
}

func (f *fakeAPI) lookup(w http.ResponseWriter, r *http.Request, dynamic bool) *fakeUpstream {
	u := f.upstreams[r.PathValue("name")]
	switch {
	case u == nil:
		apiError404(w, "upstream not found", "UpstreamNotFound")
		return nil
	case dynamic && u.static:
		writeError(w, http.StatusBadRequest, "upstream is static", "UpstreamStatic")
		return nil
	}
	return u
}

func (f *fakeAPI) lookupServer(w http.ResponseWriter, r *http.Request) (*fakeUpstream, *fakeServer) {
	u := f.lookup(w, r, true)
	if u == nil {
		return nil, nil
	}
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 0 {
		writeError(w, http.StatusBadRequest, "invalid server id", "UpstreamBadServerId")
		return nil, nil
	}
	for _, s := range u.servers {
		if s.conf.ID == id {
			return u, s
		}
	}
	apiError404(w, fmt.Sprintf("server with ID \"%d\" does not exist", id), "UpstreamServerNotFound")
	return nil, nil
}

func (u *fakeUpstream) confs() []confServer {
	out := []confServer{}
	for _, s := range u.servers {
		out = append(out, s.conf)
	}
	return out
}

func (u *fakeUpstream) render() upstreamJSON {
	out := upstreamJSON{Peers: []peerJSON{}, Zone: u.zone}
	for _, s := range u.servers {
		p := peerJSON{
			ID: s.conf.ID, Server: s.conf.Server, Name: s.conf.Server, Backup: s.conf.Backup,
			Weight: s.conf.Weight, State: s.health, Active: s.active, Requests: s.requests, Fails: s.fails,
		}
		switch {
		case s.conf.Drain:
			p.State = "draining"
		case s.conf.Down:
			p.State = "down"
		}
		p.Responses.R2xx, p.Responses.Total = s.requests, s.requests
		p.Responses.Codes = map[string]uint64{}
		if s.requests > 0 {
			p.Responses.Codes["200"] = s.requests
		}
		out.Peers = append(out.Peers, p)
	}
	return out
}

func decodeParams(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, bool) {
	var params map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&params); err != nil {
		writeError(w, http.StatusUnsupportedMediaType, "json error", "JsonError")
		return nil, false
	}
	return params, true
}

// applyParams sets the parameters nginx accepts on a server, with nginx's
// validation errors. "server" and "backup" may only be given on POST.
func applyParams(w http.ResponseWriter, s *fakeServer, params map[string]json.RawMessage, creating bool) bool {
	for key, raw := range params {
		var err error
		c := &s.conf
		switch key {
		case "server":
			if !creating {
				err = fmt.Errorf("unknown")
				break
			}
			err = json.Unmarshal(raw, &c.Server)
		case "backup":
			if !creating {
				err = fmt.Errorf("unknown")
				break
			}
			err = json.Unmarshal(raw, &c.Backup)
		case "weight":
			if err = json.Unmarshal(raw, &c.Weight); err == nil && c.Weight < 1 {
				writeError(w, http.StatusBadRequest, `invalid "weight"`, "UpstreamBadWeight")
				return false
			}
		case "max_conns":
			err = json.Unmarshal(raw, &c.MaxConns)
		case "max_fails":
			err = json.Unmarshal(raw, &c.MaxFails)
		case "fail_timeout":
			err = json.Unmarshal(raw, &c.FailTimeout)
		case "slow_start":
			err = json.Unmarshal(raw, &c.SlowStart)
		case "route":
			err = json.Unmarshal(raw, &c.Route)
		case "down":
			err = json.Unmarshal(raw, &c.Down)
		case "drain":
			err = json.Unmarshal(raw, &c.Drain)
		default:
			err = fmt.Errorf("unknown")
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid %q value", key), "UpstreamConfFormatError")
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func apiError404(w http.ResponseWriter, text, code string) {
	writeError(w, http.StatusNotFound, text, code)
}

// writeError writes nginx's error object, request_id and href included.
func writeError(w http.ResponseWriter, status int, text, code string) {
	id := make([]byte, 16)
	rand.Read(id)
	// Declared here rather than reusing the client's type, so a wrong tag
	// in the client cannot be mirrored by the fake.
	var e struct {
		Error struct {
			Status int    `json:"status"`
			Text   string `json:"text"`
			Code   string `json:"code"`
		} `json:"error"`
		RequestID string `json:"request_id"`
		Href      string `json:"href"`
	}
	e.Error.Status, e.Error.Text, e.Error.Code = status, text, code
	e.RequestID = hex.EncodeToString(id)
	e.Href = "https://nginx.org/en/docs/http/ngx_http_api_module.html"
	writeJSON(w, status, e)
}

// htmlError answers like nginx's built-in error pages, which is what a
// client gets from auth_basic or deny in front of the API.
func htmlError(w http.ResponseWriter, status int, title string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n", title, title)
}

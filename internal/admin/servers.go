package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"upstreamd/internal/upstream"
)

// maxRoute is NGINX Plus's limit on a route (UpstreamBadRoute beyond it).
const maxRoute = 32

// serverParams are the members of a POST or PATCH body; nil = absent.
type serverParams struct {
	id                         *int
	server, route              *string
	weight, maxConns, maxFails *int
	failTimeout, slowStart     *time.Duration
	backup, down, drain        *bool
}

func badRequest(code, text string) *apiError { return errorf(http.StatusBadRequest, code, text) }

// readParams reads and validates a server object body completely before
// anything is changed. Errors follow NGINX Plus: a body that is not JSON is
// 415 JsonError; an unknown member, a nested object or list, or a value of
// the wrong type is 400 UpstreamConfFormatError; a value out of range is 400
// with the parameter's own code (UpstreamBadWeight, ...). The request's
// Content-Type is not looked at (NGINX Plus does not either, so `curl -d`
// works).
func readParams(r *http.Request) (serverParams, *apiError) {
	var sp serverParams
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return sp, errorf(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "request entity too large")
		}
		return sp, badRequest("BodyReadError", "reading request body failed")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return sp, errorf(http.StatusUnsupportedMediaType, "JsonError", "json error: "+err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return sp, errorf(http.StatusUnsupportedMediaType, "JsonError", "json error: data after the JSON value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return sp, badRequest("UpstreamConfFormatError", "JSON object expected")
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	// Sorted, so that a body with several mistakes always reports the same.
	slices.Sort(keys)
	for _, k := range keys {
		val := obj[k]
		switch val.(type) {
		case map[string]any, []any:
			return sp, badRequest("UpstreamConfFormatError", "nested object or list")
		}
		invalid := badRequest("UpstreamConfFormatError", fmt.Sprintf("invalid %q value", k))
		var aerr *apiError
		switch k {
		case "id":
			sp.id, aerr = intParam(val, 0, math.MaxInt, invalid, invalid)
		case "server", "route":
			s, ok := val.(string)
			if !ok {
				return sp, invalid
			}
			if k == "server" {
				sp.server = &s
			} else if len(s) > maxRoute {
				return sp, badRequest("UpstreamBadRoute", "route is too long")
			} else {
				sp.route = &s
			}
		case "weight":
			sp.weight, aerr = intParam(val, 1, math.MaxInt32, invalid, badRequest("UpstreamBadWeight", `invalid "weight"`))
		case "max_conns":
			sp.maxConns, aerr = intParam(val, 0, math.MaxInt32, invalid, badRequest("UpstreamBadMaxConns", `invalid "max_conns"`))
		case "max_fails":
			sp.maxFails, aerr = intParam(val, 0, math.MaxInt32, invalid, badRequest("UpstreamBadMaxFails", `invalid "max_fails"`))
		case "fail_timeout":
			sp.failTimeout, aerr = durationParam(val, invalid, badRequest("UpstreamBadFailTimeout", `invalid "fail_timeout"`))
		case "slow_start":
			sp.slowStart, aerr = durationParam(val, invalid, badRequest("UpstreamBadSlowStart", `invalid "slow_start"`))
		case "backup", "down", "drain":
			b, ok := val.(bool)
			if !ok {
				return sp, invalid
			}
			switch k {
			case "backup":
				sp.backup = &b
			case "down":
				sp.down = &b
			default:
				sp.drain = &b
			}
		default:
			// also NGINX Plus's service, parent and host: there is no
			// service discovery here
			return sp, badRequest("UpstreamConfFormatError", fmt.Sprintf("unknown parameter %q", k))
		}
		if aerr != nil {
			return sp, aerr
		}
	}
	return sp, nil
}

// intParam accepts a JSON integer in [lo, hi]: typeErr for anything that is
// not an integer, rangeErr for one out of range.
func intParam(v any, lo, hi int, typeErr, rangeErr *apiError) (*int, *apiError) {
	n, ok := v.(json.Number)
	if !ok {
		return nil, typeErr
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		if strings.ContainsAny(string(n), ".eE") {
			return nil, typeErr
		}
		return nil, rangeErr // an integer too large for int64
	}
	if i < int64(lo) || i > int64(hi) {
		return nil, rangeErr
	}
	x := int(i)
	return &x, nil
}

// durationParam accepts an nginx time in seconds, as a string ("10s",
// "1m30s", "30") or a JSON integer of seconds (NGINX Plus shows slow_start
// as a number in places).
func durationParam(v any, typeErr, rangeErr *apiError) (*time.Duration, *apiError) {
	var d time.Duration
	switch x := v.(type) {
	case string:
		var ok bool
		if d, ok = parseSeconds(x); !ok {
			return nil, rangeErr
		}
	case json.Number:
		n, aerr := intParam(x, 0, maxSeconds, typeErr, rangeErr)
		if aerr != nil {
			return nil, aerr
		}
		d = time.Duration(*n) * time.Second
	default:
		return nil, typeErr
	}
	return &d, nil
}

// maxSeconds bounds times so that they stay far from time.Duration's range
// (about 292 years): 100 years.
const maxSeconds = 100 * 365 * 24 * 3600

// timeUnits are nginx's units for times given in seconds, largest first; a
// time's parts must use them in this order.
type timeUnit struct {
	unit byte
	sec  int64
}

var timeUnits = []timeUnit{
	{'y', 365 * 24 * 3600}, {'M', 30 * 24 * 3600}, {'w', 7 * 24 * 3600}, {'d', 24 * 3600},
	{'h', 3600}, {'m', 60}, {'s', 1},
}

// parseSeconds parses an nginx time given in seconds, like fail_timeout=
// in a server line: numbers with units in decreasing order ("1h30m", "1h
// 30m"), a bare number meaning seconds.
func parseSeconds(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	var total int64
	last := -1
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i > 12 {
			return 0, false
		}
		n, _ := strconv.ParseInt(s[:i], 10, 64)
		s = s[i:]
		u := len(timeUnits) - 1 // bare number: seconds
		if s != "" {
			u = slices.IndexFunc(timeUnits, func(t timeUnit) bool { return t.unit == s[0] })
			if u < 0 {
				return 0, false
			}
			s = strings.TrimLeft(s[1:], " ")
		}
		if u <= last {
			return 0, false
		}
		last = u
		total += n * timeUnits[u].sec
		if total > maxSeconds {
			return 0, false
		}
	}
	return time.Duration(total) * time.Second, true
}

// apply sets the present parameters on spec.
func (sp serverParams) apply(spec *upstream.ServerSpec) {
	set := func(dst *int, src *int) {
		if src != nil {
			*dst = *src
		}
	}
	set(&spec.Weight, sp.weight)
	set(&spec.MaxConns, sp.maxConns)
	set(&spec.MaxFails, sp.maxFails)
	if sp.failTimeout != nil {
		spec.FailTimeout = *sp.failTimeout
	}
	if sp.slowStart != nil {
		spec.SlowStart = *sp.slowStart
	}
	if sp.route != nil {
		spec.Route = *sp.route
	}
	if sp.down != nil {
		spec.Down = *sp.down
	}
	if sp.drain != nil {
		spec.Drain = *sp.drain
	}
}

// methodErr checks what the upstream's balancing method rules out, so the
// answer has NGINX Plus's code rather than a generic one.
func methodErr(u *upstream.Upstream, sp serverParams) *apiError {
	m := u.Method()
	balancedByWeight := m == upstream.RoundRobin || m == upstream.LeastConn
	if sp.backup != nil && *sp.backup && !balancedByWeight {
		return badRequest("UpstreamNoBackup", fmt.Sprintf("upstream %q has no backup (balancing method %s)", u.Name(), m))
	}
	if sp.slowStart != nil && *sp.slowStart > 0 && !balancedByWeight {
		return badRequest("UpstreamBadSlowStart", fmt.Sprintf(`invalid "slow_start": not supported by balancing method %s`, m))
	}
	return nil
}

// addServer is POST .../servers: one new server (one peer, one id; a host
// name is resolved when connecting), 201 with its server object. An address
// or name the upstream already has is 409 EntryExists.
func (h *handler) addServer(r *http.Request, u *upstream.Upstream) (int, any, *apiError) {
	sp, aerr := readParams(r)
	if aerr != nil {
		return 0, nil, aerr
	}
	if sp.server == nil {
		return 0, nil, badRequest("UpstreamConfFormatError", `missing "server" argument`)
	}
	if sp.id != nil {
		return 0, nil, badRequest("UpstreamConfFormatError", `parameter "id" cannot be set, it is assigned`)
	}
	if aerr := methodErr(u, sp); aerr != nil {
		return 0, nil, aerr
	}
	name, addr, err := upstream.ParseServerAddr(*sp.server)
	if err != nil {
		return 0, nil, badRequest("UpstreamBadAddress", fmt.Sprintf("%s while parsing %q", err, *sp.server))
	}
	spec := upstream.DefaultSpec(name, addr)
	sp.apply(&spec)
	if sp.backup != nil {
		spec.Backup = *sp.backup
	}
	p, err := u.AddUniquePeer(spec)
	switch {
	case errors.Is(err, upstream.ErrServerExists):
		return 0, nil, errorf(http.StatusConflict, "EntryExists", fmt.Sprintf("server %q already exists", *sp.server))
	case err != nil:
		return 0, nil, badRequest("UpstreamConfFormatError", err.Error())
	}
	return http.StatusCreated, serverObject(p), nil
}

// patchServer is PATCH .../servers/{id}: every given parameter at once or,
// on any error, none. id, server and backup identify the server and cannot
// change; giving their current value is allowed, so a GET result can be sent
// back with a change.
func (h *handler) patchServer(r *http.Request, u *upstream.Upstream, uid int, idText string) (int, any, *apiError) {
	sp, aerr := readParams(r)
	if aerr != nil {
		return 0, nil, aerr
	}
	p, err := u.Snapshot().FindUID(uid)
	if err != nil {
		return 0, nil, serverNotFound(idText)
	}
	immutable := func(what string) *apiError {
		return badRequest("UpstreamServerImmutable", fmt.Sprintf("server %q %s is immutable", idText, what))
	}
	switch {
	case sp.id != nil && *sp.id != uid:
		return 0, nil, immutable("ID")
	case sp.server != nil && *sp.server != p.Addr() && *sp.server != p.Name():
		return 0, nil, immutable("address")
	case sp.backup != nil && *sp.backup != p.IsBackup():
		return 0, nil, immutable("backup")
	}
	if aerr := methodErr(u, sp); aerr != nil {
		return 0, nil, aerr
	}
	np, err := u.Update(uid, sp.apply)
	switch {
	case errors.Is(err, upstream.ErrBadPeerID):
		return 0, nil, serverNotFound(idText) // removed meanwhile
	case err != nil:
		return 0, nil, badRequest("UpstreamConfFormatError", err.Error())
	}
	return http.StatusOK, serverObject(np), nil
}

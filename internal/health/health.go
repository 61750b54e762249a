// Package health runs NGINX Plus-style active health checks
// (`health_check` in a proxying location, `match` blocks) against the live
// upstreams of a generation.
//
// Each health_check directive becomes one check: a goroutine that, every
// interval (plus a random jitter), probes every peer of its upstream — both
// lists, every resolved address, peers added at run time included, since it
// reads the current snapshot each round — and turns the results into
// verdicts on the live peer model (upstream.Peer.SetCheckVerdict). There is
// one set of checks for the whole server (never one per worker, as the
// process has none), started when a generation starts serving and stopped
// when it is replaced or the server shuts down.
//
// The state machine, per check and peer:
//
//   - a peer failing `fails` probes in a row becomes unhealthy and gets no
//     traffic until `passes` probes in a row succeed;
//   - under a mandatory check a peer starts "checking" (no traffic) and its
//     first probe decides: a pass makes it healthy, a failure unhealthy;
//   - with `persistent`, a peer that was healthy in the previous generation
//     skips "checking" after a reload.
//
// Several checks on one upstream each keep their own verdict; a peer is
// healthy only while every check passes it.
package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"sync"
	"time"

	"upstreamd/internal/config"
	"upstreamd/internal/errlog"
	"upstreamd/internal/upstream"
)

// maxBody is how much of a response body a match's body rules look at, as
// in NGINX Plus.
const maxBody = 256 << 10

// Start begins the health checks of cfg on the upstreams of reg and returns
// a function that stops them and waits until they are stopped (calling it
// again does nothing). prev is the
// registry of the generation being replaced (nil at start): peers there
// that were healthy skip "checking" under a `mandatory persistent` check.
//
// Start declares the checks on each upstream before returning, so mandatory
// peers are already "checking" when the generation takes its first request:
// call it before making the generation current.
func Start(cfg *config.Config, reg, prev *upstream.Registry, log *errlog.Logger) (stop func()) {
	if cfg == nil || cfg.HTTP == nil || len(cfg.HTTP.HealthChecks) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	byUpstream := map[string][]*config.HealthCheck{}
	var order []string
	for _, hc := range cfg.HTTP.HealthChecks {
		if byUpstream[hc.Upstream] == nil {
			order = append(order, hc.Upstream)
		}
		byUpstream[hc.Upstream] = append(byUpstream[hc.Upstream], hc)
	}
	for _, name := range order {
		u := reg.Get(name)
		if u == nil {
			continue
		}
		hcs := byUpstream[name]
		var mandatory uint64
		for i, hc := range hcs {
			if hc.Mandatory {
				mandatory |= 1 << i
			}
		}
		if err := u.SetHealthChecks(len(hcs), mandatory); err != nil {
			log.Logf(errlog.Error, 0, "%v", err)
			continue
		}
		var old *upstream.Upstream
		if prev != nil {
			old = prev.Get(name)
		}
		for i, hc := range hcs {
			c := newCheck(i, hc, cfg.HTTP.Matches[hc.Match], u, log)
			if hc.Mandatory && hc.Persistent && old != nil {
				c.carry(old)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.run(ctx)
			}()
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
}

// check is one health_check directive at run time.
type check struct {
	idx   int
	hc    *config.HealthCheck
	match *config.Match // nil: the default test, status 2xx or 3xx
	u     *upstream.Upstream
	log   *errlog.Logger

	connectTimeout, readTimeout time.Duration
	client                      *http.Client

	// streaks are the consecutive results per peer, by upstream-wide id
	// (never reused, so a removed peer's streak cannot pass to another).
	// Only the check's own goroutine touches them.
	streaks map[int]*streak
}

type streak struct {
	fails, passes int
	bad           bool // this check's verdict: unhealthy
}

func newCheck(idx int, hc *config.HealthCheck, m *config.Match, u *upstream.Upstream, log *errlog.Logger) *check {
	c := &check{idx: idx, hc: hc, match: m, u: u, log: log, streaks: map[int]*streak{}}
	// A probe never outlives its interval: the next one would overlap it.
	c.connectTimeout = boundedTimeout(hc.ConnectTimeout, hc.Interval)
	c.readTimeout = boundedTimeout(hc.ReadTimeout, hc.Interval)
	c.client = &http.Client{
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: c.connectTimeout}).DialContext,
			ResponseHeaderTimeout: c.readTimeout,
			// Each probe opens its own connection, as NGINX Plus's do: a
			// kept-alive connection would hide a peer that stopped
			// accepting new ones.
			DisableKeepAlives:  true,
			DisableCompression: true,
			Proxy:              nil,
		},
		// A redirect is the answer to judge, not a thing to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

func boundedTimeout(t, interval time.Duration) time.Duration {
	if t <= 0 || t > interval {
		return interval
	}
	return t
}

// carry applies `persistent`: peers that were healthy before the reload
// (same name and address in the previous generation's upstream) start
// healthy instead of checking.
func (c *check) carry(old *upstream.Upstream) {
	was := map[string]bool{}
	for _, p := range old.Snapshot().All() {
		h := p.Health()
		was[p.Name()+"|"+p.Addr()] = h.State == upstream.HealthHealthy || h.State == upstream.HealthNone
	}
	for _, p := range c.u.Snapshot().All() {
		if was[p.Name()+"|"+p.Addr()] {
			p.SetCheckVerdict(c.idx, true)
		}
	}
}

func (c *check) run(ctx context.Context) {
	c.tracef("started")
	for {
		c.round(ctx)
		wait := c.hc.Interval
		if c.hc.Jitter > 0 {
			wait += rand.N(c.hc.Jitter)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// round probes every current peer at once and applies each result as it
// arrives, so one slow peer delays neither the probes of the others nor the
// verdicts on them.
func (c *check) round(ctx context.Context) {
	peers := c.u.Snapshot().All()
	type result struct {
		p   *upstream.Peer
		err error
	}
	results := make(chan result, len(peers))
	for _, p := range peers {
		go func() { results <- result{p, c.probe(ctx, p)} }()
	}
	seen := make(map[int]bool, len(peers))
	for range peers {
		r := <-results
		seen[r.p.UID()] = true
		if ctx.Err() != nil {
			// Stopped mid-round: the result says nothing about the peer.
			continue
		}
		c.apply(r.p, r.err)
	}
	for uid := range c.streaks {
		if !seen[uid] {
			delete(c.streaks, uid)
		}
	}
}

// apply turns one probe result into the check's verdict on the peer and
// logs the peer's transitions.
func (c *check) apply(p *upstream.Peer, err error) {
	s := c.streaks[p.UID()]
	if s == nil {
		s = &streak{}
		c.streaks[p.UID()] = s
	}
	passed := err == nil
	pending := p.CheckPending(c.idx)
	p.CountCheck(passed)
	if passed {
		s.passes++
		s.fails = 0
	} else {
		s.fails++
		s.passes = 0
	}
	switch {
	case pending:
		// The first result of a mandatory check decides at once: the peer
		// never had traffic to lose.
		s.bad = !passed
	case s.bad && passed && s.passes >= c.hc.Passes:
		s.bad = false
	case !s.bad && !passed && s.fails >= c.hc.Fails:
		s.bad = true
	default:
		return
	}
	before, after := p.SetCheckVerdict(c.idx, !s.bad)
	switch {
	case after == before:
	case after == upstream.HealthUnhealthy:
		c.log.Logf(errlog.Warn, 0, "peer %s in upstream %s is unhealthy: %v", p.Addr(), c.u.Name(), err)
	case after == upstream.HealthHealthy:
		c.log.Logf(errlog.Warn, 0, "peer %s in upstream %s is healthy", p.Addr(), c.u.Name())
	}
}

func (c *check) tracef(format string, args ...any) {
	c.log.Logf(errlog.Debug, 0, "health check %s:%d on upstream %s: "+format,
		append([]any{c.hc.File, c.hc.Line, c.u.Name()}, args...)...)
}

// target is the address to probe: the peer's, with port= applied.
func (c *check) target(p *upstream.Peer) string {
	addr := p.Addr()
	if c.hc.Port == 0 {
		return addr
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return net.JoinHostPort(host, strconv.Itoa(c.hc.Port))
}

// probe runs one check of one peer; nil means it passed.
func (c *check) probe(ctx context.Context, p *upstream.Peer) error {
	addr := c.target(p)
	if c.hc.Type == "tcp" {
		d := net.Dialer{Timeout: c.connectTimeout}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return connectErr(err)
		}
		return conn.Close()
	}
	ctx, cancel := context.WithTimeout(ctx, c.connectTimeout+c.readTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+c.hc.URI, nil)
	if err != nil {
		return err
	}
	req.Host = c.hc.Host
	req.Header.Set("User-Agent", "upstreamd health check")
	resp, err := c.client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return connectErr(op)
		}
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return errors.New("upstream timed out")
		}
		return fmt.Errorf("request failed (%v)", unwrapURL(err))
	}
	defer resp.Body.Close()
	var body []byte
	if c.match != nil && needsBody(c.match) {
		if body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody)); err != nil {
			if isTimeout(err) {
				return errors.New("upstream timed out reading the body")
			}
			return fmt.Errorf("reading the body failed (%v)", err)
		}
	}
	if c.match == nil {
		if resp.StatusCode < 200 || resp.StatusCode > 399 {
			return fmt.Errorf("status %d is not 2xx or 3xx", resp.StatusCode)
		}
		return nil
	}
	return Evaluate(c.match, resp.StatusCode, resp.Header, body)
}

func needsBody(m *config.Match) bool {
	for _, r := range m.Rules {
		if r.Kind == "body" {
			return true
		}
	}
	return false
}

// Evaluate reports whether a response passes every rule of m, and which
// rule failed when it does not.
func Evaluate(m *config.Match, status int, h http.Header, body []byte) error {
	for _, r := range m.Rules {
		if !ruleHolds(r, status, h, body) {
			return fmt.Errorf("response does not match \"%s\": %s (status %d)", m.Name, ruleText(r), status)
		}
	}
	return nil
}

func ruleHolds(r config.MatchRule, status int, h http.Header, body []byte) bool {
	switch r.Kind {
	case "status":
		in := false
		for _, c := range r.Codes {
			if status >= c[0] && status <= c[1] {
				in = true
				break
			}
		}
		return in != r.Negate
	case "header":
		vals, present := h[textproto.CanonicalMIMEHeaderKey(r.Header)]
		switch r.Op {
		case "":
			return present != r.Negate
		case "=", "!=":
			// The header must be there; = wants one of its values equal,
			// != one different.
			for _, v := range vals {
				if (v == r.Value) != r.Negate {
					return true
				}
			}
			return false
		default: // ~ and !~
			for _, v := range vals {
				if r.Re.MatchString(v) != r.Negate {
					return true
				}
			}
			return false
		}
	case "body":
		return r.Re.Match(body) != r.Negate
	}
	return false
}

func ruleText(r config.MatchRule) string {
	s := r.Kind
	for _, a := range r.Args {
		s += " " + a
	}
	return s
}

func connectErr(err error) error {
	if isTimeout(err) {
		return errors.New("upstream timed out while connecting")
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	return fmt.Errorf("connect() failed (%v)", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// unwrapURL drops net/http's `Get "http://...":` prefix; the log line
// names the peer already.
func unwrapURL(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

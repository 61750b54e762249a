// Package upstream holds the live state of nginx-style upstream groups and
// reproduces nginx's load-balancing algorithms (round robin, least_conn,
// ip_hash, hash [consistent], random [two]).
//
// Concurrency model:
//
//   - The peer list of an upstream is an immutable *Snapshot published through
//     an atomic.Pointer. Runtime changes (SetDown, SetDrain, SetWeight, Add,
//     Remove, RemoveAddr) build a new Snapshot under a per-upstream writer
//     mutex and publish it; Snapshot() is a lock-free read.
//   - Peer ids are stable: an id names one peer for the peer's whole life and
//     is never given to another peer of the same list (primary or backup) in
//     the same Upstream, so a script holding an id can never reach the wrong
//     server after others were added or removed. Configured peers get
//     0..n-1 in config order per list (the lua-upstream-nginx-module's
//     0-based positions); added peers get one more than the highest id ever
//     assigned in their list. Lists stay in id order.
//   - Every peer also has an upstream-wide id, the uid (Peer.UID), for APIs
//     that address a server across both lists (the NGINX Plus REST API):
//     configured peers get 0..n-1 in config order across primary and backup,
//     added peers count on, and a uid is never reused. Because both kinds of
//     id are handed out in the same order, each list is sorted by uid too.
//   - Every configured server has one liveState (conns, fails, requests,
//     current/effective weight, accessed/checked). A new Snapshot's Peer for
//     the same server points to the same liveState, so counters survive
//     snapshot swaps. liveState is written under a small per-upstream
//     balancer mutex, exactly like nginx write-locks the peers while it picks
//     or frees one; the critical section is nginx's O(peers) scan, or for
//     round robin in the steady state an O(log peers) heap step giving the
//     same picks (fastrr.go). conns and requests are atomics, readable
//     without the lock.
//   - Pickers load the snapshot while holding the balancer mutex and writers
//     publish while holding it, so a change is seen by the very next pick and a
//     pick never mixes two snapshots.
//
// Time: like nginx (ngx_time()), failure accounting works on whole seconds.
// fail_timeout is truncated to whole seconds.
package upstream

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Method is a load-balancing method.
type Method int

// Balancing methods (nginx directives: none, least_conn, ip_hash, hash, random).
const (
	RoundRobin Method = iota
	LeastConn
	IPHash
	Hash
	Random
)

func (m Method) String() string {
	switch m {
	case RoundRobin:
		return "round_robin"
	case LeastConn:
		return "least_conn"
	case IPHash:
		return "ip_hash"
	case Hash:
		return "hash"
	case Random:
		return "random"
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// supportsBackup reports whether nginx allows the "backup" server parameter
// with this method (NGX_HTTP_UPSTREAM_BACKUP flag).
func (m Method) supportsBackup() bool {
	return m == RoundRobin || m == LeastConn
}

var (
	// ErrNoLiveUpstreams is returned by Attempt.Next when no peer is usable.
	ErrNoLiveUpstreams = errors.New("no live upstreams")
	// ErrBadPeerID is returned by runtime operations for an id that names no
	// current peer of the list (never assigned, or removed).
	ErrBadPeerID = errors.New("bad peer id")
	// ErrNoBackupPeers is returned by runtime operations addressing the
	// backup set of an upstream that has no backup peers.
	ErrNoBackupPeers = errors.New("no backup peers")
	// ErrServerNotFound is returned by RemoveAddr when no peer has the
	// address or name.
	ErrServerNotFound = errors.New("server not found")
	// ErrAmbiguousServer is returned by RemoveAddr when the address or name
	// denotes more than one server entry; the caller must remove by id.
	ErrAmbiguousServer = errors.New("ambiguous server")
)

// ServerSpec is one peer as configured (a `server` line with a hostname
// resolving to N addresses gives N specs with the same Name).
type ServerSpec struct {
	Name        string        // as written in the config, e.g. "localhost:8081"
	Addr        string        // resolved "ip:port" to connect to (defaults to Name when empty)
	Weight      int           // default 1 (0 means 1)
	MaxFails    int           // nginx default 1; 0 disables failure accounting
	FailTimeout time.Duration // nginx default 10s; whole seconds are used
	MaxConns    int           // 0 = unlimited
	Backup      bool
	Down        bool
	// Drain: the peer takes no new requests; those already sent to it
	// finish. Unlike Down it is meant as the first step of a removal.
	Drain bool
	// SlowStart: after the peer comes back (down -> up, or unavailable ->
	// up) its weight ramps linearly from 1 to Weight over this time (whole
	// seconds; see Peer.weightAt). 0 disables it. Round robin and least_conn
	// only, as in NGINX Plus.
	SlowStart time.Duration
	// Route is NGINX Plus's `route=` server parameter. It is kept and shown
	// by the APIs but not used to balance (there is no `sticky`).
	Route string
}

// DefaultSpec returns a spec with nginx's defaults for a `server` line
// without parameters: weight=1 max_fails=1 fail_timeout=10s.
func DefaultSpec(name, addr string) ServerSpec {
	return ServerSpec{Name: name, Addr: addr, Weight: 1, MaxFails: 1, FailTimeout: 10 * time.Second}
}

// Options configure an Upstream.
type Options struct {
	Name           string
	Method         Method
	HashConsistent bool                    // `hash KEY consistent` (ketama)
	RandomTwo      bool                    // `random two` (best of two by least conns)
	Now            func() time.Time        // injected clock; nil = time.Now
	Log            func(level, msg string) // nil = discard

	// Rand returns uniformly distributed random numbers for the random
	// method (nginx: ngx_random()). It is called with the balancer mutex
	// held, so it need not be safe for concurrent use. nil = math/rand/v2.
	Rand func() uint64

	// OnPublish runs after every runtime change is published, with the
	// writer lock held, before the operation returns: the `state` file is
	// saved here so a change is on disk before any caller reports success.
	OnPublish func(*Snapshot)
	// AllowEmpty lets an upstream start with no servers: one whose servers
	// come from a `state` file that is still empty.
	AllowEmpty bool
}

// liveState is the per-server state that survives snapshot swaps. Every
// plain field is written only with Upstream.mu held (the balancer decides on
// conns while holding it); conns and requests are atomics so metrics and read
// APIs can also load them without the lock (Peer.Conns, Peer.Requests).
type liveState struct {
	currentWeight   int
	effectiveWeight int
	fails           int
	accessed        int64 // unix seconds, 0 = never
	checked         int64 // unix seconds, 0 = never
	selected        int64 // unix seconds of the last pick, 0 = never
	recovered       int64 // unix seconds the slow-start ramp began, 0 = none
	failsTotal      uint64
	unavail         uint64 // times max_fails was reached (NGINX Plus "unavail")
	fastK           int32  // index in Upstream.fast.peers (checked before use)
	conns           atomic.Int64
	requests        atomic.Uint64

	// Response statistics, fed by Peer.RecordResponse outside the balancer
	// lock (they are per response, not per pick, and must not slow picks).
	resp        [5]atomic.Uint64 // 1xx..5xx
	respTotal   atomic.Uint64
	sent        atomic.Uint64
	received    atomic.Uint64
	headerNanos atomic.Int64 // sums, for averages
	respNanos   atomic.Int64
	// codes counts responses per status code. It is allocated on the first
	// response (4 KB: peers that never answer cost nothing) and then only
	// incremented, so RecordResponse never takes a lock.
	codes atomic.Pointer[codeCounters]

	// Down time (NGINX Plus "downtime"/"downstart"): time spent unavail,
	// checking or unhealthy. Updated under Upstream.mu at the transitions
	// (see downtime.go), never by picks; unix milliseconds.
	downStart int64 // the current down period began; 0 = not down
	downTotal int64 // milliseconds of finished down periods
	hcUpAt    int64 // the health checks last stopped holding the peer
	failsUpAt int64 // fails last dropped below max_fails (success, up)

	// hc is the active health-check state (health.go), read lock-free by
	// usable and written by the checker without the balancer lock.
	hc healthState
}

// Peer is one server of a Snapshot. Peers are immutable; the live counters
// they point to are shared by every snapshot containing the same server.
type Peer struct {
	u           *Upstream
	st          *liveState
	spec        ServerSpec
	id          int   // stable id within its list (see the package comment)
	uid         int   // stable id across both lists (see the package comment)
	group       int   // server entry: peers of one `server` line / Add share it
	failTimeout int64 // seconds
	slowStart   int64 // seconds
	nameID      int32 // index of spec.Name in the consistent-hash ring

	// addrPort is spec.Addr parsed once, for connecting without parsing
	// the string per connection; invalid for "unix:" addresses.
	addrPort netip.AddrPort
}

// Spec returns the peer's configuration, including the current Down and
// Weight after runtime changes.
func (p *Peer) Spec() ServerSpec { return p.spec }

// Addr returns the address to connect to.
func (p *Peer) Addr() string { return p.spec.Addr }

// AddrPort returns Addr parsed, or the zero AddrPort when it is not an
// ip:port ("unix:/path").
func (p *Peer) AddrPort() netip.AddrPort { return p.addrPort }

// Name returns the server name as written in the configuration.
func (p *Peer) Name() string { return p.spec.Name }

// ID returns the peer's stable id within its list (primary or backup): the
// "id" of the ngx.upstream API and the argument of the runtime operations.
// It is not an index into Snapshot.Primary/Backup once peers were removed.
func (p *Peer) ID() int { return p.id }

// UID returns the peer's stable upstream-wide id: unique across the primary
// and backup lists, never reused, unchanged by every runtime operation. It is
// the server "id" of the REST API (Snapshot.FindUID).
func (p *Peer) UID() int { return p.uid }

// Group identifies the server entry the peer belongs to: peers made from one
// `server` line (a name resolving to several addresses) or one Add share it.
// Groups are unique within an Upstream and never reused.
func (p *Peer) Group() int { return p.group }

// IsBackup reports whether the peer belongs to the backup set.
func (p *Peer) IsBackup() bool { return p.spec.Backup }

// PeerState is a consistent copy of a peer's live state.
type PeerState struct {
	CurrentWeight, EffectiveWeight int
	Conns                          int64
	Fails                          int // nginx's current failure count (reset on success)
	Requests                       uint64
	Accessed, Checked              time.Time // zero when never
	Selected                       time.Time // last pick; zero when never

	// Unavailable: max_fails failures within fail_timeout, so the balancer
	// skips the peer until fail_timeout has passed (nginx's test).
	Unavailable bool
	// FailsTotal counts every failed attempt; UnavailCount how many times
	// the peer became unavailable. Both are cumulative (NGINX Plus "fails"
	// and "unavail"), unlike Fails.
	FailsTotal, UnavailCount uint64
	// Weight is the weight the balancer uses now: the configured weight, or
	// less while slow start ramps it up.
	Weight int
	// Health is the active health-check state (see Peer.Health).
	Health PeerHealth
	// Downtime is the total time the peer spent unavail, checking or
	// unhealthy (NGINX Plus "downtime"), including the current period;
	// DownStart is when the current such period began (NGINX Plus
	// "downstart"), zero while the peer is in none of those states.
	Downtime  time.Duration
	DownStart time.Time
}

// State returns a consistent copy of the peer's live state.
func (p *Peer) State() PeerState {
	st := p.st
	nowT := p.u.now()
	now := nowT.Unix()
	p.u.mu.Lock()
	ps := PeerState{
		CurrentWeight:   p.u.fast.currentWeight(st),
		EffectiveWeight: st.effectiveWeight,
		Conns:           st.conns.Load(),
		Fails:           st.fails,
		Requests:        st.requests.Load(),
		Unavailable:     p.unavailable(now),
		FailsTotal:      st.failsTotal,
		UnavailCount:    st.unavail,
		Weight:          p.weightAt(now),
		Health:          p.Health(),
	}
	accessed, checked, selected := st.accessed, st.checked, st.selected
	var downStart int64
	ps.Downtime, downStart = p.downtime(nowT.UnixMilli(), now)
	p.u.mu.Unlock()
	if downStart != 0 {
		ps.DownStart = time.UnixMilli(downStart)
	}
	ps.Accessed, ps.Checked, ps.Selected = unixOrZero(accessed), unixOrZero(checked), unixOrZero(selected)
	return ps
}

// Status returns the peer's state in NGINX Plus terms, the first that
// applies: "down" when marked down, "draining" when draining (an operator's
// decision wins over any health verdict), "unhealthy" when an active health
// check failed it, "checking" while a mandatory check has not yet run on it,
// "unavail" when max_fails was reached within fail_timeout, else "up".
func (p *Peer) Status() string {
	return StatusOf(p.spec, p.State())
}

// StatusOf is Status computed from a spec and one consistent State() read,
// for callers that already hold both.
func StatusOf(spec ServerSpec, st PeerState) string {
	switch {
	case spec.Down:
		return "down"
	case spec.Drain:
		return "draining"
	case st.Health.State == HealthUnhealthy:
		return "unhealthy"
	case st.Health.State == HealthChecking:
		return "checking"
	case st.Unavailable:
		return "unavail"
	}
	return "up"
}

// codeCounters: [status-100] for 100..599, then one slot for the rest.
type codeCounters [501]atomic.Uint64

const otherCode = 500 // index of the slot for statuses outside 100..599

// PeerStats are a peer's response statistics (see RecordResponse).
type PeerStats struct {
	Responses [5]uint64      // by class: [0] = 1xx ... [4] = 5xx
	Codes     map[int]uint64 // by status code 100..599; never nil
	Other     uint64         // responses with a status outside 100..599 (in Total only)
	Total     uint64         // every recorded response, whatever its status
	Sent      uint64         // bytes sent to the peer
	Received  uint64         // bytes received from it
	// Averages over Total (0 when there is none).
	HeaderTime, ResponseTime time.Duration
}

// RecordResponse accounts one response obtained from the peer: its status,
// the bytes sent to and received from the peer, and the time to the response
// header and to the whole response. It is for the proxy to call once per
// upstream response; it takes no lock (atomic adds only) and allocates only
// for the peer's first response.
func (p *Peer) RecordResponse(status int, sent, received int64, headerTime, responseTime time.Duration) {
	st := p.st
	codes := st.codes.Load()
	if codes == nil {
		// First response: install the counters; a concurrent first
		// response may win the race, then use its array.
		codes = new(codeCounters)
		if !st.codes.CompareAndSwap(nil, codes) {
			codes = st.codes.Load()
		}
	}
	if status >= 100 && status < 600 {
		st.resp[status/100-1].Add(1)
		codes[status-100].Add(1)
	} else {
		codes[otherCode].Add(1)
	}
	st.respTotal.Add(1)
	st.sent.Add(uint64(max(sent, 0)))
	st.received.Add(uint64(max(received, 0)))
	st.headerNanos.Add(int64(max(headerTime, 0)))
	st.respNanos.Add(int64(max(responseTime, 0)))
}

// Stats returns the peer's response statistics. The counters are read one by
// one, so a response recorded meanwhile may be counted in some and not yet in
// others.
func (p *Peer) Stats() PeerStats {
	st := p.st
	var s PeerStats
	for i := range s.Responses {
		s.Responses[i] = st.resp[i].Load()
	}
	s.Total = st.respTotal.Load()
	s.Sent, s.Received = st.sent.Load(), st.received.Load()
	if s.Total > 0 {
		s.HeaderTime = time.Duration(st.headerNanos.Load() / int64(s.Total))
		s.ResponseTime = time.Duration(st.respNanos.Load() / int64(s.Total))
	}
	s.Codes = make(map[int]uint64)
	if codes := st.codes.Load(); codes != nil {
		for i := range otherCode {
			if n := codes[i].Load(); n > 0 {
				s.Codes[100+i] = n
			}
		}
		s.Other = codes[otherCode].Load()
	}
	return s
}

// resetStats zeroes the statistics (not the balancing state). Called with
// Upstream.mu held.
func (st *liveState) resetStats() {
	st.requests.Store(0)
	st.failsTotal, st.unavail = 0, 0
	for i := range st.resp {
		st.resp[i].Store(0)
	}
	st.respTotal.Store(0)
	st.sent.Store(0)
	st.received.Store(0)
	st.headerNanos.Store(0)
	st.respNanos.Store(0)
	// Zeroed in place: a RecordResponse racing with the reset still counts
	// into the array that stays.
	if codes := st.codes.Load(); codes != nil {
		for i := range codes {
			codes[i].Store(0)
		}
	}
	st.downTotal = 0
}

// Conns returns the peer's active connections without locking.
func (p *Peer) Conns() int64 { return p.st.conns.Load() }

// Requests returns the number of times the peer was picked, without locking.
func (p *Peer) Requests() uint64 { return p.st.requests.Load() }

// off reports whether the peer is excluded from new picks by an operator
// (down or draining), regardless of its health.
func (p *Peer) off() bool { return p.spec.Down || p.spec.Drain }

func unixOrZero(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

// unavailable is nginx's max_fails test: max_fails failures and the last
// within fail_timeout. Called with Upstream.mu held.
func (p *Peer) unavailable(now int64) bool {
	return p.spec.MaxFails > 0 && p.st.fails >= p.spec.MaxFails && now-p.st.checked <= p.failTimeout
}

// weightAt is the weight the balancer uses at now: during slow start,
//
//	w(t) = 1 + (weight-1) * t / slow_start   (integer division)
//
// for t = now - recovery in whole seconds, 0 <= t < slow_start; the
// configured weight afterwards and without slow start. So a peer of weight
// 10 with slow_start=30s weighs 1 at once, 4 after 10s, 7 after 20s and 10
// from 30s on. It starts at 1, not 0, so that a recovering peer still gets a
// trickle of traffic that proves it. Called with Upstream.mu held (reads
// st.recovered); a few integer operations, no allocation.
func (p *Peer) weightAt(now int64) int {
	w := p.spec.Weight
	if p.slowStart <= 0 || w <= 1 || p.st.recovered == 0 {
		return w
	}
	t := max(now-p.st.recovered, 0)
	if t >= p.slowStart {
		return w
	}
	return 1 + int(int64(w-1)*t/p.slowStart)
}

// usable is nginx's per-peer availability test (down, max_fails within
// fail_timeout, max_conns) plus NGINX Plus's health-check verdict. The
// tried set is checked by the callers.
func (p *Peer) usable(now int64) bool {
	if p.off() || !p.st.hc.ok() {
		return false
	}
	st := p.st
	if p.unavailable(now) {
		return false
	}
	if p.spec.MaxConns > 0 && st.conns.Load() >= int64(p.spec.MaxConns) {
		return false
	}
	return true
}

// Snapshot is an immutable view of an upstream's peers. Do not modify the
// slices.
type Snapshot struct {
	Primary []*Peer // in id order (config order, then additions); see Peer.ID
	Backup  []*Peer
	Version uint64 // increments on every change

	totalWeight int   // sum of primary weights, down peers included (nginx total_weight)
	cum         []int // cum[i] = sum of weights of Primary[:i] (random ranges)
	tries       int   // non-down, non-draining primary + backup (ngx_http_upstream_tries)
	rrFast      bool  // round robin may use the fast path (eligibleFastRR)
	ring        *ring // consistent hash points (Hash + HashConsistent only)
}

// Peers returns Backup when backup is true, Primary otherwise.
func (s *Snapshot) Peers(backup bool) []*Peer {
	if backup {
		return s.Backup
	}
	return s.Primary
}

// weightIndex maps w in [0, totalWeight) to the primary peer index whose
// weight range contains it — the same result as nginx's
// `while (w >= peer->weight) { w -= peer->weight; peer = peer->next; }`.
func (s *Snapshot) weightIndex(w int) int {
	i, j := 0, len(s.cum)
	for j-i > 1 {
		k := (i + j) / 2
		if w < s.cum[k] {
			j = k
		} else {
			i = k
		}
	}
	return i
}

// Upstream is one upstream group with live, atomically replaceable peers.
type Upstream struct {
	name       string
	method     Method
	consistent bool
	two        bool
	now        func() time.Time
	log        func(level, msg string)
	rand       func() uint64

	wmu       sync.Mutex // serializes writers (runtime operations)
	onPublish func(*Snapshot)
	nextID    [2]int // next id per list [primary, backup]; guarded by wmu
	nextUID   int    // next upstream-wide id; guarded by wmu
	nextGroup int    // guarded by wmu
	// zombies are the live states of removed peers that may still have
	// requests in flight (NGINX Plus "zombies"); guarded by wmu.
	zombies []*liveState
	mu      sync.Mutex // balancer mutex: guards every liveState, orders snapshot publication
	snap    atomic.Pointer[Snapshot]

	// hcCount and hcMandatory describe the active health checks (see
	// SetHealthChecks): how many there are, and the pending bits a new peer
	// starts with (the mandatory checks' bits, already in place: << 32).
	hcCount     atomic.Int32
	hcMandatory atomic.Uint64
	// hcGen changes around every health-word transition from ok to not
	// ok, so the fast round robin notices a peer it must now skip.
	hcGen atomic.Uint64

	// fast is the fast round robin's steady state (fastrr.go); guarded by mu.
	fast fastRR
	// noFastRR disables the fast path: tests compare against the plain scan.
	noFastRR bool
}

// New creates an upstream. It fails when there are no servers, when only
// backup servers are given, when a server uses "backup" with a method that
// does not support it, or on invalid parameters.
func New(opts Options, servers []ServerSpec) (*Upstream, error) {
	if opts.Method < RoundRobin || opts.Method > Random {
		return nil, fmt.Errorf("invalid balancing method %d", int(opts.Method))
	}
	if len(servers) == 0 && !opts.AllowEmpty {
		return nil, errors.New("no servers are inside upstream")
	}
	u := &Upstream{
		name:       opts.Name,
		method:     opts.Method,
		consistent: opts.HashConsistent && opts.Method == Hash,
		two:        opts.RandomTwo && opts.Method == Random,
		now:        opts.Now,
		log:        opts.Log,
		rand:       opts.Rand,
		onPublish:  opts.OnPublish,
	}
	if u.now == nil {
		u.now = time.Now
	}
	if u.rand == nil {
		u.rand = rand.Uint64
	}
	var primary, backup []*Peer
	var prev *ServerSpec
	groupAddrs := map[string]bool{}
	for _, s := range servers {
		s, err := u.normalize(s)
		if err != nil {
			return nil, err
		}
		// Consecutive specs with the same name and role are one `server`
		// line resolved to several addresses (how callers expand them); a
		// repeated address means the same line was written twice, since a
		// resolved name never lists an address twice.
		if prev == nil || prev.Name != s.Name || prev.Backup != s.Backup || groupAddrs[s.Addr] {
			u.nextGroup++
			clear(groupAddrs)
		}
		groupAddrs[s.Addr] = true
		prev = &s
		p := u.newPeer(s)
		if s.Backup {
			backup = append(backup, p)
		} else {
			primary = append(primary, p)
		}
	}
	if len(primary) == 0 && !(opts.AllowEmpty && len(backup) == 0) {
		return nil, fmt.Errorf("no servers in upstream %q", u.name)
	}
	u.snap.Store(u.build(nil, primary, backup, false))
	return u, nil
}

// Name returns the upstream name.
func (u *Upstream) Name() string { return u.name }

// Method returns the balancing method.
func (u *Upstream) Method() Method { return u.method }

// Consistent reports whether the upstream uses `hash KEY consistent`.
func (u *Upstream) Consistent() bool { return u.consistent }

// Snapshot returns the current immutable peer snapshot (lock-free).
func (u *Upstream) Snapshot() *Snapshot { return u.snap.Load() }

func (u *Upstream) nowSec() int64 { return u.now().Unix() }

func (u *Upstream) logf(level, msg string) {
	if u.log != nil {
		u.log(level, msg)
	}
}

func (u *Upstream) normalize(s ServerSpec) (ServerSpec, error) {
	if s.Addr == "" {
		s.Addr = s.Name
	}
	if s.Name == "" {
		s.Name = s.Addr
	}
	if s.Addr == "" {
		return s, errors.New("server address is empty")
	}
	if s.Weight == 0 {
		s.Weight = 1
	}
	if s.Weight < 0 {
		return s, fmt.Errorf("invalid parameter \"weight=%d\"", s.Weight)
	}
	if s.MaxFails < 0 {
		return s, fmt.Errorf("invalid parameter \"max_fails=%d\"", s.MaxFails)
	}
	if s.FailTimeout < 0 {
		return s, fmt.Errorf("invalid parameter \"fail_timeout=%s\"", s.FailTimeout)
	}
	if s.MaxConns < 0 {
		return s, fmt.Errorf("invalid parameter \"max_conns=%d\"", s.MaxConns)
	}
	if s.SlowStart < 0 {
		return s, fmt.Errorf("invalid parameter \"slow_start=%s\"", s.SlowStart)
	}
	if s.Backup && !u.method.supportsBackup() {
		return s, errors.New("balancing method does not support parameter \"backup\"")
	}
	// NGINX Plus refuses slow_start with hash, ip_hash and random: their
	// choice does not go through the weights the ramp changes.
	if s.SlowStart > 0 && !u.method.supportsBackup() {
		return s, errors.New("balancing method does not support parameter \"slow_start\"")
	}
	return s, nil
}

// newPeer makes a peer of the current group with the next id of its list.
// Called with wmu held (or before the Upstream is shared).
func (u *Upstream) newPeer(s ServerSpec) *Peer {
	l := 0
	if s.Backup {
		l = 1
	}
	id := u.nextID[l]
	u.nextID[l]++
	uid := u.nextUID
	u.nextUID++
	p := &Peer{
		u:     u,
		st:    &liveState{effectiveWeight: s.Weight},
		id:    id,
		uid:   uid,
		group: u.nextGroup,
	}
	// A mandatory health check holds every new peer, configured or added
	// at run time, in "checking" until its first result.
	p.st.hc.word.Store(u.hcMandatory.Load())
	p.setSpec(s)
	if !p.off() && !p.st.hc.ok() {
		// "checking" from the start: down time begins now. Not shared
		// yet, so no lock is needed.
		p.st.downStart = u.now().UnixMilli()
	}
	return p
}

// setSpec sets the spec and the values derived from it.
func (p *Peer) setSpec(s ServerSpec) {
	p.addrPort, _ = netip.ParseAddrPort(s.Addr)
	p.spec = s
	p.failTimeout = int64(s.FailTimeout / time.Second)
	p.slowStart = int64(s.SlowStart / time.Second)
}

// build assembles a snapshot from peer lists. The Peer structs are copied
// (so a published snapshot never changes); ids and liveState pointers are
// kept. When reuseRing is true the previous ring is kept (names and weights
// unchanged).
func (u *Upstream) build(prev *Snapshot, primary, backup []*Peer, reuseRing bool) *Snapshot {
	s := &Snapshot{Version: 1}
	if prev != nil {
		s.Version = prev.Version + 1
	}
	s.Primary = copyPeers(primary)
	s.Backup = copyPeers(backup)
	s.cum = make([]int, len(s.Primary))
	for i, p := range s.Primary {
		s.cum[i] = s.totalWeight
		s.totalWeight += p.spec.Weight
		if !p.off() {
			s.tries++
		}
	}
	for _, p := range s.Backup {
		if !p.off() {
			s.tries++
		}
	}
	s.rrFast = eligibleFastRR(u.method, s)
	if u.consistent {
		if reuseRing && prev != nil && prev.ring != nil {
			// Same names and weights in the same order: the points and the
			// peers' nameIDs (copied with the Peer structs) stay valid.
			s.ring = prev.ring
		} else {
			s.ring = buildRing(s.Primary)
		}
	}
	return s
}

func copyPeers(in []*Peer) []*Peer {
	if len(in) == 0 {
		return nil
	}
	slab := make([]Peer, len(in))
	out := make([]*Peer, len(in))
	for i, p := range in {
		slab[i] = *p
		out[i] = &slab[i]
	}
	return out
}

// Find returns the peer with the given stable id in the backup or primary
// list of the snapshot and its index in that list.
func (s *Snapshot) Find(backup bool, id int) (*Peer, int, error) {
	list := s.Primary
	if backup {
		if len(s.Backup) == 0 {
			return nil, 0, ErrNoBackupPeers
		}
		list = s.Backup
	}
	// Lists are kept in id order (configured ids, then ever-increasing
	// added ones; removal keeps the order), so a binary search finds it.
	i, ok := slices.BinarySearchFunc(list, id, func(p *Peer, id int) int { return cmp.Compare(p.id, id) })
	if !ok {
		return nil, 0, ErrBadPeerID
	}
	return list[i], i, nil
}

// publish stores a new snapshot while holding the balancer mutex, after
// running mutate (which may touch liveState) under the same lock.
func (u *Upstream) publish(s *Snapshot, mutate func()) {
	u.mu.Lock()
	// The fast round robin describes the old snapshot; mutate may change
	// the live state it models.
	u.fast.settle()
	if mutate != nil {
		mutate()
	}
	u.snap.Store(s)
	u.mu.Unlock()
	if u.onPublish != nil {
		// Still under wmu: the hook sees changes in order, and a caller
		// learns of success only after it ran (the state file is written).
		u.onPublish(s)
	}
}

// modify replaces one peer (found by stable id) with a changed copy and
// publishes the result; mutate runs under the balancer lock with the copy.
// Called with wmu held.
func (u *Upstream) modify(backup bool, id int, change func(*Peer) (reuseRing bool), mutate func(*Peer)) error {
	old := u.snap.Load()
	p, i, err := old.Find(backup, id)
	if err != nil {
		return err
	}
	np := *p
	reuse := change(&np)
	primary, bk := old.Primary, old.Backup
	if backup {
		bk = replaceAt(bk, i, &np)
	} else {
		primary = replaceAt(primary, i, &np)
	}
	s := u.build(old, primary, bk, reuse || backup)
	u.publish(s, func() {
		if mutate != nil {
			mutate(&np)
		}
		// down/drain end or resume a down period (downtime.go).
		nowT := u.now()
		np.noteDown(nowT.UnixMilli(), nowT.Unix())
	})
	return nil
}

// SetDown marks a peer down or up (lua-upstream-nginx-module set_peer_down).
// Turning a peer up also clears its fails. The change is visible to the very
// next pick.
func (u *Upstream) SetDown(backup bool, id int, down bool) error {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	wasDown := false
	return u.modify(backup, id, func(p *Peer) bool {
		wasDown = p.spec.Down
		p.spec.Down = down
		return true
	}, func(p *Peer) {
		if !down {
			u.cameUp(p, wasDown)
		}
	})
}

// cameUp is the live-state side of turning a peer up: its fails are
// cleared and, when it really was down, its slow-start ramp begins. Called
// with mu held.
func (u *Upstream) cameUp(p *Peer, wasDown bool) {
	if p.spec.MaxFails > 0 && p.st.fails >= p.spec.MaxFails {
		p.st.failsUpAt = u.now().UnixMilli()
	}
	p.st.fails = 0
	if wasDown && p.slowStart > 0 {
		p.st.recovered = u.nowSec()
	}
}

// SetDrain starts or stops draining a peer: while draining it is never
// picked for a new request (not even as a retry); requests already sent to
// it finish normally. Its counters are kept.
func (u *Upstream) SetDrain(backup bool, id int, drain bool) error {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	return u.modify(backup, id, func(p *Peer) bool {
		p.spec.Drain = drain
		return true
	}, nil)
}

// SetWeight changes a peer's weight (>= 1). The peer's effective weight is
// reset to the new weight; its current weight is kept.
func (u *Upstream) SetWeight(backup bool, id int, weight int) error {
	if weight < 1 {
		return fmt.Errorf("invalid parameter \"weight=%d\"", weight)
	}
	u.wmu.Lock()
	defer u.wmu.Unlock()
	return u.modify(backup, id, func(p *Peer) bool {
		same := p.spec.Weight == weight
		p.spec.Weight = weight
		return same
	}, func(p *Peer) { p.st.effectiveWeight = weight })
}

// Add appends a server to the primary or backup set (by spec.Backup) and
// returns its stable id. The new peer starts with fresh live state.
func (u *Upstream) Add(spec ServerSpec) (int, error) {
	p, err := u.AddPeer(spec)
	if err != nil {
		return 0, err
	}
	return p.id, nil
}

// Remove deletes the peer with the given stable id. Other peers keep their
// ids, and the id is never given to another peer. Attempts holding the
// removed peer finish normally.
func (u *Upstream) Remove(backup bool, id int) error {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	old := u.snap.Load()
	_, i, err := old.Find(backup, id)
	if err != nil {
		return err
	}
	primary, bk := old.Primary, old.Backup
	if backup {
		bk = removeAt(bk, i, i+1)
	} else {
		primary = removeAt(primary, i, i+1)
	}
	u.addZombies(old.Peers(backup)[i : i+1])
	u.publish(u.build(old, primary, bk, backup), nil)
	return nil
}

// RemoveAddr deletes the server addressed by addr, matched first against
// the peers' addresses ("ip:port": exactly that peer goes) and, when no
// address matches, against their names as configured (the whole server
// entry goes: every address a name resolved to). It returns the list the
// peers were in and their ids. It fails with ErrServerNotFound when nothing
// matches and with ErrAmbiguousServer when addr denotes more than one peer
// or entry (the same address twice, or in both lists); nothing is removed
// then.
func (u *Upstream) RemoveAddr(addr string) (backup bool, ids []int, err error) {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	old := u.snap.Load()
	// match is a removable unit: one peer (by address) or one entry (by name).
	type match struct {
		backup bool
		key    int // peer id or group
	}
	find := func(byName bool) (matches []match) {
		for _, list := range [2][]*Peer{old.Primary, old.Backup} {
			for _, p := range list {
				m := match{p.spec.Backup, p.id}
				if byName {
					if p.spec.Name != addr {
						continue
					}
					m.key = p.group
				} else if p.spec.Addr != addr {
					continue
				}
				if !slices.Contains(matches, m) {
					matches = append(matches, m)
				}
			}
		}
		return matches
	}
	byName := false
	matches := find(false)
	if len(matches) == 0 {
		byName = true
		matches = find(true)
	}
	switch len(matches) {
	case 0:
		return false, nil, fmt.Errorf("%w: %s", ErrServerNotFound, addr)
	case 1:
	default:
		return false, nil, fmt.Errorf("%w: %s matches %d servers, remove by id", ErrAmbiguousServer, addr, len(matches))
	}
	m := matches[0]
	list := old.Peers(m.backup)
	in := func(p *Peer) bool { return p.id == m.key }
	if byName {
		in = func(p *Peer) bool { return p.group == m.key }
	}
	// A group's peers are contiguous: they were created together and
	// removal keeps the order.
	lo := slices.IndexFunc(list, in)
	hi := lo
	for hi < len(list) && in(list[hi]) {
		ids = append(ids, list[hi].id)
		hi++
	}
	primary, bk := old.Primary, old.Backup
	if m.backup {
		bk = removeAt(bk, lo, hi)
	} else {
		primary = removeAt(primary, lo, hi)
	}
	u.addZombies(list[lo:hi])
	u.publish(u.build(old, primary, bk, m.backup), nil)
	return m.backup, ids, nil
}

// ---- upstream-wide ids (uid): the operations of the REST API ----

// ErrServerExists is returned by AddUniquePeer when the upstream already has
// a server with the address or name.
var ErrServerExists = errors.New("server already exists")

// ErrImmutable is returned by Update when the change touches the server's
// name, address or role (backup): those define which server it is, so
// changing them would be a remove and an add.
var ErrImmutable = errors.New("server address and backup role cannot be changed")

// FindUID returns the peer with the given upstream-wide id, from either
// list, or ErrBadPeerID.
func (s *Snapshot) FindUID(uid int) (*Peer, error) {
	p, _, _, err := s.findUID(uid)
	return p, err
}

// findUID also returns the peer's list and index. Each list is sorted by
// uid (see the package comment), so two binary searches find it.
func (s *Snapshot) findUID(uid int) (p *Peer, backup bool, i int, err error) {
	for _, backup := range [2]bool{false, true} {
		list := s.Peers(backup)
		i, ok := slices.BinarySearchFunc(list, uid, func(p *Peer, uid int) int { return cmp.Compare(p.uid, uid) })
		if ok {
			return list[i], backup, i, nil
		}
	}
	return nil, false, 0, ErrBadPeerID
}

// All returns the primary peers followed by the backup ones: every server in
// uid order within its list.
func (s *Snapshot) All() []*Peer {
	out := make([]*Peer, 0, len(s.Primary)+len(s.Backup))
	return append(append(out, s.Primary...), s.Backup...)
}

// AddPeer is Add returning the published peer, so the caller learns both of
// its ids (ID and UID).
func (u *Upstream) AddPeer(spec ServerSpec) (*Peer, error) {
	return u.add(spec, false)
}

// AddUniquePeer is AddPeer that fails with ErrServerExists, changing
// nothing, when a peer of the upstream (either list) already has spec's
// address or name. The check and the addition are one atomic step.
func (u *Upstream) AddUniquePeer(spec ServerSpec) (*Peer, error) {
	return u.add(spec, true)
}

func (u *Upstream) add(spec ServerSpec, unique bool) (*Peer, error) {
	spec, err := u.normalize(spec)
	if err != nil {
		return nil, err
	}
	u.wmu.Lock()
	defer u.wmu.Unlock()
	old := u.snap.Load()
	if unique {
		for _, list := range [2][]*Peer{old.Primary, old.Backup} {
			for _, p := range list {
				if p.spec.Addr == spec.Addr || p.spec.Name == spec.Name {
					return nil, fmt.Errorf("%w: %s", ErrServerExists, spec.Name)
				}
			}
		}
	}
	u.nextGroup++
	p := u.newPeer(spec)
	primary, bk := old.Primary, old.Backup
	if spec.Backup {
		bk = appendPeer(bk, p)
	} else {
		primary = appendPeer(primary, p)
	}
	s := u.build(old, primary, bk, spec.Backup)
	u.publish(s, nil)
	list := s.Peers(spec.Backup)
	return list[len(list)-1], nil
}

// Update changes several parameters of the peer with the given uid in one
// atomic step: change edits a copy of the spec; the result is validated like
// a new server, and either all of it is published or, on any error, nothing
// (ErrBadPeerID, ErrImmutable when Name, Addr or Backup changed, or the
// validation error). It returns the published peer.
//
// Effects on the live state, as the single-purpose operations have them: a
// new weight resets the effective weight (SetWeight); turning the peer up
// clears its fails and, with slow_start, starts the ramp (SetDown).
func (u *Upstream) Update(uid int, change func(*ServerSpec)) (*Peer, error) {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	old := u.snap.Load()
	p, backup, i, err := old.findUID(uid)
	if err != nil {
		return nil, err
	}
	spec := p.spec
	change(&spec)
	if spec.Name != p.spec.Name || spec.Addr != p.spec.Addr || spec.Backup != p.spec.Backup {
		return nil, ErrImmutable
	}
	if spec.Weight == 0 {
		// normalize would turn 0 into the default 1; here it is a mistake.
		return nil, fmt.Errorf("invalid parameter \"weight=%d\"", spec.Weight)
	}
	if spec, err = u.normalize(spec); err != nil {
		return nil, err
	}
	np := *p
	np.setSpec(spec)
	primary, bk := old.Primary, old.Backup
	if backup {
		bk = replaceAt(bk, i, &np)
	} else {
		primary = replaceAt(primary, i, &np)
	}
	// The consistent-hash ring depends on the primary names and weights only.
	s := u.build(old, primary, bk, backup || spec.Weight == p.spec.Weight)
	wasDown := p.spec.Down
	u.publish(s, func() {
		if spec.Weight != p.spec.Weight {
			np.st.effectiveWeight = spec.Weight
		}
		if wasDown && !spec.Down {
			u.cameUp(&np, true)
		}
		nowT := u.now()
		np.noteDown(nowT.UnixMilli(), nowT.Unix())
	})
	return s.Peers(backup)[i], nil
}

// RemoveUID deletes the peer with the given upstream-wide id (see Remove).
func (u *Upstream) RemoveUID(uid int) error {
	p, err := u.Snapshot().FindUID(uid)
	if err != nil {
		return err
	}
	// Remove looks the peer up again under the writer lock: if it went in
	// between, that is ErrBadPeerID, as it should be.
	return u.Remove(p.IsBackup(), p.ID())
}

// addZombies remembers removed peers' live states while requests may still
// be in flight on them. Called with wmu held.
func (u *Upstream) addZombies(removed []*Peer) {
	for _, p := range removed {
		u.zombies = append(u.zombies, p.st)
	}
	u.pruneZombies()
}

// pruneZombies forgets removed peers with no request in flight; once a
// removed peer has none it never gets another. Called with wmu held.
func (u *Upstream) pruneZombies() {
	u.zombies = slices.DeleteFunc(u.zombies, func(st *liveState) bool { return st.conns.Load() == 0 })
}

// Zombies returns the number of removed peers still processing requests.
func (u *Upstream) Zombies() int {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	u.pruneZombies()
	return len(u.zombies)
}

// ResetStats zeroes the statistics of every peer (requests, responses,
// bytes, times, total fails, unavail count) without touching the state the
// balancer decides on.
func (u *Upstream) ResetStats() {
	s := u.Snapshot()
	u.mu.Lock()
	for _, p := range s.All() {
		p.st.resetStats()
	}
	u.mu.Unlock()
}

func replaceAt(list []*Peer, i int, p *Peer) []*Peer {
	out := make([]*Peer, len(list))
	copy(out, list)
	out[i] = p
	return out
}

func appendPeer(list []*Peer, p *Peer) []*Peer {
	out := make([]*Peer, len(list), len(list)+1)
	copy(out, list)
	return append(out, p)
}

// removeAt returns a copy of list without list[lo:hi].
func removeAt(list []*Peer, lo, hi int) []*Peer {
	out := make([]*Peer, 0, len(list)-(hi-lo))
	out = append(out, list[:lo]...)
	return append(out, list[hi:]...)
}

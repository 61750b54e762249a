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
//   - Every configured server has one liveState (conns, fails, requests,
//     current/effective weight, accessed/checked). A new Snapshot's Peer for
//     the same server points to the same liveState, so counters survive
//     snapshot swaps. liveState is written under a small per-upstream
//     balancer mutex, exactly like nginx write-locks the peers while it picks
//     or frees one; the critical section is the O(peers) scan nginx itself
//     does. conns and requests are atomics, readable without the lock.
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
}

// liveState is the per-server state that survives snapshot swaps. Every
// field is written only with Upstream.mu held (the balancer decides on conns
// while holding it); conns and requests are atomics so metrics and read APIs
// can also load them without the lock (Peer.Conns, Peer.Requests).
type liveState struct {
	currentWeight   int
	effectiveWeight int
	fails           int
	accessed        int64 // unix seconds, 0 = never
	checked         int64 // unix seconds, 0 = never
	conns           atomic.Int64
	requests        atomic.Uint64
}

// Peer is one server of a Snapshot. Peers are immutable; the live counters
// they point to are shared by every snapshot containing the same server.
type Peer struct {
	u           *Upstream
	st          *liveState
	spec        ServerSpec
	id          int   // stable id within its list (see the package comment)
	group       int   // server entry: peers of one `server` line / Add share it
	failTimeout int64 // seconds
	nameID      int32 // index of spec.Name in the consistent-hash ring
}

// Spec returns the peer's configuration, including the current Down and
// Weight after runtime changes.
func (p *Peer) Spec() ServerSpec { return p.spec }

// Addr returns the address to connect to.
func (p *Peer) Addr() string { return p.spec.Addr }

// Name returns the server name as written in the configuration.
func (p *Peer) Name() string { return p.spec.Name }

// ID returns the peer's stable id within its list (primary or backup): the
// "id" of the ngx.upstream API and the argument of the runtime operations.
// It is not an index into Snapshot.Primary/Backup once peers were removed.
func (p *Peer) ID() int { return p.id }

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
	Fails                          int
	Requests                       uint64
	Accessed, Checked              time.Time // zero when never
}

// State returns a consistent copy of the peer's live state.
func (p *Peer) State() PeerState {
	st := p.st
	p.u.mu.Lock()
	ps := PeerState{
		CurrentWeight:   st.currentWeight,
		EffectiveWeight: st.effectiveWeight,
		Conns:           st.conns.Load(),
		Fails:           st.fails,
		Requests:        st.requests.Load(),
	}
	accessed, checked := st.accessed, st.checked
	p.u.mu.Unlock()
	ps.Accessed, ps.Checked = unixOrZero(accessed), unixOrZero(checked)
	return ps
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

// usable is nginx's per-peer availability test (down, max_fails within
// fail_timeout, max_conns). The tried set is checked by the callers.
func (p *Peer) usable(now int64) bool {
	if p.off() {
		return false
	}
	st := p.st
	if p.spec.MaxFails > 0 && st.fails >= p.spec.MaxFails && now-st.checked <= p.failTimeout {
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
	nextID    [2]int     // next id per list [primary, backup]; guarded by wmu
	nextGroup int        // guarded by wmu
	mu        sync.Mutex // balancer mutex: guards every liveState, orders snapshot publication
	snap      atomic.Pointer[Snapshot]
}

// New creates an upstream. It fails when there are no servers, when only
// backup servers are given, when a server uses "backup" with a method that
// does not support it, or on invalid parameters.
func New(opts Options, servers []ServerSpec) (*Upstream, error) {
	if opts.Method < RoundRobin || opts.Method > Random {
		return nil, fmt.Errorf("invalid balancing method %d", int(opts.Method))
	}
	if len(servers) == 0 {
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
	if len(primary) == 0 {
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
	if s.Backup && !u.method.supportsBackup() {
		return s, errors.New("balancing method does not support parameter \"backup\"")
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
	return &Peer{
		u:           u,
		st:          &liveState{effectiveWeight: s.Weight},
		spec:        s,
		id:          id,
		group:       u.nextGroup,
		failTimeout: int64(s.FailTimeout / time.Second),
	}
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
	if mutate != nil {
		mutate()
	}
	u.snap.Store(s)
	u.mu.Unlock()
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
	var m func()
	if mutate != nil {
		m = func() { mutate(&np) }
	}
	u.publish(s, m)
	return nil
}

// SetDown marks a peer down or up (lua-upstream-nginx-module set_peer_down).
// Turning a peer up also clears its fails. The change is visible to the very
// next pick.
func (u *Upstream) SetDown(backup bool, id int, down bool) error {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	return u.modify(backup, id, func(p *Peer) bool {
		p.spec.Down = down
		return true
	}, func(p *Peer) {
		if !down {
			p.st.fails = 0
		}
	})
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
	spec, err := u.normalize(spec)
	if err != nil {
		return 0, err
	}
	u.wmu.Lock()
	defer u.wmu.Unlock()
	u.nextGroup++
	p := u.newPeer(spec)
	old := u.snap.Load()
	primary, bk := old.Primary, old.Backup
	if spec.Backup {
		bk = appendPeer(bk, p)
	} else {
		primary = appendPeer(primary, p)
	}
	u.publish(u.build(old, primary, bk, spec.Backup), nil)
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
	u.publish(u.build(old, primary, bk, m.backup), nil)
	return m.backup, ids, nil
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

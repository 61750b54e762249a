// Package upstream holds the live state of nginx-style upstream groups and
// reproduces nginx's load-balancing algorithms (round robin, least_conn,
// ip_hash, hash [consistent], random [two]).
//
// Concurrency model:
//
//   - The peer list of an upstream is an immutable *Snapshot published through
//     an atomic.Pointer. Runtime changes (SetDown, SetWeight, Add, Remove)
//     build a new Snapshot under a per-upstream writer mutex and publish it;
//     Snapshot() is a lock-free read.
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
	"errors"
	"fmt"
	"math/rand/v2"
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
	// ErrBadPeerID is returned by runtime operations for an out-of-range id.
	ErrBadPeerID = errors.New("bad peer id")
	// ErrNoBackupPeers is returned by runtime operations addressing the
	// backup set of an upstream that has no backup peers.
	ErrNoBackupPeers = errors.New("no backup peers")
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
	id          int
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

// ID returns the peer's index in Snapshot.Primary or Snapshot.Backup of the
// snapshot it was taken from (the "id" of the ngx.upstream API).
func (p *Peer) ID() int { return p.id }

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

func unixOrZero(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

// usable is nginx's per-peer availability test (down, max_fails within
// fail_timeout, max_conns). The tried set is checked by the callers.
func (p *Peer) usable(now int64) bool {
	if p.spec.Down {
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
	Primary []*Peer // in config order; a peer's index here is its id
	Backup  []*Peer
	Version uint64 // increments on every change

	totalWeight int   // sum of primary weights, down peers included (nginx total_weight)
	cum         []int // cum[i] = sum of weights of Primary[:i] (random ranges)
	tries       int   // non-down primary + non-down backup (ngx_http_upstream_tries)
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

	wmu  sync.Mutex // serializes writers (runtime operations)
	mu   sync.Mutex // balancer mutex: guards every liveState, orders snapshot publication
	snap atomic.Pointer[Snapshot]
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
	for _, s := range servers {
		s, err := u.normalize(s)
		if err != nil {
			return nil, err
		}
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

func (u *Upstream) newPeer(s ServerSpec) *Peer {
	return &Peer{
		u:           u,
		st:          &liveState{effectiveWeight: s.Weight},
		spec:        s,
		failTimeout: int64(s.FailTimeout / time.Second),
	}
}

// build assembles a snapshot from peer lists. The Peer structs are copied
// (ids are per snapshot); their liveState pointers are kept. When reuseRing
// is true the previous ring is kept (names and weights unchanged).
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
		if !p.spec.Down {
			s.tries++
		}
	}
	for _, p := range s.Backup {
		if !p.spec.Down {
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
		slab[i].id = i
		out[i] = &slab[i]
	}
	return out
}

// locate returns the list and validates id for a runtime operation.
func locate(s *Snapshot, backup bool, id int) ([]*Peer, error) {
	list := s.Primary
	if backup {
		if len(s.Backup) == 0 {
			return nil, ErrNoBackupPeers
		}
		list = s.Backup
	}
	if id < 0 || id >= len(list) {
		return nil, ErrBadPeerID
	}
	return list, nil
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

// SetDown marks a peer down or up (lua-upstream-nginx-module set_peer_down).
// Turning a peer up also clears its fails. The change is visible to the very
// next pick.
func (u *Upstream) SetDown(backup bool, id int, down bool) error {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	old := u.snap.Load()
	list, err := locate(old, backup, id)
	if err != nil {
		return err
	}
	primary, bk := old.Primary, old.Backup
	np := *list[id]
	np.spec.Down = down
	if backup {
		bk = replaceAt(bk, id, &np)
	} else {
		primary = replaceAt(primary, id, &np)
	}
	s := u.build(old, primary, bk, true)
	u.publish(s, func() {
		if !down {
			np.st.fails = 0
		}
	})
	return nil
}

// SetWeight changes a peer's weight (>= 1). The peer's effective weight is
// reset to the new weight; its current weight is kept.
func (u *Upstream) SetWeight(backup bool, id int, weight int) error {
	if weight < 1 {
		return fmt.Errorf("invalid parameter \"weight=%d\"", weight)
	}
	u.wmu.Lock()
	defer u.wmu.Unlock()
	old := u.snap.Load()
	list, err := locate(old, backup, id)
	if err != nil {
		return err
	}
	primary, bk := old.Primary, old.Backup
	np := *list[id]
	same := np.spec.Weight == weight
	np.spec.Weight = weight
	if backup {
		bk = replaceAt(bk, id, &np)
	} else {
		primary = replaceAt(primary, id, &np)
	}
	s := u.build(old, primary, bk, same || backup)
	u.publish(s, func() { np.st.effectiveWeight = weight })
	return nil
}

// Add appends a server to the primary or backup set (by spec.Backup) and
// returns its id. The new peer starts with fresh live state.
func (u *Upstream) Add(spec ServerSpec) (int, error) {
	spec, err := u.normalize(spec)
	if err != nil {
		return 0, err
	}
	p := u.newPeer(spec)
	u.wmu.Lock()
	defer u.wmu.Unlock()
	old := u.snap.Load()
	primary, bk := old.Primary, old.Backup
	var id int
	if spec.Backup {
		id = len(bk)
		bk = appendPeer(bk, p)
	} else {
		id = len(primary)
		primary = appendPeer(primary, p)
	}
	u.publish(u.build(old, primary, bk, spec.Backup), nil)
	return id, nil
}

// Remove deletes a peer. Ids of the following peers in the same set shift
// down by one. Attempts holding the removed peer finish normally.
func (u *Upstream) Remove(backup bool, id int) error {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	old := u.snap.Load()
	if _, err := locate(old, backup, id); err != nil {
		return err
	}
	primary, bk := old.Primary, old.Backup
	if backup {
		bk = removeAt(bk, id)
	} else {
		primary = removeAt(primary, id)
	}
	u.publish(u.build(old, primary, bk, backup), nil)
	return nil
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

func removeAt(list []*Peer, i int) []*Peer {
	out := make([]*Peer, 0, len(list)-1)
	out = append(out, list[:i]...)
	return append(out, list[i+1:]...)
}

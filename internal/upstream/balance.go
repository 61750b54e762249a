package upstream

import (
	"net"
	"strconv"
)

// Request carries what the balancers need from a request.
type Request struct {
	ClientIP net.IP // ip_hash
	HashKey  string // hash KEY (already evaluated)
}

// Attempt is one request's peer selection: nginx's per-request balancer data
// (ngx_http_upstream_rr_peer_data_t plus the method's extras) including the
// "tried" set so retries go to other peers. An Attempt is used by one
// goroutine at a time; it must not be copied after first use.
type Attempt struct {
	u     *Upstream
	snap  *Snapshot // snapshot the tried bits refer to
	tries int

	backup bool // switched to the backup set (nginx: rrp->peers = peers->next)

	// tried set: bit i = index i of the current set (primary or backup).
	small    uint64
	big      []uint64 // used instead of small when the sets exceed 64 peers
	anyTried bool     // some bit is set: not a first try (fast RR needs one)

	// ip_hash
	addr    [16]byte
	addrLen int
	ipHash  uint

	// hash / hash consistent
	key     string
	keyHash uint32 // hash: hp->hash (accumulated)
	rehash  uint64
	ring    *ring  // consistent: ring the point index refers to
	point   uint32 // consistent: hp->hash (index into ring.points)

	// ip_hash, hash, random: nginx's per-request "tries" before falling
	// back to round robin.
	hashTries int

	// peers returned by Next and not yet passed to Finish.
	out   [4]pick
	nOut  int
	extra []pick

	log func(level, msg string)
}

type pick struct {
	st     *liveState
	single bool // picked from a single-peer upstream (nginx peers->single)
}

// Begin starts a peer selection for one request, on the current snapshot.
func (u *Upstream) Begin(r Request) *Attempt {
	a := new(Attempt)
	u.BeginInto(a, r)
	return a
}

// Reset drops what a finished attempt refers to (upstream, snapshot,
// peers, key) and keeps its buffers, so that an Attempt kept for the next
// request neither pins an old snapshot nor allocates its tried set again
// (an upstream of more than 64 peers needs one).
func (a *Attempt) Reset() {
	big := a.big
	extra := a.extra[:cap(a.extra)]
	clear(extra)
	*a = Attempt{big: big, extra: extra[:0]}
}

// BeginInto is Begin without allocating: it (re)initializes a, reusing its
// buffers. a must not be in use by another request.
func (u *Upstream) BeginInto(a *Attempt, r Request) {
	a.Reset()
	a.u = u
	snap := u.snap.Load()
	a.snap = snap
	a.tries = max(snap.tries, 1)
	a.resetTried(snap)

	switch u.method {
	case IPHash:
		a.ipHash = 89
		if ip4 := r.ClientIP.To4(); ip4 != nil {
			copy(a.addr[:], ip4[:3])
			a.addrLen = 3
		} else if len(r.ClientIP) == net.IPv6len {
			copy(a.addr[:], r.ClientIP)
			a.addrLen = 16
		} else {
			// nginx: ngx_http_upstream_ip_hash_pseudo_addr for non-IP
			// (e.g. unix socket) clients.
			a.addrLen = 3
		}
	case Hash:
		a.key = r.HashKey
		if u.consistent {
			a.ring = snap.ring
			if a.ring != nil && len(a.ring.points) > 0 {
				a.point = a.ring.find(crcUpdate(0, a.key))
			}
		}
	}
}

// SetLog overrides the upstream's Options.Log for messages caused by this
// attempt (so the caller can append nginx's request context, e.g.
// " while connecting to upstream, client: ...").
func (a *Attempt) SetLog(f func(level, msg string)) { a.log = f }

// Tries is nginx's default number of tries (ngx_http_upstream_tries): the
// number of non-down primary plus non-down backup peers of the snapshot taken
// at Begin, but at least 1 (nginx always makes the first connect attempt,
// which then fails with "no live upstreams").
func (a *Attempt) Tries() int { return a.tries }

// Snapshot returns the snapshot the attempt currently works on.
func (a *Attempt) Snapshot() *Snapshot { return a.snap }

func words(n int) int { return (n + 63) / 64 }

func (a *Attempt) resetTried(s *Snapshot) {
	n := max(len(s.Primary), len(s.Backup))
	a.small = 0
	a.anyTried = false
	if n <= 64 {
		a.big = a.big[:0]
		return
	}
	w := words(n)
	if cap(a.big) >= w {
		a.big = a.big[:w]
		clear(a.big)
	} else {
		a.big = make([]uint64, w)
	}
}

func (a *Attempt) clearTried() {
	a.small = 0
	a.anyTried = false
	clear(a.big)
}

func (a *Attempt) isTried(i int) bool {
	if len(a.big) == 0 {
		return a.small&(1<<uint(i)) != 0
	}
	return a.big[i>>6]&(1<<uint(i&63)) != 0
}

func (a *Attempt) setTried(i int) {
	a.anyTried = true
	if len(a.big) == 0 {
		a.small |= 1 << uint(i)
		return
	}
	a.big[i>>6] |= 1 << uint(i&63)
}

// list is nginx's rrp->peers: the primary set, or the backup set after the
// attempt fell back to it.
func (a *Attempt) list() []*Peer {
	if a.backup {
		return a.snap.Backup
	}
	return a.snap.Primary
}

// rebase moves the tried set onto a newer snapshot (a runtime change
// happened during this attempt), matching peers by their live state.
// Called with u.mu held; rare, so it may allocate.
func (a *Attempt) rebase(s *Snapshot) {
	var tried map[*liveState]struct{}
	for i, p := range a.list() {
		if a.isTried(i) {
			if tried == nil {
				tried = make(map[*liveState]struct{})
			}
			tried[p.st] = struct{}{}
		}
	}
	a.snap = s
	a.resetTried(s)
	if tried == nil {
		return
	}
	for i, p := range a.list() {
		if _, ok := tried[p.st]; ok {
			a.setTried(i)
		}
	}
}

// Next picks the next peer (nginx peer.get). It returns ErrNoLiveUpstreams
// when no peer is usable. The chosen peer's Conns and Requests are
// incremented; pass it to Finish when done with it.
func (a *Attempt) Next() (*Peer, error) {
	u := a.u
	u.mu.Lock()
	if s := u.snap.Load(); s != a.snap {
		a.rebase(s)
	}
	now := u.nowSec()
	var (
		p      *Peer
		single bool
	)
	switch u.method {
	case LeastConn:
		p, single = a.getLeastConn(now)
	case IPHash:
		p, single = a.getIPHash(now)
	case Hash:
		if u.consistent {
			p, single = a.getCHash(now)
		} else {
			p, single = a.getHash(now)
		}
	case Random:
		if u.two {
			p, single = a.getRandom2(now)
		} else {
			p, single = a.getRandom(now)
		}
	default:
		p, single = a.getRR(now)
	}
	if p == nil {
		u.mu.Unlock()
		return nil, ErrNoLiveUpstreams
	}
	p.st.conns.Add(1)
	p.st.requests.Add(1)
	p.st.selected = now
	a.pushPick(pick{st: p.st, single: single})
	u.mu.Unlock()
	return p, nil
}

func (a *Attempt) pushPick(pk pick) {
	if a.nOut < len(a.out) {
		a.out[a.nOut] = pk
		a.nOut++
		return
	}
	a.extra = append(a.extra, pk)
}

// popPick removes the most recent outstanding pick of st.
func (a *Attempt) popPick(st *liveState) (pick, bool) {
	for i := len(a.extra) - 1; i >= 0; i-- {
		if a.extra[i].st == st {
			pk := a.extra[i]
			a.extra = append(a.extra[:i], a.extra[i+1:]...)
			return pk, true
		}
	}
	for i := a.nOut - 1; i >= 0; i-- {
		if a.out[i].st == st {
			pk := a.out[i]
			copy(a.out[i:a.nOut], a.out[i+1:a.nOut])
			a.nOut--
			a.out[a.nOut] = pick{}
			return pk, true
		}
	}
	return pick{}, false
}

// Finish releases a peer returned by Next, with exactly nginx's
// ngx_http_upstream_free_round_robin_peer accounting:
//
//	failed:  fails++, accessed = checked = now;
//	         if max_fails: effective_weight -= weight / max_fails,
//	         warn "upstream server temporarily disabled" when fails >= max_fails;
//	         effective_weight >= 0
//	success: if accessed < checked: fails = 0
//	always:  conns--
//
// A peer picked from a single-server upstream only gets conns-- (nginx never
// marks a lone server unavailable). Finish is safe on peers removed since
// they were picked; calling it for a peer that is not outstanding in this
// attempt (twice, or from another attempt) does nothing.
func (a *Attempt) Finish(p *Peer, failed bool) {
	if p == nil || a.u == nil {
		return
	}
	u := a.u
	u.mu.Lock()
	pk, ok := a.popPick(p.st)
	if !ok {
		u.mu.Unlock()
		return
	}
	st := p.st
	if pk.single {
		// nginx never disables a lone server (no fails, no effective
		// weight change), but the failure still happened: count it in the
		// cumulative counter so requests = responses + fails holds.
		if failed {
			st.failsTotal++
		}
		st.conns.Add(-1)
		u.mu.Unlock()
		return
	}
	disabled := false
	if failed {
		// fails and the effective weight change: leave the fast round
		// robin's steady state (current weights back to the live states).
		u.fast.settle()
		nowT := u.now()
		now, nowMs := nowT.Unix(), nowT.UnixMilli()
		// Close a down period that fail_timeout ended before this failure.
		u.noteDownCurrent(p.uid, nowMs, now)
		wasUnavail := p.unavailable(now)
		st.fails++
		st.failsTotal++
		st.accessed = now
		st.checked = now
		if p.spec.MaxFails > 0 {
			st.effectiveWeight -= p.spec.Weight / p.spec.MaxFails
			disabled = st.fails >= p.spec.MaxFails
		}
		if disabled && !wasUnavail {
			st.unavail++
		}
		if st.effectiveWeight < 0 {
			st.effectiveWeight = 0
		}
		u.noteDownCurrent(p.uid, nowMs, now)
	} else if st.accessed < st.checked {
		// mark peer live if check passed
		if p.slowStart > 0 && p.spec.MaxFails > 0 && st.fails >= p.spec.MaxFails {
			// It was unavailable and has just proved itself: ramp up. The
			// ramp lowers its weight, which the fast path does not model.
			u.fast.settle()
			st.recovered = u.nowSec()
		}
		if p.spec.MaxFails > 0 && st.fails >= p.spec.MaxFails {
			// The max_fails probe succeeded: no longer unavail.
			nowT := u.now()
			st.fails = 0
			st.failsUpAt = nowT.UnixMilli()
			u.noteDownCurrent(p.uid, st.failsUpAt, nowT.Unix())
		}
		st.fails = 0
	}
	st.conns.Add(-1)
	u.mu.Unlock()
	if disabled {
		const msg = "upstream server temporarily disabled"
		if a.log != nil {
			a.log("warn", msg)
		} else {
			u.logf("warn", msg)
		}
	}
}

// markChecked is nginx's "if (now - peer->checked > peer->fail_timeout)
// peer->checked = now" after a successful pick.
func markChecked(p *Peer, now int64) {
	if now-p.st.checked > p.failTimeout {
		if p.spec.MaxFails > 0 && p.st.fails >= p.spec.MaxFails {
			// The max_fails probe: fail_timeout ended the unavail period,
			// and moving checked makes the peer unavail again until the
			// probe succeeds (nginx's behaviour). Record both.
			nowMs := p.u.now().UnixMilli()
			p.noteDown(nowMs, now)
			p.st.checked = now
			p.noteDown(nowMs, now)
			return
		}
		p.st.checked = now
	}
}

// ---- round robin (ngx_http_upstream_round_robin.c) ----

// getRR is ngx_http_upstream_get_round_robin_peer including the fallback
// to the backup set.
func (a *Attempt) getRR(now int64) (*Peer, bool) {
	if f := &a.u.fast; f.active {
		// Steady state (see fastrr.go): valid for a first try on the
		// primary set of the snapshot it was built for, while no health
		// check has failed a peer since.
		if !a.anyTried && !a.backup && f.snap == a.snap && a.u.hcGen.Load() == f.hcGen {
			return f.pick(a, now), false
		}
		f.settle()
	}
	for {
		list := a.list()
		if !a.backup && len(list) == 1 && len(a.snap.Backup) == 0 {
			// peers->single: only down, max_conns and (as NGINX Plus) the
			// active health-check verdict are checked. (nginx
			// never asks twice: its tries drop to 0 after a single peer is
			// freed; the tried bit gives a looping caller the same result.)
			p := list[0]
			if !a.isTried(0) && !p.off() && p.st.hc.ok() && (p.spec.MaxConns == 0 || p.st.conns.Load() < int64(p.spec.MaxConns)) {
				a.setTried(0)
				return p, true
			}
		} else if p := a.getPeer(list, now); p != nil {
			return p, false
		}
		if !a.switchToBackup() {
			return nil, false
		}
	}
}

// switchToBackup moves the attempt to the backup set with an empty tried set;
// false if already there or there is none.
func (a *Attempt) switchToBackup() bool {
	if a.backup || len(a.snap.Backup) == 0 {
		return false
	}
	a.backup = true
	a.clearTried()
	return true
}

// getPeer is ngx_http_upstream_get_peer: smooth weighted round robin.
func (a *Attempt) getPeer(list []*Peer, now int64) *Peer {
	u := a.u
	u.fast.settle()
	// steady: this scan may hand over to the fast path (fastrr.go) if every
	// non-off primary peer turns out usable at full weight, not in its
	// max_fails probe. hcGen is read before the scan reads the health words,
	// so a verdict landing during the scan is noticed by the next pick.
	steady := !a.backup && !a.anyTried && a.snap.rrFast && !u.noFastRR
	var hcGen uint64
	if steady {
		hcGen = u.hcGen.Load()
	}
	var best *Peer
	bestI, total := 0, 0
	for i, p := range list {
		if a.isTried(i) || !p.usable(now) {
			if !p.off() {
				steady = false
			}
			continue
		}
		st := p.st
		// w is the weight, lower during slow start: clamp the effective
		// weight to it (a no-op otherwise, as effective <= weight).
		w := p.weightAt(now)
		if steady && (w != p.spec.Weight || st.effectiveWeight != w || (p.spec.MaxFails > 0 && st.fails >= p.spec.MaxFails)) {
			steady = false
		}
		if st.effectiveWeight > w {
			st.effectiveWeight = w
		}
		st.currentWeight += st.effectiveWeight
		total += st.effectiveWeight
		if st.effectiveWeight < w {
			st.effectiveWeight++
		}
		if best == nil || st.currentWeight > best.st.currentWeight {
			best, bestI = p, i
		}
	}
	if best == nil {
		return nil
	}
	a.setTried(bestI)
	best.st.currentWeight -= total
	markChecked(best, now)
	if steady {
		u.fast.build(a.snap, hcGen)
	}
	return best
}

// ---- least_conn (ngx_http_upstream_least_conn_module.c) ----

func (a *Attempt) getLeastConn(now int64) (*Peer, bool) {
	for {
		list := a.list()
		if !a.backup && len(list) == 1 && len(a.snap.Backup) == 0 {
			return a.getRR(now)
		}
		var best *Peer
		bestI, many := 0, false
		for i, p := range list {
			if a.isTried(i) || !p.usable(now) {
				continue
			}
			// select the peer with the least conns/weight; if there are
			// several, select among them by round robin (below)
			if best == nil {
				best, bestI, many = p, i, false
				continue
			}
			l, r := p.st.conns.Load()*int64(best.weightAt(now)), best.st.conns.Load()*int64(p.weightAt(now))
			if l < r {
				best, bestI, many = p, i, false
			} else if l == r {
				many = true
			}
		}
		if best != nil {
			total := 0
			if many {
				for i := bestI; i < len(list); i++ {
					p := list[i]
					if a.isTried(i) || p.off() {
						continue
					}
					if p.st.conns.Load()*int64(best.weightAt(now)) != best.st.conns.Load()*int64(p.weightAt(now)) {
						continue
					}
					if !p.usable(now) {
						continue
					}
					st := p.st
					w := p.weightAt(now)
					if st.effectiveWeight > w {
						st.effectiveWeight = w
					}
					st.currentWeight += st.effectiveWeight
					total += st.effectiveWeight
					if st.effectiveWeight < w {
						st.effectiveWeight++
					}
					if st.currentWeight > best.st.currentWeight {
						best, bestI = p, i
					}
				}
			}
			best.st.currentWeight -= total
			markChecked(best, now)
			a.setTried(bestI)
			return best, false
		}
		if !a.switchToBackup() {
			return nil, false
		}
	}
}

// ---- ip_hash (ngx_http_upstream_ip_hash_module.c) ----

func (a *Attempt) getIPHash(now int64) (*Peer, bool) {
	s := a.snap
	list := a.list()
	if a.hashTries > 20 || len(list) < 2 || a.backup {
		return a.getRR(now)
	}
	hash := a.ipHash
	for {
		for i := 0; i < a.addrLen; i++ {
			hash = (hash*113 + uint(a.addr[i])) % 6271
		}
		i := s.weightIndex(int(hash % uint(s.totalWeight)))
		if !a.isTried(i) && list[i].usable(now) {
			p := list[i]
			markChecked(p, now)
			a.setTried(i)
			a.ipHash = hash
			return p, false
		}
		a.hashTries++
		if a.hashTries > 20 {
			return a.getRR(now)
		}
	}
}

// ---- hash KEY (ngx_http_upstream_hash_module.c) ----

func (a *Attempt) getHash(now int64) (*Peer, bool) {
	s := a.snap
	list := a.list()
	if a.hashTries > 20 || len(list) < 2 || a.key == "" || a.backup {
		return a.getRR(now)
	}
	var buf [20]byte
	for {
		// Cache::Memcached compatible:
		// ((crc32([REHASH] KEY) >> 16) & 0x7fff) + PREV_HASH,
		// REHASH omitted at the first iteration.
		var h uint32
		if a.rehash > 0 {
			h = crcUpdate(0, strconv.AppendUint(buf[:0], a.rehash, 10))
		}
		h = crcUpdate(h, a.key)
		a.keyHash += (h >> 16) & 0x7fff
		a.rehash++

		i := s.weightIndex(int(uint64(a.keyHash) % uint64(s.totalWeight)))
		if !a.isTried(i) && list[i].usable(now) {
			p := list[i]
			markChecked(p, now)
			a.setTried(i)
			return p, false
		}
		a.hashTries++
		if a.hashTries > 20 {
			return a.getRR(now)
		}
	}
}

// ---- hash KEY consistent ----

func (a *Attempt) getCHash(now int64) (*Peer, bool) {
	s := a.snap
	list := a.list()
	if a.hashTries > 20 || len(list) < 2 || a.key == "" || a.backup || s.ring == nil || len(s.ring.points) == 0 {
		return a.getRR(now)
	}
	if a.ring != s.ring {
		// The ring was rebuilt (weights or servers changed) during this
		// attempt: restart from the key's point on the new ring; the tried
		// set still prevents repeating a peer.
		a.ring = s.ring
		a.point = s.ring.find(crcUpdate(0, a.key))
	}
	points := s.ring.points
	for {
		name := points[a.point%uint32(len(points))].name
		var best *Peer
		bestI, total := 0, 0
		for _, i := range s.ring.byName[name] {
			p := list[i]
			if a.isTried(i) || !p.usable(now) {
				continue
			}
			st := p.st
			st.currentWeight += st.effectiveWeight
			total += st.effectiveWeight
			if st.effectiveWeight < p.spec.Weight {
				st.effectiveWeight++
			}
			if best == nil || st.currentWeight > best.st.currentWeight {
				best, bestI = p, i
			}
		}
		if best != nil {
			best.st.currentWeight -= total
			markChecked(best, now)
			a.setTried(bestI)
			return best, false
		}
		a.point++
		a.hashTries++
		if a.hashTries > 20 {
			return a.getRR(now)
		}
	}
}

// ---- random [two] (ngx_http_upstream_random_module.c) ----

// peekRandom picks a primary index with probability proportional to weight.
func (a *Attempt) peekRandom() int {
	s := a.snap
	return s.weightIndex(int(a.u.rand() % uint64(s.totalWeight)))
}

func (a *Attempt) getRandom(now int64) (*Peer, bool) {
	list := a.list()
	if a.hashTries > 20 || len(list) < 2 || a.backup {
		return a.getRR(now)
	}
	for {
		i := a.peekRandom()
		if !a.isTried(i) && list[i].usable(now) {
			p := list[i]
			markChecked(p, now)
			a.setTried(i)
			return p, false
		}
		a.hashTries++
		if a.hashTries > 20 {
			return a.getRR(now)
		}
	}
}

// getRandom2 is `random two [least_conn]`: two distinct usable peers chosen
// by weight, the one with fewer conns/weight wins (the second on a tie).
func (a *Attempt) getRandom2(now int64) (*Peer, bool) {
	list := a.list()
	if a.hashTries > 20 || len(list) < 2 || a.backup {
		return a.getRR(now)
	}
	prev := -1
	for {
		i := a.peekRandom()
		if i != prev && !a.isTried(i) && list[i].usable(now) {
			if prev >= 0 {
				p, q := list[i], list[prev]
				if p.st.conns.Load()*int64(q.spec.Weight) > q.st.conns.Load()*int64(p.spec.Weight) {
					i, p = prev, q
				}
				markChecked(p, now)
				a.setTried(i)
				return p, false
			}
			prev = i
		}
		a.hashTries++
		if a.hashTries > 20 {
			return a.getRR(now)
		}
	}
}

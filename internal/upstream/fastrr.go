package upstream

import "slices"

// Fast smooth weighted round robin: nginx's sequence in O(G + log n) per pick.
//
// nginx's ngx_http_upstream_get_peer scans every peer: cw_i += ew_i for each
// usable peer, picks the first peer with the largest cw, and subtracts the
// sum of the effective weights from it. That is O(n) per pick (48 µs at
// 10,000 peers). In the common steady state — every non-off primary peer
// usable, effective_weight == weight, no slow-start ramp, first try of the
// request — the update is the same every pick, so after t picks
//
//	cw_i(t) = base_i + t*w_i
//
// where base_i only changes (by -W, W = sum of weights) when peer i is
// picked. Peers of one weight share the slope, so the order of their cw is
// the order of their base: the best of each weight group is the top of a
// heap keyed by (base desc, list index asc). A pick compares the G group tops
// at t+1 (ties to the lowest list index, as nginx's strict ">" in list order)
// and sifts the winner down its heap. The picks are exactly nginx's, from
// whatever current weights the steady state was entered with.
//
// Most groups need no heap at all. Kept sorted best-first, a group whose
// winner, at base-W, sorts after the group's last entry is a queue: the
// winner moves from the head to the tail, which in a ring buffer is one
// increment of its start. Once that holds for one pick it holds for every
// later one (the next head is no better than the old one, so at base-W it
// sorts after it), so a ring only falls back to a heap if it was built from
// current weights spread wider than W. The usual entries into the steady
// state — all current weights zero at start, or a rotation interrupted by a
// runtime change — are rings in list order already; a heap whose top, at
// base-W, drops below the group's lowest base (tracked per pick) is sorted
// into a ring once. A pick is then O(G) and touches a few words, where a
// sift down a 1,000-peer heap costs ~400 instructions and ~10 cache lines.
//
// Anything that leaves the steady state settles the fast state first: the
// current weights are written back to the liveStates (cw_i = base_i + t*w_i)
// and the exact scan runs. These are a retry (tried peers), the backup set,
// a failure (fails, effective weight), a slow-start ramp starting, any
// snapshot change (down, drain, weight, add, remove) and an active health
// check failing a peer (hcGen). The scan itself tells when every peer is
// steady again, and the fast state is rebuilt from the live current weights
// (O(n), once per such transition). Upstreams where the fast path could not
// be exact without per-pick O(n) checks never use it: other methods, and
// peers with max_conns (whose usability changes with every pick).

// fastRRMaxGroups bounds the distinct weights of a fast upstream: a pick
// compares every group's top, so many distinct weights would bring back the
// linear cost. Beyond it the exact scan runs.
const fastRRMaxGroups = 32

// fastRRRenorm bounds t so base_i + t*w_i cannot overflow: every so many
// picks t is folded into the bases (O(n), negligible amortized).
const fastRRRenorm = 1 << 24

type fastRR struct {
	active bool
	snap   *Snapshot // the snapshot the state was built for
	hcGen  uint64    // Upstream.hcGen when the steady state was verified
	t      int64
	total  int64   // sum of the weights of peers
	peers  []*Peer // the non-off primary peers, in list order (index k)
	idx    []int32 // k -> index in snap.Primary (for the tried set)
	base   []int64 // k -> cw_k - t*w_k
	groups []fastGroup
	heaps  []int32 // backing store of the groups' ks

	// picks, builds: how often the fast path picked and was (re)built;
	// ringPicks, toRing, toHeap: picks that rotated a ring, and the
	// conversions between the two forms of a group. For tests and
	// benchmarks.
	picks, builds, ringPicks, toRing, toHeap uint64
}

// fastGroup is the peers of one weight, best (largest base, lowest k on
// ties) first: either a ring sorted best-first from ks[start], or (ring
// false, start 0) a binary heap with the best at ks[0].
type fastGroup struct {
	w     int64
	ks    []int32
	start int
	ring  bool
	min   int64 // heap form only: the lowest base of the group
}

// eligibleFastRR reports whether a snapshot can use the fast path at all
// (the dynamic conditions are checked by the scan).
func eligibleFastRR(m Method, s *Snapshot) bool {
	if m != RoundRobin || (len(s.Primary) == 1 && len(s.Backup) == 0) {
		// A single server takes getRR's peers->single path.
		return false
	}
	var ws [fastRRMaxGroups]int
	g, n := 0, 0
	for _, p := range s.Primary {
		if p.off() {
			continue
		}
		if p.spec.MaxConns > 0 {
			return false
		}
		n++
		found := false
		for _, w := range ws[:g] {
			if w == p.spec.Weight {
				found = true
				break
			}
		}
		if !found {
			if g == fastRRMaxGroups {
				return false
			}
			ws[g] = p.spec.Weight
			g++
		}
	}
	return n > 0
}

// less orders heap entries: larger base first, then lower k (list order).
func (f *fastRR) less(a, b int32) bool {
	ba, bb := f.base[a], f.base[b]
	return ba > bb || (ba == bb && a < b)
}

func (f *fastRR) siftDown(h []int32, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && f.less(h[r], h[l]) {
			c = r
		}
		if !f.less(h[c], h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// initGroup puts a freshly built group (ks in list order) in its form: a
// ring if list order is a rotation of best-first order, which takes one
// pass to tell (exactly one place where the next entry is better than the
// previous one, counting the wrap-around; none for a single peer), and a
// heap otherwise.
func (f *fastRR) initGroup(gr *fastGroup) {
	ks, n := gr.ks, len(gr.ks)
	breaks, start := 0, 0
	for i := range n {
		j := i + 1
		if j == n {
			j = 0
		}
		if f.less(ks[j], ks[i]) {
			breaks++
			start = j
		}
	}
	if breaks <= 1 {
		gr.ring, gr.start = true, start
		return
	}
	gr.ring, gr.start = false, 0
	for i := n/2 - 1; i >= 0; i-- {
		f.siftDown(ks, i)
	}
	gr.min = f.lowestBase(ks)
}

func (f *fastRR) lowestBase(ks []int32) int64 {
	m := f.base[ks[0]]
	for _, k := range ks[1:] {
		m = min(m, f.base[k])
	}
	return m
}

// reorder restores gr's order after its best entry k was picked (its base
// lowered by W).
func (f *fastRR) reorder(gr *fastGroup, k int32) {
	n := len(gr.ks)
	if n == 1 {
		return
	}
	if gr.ring {
		tail := gr.start - 1
		if tail < 0 {
			tail = n - 1
		}
		if f.less(gr.ks[tail], k) {
			// k is now last: its slot becomes the tail as the head moves on.
			if gr.start++; gr.start == n {
				gr.start = 0
			}
			f.ringPicks++
			return
		}
		// Only a ring entered with current weights spread wider than W gets
		// here, on its first picks: make it a heap. Sorted best-first from
		// 0 it is one already, but for k at its top.
		slices.Reverse(gr.ks[:gr.start])
		slices.Reverse(gr.ks[gr.start:])
		slices.Reverse(gr.ks)
		gr.ring, gr.start = false, 0
		gr.min = f.lowestBase(gr.ks)
		f.toHeap++
	}
	f.siftDown(gr.ks, 0)
	gr.min = min(gr.min, f.base[k])
	if f.base[gr.ks[0]]-f.total < gr.min {
		// The next winner will sort strictly last: sort the heap (heapsort
		// leaves it worst-first) and it is a ring from now on.
		for end := n - 1; end > 0; end-- {
			gr.ks[0], gr.ks[end] = gr.ks[end], gr.ks[0]
			f.siftDown(gr.ks[:end], 0)
		}
		slices.Reverse(gr.ks)
		gr.ring = true
		f.toRing++
	}
}

// build enters the steady state for s from the peers' live current weights.
// Called with Upstream.mu held, after a scan found every non-off primary peer
// steady. It reuses its buffers, so only growth allocates.
func (f *fastRR) build(s *Snapshot, hcGen uint64) {
	f.snap, f.hcGen, f.t, f.total = s, hcGen, 0, 0
	f.peers, f.idx, f.base = f.peers[:0], f.idx[:0], f.base[:0]
	f.groups = f.groups[:0]
	// groupOf[k] is kept in heaps temporarily; count members per weight.
	var counts [fastRRMaxGroups]int
	for i, p := range s.Primary {
		if p.off() {
			continue
		}
		k := int32(len(f.peers))
		p.st.fastK = k
		f.peers = append(f.peers, p)
		f.idx = append(f.idx, int32(i))
		f.base = append(f.base, int64(p.st.currentWeight))
		w := int64(p.spec.Weight)
		f.total += w
		g := 0
		for g < len(f.groups) && f.groups[g].w != w {
			g++
		}
		if g == len(f.groups) {
			f.groups = append(f.groups, fastGroup{w: w})
		}
		counts[g]++
	}
	n := len(f.peers)
	if cap(f.heaps) < n {
		f.heaps = make([]int32, n)
	}
	f.heaps = f.heaps[:n]
	off := 0
	for g := range f.groups {
		f.groups[g].ks = f.heaps[off : off : off+counts[g]]
		off += counts[g]
	}
	for k, p := range f.peers {
		w := int64(p.spec.Weight)
		g := 0
		for f.groups[g].w != w {
			g++
		}
		f.groups[g].ks = append(f.groups[g].ks, int32(k))
	}
	for g := range f.groups {
		f.initGroup(&f.groups[g])
	}
	f.active = true
	f.builds++
}

// pick is one smooth WRR pick in the steady state. Called with Upstream.mu
// held; a.snap == f.snap and a has tried nothing.
func (f *fastRR) pick(a *Attempt, now int64) *Peer {
	t1 := f.t + 1
	bg, bk, bv := 0, int32(-1), int64(0)
	for g := range f.groups {
		gr := &f.groups[g]
		k := gr.ks[gr.start]
		v := f.base[k] + t1*gr.w
		if bk < 0 || v > bv || (v == bv && k < bk) {
			bg, bk, bv = g, k, v
		}
	}
	f.base[bk] -= f.total
	f.reorder(&f.groups[bg], bk)
	f.t = t1
	if t1 >= fastRRRenorm {
		// Adding t*w to every base of a group keeps the group's order.
		for g := range f.groups {
			gr := &f.groups[g]
			d := t1 * gr.w
			for _, k := range gr.ks {
				f.base[k] += d
			}
			gr.min += d
		}
		f.t = 0
	}
	f.picks++
	p := f.peers[bk]
	a.setTried(int(f.idx[bk]))
	markChecked(p, now)
	return p
}

// settle writes the current weights back to the live states and leaves the
// steady state. Called with Upstream.mu held; O(n), only on transitions.
func (f *fastRR) settle() {
	if !f.active {
		return
	}
	for g := range f.groups {
		d := f.t * f.groups[g].w
		for _, k := range f.groups[g].ks {
			f.peers[k].st.currentWeight = int(f.base[k] + d)
		}
	}
	f.active = false
	f.snap = nil
}

// currentWeight is st's current weight, also while the fast state holds it.
// Called with Upstream.mu held.
func (f *fastRR) currentWeight(st *liveState) int {
	if f.active {
		if k := st.fastK; int(k) < len(f.peers) && f.peers[k].st == st {
			return int(f.base[k] + f.t*int64(f.peers[k].spec.Weight))
		}
	}
	return st.currentWeight
}

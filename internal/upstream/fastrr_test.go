package upstream

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// twin drives two upstreams built from the same servers through the same
// operations: fast uses the fast round robin (fastrr.go), ref has it
// disabled and runs nginx's plain O(n) scan. Every pick and every peer's live
// state must be identical.
type twin struct {
	t         *testing.T
	fast, ref *Upstream
	fc, rc    *fakeClock
	// outstanding attempts holding connections (max_conns, least picks).
	held  [][2]*Attempt
	heldP [][2]*Peer
	picks int
}

func newTwin(t *testing.T, specs []ServerSpec) *twin {
	tw := &twin{t: t, fc: newClock(), rc: newClock()}
	tw.fast = mustNew(t, Options{Now: tw.fc.Now}, specs...)
	tw.ref = mustNew(t, Options{Now: tw.rc.Now}, specs...)
	tw.ref.noFastRR = true
	return tw
}

func (tw *twin) both(f func(u *Upstream) error) {
	tw.t.Helper()
	e1, e2 := f(tw.fast), f(tw.ref)
	if fmt.Sprint(e1) != fmt.Sprint(e2) {
		tw.t.Fatalf("errors differ: fast %v, ref %v", e1, e2)
	}
}

func (tw *twin) advance(d time.Duration) { tw.fc.Advance(d); tw.rc.Advance(d) }

// next picks on both attempts and checks they agree.
func (tw *twin) next(a, b *Attempt, what string) (*Peer, *Peer, bool) {
	tw.t.Helper()
	p, e1 := a.Next()
	q, e2 := b.Next()
	tw.picks++
	if e1 != e2 || (p == nil) != (q == nil) || (p != nil && p.UID() != q.UID()) {
		tw.t.Fatalf("pick %d (%s): fast %v %v, nginx scan %v %v", tw.picks, what, name(p), e1, name(q), e2)
	}
	return p, q, p != nil
}

func name(p *Peer) string {
	if p == nil {
		return "<nil>"
	}
	return p.Name()
}

// request runs one request: up to tries picks, each failing with
// probability failP; with probability holdP the last peer stays in use.
func (tw *twin) request(r *rand.Rand, failP, holdP float64) {
	a, b := tw.fast.Begin(Request{}), tw.ref.Begin(Request{})
	for range a.Tries() {
		p, q, ok := tw.next(a, b, "request")
		if !ok {
			return
		}
		if r.Float64() < failP {
			a.Finish(p, true)
			b.Finish(q, true)
			continue
		}
		if r.Float64() < holdP {
			tw.held = append(tw.held, [2]*Attempt{a, b})
			tw.heldP = append(tw.heldP, [2]*Peer{p, q})
			return
		}
		a.Finish(p, false)
		b.Finish(q, false)
		return
	}
}

func (tw *twin) release(r *rand.Rand, failed bool) {
	if len(tw.held) == 0 {
		return
	}
	i := r.IntN(len(tw.held))
	tw.held[i][0].Finish(tw.heldP[i][0], failed)
	tw.held[i][1].Finish(tw.heldP[i][1], failed)
	tw.held = append(tw.held[:i], tw.held[i+1:]...)
	tw.heldP = append(tw.heldP[:i], tw.heldP[i+1:]...)
}

// compare checks every peer's live state, including the current weights
// the fast path keeps in its own form.
func (tw *twin) compare(step int) {
	tw.t.Helper()
	fa, ra := tw.fast.Snapshot().All(), tw.ref.Snapshot().All()
	if len(fa) != len(ra) {
		tw.t.Fatalf("step %d: %d peers vs %d", step, len(fa), len(ra))
	}
	for i := range fa {
		fs, rs := fa[i].State(), ra[i].State()
		fs.Health, rs.Health = PeerHealth{}, PeerHealth{}
		if fs != rs {
			tw.t.Fatalf("step %d: peer %s:\nfast %+v\nscan %+v", step, fa[i].Name(), fs, rs)
		}
	}
}

// randomPeer returns a random peer of the fast upstream's snapshot (the
// twins' snapshots have the same ids).
func randomPeer(r *rand.Rand, u *Upstream) *Peer {
	all := u.Snapshot().All()
	if len(all) == 0 {
		return nil
	}
	return all[r.IntN(len(all))]
}

func TestFastRRMatchesNginxScan(t *testing.T) {
	type mix struct {
		failP, holdP float64 // per pick
		event        float64 // probability of a runtime event per step
	}
	tests := []struct {
		name     string
		peers    int
		maxW     int
		steps    int
		backups  int
		health   bool
		slow     bool // some peers with slow_start
		maxConns bool // some peers with max_conns
		mix      mix
	}{
		{"steady small", 3, 5, 3000, 0, false, false, false, mix{0, 0, 0}},
		{"steady distinct weights", 40, 60, 3000, 0, false, false, false, mix{0, 0, 0}},
		{"failures", 5, 4, 20000, 0, false, false, false, mix{0.02, 0, 0}},
		{"failures and backups", 6, 3, 20000, 2, false, false, false, mix{0.05, 0.01, 0.002}},
		{"runtime events", 8, 6, 30000, 1, false, false, false, mix{0.005, 0.01, 0.01}},
		{"health checks", 8, 4, 30000, 0, true, false, false, mix{0.002, 0, 0.01}},
		{"slow start", 6, 10, 30000, 0, false, true, false, mix{0.01, 0, 0.005}},
		{"max_conns", 6, 3, 20000, 1, false, false, true, mix{0.01, 0.2, 0.005}},
		{"everything", 12, 8, 60000, 2, true, true, true, mix{0.01, 0.05, 0.01}},
		{"large", 300, 4, 20000, 0, true, false, false, mix{0.001, 0.001, 0.001}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(i)+1, 42))
			specs := make([]ServerSpec, 0, tt.peers+tt.backups)
			spec := func(j int, bk bool) ServerSpec {
				s := srv(fmt.Sprintf("10.0.%d.%d:80", j/256, j%256), weight(1+r.IntN(tt.maxW)), maxFails(r.IntN(3)))
				s.Backup = bk
				if tt.slow && r.IntN(2) == 0 {
					s.SlowStart = time.Duration(5+r.IntN(20)) * time.Second
				}
				if tt.maxConns && r.IntN(3) == 0 {
					s.MaxConns = 1 + r.IntN(3)
				}
				return s
			}
			for j := range tt.peers {
				specs = append(specs, spec(j, false))
			}
			for j := range tt.backups {
				specs = append(specs, spec(tt.peers+j, true))
			}
			tw := newTwin(t, specs)
			if tt.health {
				tw.both(func(u *Upstream) error { return u.SetHealthChecks(1, 0) })
			}
			added := tt.peers + tt.backups
			for step := range tt.steps {
				tw.request(r, tt.mix.failP, tt.mix.holdP)
				if len(tw.held) > 0 && r.IntN(3) == 0 {
					tw.release(r, r.Float64() < tt.mix.failP*5)
				}
				if r.Float64() < tt.mix.event {
					p := randomPeer(r, tw.fast)
					uid, bk, id := p.UID(), p.IsBackup(), p.ID()
					switch e := r.IntN(9); {
					case e == 0:
						d := r.IntN(2) == 0
						tw.both(func(u *Upstream) error { return u.SetDown(bk, id, d) })
					case e == 1:
						d := r.IntN(3) == 0
						tw.both(func(u *Upstream) error { return u.SetDrain(bk, id, d) })
					case e == 2:
						w := 1 + r.IntN(tt.maxW)
						tw.both(func(u *Upstream) error { return u.SetWeight(bk, id, w) })
					case e == 3 && tt.health:
						ok := r.IntN(2) == 0
						for _, u := range []*Upstream{tw.fast, tw.ref} {
							q, err := u.Snapshot().FindUID(uid)
							if err != nil {
								t.Fatal(err)
							}
							q.SetCheckVerdict(0, ok)
						}
					case e == 4:
						s := spec(added, r.IntN(4) == 0 && tt.backups > 0)
						added++
						tw.both(func(u *Upstream) error { _, err := u.AddPeer(s); return err })
					case e == 5 && len(tw.fast.Snapshot().Primary) > 2:
						tw.both(func(u *Upstream) error { return u.RemoveUID(uid) })
					case e == 6:
						tw.advance(time.Duration(r.IntN(15)) * time.Second)
					case e == 7:
						w := 1 + r.IntN(tt.maxW)
						tw.both(func(u *Upstream) error {
							_, err := u.Update(uid, func(s *ServerSpec) { s.Down = !s.Down; s.Weight = w })
							return err
						})
					}
				}
				if r.IntN(50) == 0 {
					tw.advance(time.Second)
				}
				if step%97 == 0 || tt.peers <= 12 {
					tw.compare(step)
				}
			}
			for len(tw.held) > 0 {
				tw.release(r, false)
			}
			tw.compare(tt.steps)
			f := &tw.fast.fast
			t.Logf("%d picks compared, %d by the fast path (%d rotating a ring), %d fast (re)builds, %d heaps sorted into rings, %d rings back to heaps",
				tw.picks, f.picks, f.ringPicks, f.builds, f.toRing, f.toHeap)
			if tt.name != "max_conns" && f.picks == 0 {
				t.Fatalf("the fast path never ran")
			}
		})
	}
}

// TestFastRRLongRun checks a long steady run over many periods at 2,000
// peers against the scan, including the renormalization of t.
func TestFastRRLongRun(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	r := rand.New(rand.NewPCG(7, 7))
	specs := make([]ServerSpec, 2000)
	for i := range specs {
		specs[i] = srv(fmt.Sprintf("10.1.%d.%d:80", i/256, i%256), weight(1+r.IntN(7)))
	}
	tw := newTwin(t, specs)
	tw.fast.fast.t = 0
	for i := range 30000 {
		if i == 10000 {
			// Jump close to the renormalization point: the next picks
			// cross it.
			f := &tw.fast.fast
			tw.fast.mu.Lock()
			for g := range f.groups {
				d := (fastRRRenorm - 5 - f.t) * f.groups[g].w
				for _, k := range f.groups[g].ks {
					f.base[k] -= d
				}
				f.groups[g].min -= d
			}
			f.t = fastRRRenorm - 5
			tw.fast.mu.Unlock()
		}
		tw.request(r, 0, 0)
	}
	tw.compare(0)
	if f := &tw.fast.fast; f.builds != 1 || f.picks != 29999 {
		t.Fatalf("fast path: %d builds, %d picks; want 1 and 29999", f.builds, f.picks)
	}
}

// TestFastRRGoldenSequences runs the nginx sequences with the fast path on
// and off: both must give nginx's order.
func TestFastRRGoldenSequences(t *testing.T) {
	tests := []struct {
		weights []int
		want    string
	}{
		{[]int{5, 1, 1}, "a a b a c a a a a b a c a a"},
		{[]int{1, 1, 1}, "a b c a b c"},
		{[]int{3, 2}, "a b a b a a b a b a"},
		{[]int{2, 2, 1, 1}, "a b c d a b a b c d a b"},
	}
	for _, tt := range tests {
		for _, off := range []bool{false, true} {
			t.Run(fmt.Sprint(tt.weights, off), func(t *testing.T) {
				u := mustNew(t, Options{}, weighted(tt.weights...)...)
				u.noFastRR = off
				if got := seq(t, u, len(tt.want)/2+1); got != tt.want {
					t.Fatalf("got  %s\nwant %s", got, tt.want)
				}
			})
		}
	}
}

// TestFastRRRing checks the ring form of a weight group against the scan:
// entered from zero current weights it rotates on every pick; entered with
// current weights spread wider than W it starts as a heap and becomes a
// ring, and a ring built from such weights falls back to a heap first.
func TestFastRRRing(t *testing.T) {
	tests := []struct {
		name     string
		weights  []int
		cw       []int // current weights set before the fast path is entered; nil: zero
		toRing   bool  // want a heap sorted into a ring
		toHeap   bool  // want a ring made a heap
		allRings bool  // want every fast pick to rotate a ring
	}{
		{"equal from zero", []int{1, 1, 1, 1, 1, 1, 1, 1}, nil, false, false, true},
		{"two weights from zero", []int{2, 2, 2, 1, 1, 1}, nil, false, false, true},
		// List order 0, -40, 10, -20, 30: not a rotation of sorted order.
		{"spread, unsorted", []int{1, 1, 1, 1, 1}, []int{0, -40, 10, -20, 30}, true, false, false},
		// A rotation of sorted order, but 100 apart with W = 3.
		{"spread, sorted", []int{1, 1, 1}, []int{100, 0, -1}, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tw := newTwin(t, weighted(tt.weights...))
			if tt.cw != nil {
				for _, u := range []*Upstream{tw.fast, tw.ref} {
					u.mu.Lock()
					u.fast.settle()
					for i, p := range u.Snapshot().Primary {
						p.st.currentWeight = tt.cw[i]
					}
					u.mu.Unlock()
				}
			}
			r := rand.New(rand.NewPCG(1, 1))
			for range 400 {
				tw.request(r, 0, 0)
			}
			tw.compare(400)
			f := &tw.fast.fast
			if f.picks == 0 {
				t.Fatal("the fast path never ran")
			}
			if (f.toRing > 0) != tt.toRing || (f.toHeap > 0) != tt.toHeap {
				t.Fatalf("%d heaps sorted into rings, %d rings made heaps; want any: %v, %v", f.toRing, f.toHeap, tt.toRing, tt.toHeap)
			}
			if tt.allRings && f.ringPicks != f.picks {
				t.Fatalf("%d of %d fast picks rotated a ring; want all", f.ringPicks, f.picks)
			}
			if !tt.allRings && f.ringPicks < f.picks/2 {
				t.Fatalf("only %d of %d fast picks rotated a ring", f.ringPicks, f.picks)
			}
		})
	}
}

// An Attempt reset after each request (the proxy keeps one per pooled
// session) lets go of the upstream and its snapshot and keeps its tried
// set: above 64 peers a request allocates nothing.
func TestAttemptResetKeepsBuffers(t *testing.T) {
	u := benchUpstream(t, Options{}, 1000)
	var a Attempt
	request := func() {
		u.BeginInto(&a, Request{})
		p, err := a.Next()
		if err != nil {
			t.Fatal(err)
		}
		a.Finish(p, false)
		a.Reset()
	}
	request()
	if a.u != nil || a.snap != nil || cap(a.big) == 0 {
		t.Fatalf("after Reset: upstream %v, snapshot %v, tried set capacity %d", a.u != nil, a.snap != nil, cap(a.big))
	}
	if n := testing.AllocsPerRun(100, request); n != 0 {
		t.Fatalf("%.1f allocations per request with Reset between them; want 0", n)
	}
}

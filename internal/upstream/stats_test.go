package upstream

import (
	"sync"
	"testing"
	"time"
)

func TestRecordResponseCodes(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		codes    map[int]uint64
		classes  [5]uint64
		other    uint64
	}{
		{"none", nil, map[int]uint64{}, [5]uint64{}, 0},
		{"bounds", []int{100, 599, 200, 200}, map[int]uint64{100: 1, 200: 2, 599: 1}, [5]uint64{1, 2, 0, 0, 1}, 0},
		{"outside 100..599", []int{0, 99, 600, 404}, map[int]uint64{404: 1}, [5]uint64{0, 0, 0, 1, 0}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustNew(t, Options{}, srv("a"), srv("b")).Snapshot().Primary[0]
			for _, s := range tt.statuses {
				p.RecordResponse(s, 1, 1, 0, 0)
			}
			st := p.Stats()
			if len(st.Codes) != len(tt.codes) || st.Responses != tt.classes || st.Other != tt.other || st.Total != uint64(len(tt.statuses)) {
				t.Fatalf("stats %+v", st)
			}
			for c, n := range tt.codes {
				if st.Codes[c] != n {
					t.Fatalf("code %d: %d, want %d", c, st.Codes[c], n)
				}
			}
		})
	}
}

// TestRecordResponseConcurrent races first responses (the counters'
// installation) and later ones; run with -race.
func TestRecordResponseConcurrent(t *testing.T) {
	p := mustNew(t, Options{}, srv("a"), srv("b")).Snapshot().Primary[0]
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p.RecordResponse(200+w%2, 0, 0, 0, 0)
				if i%100 == 0 {
					p.Stats()
				}
			}
		}()
	}
	wg.Wait()
	st := p.Stats()
	if st.Codes[200] != workers/2*each || st.Codes[201] != workers/2*each || st.Total != workers*each {
		t.Fatalf("stats %+v", st)
	}
	if n := testing.AllocsPerRun(100, func() { p.RecordResponse(503, 1, 1, 1, 1) }); n != 0 {
		t.Fatalf("RecordResponse allocates %v times", n)
	}
}

// TestSinglePeerCountsFails: a lone server is never disabled (nginx), but
// its failures are counted in the cumulative counter.
func TestSinglePeerCountsFails(t *testing.T) {
	tests := []struct{ fails, ok int }{{0, 3}, {1, 0}, {5, 2}}
	for _, tt := range tests {
		u := mustNew(t, Options{Now: newClock().Now}, srv("a"))
		for i := range tt.fails + tt.ok {
			a := u.Begin(Request{})
			p, err := a.Next()
			if err != nil {
				t.Fatalf("pick %d: %v", i, err)
			}
			a.Finish(p, i < tt.fails)
		}
		st := peerByName(t, u, "a").State()
		if st.FailsTotal != uint64(tt.fails) || st.Fails != 0 || st.Unavailable || st.UnavailCount != 0 ||
			st.EffectiveWeight != 1 || st.Requests != uint64(tt.fails+tt.ok) || st.Downtime != 0 {
			t.Fatalf("%+v: state %+v", tt, st)
		}
	}
}

func TestDowntime(t *testing.T) {
	type step struct {
		do       func(u *Upstream, c *fakeClock)
		downtime time.Duration
		down     bool // DownStart set
	}
	fail := func(u *Upstream, c *fakeClock) {
		a := u.Begin(Request{})
		p, _ := a.Next()
		if p.Name() != "a" {
			panic("expected a, got " + p.Name())
		}
		a.Finish(p, true)
	}
	adv := func(d time.Duration) func(*Upstream, *fakeClock) {
		return func(_ *Upstream, c *fakeClock) { c.Advance(d) }
	}
	verdict := func(ok bool) func(*Upstream, *fakeClock) {
		return func(u *Upstream, _ *fakeClock) { u.Snapshot().Primary[0].SetCheckVerdict(0, ok) }
	}
	setDown := func(d bool) func(*Upstream, *fakeClock) {
		return func(u *Upstream, _ *fakeClock) { _ = u.SetDown(false, 0, d) }
	}
	probe := func(failed bool) func(*Upstream, *fakeClock) {
		return func(u *Upstream, _ *fakeClock) {
			// b is down: a is the only candidate.
			a := u.Begin(Request{})
			p, err := a.Next()
			if err != nil || p.Name() != "a" {
				panic("no probe of a")
			}
			a.Finish(p, failed)
		}
	}
	hc := func(mandatory uint64) func(*Upstream, *fakeClock) {
		return func(u *Upstream, _ *fakeClock) { _ = u.SetHealthChecks(1, mandatory) }
	}
	const s = time.Second
	tests := []struct {
		name  string
		steps []step
	}{
		{"unavail until fail_timeout", []step{
			{fail, 0, true}, {adv(4 * s), 4 * s, true},
			// unavailable while now-checked <= 10s: until checked+11s
			{adv(20 * s), 11 * s, false},
		}},
		{"probe fails and succeeds", []step{
			{fail, 0, true}, {adv(15 * s), 11 * s, false},
			{probe(true), 11 * s, true}, {adv(2 * s), 13 * s, true},
			{adv(12 * s), 22 * s, false}, {probe(false), 22 * s, false}, {adv(5 * s), 22 * s, false},
		}},
		{"unhealthy", []step{
			{hc(0), 0, false}, {verdict(false), 0, true}, {adv(5 * s), 5 * s, true},
			{verdict(true), 5 * s, false}, {adv(5 * s), 5 * s, false},
		}},
		{"checking", []step{
			{hc(1), 0, true}, {adv(3 * s), 3 * s, true}, {verdict(true), 3 * s, false}, {adv(s), 3 * s, false},
		}},
		{"down is not down time", []step{
			{hc(0), 0, false}, {verdict(false), 0, true}, {adv(2 * s), 2 * s, true},
			{setDown(true), 2 * s, false}, {adv(5 * s), 2 * s, false},
			{setDown(false), 2 * s, true}, {adv(s), 3 * s, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			u := mustNew(t, Options{Now: c.Now}, srv("a"), srv("b", down))
			for i, st := range tt.steps {
				st.do(u, c)
				ps := u.Snapshot().Primary[0].State()
				if ps.Downtime != st.downtime || ps.DownStart.IsZero() == st.down {
					t.Fatalf("step %d: downtime %v downstart %v; want %v, down %v", i, ps.Downtime, ps.DownStart, st.downtime, st.down)
				}
			}
		})
	}
}

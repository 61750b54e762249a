package upstream

import (
	"errors"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestNewValidation(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		specs   []ServerSpec
		wantErr string
	}{
		{"no servers", Options{}, nil, "no servers are inside upstream"},
		{"only backup", Options{}, []ServerSpec{srv("a", backup)}, `no servers in upstream "backend"`},
		{"backup with hash", Options{Method: Hash}, []ServerSpec{srv("a"), srv("b", backup)}, `balancing method does not support parameter "backup"`},
		{"backup with ip_hash", Options{Method: IPHash}, []ServerSpec{srv("a"), srv("b", backup)}, `balancing method does not support parameter "backup"`},
		{"backup with random", Options{Method: Random}, []ServerSpec{srv("a"), srv("b", backup)}, `balancing method does not support parameter "backup"`},
		{"negative weight", Options{}, []ServerSpec{srv("a", weight(-1))}, `invalid parameter "weight=-1"`},
		{"negative max_fails", Options{}, []ServerSpec{srv("a", maxFails(-1))}, `invalid parameter "max_fails=-1"`},
		{"negative max_conns", Options{}, []ServerSpec{srv("a", maxConns(-1))}, `invalid parameter "max_conns=-1"`},
		{"empty address", Options{}, []ServerSpec{{}}, "server address is empty"},
		{"bad method", Options{Method: Method(42)}, []ServerSpec{srv("a")}, "invalid balancing method 42"},
		{"backup with least_conn ok", Options{Method: LeastConn}, []ServerSpec{srv("a"), srv("b", backup)}, ""},
		{"round robin ok", Options{}, []ServerSpec{srv("a"), srv("b", backup)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Name = "backend"
			u, err := New(tt.opts, tt.specs)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if u.Name() != "backend" || u.Method() != tt.opts.Method {
					t.Fatalf("Name/Method = %q/%v", u.Name(), u.Method())
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestSpecNormalization(t *testing.T) {
	u := mustNew(t, Options{}, ServerSpec{Name: "localhost:8081", Addr: "127.0.0.1:8081"}, ServerSpec{Addr: "127.0.0.1:8082"})
	s := u.Snapshot()
	if got := s.Primary[0].Spec(); got.Weight != 1 || got.Name != "localhost:8081" || s.Primary[0].Addr() != "127.0.0.1:8081" {
		t.Fatalf("spec0 = %+v", got)
	}
	if got := s.Primary[1].Spec(); got.Name != "127.0.0.1:8082" {
		t.Fatalf("spec1 name = %q", got.Name)
	}
	if s.Version != 1 || s.Primary[1].ID() != 1 {
		t.Fatalf("version %d id %d", s.Version, s.Primary[1].ID())
	}
}

func TestWeightedRoundRobinSequences(t *testing.T) {
	tests := []struct {
		name  string
		specs []ServerSpec
		n     int
		want  string
	}{
		{"5,1,1", weighted(5, 1, 1), 14, "a a b a c a a a a b a c a a"},
		{"1,1 alternates", weighted(1, 1), 6, "a b a b a b"},
		{"1,1,1", weighted(1, 1, 1), 6, "a b c a b c"},
		{"2,1", weighted(2, 1), 6, "a b a a b a"},
		{"1,1,1 with b down", []ServerSpec{srv("a"), srv("b", down), srv("c")}, 4, "a c a c"},
		{"5,1,1 with a down", []ServerSpec{srv("a", weight(5), down), srv("b"), srv("c")}, 4, "b c b c"},
		{"single", weighted(3), 3, "a a a"},
		{"backup unused while primary up", []ServerSpec{srv("a"), srv("b"), srv("z", backup)}, 4, "a b a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := mustNew(t, Options{}, tt.specs...)
			if got := seq(t, u, tt.n); got != tt.want {
				t.Fatalf("sequence = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTriedSetAcrossRetries(t *testing.T) {
	u := mustNew(t, Options{}, srv("a", maxFails(0)), srv("b", maxFails(0)), srv("c", maxFails(0)))
	a := u.Begin(Request{})
	if a.Tries() != 3 {
		t.Fatalf("Tries = %d", a.Tries())
	}
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		p, err := a.Next()
		if err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		if seen[p.Name()] {
			t.Fatalf("peer %s tried twice", p.Name())
		}
		seen[p.Name()] = true
		a.Finish(p, true)
	}
	if _, err := a.Next(); !errors.Is(err, ErrNoLiveUpstreams) || err.Error() != "no live upstreams" {
		t.Fatalf("4th Next err = %v", err)
	}
	// a new request starts with an empty tried set
	if got := pickOK(t, u, Request{}); got == "" {
		t.Fatal("no peer")
	}
}

func TestTries(t *testing.T) {
	tests := []struct {
		name  string
		specs []ServerSpec
		want  int
	}{
		{"primary only", weighted(1, 1, 1), 3},
		{"down not counted", []ServerSpec{srv("a"), srv("b", down), srv("c"), srv("z", backup)}, 3},
		{"backup counted", []ServerSpec{srv("a"), srv("y", backup), srv("z", backup)}, 3},
		{"all down is 1", []ServerSpec{srv("a", down), srv("b", down)}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := mustNew(t, Options{}, tt.specs...)
			if got := u.Begin(Request{}).Tries(); got != tt.want {
				t.Fatalf("Tries = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestNoLiveUpstreams(t *testing.T) {
	for _, m := range []Method{RoundRobin, LeastConn, IPHash, Hash, Random} {
		t.Run(m.String(), func(t *testing.T) {
			u := mustNew(t, Options{Method: m}, srv("a", down), srv("b", down))
			_, err := u.Begin(Request{HashKey: "k"}).Next()
			if !errors.Is(err, ErrNoLiveUpstreams) {
				t.Fatalf("err = %v", err)
			}
			single := mustNew(t, Options{Method: m}, srv("a", down))
			if _, err := single.Begin(Request{HashKey: "k"}).Next(); !errors.Is(err, ErrNoLiveUpstreams) {
				t.Fatalf("single: err = %v", err)
			}
		})
	}
}

// failPeer runs requests until name is picked and fails it; other peers
// picked on the way succeed.
func failPeer(t *testing.T, u *Upstream, name string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		a := u.Begin(Request{})
		p, err := a.Next()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		a.Finish(p, p.Name() == name)
		if p.Name() == name {
			return
		}
	}
	t.Fatalf("peer %s never picked", name)
}

func count(names string) map[string]int {
	m := map[string]int{}
	for _, n := range strings.Fields(names) {
		m[n]++
	}
	return m
}

func TestMaxFailsFailTimeout(t *testing.T) {
	clk := newClock()
	log := &testLog{}
	u := mustNew(t, Options{Now: clk.Now, Log: log.Log},
		srv("a", maxFails(2), failTimeout(10*time.Second)),
		srv("b", maxFails(2), failTimeout(10*time.Second)))
	pa := peerByName(t, u, "a")

	failPeer(t, u, "a")
	if st := pa.State(); st.Fails != 1 || !st.Accessed.Equal(clk.Now()) || !st.Checked.Equal(clk.Now()) {
		t.Fatalf("after 1 failure: %+v", st)
	}
	// fails < max_fails: still in rotation; a success within fail_timeout
	// does not reset fails (accessed == checked).
	if c := count(seq(t, u, 4)); c["a"] != 2 {
		t.Fatalf("a should still be used: %v", c)
	}
	if st := pa.State(); st.Fails != 1 {
		t.Fatalf("success within fail_timeout reset fails: %+v", st)
	}
	if log.String() != "" {
		t.Fatalf("unexpected log %q", log)
	}

	failPeer(t, u, "a") // fails == max_fails
	if st := pa.State(); st.Fails != 2 {
		t.Fatalf("fails = %d", st.Fails)
	}
	if got := log.String(); got != "warn: upstream server temporarily disabled" {
		t.Fatalf("log = %q", got)
	}
	if c := count(seq(t, u, 6)); c["a"] != 0 {
		t.Fatalf("a used while disabled: %v", c)
	}
	clk.Advance(10 * time.Second) // now - checked == fail_timeout: still disabled
	if c := count(seq(t, u, 6)); c["a"] != 0 {
		t.Fatalf("a used at exactly fail_timeout: %v", c)
	}

	clk.Advance(1 * time.Second) // fail_timeout elapsed: exactly one probe
	var probe *Attempt
	var probePeer *Peer
	for i := 0; i < 8; i++ {
		a := u.Begin(Request{})
		p, err := a.Next()
		if err != nil {
			t.Fatal(err)
		}
		if p.Name() == "a" {
			if probe != nil {
				t.Fatalf("second probe to a at pick %d", i)
			}
			probe, probePeer = a, p
			continue // keep the probe in flight
		}
		a.Finish(p, false)
	}
	if probe == nil {
		t.Fatal("no probe after fail_timeout")
	}
	if st := pa.State(); !st.Checked.Equal(clk.Now()) || st.Fails != 2 {
		t.Fatalf("probe state %+v", st)
	}
	probe.Finish(probePeer, false) // probe succeeds: fails reset
	if st := pa.State(); st.Fails != 0 || st.Conns != 0 {
		t.Fatalf("after successful probe: %+v", st)
	}
	if c := count(seq(t, u, 4)); c["a"] != 2 {
		t.Fatalf("a not back in rotation: %v", c)
	}
}

func TestFailedProbeDisablesAgain(t *testing.T) {
	clk := newClock()
	u := mustNew(t, Options{Now: clk.Now},
		srv("a", failTimeout(10*time.Second)), srv("b", failTimeout(10*time.Second)))
	failPeer(t, u, "a")
	if c := count(seq(t, u, 4)); c["a"] != 0 {
		t.Fatalf("a used while disabled: %v", c)
	}
	clk.Advance(11 * time.Second)
	failPeer(t, u, "a") // the probe fails
	if st := peerByName(t, u, "a").State(); st.Fails != 2 {
		t.Fatalf("fails = %d", st.Fails)
	}
	clk.Advance(10 * time.Second)
	if c := count(seq(t, u, 6)); c["a"] != 0 {
		t.Fatalf("a used within fail_timeout of failed probe: %v", c)
	}
	clk.Advance(1 * time.Second)
	if c := count(seq(t, u, 6)); c["a"] == 0 {
		t.Fatalf("a not probed again: %v", c)
	}
}

func TestMaxFailsZeroNeverDisables(t *testing.T) {
	log := &testLog{}
	u := mustNew(t, Options{Now: newClock().Now, Log: log.Log}, srv("a", maxFails(0)), srv("b", maxFails(0)))
	for i := 0; i < 20; i++ {
		failPeer(t, u, "a")
	}
	if st := peerByName(t, u, "a").State(); st.Fails != 20 || st.EffectiveWeight != 1 {
		t.Fatalf("state %+v", st)
	}
	if c := count(seq(t, u, 4)); c["a"] != 2 {
		t.Fatalf("a disabled with max_fails=0: %v", c)
	}
	if log.String() != "" {
		t.Fatalf("log = %q", log)
	}
}

func TestEffectiveWeightAfterFailure(t *testing.T) {
	clk := newClock()
	u := mustNew(t, Options{Now: clk.Now}, srv("a", weight(10), maxFails(2)), srv("b", weight(10), maxFails(2)))
	failPeer(t, u, "a")
	pa := peerByName(t, u, "a")
	if st := pa.State(); st.EffectiveWeight != 5 {
		t.Fatalf("effective weight = %d, want 10 - 10/2", st.EffectiveWeight)
	}
	// every pick that considers a raises its effective weight by one
	seq(t, u, 3)
	if st := pa.State(); st.EffectiveWeight != 8 {
		t.Fatalf("effective weight after 3 picks = %d", st.EffectiveWeight)
	}
	seq(t, u, 10)
	if st := pa.State(); st.EffectiveWeight != 10 {
		t.Fatalf("effective weight not restored: %d", st.EffectiveWeight)
	}
}

func TestSinglePeerNeverDisabled(t *testing.T) {
	log := &testLog{}
	u := mustNew(t, Options{Now: newClock().Now, Log: log.Log}, srv("a"))
	for i := 0; i < 5; i++ {
		a := u.Begin(Request{})
		p, err := a.Next()
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		a.Finish(p, true)
	}
	// a second Next in the same request finds nothing new
	a := u.Begin(Request{})
	p, _ := a.Next()
	if _, err := a.Next(); !errors.Is(err, ErrNoLiveUpstreams) {
		t.Fatalf("second Next on single peer: %v", err)
	}
	a.Finish(p, false)
	if st := peerByName(t, u, "a").State(); st.Fails != 0 || st.Conns != 0 || st.Requests != 6 {
		t.Fatalf("single peer state %+v", st)
	}
	if log.String() != "" {
		t.Fatalf("log = %q", log)
	}
}

func TestBackupTakeoverAndReturn(t *testing.T) {
	clk := newClock()
	u := mustNew(t, Options{Now: clk.Now}, srv("a"), srv("b"), srv("c", backup), srv("d", backup))

	if got := seq(t, u, 4); got != "a b a b" {
		t.Fatalf("primary sequence %q", got)
	}

	// both primaries fail inside one request: the retries go to the backups
	a := u.Begin(Request{})
	if a.Tries() != 4 {
		t.Fatalf("Tries = %d", a.Tries())
	}
	var got []string
	for {
		p, err := a.Next()
		if err != nil {
			if !errors.Is(err, ErrNoLiveUpstreams) {
				t.Fatal(err)
			}
			break
		}
		got = append(got, p.Name())
		a.Finish(p, true)
	}
	if strings.Join(got, " ") != "a b c d" {
		t.Fatalf("retry order %v", got)
	}

	// all four are disabled now: a new request gets "no live upstreams"
	if _, err := u.Begin(Request{}).Next(); !errors.Is(err, ErrNoLiveUpstreams) {
		t.Fatalf("all disabled: %v", err)
	}
	// after fail_timeout the primaries are probed again, backups unused
	clk.Advance(11 * time.Second)
	if c := count(seq(t, u, 4)); c["a"] == 0 || c["b"] == 0 || c["c"]+c["d"] != 0 {
		t.Fatalf("primaries not back: %v", c)
	}

	// down primaries: backups take over, and the primaries come back
	if err := u.SetDown(false, 0, true); err != nil {
		t.Fatal(err)
	}
	if err := u.SetDown(false, 1, true); err != nil {
		t.Fatal(err)
	}
	// (c and d failed earlier, so their effective weights are still
	// recovering and the exact order is not a plain alternation)
	if c := count(seq(t, u, 6)); c["c"] == 0 || c["d"] == 0 || c["c"]+c["d"] != 6 {
		t.Fatalf("backup picks %v", c)
	}
	if err := u.SetDown(false, 1, false); err != nil {
		t.Fatal(err)
	}
	if got := seq(t, u, 3); got != "b b b" {
		t.Fatalf("after b up: %q", got)
	}
}

func TestBackupStickyWithinAttempt(t *testing.T) {
	// nginx: once a request fell back to the backup set, its retries stay
	// there even if a primary became usable meanwhile.
	u := mustNew(t, Options{}, srv("a", down), srv("c", backup, maxFails(0)), srv("d", backup, maxFails(0)))
	a := u.Begin(Request{})
	p, err := a.Next()
	if err != nil || p.Name() != "c" {
		t.Fatalf("first = %v %v", p, err)
	}
	a.Finish(p, true)
	if err := u.SetDown(false, 0, false); err != nil {
		t.Fatal(err)
	}
	p, err = a.Next()
	if err != nil || p.Name() != "d" {
		t.Fatalf("retry = %v %v", p, err)
	}
	a.Finish(p, true)
	if _, err := a.Next(); !errors.Is(err, ErrNoLiveUpstreams) {
		t.Fatalf("err = %v", err)
	}
	if got := pickOK(t, u, Request{}); got != "a" {
		t.Fatalf("new request got %s", got)
	}
}

func TestMaxConns(t *testing.T) {
	u := mustNew(t, Options{}, srv("a", maxConns(1)), srv("b", maxConns(2)))
	var held []*Attempt
	var peers []*Peer
	var names []string
	for i := 0; i < 3; i++ {
		a := u.Begin(Request{})
		p, err := a.Next()
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		held, peers, names = append(held, a), append(peers, p), append(names, p.Name())
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "a b b" {
		t.Fatalf("names %v", names)
	}
	if _, err := u.Begin(Request{}).Next(); !errors.Is(err, ErrNoLiveUpstreams) {
		t.Fatalf("over max_conns: %v", err)
	}
	if st := peerByName(t, u, "b").State(); st.Conns != 2 {
		t.Fatalf("b conns %d", st.Conns)
	}
	for i, a := range held {
		if peers[i].Name() == "a" {
			a.Finish(peers[i], false)
		}
	}
	if got := pickOK(t, u, Request{}); got != "a" {
		t.Fatalf("after release got %s", got)
	}

	single := mustNew(t, Options{}, srv("s", maxConns(1)))
	a1 := single.Begin(Request{})
	p1, err := a1.Next()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := single.Begin(Request{}).Next(); !errors.Is(err, ErrNoLiveUpstreams) {
		t.Fatalf("single over max_conns: %v", err)
	}
	a1.Finish(p1, false)
	if got := pickOK(t, single, Request{}); got != "s" {
		t.Fatal(got)
	}
}

func TestFinishIsIdempotentPerPick(t *testing.T) {
	u := mustNew(t, Options{}, srv("a"), srv("b"))
	a := u.Begin(Request{})
	p, _ := a.Next()
	a.Finish(p, false)
	a.Finish(p, false) // double finish: ignored
	other := u.Begin(Request{})
	other.Finish(p, true) // not picked by this attempt: ignored
	a.Finish(nil, true)
	if st := p.State(); st.Conns != 0 || st.Fails != 0 || st.Requests != 1 {
		t.Fatalf("state %+v", st)
	}
}

func TestAttemptLogOverride(t *testing.T) {
	global, local := &testLog{}, &testLog{}
	u := mustNew(t, Options{Log: global.Log, Now: newClock().Now}, srv("a"), srv("b"))
	a := u.Begin(Request{})
	a.SetLog(func(level, msg string) { local.Log(level, msg+" while connecting to upstream") })
	p, _ := a.Next()
	a.Finish(p, true)
	if global.String() != "" || local.String() != "warn: upstream server temporarily disabled while connecting to upstream" {
		t.Fatalf("global %q local %q", global, local)
	}
}

func TestPeerStateTimes(t *testing.T) {
	clk := newClock()
	clk.Advance(1500 * time.Millisecond)
	u := mustNew(t, Options{Now: clk.Now}, srv("a"), srv("b"))
	pa := peerByName(t, u, "a")
	if st := pa.State(); !st.Accessed.IsZero() || !st.Checked.IsZero() || st.EffectiveWeight != 1 {
		t.Fatalf("initial %+v", st)
	}
	failPeer(t, u, "a")
	want := time.Unix(clk.Now().Unix(), 0) // whole seconds, like ngx_time()
	if st := pa.State(); !st.Accessed.Equal(want) || !st.Checked.Equal(want) || st.Requests != 1 {
		t.Fatalf("after failure %+v", st)
	}
}

package upstream

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func uids(ps []*Peer) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.UID()
	}
	return out
}

func TestUIDStable(t *testing.T) {
	// config order across both lists: a=0, z(backup)=1, b=2, y(backup)=3
	u := mustNew(t, Options{}, srv("a"), srv("z", backup), srv("b"), srv("y", backup))
	s := u.Snapshot()
	if got := uids(s.Primary); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("primary uids %v", got)
	}
	if got := uids(s.Backup); !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("backup uids %v", got)
	}
	// per-list ids are unchanged by the uid (Lua compatibility)
	if s.Backup[1].ID() != 1 || s.Primary[1].ID() != 1 {
		t.Fatal("per-list ids changed")
	}
	c, err := u.AddPeer(srv("c"))
	if err != nil || c.UID() != 4 || c.ID() != 2 {
		t.Fatalf("added uid %d id %d %v", c.UID(), c.ID(), err)
	}
	if err := u.RemoveUID(2); err != nil { // b
		t.Fatal(err)
	}
	x, _ := u.AddPeer(srv("x", backup))
	if x.UID() != 5 || x.ID() != 2 {
		t.Fatalf("uid after removal %d (id %d)", x.UID(), x.ID())
	}
	// every operation keeps uids; lookups find both lists
	if err := u.SetWeight(false, 0, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Update(1, func(s *ServerSpec) { s.Down = true }); err != nil {
		t.Fatal(err)
	}
	s = u.Snapshot()
	for _, tt := range []struct {
		uid  int
		name string
	}{{0, "a"}, {1, "z"}, {3, "y"}, {4, "c"}, {5, "x"}} {
		p, err := s.FindUID(tt.uid)
		if err != nil || p.Name() != tt.name {
			t.Errorf("FindUID(%d) = %v, %v; want %s", tt.uid, p, err, tt.name)
		}
	}
	for _, uid := range []int{-1, 2, 6} {
		if _, err := s.FindUID(uid); !errors.Is(err, ErrBadPeerID) {
			t.Errorf("FindUID(%d): %v", uid, err)
		}
	}
	if err := u.RemoveUID(2); !errors.Is(err, ErrBadPeerID) {
		t.Fatalf("second RemoveUID: %v", err)
	}
	if got := uids(s.All()); !slices.Equal(got, []int{0, 4, 1, 3, 5}) {
		t.Fatalf("All() uids %v", got)
	}
}

func TestUpdateAtomic(t *testing.T) {
	hash := mustNew(t, Options{Method: Hash, HashConsistent: true}, srv("a"), srv("b"))
	tests := []struct {
		name   string
		u      *Upstream
		change func(*ServerSpec)
		want   error
		msg    string
	}{
		{"bad weight after good fields", nil, func(s *ServerSpec) { s.Down, s.MaxFails, s.Weight = true, 5, -2 }, nil, `invalid parameter "weight=-2"`},
		{"zero weight", nil, func(s *ServerSpec) { s.Down, s.Weight = true, 0 }, nil, `invalid parameter "weight=0"`},
		{"negative max_conns", nil, func(s *ServerSpec) { s.MaxConns = -1 }, nil, `invalid parameter "max_conns=-1"`},
		{"negative slow_start", nil, func(s *ServerSpec) { s.SlowStart = -time.Second }, nil, `invalid parameter "slow_start=-1s"`},
		{"address", nil, func(s *ServerSpec) { s.Addr, s.Down = "c", true }, ErrImmutable, ""},
		{"name", nil, func(s *ServerSpec) { s.Name = "c" }, ErrImmutable, ""},
		{"backup", nil, func(s *ServerSpec) { s.Backup = true }, ErrImmutable, ""},
		{"slow_start with hash", hash, func(s *ServerSpec) { s.SlowStart = time.Second }, nil, `balancing method does not support parameter "slow_start"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.u
			if u == nil {
				u = mustNew(t, Options{}, srv("a"), srv("b"))
			}
			before := u.Snapshot()
			_, err := u.Update(0, tt.change)
			if tt.want != nil && !errors.Is(err, tt.want) || tt.msg != "" && (err == nil || err.Error() != tt.msg) {
				t.Fatalf("err = %v", err)
			}
			if u.Snapshot() != before {
				t.Fatal("a failed Update published a snapshot")
			}
		})
	}
	u := mustNew(t, Options{}, srv("a", weight(2)), srv("b"))
	p, err := u.Update(1, func(s *ServerSpec) {
		s.Weight, s.MaxConns, s.MaxFails, s.FailTimeout, s.SlowStart, s.Drain, s.Route = 4, 7, 3, 30*time.Second, time.Minute, true, "r"
	})
	if err != nil {
		t.Fatal(err)
	}
	want := ServerSpec{Name: "b", Addr: "b", Weight: 4, MaxConns: 7, MaxFails: 3, FailTimeout: 30 * time.Second, SlowStart: time.Minute, Drain: true, Route: "r"}
	if p.Spec() != want || p != u.Snapshot().Primary[1] || p.State().EffectiveWeight != 4 {
		t.Fatalf("updated %+v (effective %d)", p.Spec(), p.State().EffectiveWeight)
	}
	if _, err := u.Update(9, func(*ServerSpec) {}); !errors.Is(err, ErrBadPeerID) {
		t.Fatalf("missing uid: %v", err)
	}
}

func TestUpdateUpClearsFails(t *testing.T) {
	u := mustNew(t, Options{Now: newClock().Now}, srv("a"), srv("b", down))
	p, _ := u.Snapshot().FindUID(1)
	u.mu.Lock()
	p.st.fails = 1
	u.mu.Unlock()
	if _, err := u.Update(1, func(s *ServerSpec) { s.Down = false }); err != nil {
		t.Fatal(err)
	}
	if st := p.State(); st.Fails != 0 {
		t.Fatalf("fails %d", st.Fails)
	}
}

func TestAddUniquePeer(t *testing.T) {
	u := mustNew(t, Options{}, ServerSpec{Name: "localhost:80", Addr: "127.0.0.1:80"}, srv("b:80", backup))
	for _, tt := range []struct {
		spec ServerSpec
		ok   bool
	}{
		{ServerSpec{Name: "127.0.0.1:80"}, false},                 // a configured address
		{ServerSpec{Name: "localhost:80", Addr: "::1:80"}, false}, // a configured name
		{ServerSpec{Name: "b:80"}, false},                         // in the backup list
		{ServerSpec{Name: "c:80"}, true},
		{ServerSpec{Name: "c:80"}, false}, // just added
	} {
		v := u.Snapshot().Version
		p, err := u.AddUniquePeer(tt.spec)
		if tt.ok != (err == nil) || !tt.ok && (!errors.Is(err, ErrServerExists) || u.Snapshot().Version != v) {
			t.Fatalf("AddUniquePeer(%+v) = %v, %v", tt.spec, p, err)
		}
	}
	// Add keeps allowing duplicates, as nginx does in a config
	if _, err := u.Add(ServerSpec{Name: "c:80"}); err != nil {
		t.Fatal(err)
	}
}

// TestSlowStart checks the ramp w(t) = 1 + (weight-1)*t/slow_start after a
// peer comes back up, with the injected clock.
func TestSlowStart(t *testing.T) {
	clock := newClock()
	u := mustNew(t, Options{Now: clock.Now}, srv("a", weight(10), func(s *ServerSpec) { s.SlowStart = 30 * time.Second }, down), srv("b", weight(10)))
	a := u.Snapshot().Primary[0]
	if w := a.State().Weight; w != 10 {
		t.Fatalf("weight before any recovery %d", w)
	}
	if err := u.SetDown(false, 0, false); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at   time.Duration
		want int
	}{{0, 1}, {9 * time.Second, 3}, {10 * time.Second, 4}, {20 * time.Second, 7}, {29 * time.Second, 9}, {30 * time.Second, 10}, {time.Hour, 10}} {
		clock.t = time.Unix(1_700_000_000, 0).Add(tt.at)
		if w := a.State().Weight; w != tt.want {
			t.Errorf("at %v: weight %d, want %d", tt.at, w, tt.want)
		}
	}
	// the balancer follows the ramp: at t=0, a gets 1 pick in 11
	clock.t = time.Unix(1_700_000_000, 0)
	u.SetDown(false, 0, true)
	u.SetDown(false, 0, false)
	if c := count(seq(t, u, 110)); c["a"] != 10 || c["b"] != 100 {
		t.Fatalf("at the start of the ramp: %v", c)
	}
	clock.Advance(30 * time.Second)
	if c := count(seq(t, u, 200)); c["a"] < 95 || c["b"] > 105 {
		t.Fatalf("after the ramp: %v", c)
	}
	// turning up a peer that was not down does not restart the ramp
	u.SetDown(false, 0, false)
	if w := u.Snapshot().Primary[0].State().Weight; w != 10 {
		t.Fatalf("ramp restarted: %d", w)
	}
}

func TestSlowStartAfterUnavailable(t *testing.T) {
	clock := newClock()
	u := mustNew(t, Options{Now: clock.Now}, srv("a", weight(5), func(s *ServerSpec) { s.SlowStart = 10 * time.Second }), srv("b"))
	a := u.Snapshot().Primary[0]
	att := u.Begin(Request{})
	p, _ := att.Next()
	if p != a {
		t.Fatalf("first pick %s", p.Name())
	}
	att.Finish(p, true)
	if st := a.State(); !st.Unavailable || st.UnavailCount != 1 || st.FailsTotal != 1 || a.Status() != "unavail" {
		t.Fatalf("after max_fails: %+v %s", st, a.Status())
	}
	clock.Advance(11 * time.Second) // fail_timeout passed: a is tried again and succeeds
	for i := 0; i < 3; i++ {
		if name := pickOK(t, u, Request{}); name == "a" {
			break
		}
	}
	if st := a.State(); st.Unavailable || st.Fails != 0 || st.Weight != 1 {
		t.Fatalf("after recovery: %+v", st)
	}
	clock.Advance(5 * time.Second)
	if w := a.State().Weight; w != 3 { // 1 + 4*5/10
		t.Fatalf("half way: %d", w)
	}
}

func TestStatusAndCounters(t *testing.T) {
	clock := newClock()
	u := mustNew(t, Options{Now: clock.Now}, srv("a", maxFails(2)), srv("b", down), srv("c"))
	if err := u.SetDrain(false, 2, true); err != nil {
		t.Fatal(err)
	}
	s := u.Snapshot()
	if got := []string{s.Primary[0].Status(), s.Primary[1].Status(), s.Primary[2].Status()}; strings.Join(got, " ") != "up down draining" {
		t.Fatalf("states %v", got)
	}
	a := s.Primary[0]
	for i := 0; i < 2; i++ {
		att := u.Begin(Request{})
		p, err := att.Next()
		if err != nil {
			t.Fatal(err)
		}
		att.Finish(p, true)
	}
	if _, err := u.Begin(Request{}).Next(); !errors.Is(err, ErrNoLiveUpstreams) {
		t.Fatalf("unavailable peer picked: %v", err)
	}
	st := a.State()
	// a is the only usable peer but not a single-server upstream (nginx
	// peers->single), so its failures count
	if st.FailsTotal != 2 || st.UnavailCount != 1 || !st.Unavailable || st.Selected != clock.Now() {
		t.Fatalf("counters %+v", st)
	}
	a.RecordResponse(404, 10, 20, time.Millisecond, 3*time.Millisecond)
	a.RecordResponse(204, 0, 0, 3*time.Millisecond, 5*time.Millisecond)
	a.RecordResponse(0, -5, 0, -time.Second, 0) // no status: only the total
	ps := a.Stats()
	if ps.Responses != [5]uint64{0, 1, 0, 1, 0} || ps.Total != 3 || ps.Sent != 10 || ps.Received != 20 ||
		len(ps.Codes) != 2 || ps.Codes[404] != 1 || ps.HeaderTime != 4*time.Millisecond/3 || ps.ResponseTime != 8*time.Millisecond/3 {
		t.Fatalf("stats %+v", ps)
	}
	u.ResetStats()
	if ps := a.Stats(); ps.Total != 0 || len(ps.Codes) != 0 || a.Requests() != 0 || a.State().FailsTotal != 0 {
		t.Fatalf("after reset %+v", ps)
	}
	if !a.State().Unavailable {
		t.Fatal("ResetStats touched the balancing state")
	}
}

func TestZombies(t *testing.T) {
	u := mustNew(t, Options{}, srv("a"), srv("b"))
	att := u.Begin(Request{})
	p, _ := att.Next()
	if err := u.RemoveUID(p.UID()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.RemoveAddr("b"); err == nil && u.Zombies() != 1 {
		t.Fatalf("zombies %d", u.Zombies())
	}
	att.Finish(p, false)
	if n := u.Zombies(); n != 0 {
		t.Fatalf("zombies after finish %d", n)
	}
}

func TestParseServerAddr(t *testing.T) {
	tests := []struct {
		in, name, addr, err string
	}{
		{"127.0.0.1:8080", "127.0.0.1:8080", "127.0.0.1:8080", ""},
		{"127.0.0.1", "127.0.0.1", "127.0.0.1:80", ""},
		{"example.com:81", "example.com:81", "example.com:81", ""},
		{"example.com", "example.com", "example.com:80", ""},
		{"[::1]:8080", "[::1]:8080", "[::1]:8080", ""},
		{"[::1]", "[::1]", "[::1]:80", ""},
		{"[0:0::1]:1", "[0:0::1]:1", "[::1]:1", ""},
		{"unix:/tmp/s.sock", "unix:/tmp/s.sock", "unix:/tmp/s.sock", ""},
		{"", "", "", "empty address"},
		{"unix:", "", "", "no path in unix address"},
		{"::1", "", "", "invalid address, host:port expected"},
		{"host:", "", "", "invalid port"},
		{"host:0", "", "", "invalid port"},
		{"host:65536", "", "", "invalid port"},
		{"host:+80", "", "", "invalid port"},
		{"a b:80", "", "", "invalid host"},
		{":80", "", "", "invalid host"},
		{"[zz::1]:80", "", "", "invalid IPv6 address"},
	}
	for _, tt := range tests {
		name, addr, err := ParseServerAddr(tt.in)
		if name != tt.name || addr != tt.addr || (err == nil) != (tt.err == "") || err != nil && err.Error() != tt.err {
			t.Errorf("ParseServerAddr(%q) = %q, %q, %v", tt.in, name, addr, err)
		}
	}
}

package upstream

import (
	"errors"
	"net"
	"strconv"
	"testing"
)

// picked returns the addresses fresh attempts get (first pick of each).
func picked(t *testing.T, u *Upstream) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	// Varying keys and client addresses, so the hash methods spread too.
	for i := range 40 {
		a := u.Begin(Request{HashKey: "k" + strconv.Itoa(i), ClientIP: net.IPv4(10, byte(i), 0, 1)})
		p, err := a.Next()
		if errors.Is(err, ErrNoLiveUpstreams) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[p.Addr()] = true
		a.Finish(p, false)
	}
	return out
}

func TestHealthVerdictsAndPicks(t *testing.T) {
	for _, m := range []Method{RoundRobin, LeastConn, IPHash, Hash, Random} {
		t.Run(m.String(), func(t *testing.T) {
			u, err := New(Options{Name: "b", Method: m}, []ServerSpec{srv("a:1"), srv("b:1")})
			if err != nil {
				t.Fatal(err)
			}
			if h := u.Snapshot().Primary[0].Health(); h.State != HealthNone {
				t.Fatalf("no checks declared: state %v", h.State)
			}
			if err := u.SetHealthChecks(2, 0); err != nil {
				t.Fatal(err)
			}
			a := u.Snapshot().Primary[0]
			if got := picked(t, u); !got["a:1"] || !got["b:1"] {
				t.Fatalf("healthy by default: picked %v", got)
			}
			// Check 1 fails a: no traffic, even though check 0 passes it.
			a.SetCheckVerdict(0, true)
			if before, after := a.SetCheckVerdict(1, false); before != HealthHealthy || after != HealthUnhealthy {
				t.Fatalf("transition %v -> %v", before, after)
			}
			if got := picked(t, u); got["a:1"] || !got["b:1"] {
				t.Fatalf("a unhealthy: picked %v", got)
			}
			if a.Status() != "unhealthy" {
				t.Fatalf("status %q", a.Status())
			}
			// Only check 1's own pass brings it back.
			a.SetCheckVerdict(0, true)
			if got := picked(t, u); got["a:1"] {
				t.Fatalf("check 0 passing must not override check 1: %v", got)
			}
			if _, after := a.SetCheckVerdict(1, true); after != HealthHealthy {
				t.Fatalf("after pass: %v", after)
			}
			if got := picked(t, u); !got["a:1"] {
				t.Fatalf("a healthy again: picked %v", got)
			}
			if h := a.Health(); h.Unhealthy != 1 || h.State != HealthHealthy {
				t.Fatalf("health %+v", h)
			}
		})
	}
}

// Both unhealthy: the only peer of the single-peer fast path too.
func TestHealthSinglePeer(t *testing.T) {
	u, _ := New(Options{Name: "b"}, []ServerSpec{srv("a:1")})
	_ = u.SetHealthChecks(1, 0)
	u.Snapshot().Primary[0].SetCheckVerdict(0, false)
	if _, err := u.Begin(Request{}).Next(); !errors.Is(err, ErrNoLiveUpstreams) {
		t.Fatalf("unhealthy single peer picked: %v", err)
	}
}

// Unhealthy primaries fall back to the backup set, as down ones do.
func TestHealthBackupFallback(t *testing.T) {
	u, _ := New(Options{Name: "b"}, []ServerSpec{srv("a:1"), srv("b:1"), srv("c:1", backup)})
	_ = u.SetHealthChecks(1, 0)
	for _, p := range u.Snapshot().Primary {
		p.SetCheckVerdict(0, false)
	}
	if got := picked(t, u); len(got) != 1 || !got["c:1"] {
		t.Fatalf("picked %v, want the backup only", got)
	}
}

func TestHealthMandatoryChecking(t *testing.T) {
	u, _ := New(Options{Name: "b"}, []ServerSpec{srv("a:1"), srv("b:1")})
	_ = u.SetHealthChecks(2, 0b10) // check 1 mandatory
	s := u.Snapshot()
	for _, p := range s.Primary {
		if p.Status() != "checking" || !p.CheckPending(1) || p.CheckPending(0) {
			t.Fatalf("%s: status %q pending0=%v pending1=%v", p.Addr(), p.Status(), p.CheckPending(0), p.CheckPending(1))
		}
	}
	if got := picked(t, u); len(got) != 0 {
		t.Fatalf("checking peers picked: %v", got)
	}
	// A peer added at run time starts checking too.
	added, err := u.AddPeer(srv("c:1"))
	if err != nil {
		t.Fatal(err)
	}
	if added.Status() != "checking" {
		t.Fatalf("added peer: %q", added.Status())
	}
	// The first result of the mandatory check decides.
	s.Primary[0].SetCheckVerdict(1, true)
	s.Primary[1].SetCheckVerdict(1, false)
	if got := picked(t, u); len(got) != 1 || !got["a:1"] {
		t.Fatalf("picked %v, want a:1 only", got)
	}
	if st := s.Primary[1].Status(); st != "unhealthy" {
		t.Fatalf("failed first check: %q", st)
	}
}

// Manual state wins over health in Status; a healthy verdict never lets a
// down or draining peer be picked.
func TestHealthManualStateWins(t *testing.T) {
	tests := []struct {
		name    string
		down    bool
		drain   bool
		healthy bool
		status  string
		picked  bool
	}{
		{"healthy", false, false, true, "up", true},
		{"unhealthy", false, false, false, "unhealthy", false},
		{"down healthy", true, false, true, "down", false},
		{"down unhealthy", true, false, false, "down", false},
		{"drain healthy", false, true, true, "draining", false},
		{"drain unhealthy", false, true, false, "draining", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := New(Options{Name: "b"}, []ServerSpec{srv("a:1"), srv("b:1")})
			_ = u.SetHealthChecks(1, 0)
			_ = u.SetDown(false, 0, tc.down)
			_ = u.SetDrain(false, 0, tc.drain)
			u.Snapshot().Primary[0].SetCheckVerdict(0, tc.healthy)
			p := u.Snapshot().Primary[0]
			if p.Status() != tc.status {
				t.Errorf("status %q, want %q", p.Status(), tc.status)
			}
			if got := picked(t, u)["a:1"]; got != tc.picked {
				t.Errorf("picked %v, want %v", got, tc.picked)
			}
		})
	}
}

func TestHealthCounters(t *testing.T) {
	u, _ := New(Options{Name: "b"}, []ServerSpec{srv("a:1")})
	_ = u.SetHealthChecks(1, 0)
	p := u.Snapshot().Primary[0]
	if h := p.Health(); h.Probed || h.Checks != 0 {
		t.Fatalf("fresh: %+v", h)
	}
	p.CountCheck(true)
	p.CountCheck(false)
	p.SetCheckVerdict(0, false)
	p.SetCheckVerdict(0, false)  // still unhealthy: not a new transition
	_ = u.SetWeight(false, 0, 3) // a new snapshot keeps the live state
	h := u.Snapshot().Primary[0].Health()
	want := PeerHealth{State: HealthUnhealthy, Checks: 2, Fails: 1, Unhealthy: 1, Probed: true}
	if h != want {
		t.Fatalf("health %+v, want %+v", h, want)
	}
	if st := u.Snapshot().Primary[0].State(); st.Health != want {
		t.Fatalf("State().Health %+v", st.Health)
	}
	if err := u.SetHealthChecks(MaxHealthChecks+1, 0); err == nil {
		t.Fatal("too many checks accepted")
	}
}

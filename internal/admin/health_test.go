package admin

import (
	"encoding/json"
	"testing"
)

// The peers' "state" and "health_checks" follow the live health-check
// state: unhealthy and checking, the counters, and last_passed once probed;
// an operator's down wins over any verdict.
func TestHealthChecksInPeers(t *testing.T) {
	f := newFixture(t, false)
	u := f.upstream("backend")
	if err := u.SetHealthChecks(2, 0b10); err != nil { // check 1 mandatory
		t.Fatal(err)
	}
	s := u.Snapshot()
	p0, p1 := s.Primary[0], s.Primary[1]
	p0.CountCheck(true)
	p0.CountCheck(false)
	p0.SetCheckVerdict(0, false) // unhealthy by check 0
	p1.CountCheck(true)          // down: stays "down"
	p1.SetCheckVerdict(1, true)
	// The backup has no result for the mandatory check 1 yet: checking.

	type peer struct {
		State        string
		HealthChecks map[string]any `json:"health_checks"`
	}
	code, body := f.do(t, "GET", "/api/9/http/upstreams/backend/", "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var got struct{ Peers []peer }
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		state string
		hc    map[string]any
	}{
		{"unhealthy", map[string]any{"checks": 2.0, "fails": 1.0, "unhealthy": 1.0, "last_passed": false}},
		{"down", map[string]any{"checks": 1.0, "fails": 0.0, "unhealthy": 0.0, "last_passed": true}},
		{"checking", map[string]any{"checks": 0.0, "fails": 0.0, "unhealthy": 0.0}},
	}
	if len(got.Peers) != len(want) {
		t.Fatalf("peers %s", body)
	}
	for i, w := range want {
		g := got.Peers[i]
		if g.State != w.state {
			t.Errorf("peer %d: state %q, want %q", i, g.State, w.state)
		}
		b1, _ := json.Marshal(g.HealthChecks)
		b2, _ := json.Marshal(w.hc)
		if string(b1) != string(b2) {
			t.Errorf("peer %d: health_checks %s, want %s", i, b1, b2)
		}
	}
}

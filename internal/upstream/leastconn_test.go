package upstream

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// holdSeq picks n times without finishing (connections stay open) and
// returns the names; the attempts are returned so the caller can release.
func holdSeq(t *testing.T, u *Upstream, n int) (string, []func()) {
	t.Helper()
	var names []string
	var release []func()
	for i := 0; i < n; i++ {
		a := u.Begin(Request{})
		p, err := a.Next()
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		names = append(names, p.Name())
		release = append(release, func() { a.Finish(p, false) })
	}
	return strings.Join(names, " "), release
}

func TestLeastConn(t *testing.T) {
	tests := []struct {
		name      string
		specs     []ServerSpec
		hold      bool // keep connections open
		n         int
		want      string
		wantConns map[string]int64
	}{
		// all ties -> smooth weighted round robin among them
		{"ties released", weighted(1, 1, 1), false, 6, "a b c a b c", nil},
		{"ties released weighted", weighted(5, 1, 1), false, 7, "a a b a c a a", nil},
		// open connections: fewest first, ties by round robin state
		// (nginx keeps current_weight of the tie-break between picks)
		{"held", weighted(1, 1, 1), true, 5, "a b c c b", map[string]int64{"a": 1, "b": 2, "c": 2}},
		// conns/weight: a (w=2) takes two connections per one of b
		{"held weighted", weighted(2, 1), true, 6, "a b a b a a", map[string]int64{"a": 4, "b": 2}},
		{"skips down", []ServerSpec{srv("a", down), srv("b"), srv("c")}, true, 4, "b c c b", map[string]int64{"b": 2, "c": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := mustNew(t, Options{Method: LeastConn}, tt.specs...)
			var got string
			if tt.hold {
				var rel []func()
				got, rel = holdSeq(t, u, tt.n)
				defer func() {
					for _, r := range rel {
						r()
					}
				}()
			} else {
				got = seq(t, u, tt.n)
			}
			if got != tt.want {
				t.Fatalf("sequence = %q, want %q", got, tt.want)
			}
			for name, c := range tt.wantConns {
				if st := peerByName(t, u, name).State(); st.Conns != c {
					t.Fatalf("%s conns = %d, want %d", name, st.Conns, c)
				}
			}
		})
	}
}

func TestLeastConnPrefersIdle(t *testing.T) {
	u := mustNew(t, Options{Method: LeastConn}, srv("a"), srv("b"), srv("c"))
	// three long requests on a, b, c; then b finishes: b must be next
	_, rel := holdSeq(t, u, 3)
	rel[1]()
	if got := pickOK(t, u, Request{}); got != "b" {
		t.Fatalf("got %s, want b (the only idle peer)", got)
	}
	rel[0]()
	rel[2]()
	for _, p := range u.Snapshot().Primary {
		if st := p.State(); st.Conns != 0 {
			t.Fatalf("%s conns %d", p.Name(), st.Conns)
		}
	}
}

func TestLeastConnFailuresAndBackup(t *testing.T) {
	clk := newClock()
	u := mustNew(t, Options{Method: LeastConn, Now: clk.Now}, srv("a"), srv("b"), srv("z", backup))
	a := u.Begin(Request{})
	var got []string
	for {
		p, err := a.Next()
		if errors.Is(err, ErrNoLiveUpstreams) {
			break
		}
		got = append(got, p.Name())
		a.Finish(p, true)
	}
	if strings.Join(got, " ") != "a b z" {
		t.Fatalf("retries %v", got)
	}
	if _, err := u.Begin(Request{}).Next(); !errors.Is(err, ErrNoLiveUpstreams) {
		t.Fatalf("all disabled: %v", err)
	}
	clk.Advance(11 * time.Second)
	if c := count(seq(t, u, 4)); c["z"] != 0 || c["a"] == 0 || c["b"] == 0 {
		t.Fatalf("after fail_timeout %v", c)
	}
}

func TestLeastConnSingleUsesRoundRobin(t *testing.T) {
	u := mustNew(t, Options{Method: LeastConn}, srv("a", maxFails(1)))
	a := u.Begin(Request{})
	p, err := a.Next()
	if err != nil {
		t.Fatal(err)
	}
	a.Finish(p, true)
	if st := p.State(); st.Fails != 0 {
		t.Fatalf("single peer accounted a failure: %+v", st)
	}
}

package upstream

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
)

func ids(list []*Peer) []int {
	out := make([]int, len(list))
	for i, p := range list {
		out[i] = p.ID()
	}
	return out
}

func names(list []*Peer) string {
	out := make([]string, len(list))
	for i, p := range list {
		out[i] = p.Name()
	}
	return strings.Join(out, " ")
}

func TestConfiguredIDsArePositions(t *testing.T) {
	// Without runtime changes ids are the original module's 0-based
	// positions, per list.
	u := mustNew(t, Options{}, srv("z0", backup), srv("a"), srv("b"), srv("z1", backup), srv("c"))
	s := u.Snapshot()
	if got := ids(s.Primary); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("primary ids %v", got)
	}
	if got := ids(s.Backup); !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("backup ids %v", got)
	}
	for _, backup := range []bool{false, true} {
		for i, p := range s.Peers(backup) {
			q, idx, err := s.Find(backup, p.ID())
			if err != nil || q != p || idx != i {
				t.Fatalf("Find(%v, %d) = %v %d %v", backup, p.ID(), q, idx, err)
			}
		}
	}
}

// A script that read an id before other peers were removed must still reach
// the same server (the original shifted positions: id 2 would have become
// c's neighbour or "bad peer id").
func TestIDsStableAcrossRemoveAndAdd(t *testing.T) {
	u := mustNew(t, Options{}, srv("a"), srv("b"), srv("c"), srv("d"))
	if err := u.Remove(false, 1); err != nil { // b
		t.Fatal(err)
	}
	if err := u.SetDown(false, 2, true); err != nil { // still c
		t.Fatal(err)
	}
	if p, _, _ := u.Snapshot().Find(false, 2); p.Name() != "c" || !p.Spec().Down {
		t.Fatalf("id 2 is %s down=%v", p.Name(), p.Spec().Down)
	}
	if err := u.SetDown(false, 1, true); !errors.Is(err, ErrBadPeerID) {
		t.Fatalf("removed id: %v", err)
	}
	if err := u.SetWeight(false, 3, 4); err != nil { // d
		t.Fatal(err)
	}
	if p, _, _ := u.Snapshot().Find(false, 3); p.Name() != "d" || p.Spec().Weight != 4 {
		t.Fatalf("id 3 is %s weight %d", p.Name(), p.Spec().Weight)
	}
	// the freed id 1 and the highest id 3 are never handed out again
	e, _ := u.Add(srv("e"))
	if err := u.Remove(false, e); err != nil {
		t.Fatal(err)
	}
	f, _ := u.Add(srv("f"))
	if e != 4 || f != 5 {
		t.Fatalf("added ids %d %d", e, f)
	}
	s := u.Snapshot()
	if got := ids(s.Primary); !slices.Equal(got, []int{0, 2, 3, 5}) || names(s.Primary) != "a c d f" {
		t.Fatalf("primary %v %s", got, names(s.Primary))
	}
	// ids are per list: the first backup is 0 even though primary ids are high
	if id, err := u.Add(srv("z", backup)); err != nil || id != 0 {
		t.Fatalf("backup id %d %v", id, err)
	}
	if err := u.Remove(true, 0); err != nil {
		t.Fatal(err)
	}
	if id, _ := u.Add(srv("y", backup)); id != 1 {
		t.Fatalf("backup id reused: %d", id)
	}
	// the balancer works on the list as it is now
	if c := count(seq(t, u, 6)); c["a"] != 1 || c["d"] != 4 || c["f"] != 1 || c["c"] != 0 {
		t.Fatalf("picks %v", c)
	}
}

func TestSetDrain(t *testing.T) {
	for _, m := range []Method{RoundRobin, LeastConn, IPHash, Hash, Random} {
		t.Run(m.String(), func(t *testing.T) {
			u := mustNew(t, Options{Method: m, Rand: seeded(3), HashConsistent: m == Hash}, srv("a:1", maxFails(0)), srv("b:1", maxFails(0)), srv("c:1", maxFails(0)))
			r := Request{ClientIP: net.ParseIP("10.0.0.1"), HashKey: "k"}
			// an in-flight request on the peer about to drain
			att := u.Begin(r)
			p, err := att.Next()
			if err != nil {
				t.Fatal(err)
			}
			tries := u.Snapshot().tries
			if err := u.SetDrain(false, p.ID(), true); err != nil {
				t.Fatal(err)
			}
			q, _, _ := u.Snapshot().Find(false, p.ID())
			if !q.Spec().Drain || q.Spec().Down || q.Conns() != 1 {
				t.Fatalf("drained peer state %+v conns %d", q.Spec(), q.Conns())
			}
			if got := u.Snapshot().tries; got != tries-1 {
				t.Fatalf("tries %d -> %d", tries, got)
			}
			for i := 0; i < 20; i++ {
				r.HashKey = fmt.Sprint("k", i)
				r.ClientIP = net.IPv4(10, 0, byte(i), 1)
				if got := pickOK(t, u, r); got == p.Name() {
					t.Fatalf("draining %s picked", got)
				}
			}
			// retries of the in-flight request skip it too
			att.Finish(p, true)
			for {
				n, err := att.Next()
				if err != nil {
					break
				}
				if n.Name() == p.Name() {
					t.Fatal("draining peer retried")
				}
				att.Finish(n, true)
			}
			if q.Conns() != 0 {
				t.Fatalf("conns %d after in-flight finished", q.Conns())
			}
			if err := u.SetDrain(false, p.ID(), false); err != nil {
				t.Fatal(err)
			}
			seen := false
			for i := 0; i < 40 && !seen; i++ {
				r.HashKey = fmt.Sprint("k", i)
				r.ClientIP = net.IPv4(10, 0, byte(i), 1)
				seen = pickOK(t, u, r) == p.Name()
			}
			if !seen {
				t.Fatalf("%s not picked after drain ended", p.Name())
			}
		})
	}
}

func TestDrainSinglePeer(t *testing.T) {
	u := mustNew(t, Options{}, srv("a"))
	if err := u.SetDrain(false, 0, true); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Begin(Request{}).Next(); !errors.Is(err, ErrNoLiveUpstreams) {
		t.Fatalf("drained single peer: %v", err)
	}
	if err := u.SetDrain(true, 0, true); !errors.Is(err, ErrNoBackupPeers) {
		t.Fatal(err)
	}
	if err := u.SetDrain(false, 7, true); !errors.Is(err, ErrBadPeerID) {
		t.Fatal(err)
	}
}

func TestRemoveAddr(t *testing.T) {
	multi := func(addr string) func(*ServerSpec) { return func(s *ServerSpec) { s.Name = "multi:80"; s.Addr = addr } }
	u := mustNew(t, Options{},
		srv("10.0.0.1:80"),
		srv("", multi("10.0.0.2:80")), srv("", multi("10.0.0.3:80")),
		srv("10.0.0.4:80"),
		srv("10.0.0.4:80"), // the same line twice: two entries
		srv("10.0.0.5:80"),
		srv("10.0.0.5:80", backup),
	)
	v := u.Snapshot().Version
	for _, tt := range []struct {
		addr string
		want error
	}{
		{"10.0.0.9:80", ErrServerNotFound},
		{"10.0.0.4:80", ErrAmbiguousServer},
		{"10.0.0.5:80", ErrAmbiguousServer},
	} {
		if _, _, err := u.RemoveAddr(tt.addr); !errors.Is(err, tt.want) {
			t.Fatalf("RemoveAddr(%s) = %v, want %v", tt.addr, err, tt.want)
		}
	}
	if u.Snapshot().Version != v {
		t.Fatal("failed RemoveAddr changed the upstream")
	}
	// one address of a multi-address server: only that peer
	if bk, got, err := u.RemoveAddr("10.0.0.3:80"); err != nil || bk || !slices.Equal(got, []int{2}) {
		t.Fatalf("by addr: %v %v %v", bk, got, err)
	}
	if _, err := u.Add(srv("", multi("10.0.0.6:80"))); err != nil { // a separate entry named multi:80
		t.Fatal(err)
	}
	if _, _, err := u.RemoveAddr("multi:80"); !errors.Is(err, ErrAmbiguousServer) {
		t.Fatalf("name of two entries: %v", err)
	}
	if _, _, err := u.RemoveAddr("10.0.0.6:80"); err != nil {
		t.Fatal(err)
	}
	// by name: the whole entry (what's left of it)
	if bk, got, err := u.RemoveAddr("multi:80"); err != nil || bk || !slices.Equal(got, []int{1}) {
		t.Fatalf("by name: %v %v %v", bk, got, err)
	}
	if err := u.Remove(false, 5); err != nil { // primary 10.0.0.5 by id
		t.Fatal(err)
	}
	if bk, got, err := u.RemoveAddr("10.0.0.5:80"); err != nil || !bk || !slices.Equal(got, []int{0}) {
		t.Fatalf("backup: %v %v %v", bk, got, err)
	}
	s := u.Snapshot()
	if names(s.Primary) != "10.0.0.1:80 10.0.0.4:80 10.0.0.4:80" || !slices.Equal(ids(s.Primary), []int{0, 3, 4}) || len(s.Backup) != 0 {
		t.Fatalf("left %s %v backup %d", names(s.Primary), ids(s.Primary), len(s.Backup))
	}
}

func TestRemoveAddrWholeMultiAddressServer(t *testing.T) {
	multi := func(addr string) ServerSpec { s := srv(addr); s.Name = "multi:80"; return s }
	u := mustNew(t, Options{Method: Hash, HashConsistent: true}, srv("a:80"), multi("10.0.0.2:80"), multi("10.0.0.3:80"), srv("b:80"))
	if _, got, err := u.RemoveAddr("multi:80"); err != nil || !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("%v %v", got, err)
	}
	s := u.Snapshot()
	if names(s.Primary) != "a:80 b:80" || len(s.ring.byName) != 2 {
		t.Fatalf("left %s, ring names %d", names(s.Primary), len(s.ring.byName))
	}
	for i := 0; i < 20; i++ {
		if got := pickOK(t, u, Request{HashKey: fmt.Sprint(i)}); got != "a:80" && got != "b:80" {
			t.Fatalf("picked %s", got)
		}
	}
}

// Groups: peers made from one spec run are one server entry; Add makes a
// new one each time.
func TestGroups(t *testing.T) {
	m := func(addr string) ServerSpec { s := srv(addr); s.Name = "m"; return s }
	u := mustNew(t, Options{}, m("1:1"), m("2:1"), srv("x"), m("3:1"), m("3:1"))
	s := u.Snapshot()
	var g []int
	for _, p := range s.Primary {
		g = append(g, p.Group())
	}
	if g[0] != g[1] || g[1] == g[2] || g[2] == g[3] || g[3] == g[4] {
		t.Fatalf("groups %v", g)
	}
	id1, _ := u.Add(srv("y"))
	id2, _ := u.Add(srv("y"))
	a, _, _ := u.Snapshot().Find(false, id1)
	b, _, _ := u.Snapshot().Find(false, id2)
	if a.Group() == b.Group() || a.Group() <= g[4] {
		t.Fatalf("added groups %d %d", a.Group(), b.Group())
	}
}

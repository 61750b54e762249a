package upstream

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRuntimeOpErrors(t *testing.T) {
	u := mustNew(t, Options{}, srv("a"), srv("b"))
	withBackup := mustNew(t, Options{}, srv("a"), srv("z", backup))
	hash := mustNew(t, Options{Method: Hash}, srv("a"), srv("b"))
	tests := []struct {
		name string
		op   func() error
		want error
		msg  string
	}{
		{"SetDown bad id", func() error { return u.SetDown(false, 2, true) }, ErrBadPeerID, ""},
		{"SetDown negative id", func() error { return u.SetDown(false, -1, true) }, ErrBadPeerID, ""},
		{"SetDown no backups", func() error { return u.SetDown(true, 0, true) }, ErrNoBackupPeers, ""},
		{"SetDown backup bad id", func() error { return withBackup.SetDown(true, 1, true) }, ErrBadPeerID, ""},
		{"SetWeight bad id", func() error { return u.SetWeight(false, 5, 2) }, ErrBadPeerID, ""},
		{"SetWeight no backups", func() error { return u.SetWeight(true, 0, 2) }, ErrNoBackupPeers, ""},
		{"SetWeight zero", func() error { return u.SetWeight(false, 0, 0) }, nil, `invalid parameter "weight=0"`},
		{"Remove bad id", func() error { return u.Remove(false, 9) }, ErrBadPeerID, ""},
		{"Remove no backups", func() error { return u.Remove(true, 0) }, ErrNoBackupPeers, ""},
		{"Add backup to hash", func() error { _, err := hash.Add(srv("c", backup)); return err }, nil, `balancing method does not support parameter "backup"`},
		{"Add bad weight", func() error { _, err := u.Add(srv("c", weight(-3))); return err }, nil, `invalid parameter "weight=-3"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op()
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.msg != "" && (err == nil || err.Error() != tt.msg) {
				t.Fatalf("err = %v, want %q", err, tt.msg)
			}
		})
	}
	if v := u.Snapshot().Version; v != 1 {
		t.Fatalf("failed ops changed the version: %d", v)
	}
	if ErrBadPeerID.Error() != "bad peer id" || ErrNoBackupPeers.Error() != "no backup peers" {
		t.Fatal("error texts")
	}
}

func TestSetDownVisibleToNextPick(t *testing.T) {
	for _, m := range []Method{RoundRobin, LeastConn, IPHash, Hash, Random} {
		t.Run(m.String(), func(t *testing.T) {
			u := mustNew(t, Options{Method: m, Rand: seeded(1)}, srv("a"), srv("b"))
			r := Request{ClientIP: net.ParseIP("10.0.0.1"), HashKey: "k"}
			owner := pickOK(t, u, r)
			id := 0
			if owner == "b" {
				id = 1
			}
			if err := u.SetDown(false, id, true); err != nil {
				t.Fatal(err)
			}
			if !u.Snapshot().Primary[id].Spec().Down {
				t.Fatal("Spec().Down not updated")
			}
			for i := 0; i < 5; i++ {
				if got := pickOK(t, u, r); got == owner {
					t.Fatalf("down peer %s picked", owner)
				}
			}
			if err := u.SetDown(false, id, false); err != nil {
				t.Fatal(err)
			}
			if m == IPHash || m == Hash {
				if got := pickOK(t, u, r); got != owner {
					t.Fatalf("key did not return to %s: %s", owner, got)
				}
			}
		})
	}
}

func TestSetDownUpClearsFails(t *testing.T) {
	clk := newClock()
	u := mustNew(t, Options{Now: clk.Now}, srv("a"), srv("b"))
	failPeer(t, u, "a")
	if c := count(seq(t, u, 4)); c["a"] != 0 {
		t.Fatalf("a should be disabled: %v", c)
	}
	// a is not down, but "up" still clears its failures (set_peer_down)
	if err := u.SetDown(false, 0, false); err != nil {
		t.Fatal(err)
	}
	if st := peerByName(t, u, "a").State(); st.Fails != 0 {
		t.Fatalf("fails = %d", st.Fails)
	}
	// (its effective weight is still recovering from the failure)
	if c := count(seq(t, u, 4)); c["a"] == 0 {
		t.Fatalf("a not back: %v", c)
	}
	// down keeps the counters
	failPeer(t, u, "a")
	if err := u.SetDown(false, 0, true); err != nil {
		t.Fatal(err)
	}
	if st := peerByName(t, u, "a").State(); st.Fails != 1 {
		t.Fatalf("down cleared fails: %+v", st)
	}
}

func TestSetWeight(t *testing.T) {
	u := mustNew(t, Options{}, weighted(1, 1, 1)...)
	if err := u.SetWeight(false, 0, 5); err != nil {
		t.Fatal(err)
	}
	if got := u.Snapshot().Primary[0].Spec().Weight; got != 5 {
		t.Fatalf("weight = %d", got)
	}
	if got := seq(t, u, 7); got != "a a b a c a a" {
		t.Fatalf("sequence %q", got)
	}
	if st := peerByName(t, u, "a").State(); st.EffectiveWeight != 5 {
		t.Fatalf("effective weight %d", st.EffectiveWeight)
	}
	if v := u.Snapshot().Version; v != 2 {
		t.Fatalf("version %d", v)
	}
}

func TestSetWeightRebuildsRing(t *testing.T) {
	u := mustNew(t, Options{Method: Hash, HashConsistent: true}, srv("a:1"), srv("b:1"))
	r0 := u.Snapshot().ring
	if err := u.SetDown(false, 0, true); err != nil {
		t.Fatal(err)
	}
	if u.Snapshot().ring != r0 {
		t.Fatal("SetDown rebuilt the ring")
	}
	if err := u.SetWeight(false, 0, 2); err != nil {
		t.Fatal(err)
	}
	if got := len(u.Snapshot().ring.points); got != len(refRing([]string{"a:1", "b:1"}, []int{2, 1})) {
		t.Fatalf("ring points %d", got)
	}
}

func TestCountersSurviveSnapshotSwaps(t *testing.T) {
	u := mustNew(t, Options{}, srv("a"), srv("b"), srv("z", backup))
	a := u.Begin(Request{})
	p, _ := a.Next()
	before := u.Snapshot()
	if err := u.SetWeight(false, 1, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Add(srv("c")); err != nil {
		t.Fatal(err)
	}
	after := u.Snapshot()
	if after.Version != before.Version+2 {
		t.Fatalf("versions %d -> %d", before.Version, after.Version)
	}
	if after.Primary[0] == before.Primary[0] {
		t.Fatal("snapshots share Peer structs")
	}
	if st := after.Primary[p.ID()].State(); st.Conns != 1 || st.Requests != 1 {
		t.Fatalf("live state lost: %+v", st)
	}
	if q := after.Primary[p.ID()]; q.Conns() != 1 || q.Requests() != 1 {
		t.Fatalf("lock-free counters %d %d", q.Conns(), q.Requests())
	}
	a.Finish(p, false)
	if st := after.Primary[p.ID()].State(); st.Conns != 0 {
		t.Fatalf("conns %d", st.Conns)
	}
}

func TestAddRemove(t *testing.T) {
	u := mustNew(t, Options{}, srv("a"), srv("b"))
	id, err := u.Add(ServerSpec{Name: "c", Addr: "10.0.0.3:80"})
	if err != nil || id != 2 {
		t.Fatalf("Add = %d, %v", id, err)
	}
	if got := seq(t, u, 6); got != "a b c a b c" {
		t.Fatalf("after add %q", got)
	}
	if sp := u.Snapshot().Primary[2].Spec(); sp.Weight != 1 || sp.Addr != "10.0.0.3:80" {
		t.Fatalf("added spec %+v", sp)
	}
	bid, err := u.Add(srv("z", backup))
	if err != nil || bid != 0 || len(u.Snapshot().Backup) != 1 {
		t.Fatalf("Add backup = %d, %v", bid, err)
	}
	if err := u.Remove(false, 0); err != nil {
		t.Fatal(err)
	}
	s := u.Snapshot()
	// ids are stable: b keeps 1 and c keeps 2 (they used to shift down)
	if len(s.Primary) != 2 || s.Primary[0].Name() != "b" || s.Primary[0].ID() != 1 || s.Primary[1].ID() != 2 {
		t.Fatalf("after remove %v", s.Primary)
	}
	if c := count(seq(t, u, 6)); c["a"] != 0 || c["b"] != 3 || c["c"] != 3 {
		t.Fatalf("after remove %v", c)
	}
	if err := u.Remove(true, 0); err != nil {
		t.Fatal(err)
	}
	if len(u.Snapshot().Backup) != 0 {
		t.Fatal("backup not removed")
	}
	// removing every primary leaves an upstream with no live peers
	for _, id := range []int{1, 2} {
		if err := u.Remove(false, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := u.Begin(Request{}).Next(); !errors.Is(err, ErrNoLiveUpstreams) {
		t.Fatalf("empty upstream: %v", err)
	}
	if id, err := u.Add(srv("d")); err != nil || id != 3 {
		t.Fatalf("re-add = %d, %v (ids are never reused)", id, err)
	}
	if got := seq(t, u, 2); got != "d d" {
		t.Fatalf("after re-add %q", got)
	}
}

func TestRemoveWhileInFlight(t *testing.T) {
	u := mustNew(t, Options{Now: newClock().Now}, srv("a"), srv("b"), srv("c"))
	a := u.Begin(Request{})
	p, _ := a.Next()
	if p.Name() != "a" {
		t.Fatalf("first pick %s", p.Name())
	}
	if err := u.Remove(false, 0); err != nil {
		t.Fatal(err)
	}
	// the tried set is carried to the new snapshot by identity: b (now id
	// 0) was not tried and must be offered
	var got []string
	for {
		q, err := a.Next()
		if err != nil {
			break
		}
		got = append(got, q.Name())
		a.Finish(q, false)
	}
	if strings.Join(got, " ") != "b c" {
		t.Fatalf("retries after remove: %v", got)
	}
	a.Finish(p, true) // finishing the removed peer is safe
	if st := p.State(); st.Conns != 0 || st.Fails != 1 {
		t.Fatalf("removed peer state %+v", st)
	}
	for i := 0; i < 6; i++ {
		if got := pickOK(t, u, Request{}); got == "a" {
			t.Fatal("removed peer picked")
		}
	}
}

func TestTriedSetSurvivesChangesMidAttempt(t *testing.T) {
	u := mustNew(t, Options{}, srv("a", maxFails(0)), srv("b", maxFails(0)), srv("c", maxFails(0)))
	a := u.Begin(Request{})
	p1, _ := a.Next() // a
	a.Finish(p1, true)
	if _, err := u.Add(srv("d", maxFails(0))); err != nil {
		t.Fatal(err)
	}
	if err := u.SetDown(false, 1, true); err != nil { // b down
		t.Fatal(err)
	}
	var got []string
	for {
		p, err := a.Next()
		if err != nil {
			break
		}
		got = append(got, p.Name())
		a.Finish(p, true)
	}
	if strings.Join(got, " ") != "c d" {
		t.Fatalf("retries %v", got)
	}
}

func TestAddLargeUpstreamTriedBitmap(t *testing.T) {
	// more than 64 peers: the tried set grows beyond one word
	var specs []ServerSpec
	for i := 0; i < 70; i++ {
		specs = append(specs, srv(fmt.Sprintf("s%d", i), maxFails(0)))
	}
	u := mustNew(t, Options{}, specs...)
	a := u.Begin(Request{})
	seen := map[string]bool{}
	for i := 0; i < 60; i++ {
		p, err := a.Next()
		if err != nil {
			t.Fatal(err)
		}
		seen[p.Name()] = true
		a.Finish(p, true)
	}
	for i := 0; i < 100; i++ {
		if _, err := u.Add(srv(fmt.Sprintf("n%d", i), maxFails(0))); err != nil {
			t.Fatal(err)
		}
	}
	for {
		p, err := a.Next()
		if err != nil {
			break
		}
		if seen[p.Name()] {
			t.Fatalf("%s tried twice", p.Name())
		}
		seen[p.Name()] = true
		a.Finish(p, true)
	}
	if len(seen) != 170 {
		t.Fatalf("tried %d peers", len(seen))
	}
}

func TestConcurrentPicksAndChanges(t *testing.T) {
	for _, m := range []Method{RoundRobin, LeastConn, IPHash, Hash, Random} {
		t.Run(m.String(), func(t *testing.T) {
			clk := newClock()
			opts := Options{Method: m, Now: clk.Now, HashConsistent: m == Hash}
			var specs []ServerSpec
			for i := 0; i < 8; i++ {
				specs = append(specs, srv(fmt.Sprintf("10.0.0.%d:80", i), maxConns(50)))
			}
			if m.supportsBackup() {
				specs = append(specs, srv("10.0.1.1:80", backup))
			}
			u := mustNew(t, opts, specs...)

			var (
				wg    sync.WaitGroup
				stop  atomic.Bool
				mu    sync.Mutex
				seen  = map[*liveState]*Peer{}
				picks atomic.Int64
			)
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					var a Attempt
					for i := 0; !stop.Load() || i < 200; i++ {
						r := Request{ClientIP: net.IPv4(10, byte(g), byte(i), 1), HashKey: fmt.Sprint(i % 97)}
						u.BeginInto(&a, r)
						for try := 0; try < a.Tries(); try++ {
							p, err := a.Next()
							if err != nil {
								break
							}
							picks.Add(1)
							mu.Lock()
							seen[p.st] = p
							mu.Unlock()
							_ = p.State()
							failed := i%13 == 0
							a.Finish(p, failed)
							if !failed {
								break
							}
						}
					}
				}(g)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 300; i++ {
					s := u.Snapshot()
					n := len(s.Primary)
					id := s.Primary[i%n].ID()
					switch i % 7 {
					case 0:
						_ = u.SetDown(false, id, true)
					case 1:
						_ = u.SetDown(false, s.Primary[(i-1)%n].ID(), false)
					case 2:
						_ = u.SetWeight(false, id, 1+i%4)
					case 3:
						_, _ = u.Add(srv(fmt.Sprintf("10.0.2.%d:80", i%250)))
					case 4:
						if n > 2 {
							_ = u.Remove(false, id)
						}
					case 6:
						_ = u.SetDrain(false, id, i%2 == 0)
					case 5:
						clk.Advance(3 * time.Second)
						if len(s.Backup) > 0 {
							_ = u.SetDown(true, 0, i%2 == 0)
						}
					}
					for _, p := range s.Primary {
						_ = p.State()
					}
				}
				stop.Store(true)
			}()
			wg.Wait()
			if picks.Load() == 0 {
				t.Fatal("no picks")
			}
			for _, p := range seen {
				if st := p.State(); st.Conns != 0 {
					t.Fatalf("%s conns = %d after all finished", p.Name(), st.Conns)
				}
			}
		})
	}
}

// TestPeerAddrPort: the address is parsed once per peer for the proxy's
// connect, and stays right across runtime changes of the peer.
func TestPeerAddrPort(t *testing.T) {
	tests := []struct {
		addr string
		want string // "" = not an ip:port
	}{
		{"127.0.0.1:8080", "127.0.0.1:8080"},
		{"[::1]:80", "[::1]:80"},
		{"unix:/run/app.sock", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			u := mustNew(t, Options{}, srv(tt.addr))
			check := func(when string) {
				t.Helper()
				ap := u.Snapshot().Primary[0].AddrPort()
				if got := ap.String(); (tt.want == "" && ap.IsValid()) || (tt.want != "" && got != tt.want) {
					t.Fatalf("%s: AddrPort %v, want %q", when, ap, tt.want)
				}
			}
			check("configured")
			if err := u.SetWeight(false, 0, 5); err != nil {
				t.Fatal(err)
			}
			check("after a weight change")
		})
	}
}

package upstream

import (
	"errors"
	"testing"
)

// An upstream whose servers come from an empty state file starts with no
// peers: every method answers "no live upstreams" until a server is added.
func TestEmptyUpstreamThenAdd(t *testing.T) {
	for _, m := range []Method{RoundRobin, LeastConn, IPHash, Hash, Random} {
		u, err := New(Options{Name: "e", Method: m, AllowEmpty: true}, nil)
		if err != nil {
			t.Fatalf("%v: %v", m, err)
		}
		a := u.Begin(Request{HashKey: "k"})
		if _, err := a.Next(); !errors.Is(err, ErrNoLiveUpstreams) {
			t.Fatalf("%v: Next on empty upstream = %v", m, err)
		}
		if _, err := u.Add(ServerSpec{Name: "127.0.0.1:1", Addr: "127.0.0.1:1"}); err != nil {
			t.Fatalf("%v: add: %v", m, err)
		}
		a = u.Begin(Request{HashKey: "k"})
		p, err := a.Next()
		if err != nil || p.Addr() != "127.0.0.1:1" {
			t.Fatalf("%v: after add: %v %v", m, p, err)
		}
		a.Finish(p, false)
	}
	if _, err := New(Options{Name: "e"}, nil); err == nil {
		t.Fatal("an empty upstream without AllowEmpty must be refused")
	}
}

func TestOnPublishSeesEveryChange(t *testing.T) {
	var seen []int
	u, err := New(Options{Name: "p", OnPublish: func(s *Snapshot) { seen = append(seen, len(s.All())) }},
		[]ServerSpec{{Name: "a:1", Addr: "127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Add(ServerSpec{Name: "b:1", Addr: "127.0.0.2:1"}); err != nil {
		t.Fatal(err)
	}
	if err := u.SetDown(false, 0, true); err != nil {
		t.Fatal(err)
	}
	if err := u.Remove(false, 1); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 || seen[0] != 2 || seen[2] != 1 {
		t.Fatalf("OnPublish saw %v, want [2 2 1]", seen)
	}
}

package upstream

import (
	"reflect"
	"testing"
)

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	for _, name := range []string{"zeta", "alpha", "mid"} {
		if err := r.Add(mustNew(t, Options{Name: name}, srv("a"))); err != nil {
			t.Fatal(err)
		}
	}
	err := r.Add(mustNew(t, Options{Name: "alpha"}, srv("b")))
	if err == nil || err.Error() != `duplicate upstream "alpha"` {
		t.Fatalf("duplicate: %v", err)
	}
	if got := r.Names(); !reflect.DeepEqual(got, []string{"zeta", "alpha", "mid"}) {
		t.Fatalf("Names = %v", got)
	}
	if u := r.Get("alpha"); u == nil || u.Name() != "alpha" || u.Snapshot().Primary[0].Name() != "a" {
		t.Fatalf("Get alpha = %v", u)
	}
	if r.Get("nope") != nil {
		t.Fatal("Get of unknown name")
	}
	if all := r.All(); len(all) != 3 || all[2].Name() != "mid" {
		t.Fatalf("All = %v", all)
	}
}

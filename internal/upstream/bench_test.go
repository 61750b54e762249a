package upstream

import (
	"fmt"
	"net"
	"strconv"
	"testing"
)

func benchUpstream(tb testing.TB, opts Options, n int) *Upstream {
	specs := make([]ServerSpec, n)
	for i := range specs {
		specs[i] = srv(fmt.Sprintf("10.%d.%d.%d:80", i>>16, (i>>8)&255, i&255), weight(1+i%3))
	}
	return mustNew(tb, opts, specs...)
}

var benchMethods = []struct {
	name string
	opts Options
}{
	{"rr", Options{}},
	{"least_conn", Options{Method: LeastConn}},
	{"ip_hash", Options{Method: IPHash}},
	{"hash", Options{Method: Hash}},
	{"hash_consistent", Options{Method: Hash, HashConsistent: true}},
	{"random", Options{Method: Random}},
	{"random_two", Options{Method: Random, RandomTwo: true}},
}

// BenchmarkPick measures one request's selection: BeginInto + Next + Finish
// with a reused Attempt (the proxy's hot path).
func BenchmarkPick(b *testing.B) {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "/item/" + strconv.Itoa(i)
	}
	ip := net.ParseIP("192.0.2.10")
	for _, m := range benchMethods {
		for _, n := range []int{2, 100, 10000} {
			b.Run(fmt.Sprintf("%s/%d", m.name, n), func(b *testing.B) {
				u := benchUpstream(b, m.opts, n)
				var a Attempt
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					u.BeginInto(&a, Request{ClientIP: ip, HashKey: keys[i&1023]})
					p, err := a.Next()
					if err != nil {
						b.Fatal(err)
					}
					a.Finish(p, false)
				}
			})
		}
	}
}

// BenchmarkPickBegin is the same with Begin allocating the Attempt.
func BenchmarkPickBegin(b *testing.B) {
	for _, n := range []int{2, 100, 10000} {
		b.Run(fmt.Sprintf("rr/%d", n), func(b *testing.B) {
			u := benchUpstream(b, Options{}, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				a := u.Begin(Request{})
				p, err := a.Next()
				if err != nil {
					b.Fatal(err)
				}
				a.Finish(p, false)
			}
		})
	}
}

func BenchmarkPickParallel(b *testing.B) {
	u := benchUpstream(b, Options{}, 16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var a Attempt
		for pb.Next() {
			u.BeginInto(&a, Request{})
			p, err := a.Next()
			if err != nil {
				b.Error(err)
				return
			}
			a.Finish(p, false)
		}
	})
}

func TestPickDoesNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	for _, m := range benchMethods {
		for _, n := range []int{2, 100, 1000} {
			u := benchUpstream(t, m.opts, n)
			var a Attempt
			u.BeginInto(&a, Request{}) // size the tried bitmap once
			r := Request{ClientIP: net.ParseIP("192.0.2.10"), HashKey: "/some/key"}
			allocs := testing.AllocsPerRun(100, func() {
				u.BeginInto(&a, r)
				p, err := a.Next()
				if err != nil {
					t.Fatal(err)
				}
				a.Finish(p, false)
			})
			if allocs != 0 {
				t.Errorf("%s/%d: %v allocs per pick", m.name, n, allocs)
			}
		}
	}
}

package upstream

import (
	"errors"
	"math"
	"testing"
)

func TestRandomDistributionByWeight(t *testing.T) {
	for _, two := range []bool{false, true} {
		name := "random"
		if two {
			name = "random two"
		}
		t.Run(name, func(t *testing.T) {
			u := mustNew(t, Options{Method: Random, RandomTwo: two, Rand: seeded(42)}, weighted(1, 2, 3)...)
			const n = 60000
			c := count(seq(t, u, n))
			want := map[string]float64{"a": 1.0 / 6, "b": 2.0 / 6, "c": 3.0 / 6}
			if two {
				// Connections are released at once, so every pair ties and
				// nginx keeps the second of the two distinct picks:
				// P(x) = sum over y != x of w(y)·w(x) / (1 - w(y)).
				want = map[string]float64{"a": 0.25, "b": 0.40, "c": 0.35}
			}
			for k, p := range want {
				if got := float64(c[k]) / n; math.Abs(got-p) > 0.02 {
					t.Fatalf("%s: %.3f, want %.3f (%v)", k, got, p, c)
				}
			}
		})
	}
}

func TestRandomDeterministicWithSeed(t *testing.T) {
	mk := func() string {
		u := mustNew(t, Options{Method: Random, Rand: seeded(7)}, weighted(1, 1, 1, 1)...)
		return seq(t, u, 50)
	}
	if a, b := mk(), mk(); a != b {
		t.Fatalf("same seed, different picks:\n%s\n%s", a, b)
	}
}

func TestRandomSkipsUnusableAndRetries(t *testing.T) {
	u := mustNew(t, Options{Method: Random, Rand: seeded(1)},
		srv("a", maxFails(0)), srv("b", down), srv("c", maxFails(0)), srv("d", maxFails(0)))
	c := count(seq(t, u, 300))
	if c["b"] != 0 || c["a"] == 0 || c["c"] == 0 || c["d"] == 0 {
		t.Fatalf("counts %v", c)
	}
	a := u.Begin(Request{})
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		p, err := a.Next()
		if err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		if seen[p.Name()] {
			t.Fatalf("%s retried", p.Name())
		}
		seen[p.Name()] = true
		a.Finish(p, true)
	}
	if _, err := a.Next(); !errors.Is(err, ErrNoLiveUpstreams) {
		t.Fatalf("err = %v", err)
	}
}

func TestRandomTwoPrefersFewerConns(t *testing.T) {
	u := mustNew(t, Options{Method: Random, RandomTwo: true, Rand: seeded(9)}, srv("a"), srv("b"), srv("c"))
	// hold one connection on a
	if err := u.SetDown(false, 1, true); err != nil {
		t.Fatal(err)
	}
	if err := u.SetDown(false, 2, true); err != nil {
		t.Fatal(err)
	}
	held := u.Begin(Request{})
	pa, err := held.Next()
	if err != nil || pa.Name() != "a" {
		t.Fatalf("hold a: %v %v", pa, err)
	}
	_ = u.SetDown(false, 1, false)
	_ = u.SetDown(false, 2, false)
	// every pair of two distinct peers contains b or c, which have fewer
	// connections than a
	c := count(seq(t, u, 500))
	if c["a"] != 0 || c["b"] == 0 || c["c"] == 0 {
		t.Fatalf("counts %v", c)
	}
	held.Finish(pa, false)
	if c := count(seq(t, u, 500)); c["a"] == 0 {
		t.Fatalf("a never picked after release: %v", c)
	}
}

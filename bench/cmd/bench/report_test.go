package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestPairedRange(t *testing.T) {
	run := func(requests int64, cpu float64) runResult {
		return runResult{wrk: wrkResult{Requests: requests}, cpuSec: cpu}
	}
	for _, tc := range []struct {
		name string
		n, u []runResult
		want string
	}{
		{"side by side", []runResult{run(100, 1), run(100, 2)}, []runResult{run(90, 1), run(120, 2)}, "0.90–1.20"},
		{"unequal counts use the common runs", []runResult{run(100, 1)}, []runResult{run(50, 1), run(500, 1)}, "0.50–0.50"},
		{"no runs", nil, nil, "–"},
		{"no CPU time", []runResult{run(100, 0)}, []runResult{run(100, 1)}, "–"},
	} {
		got := pairedRange(&series{runs: tc.n}, &series{runs: tc.u})
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestInScenarioOrder(t *testing.T) {
	var ss []*series
	for _, sc := range []string{"a", "b", "b", "e", "e", "c", "f0", "f", "g"} {
		ss = append(ss, &series{scenario: sc, server: fmt.Sprint(len(ss))})
	}
	var got []string
	for _, s := range inScenarioOrder(ss) {
		got = append(got, s.scenario+"/"+s.server)
	}
	want := "a/0 b/1 b/2 c/5 e/3 e/4 f0/6 f/7 g/8"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %s, want %s", strings.Join(got, " "), want)
	}
	if ss[3].scenario != "e" {
		t.Fatal("the runs' order was changed")
	}
}

// The (e) and (f) goals take the median of run-by-run ratios: a slow
// stretch of the box that hits one pair moves it less than a ratio of
// medians.
func TestPairedRatiosMedian(t *testing.T) {
	run := func(rps float64) runResult { return runResult{wrk: wrkResult{RPS: rps}} }
	mk := func(rps ...float64) *series {
		s := &series{}
		for _, v := range rps {
			s.runs = append(s.runs, run(v))
		}
		return s
	}
	for _, tc := range []struct {
		name     string
		ref, u   *series
		want     float64
		wantDesc string
	}{
		// The ratio of medians would be 25/30 = 0.83; every pair is ≥ 0.95.
		{"drift between pairs", mk(30, 20, 40), mk(30, 19, 38), 0.95, "3 pairs, 0.95–1.00"},
		{"common runs only", mk(10, 10), mk(9, 11, 50), 1.0, "2 pairs, 0.90–1.10"},
		{"zero left out", mk(10, 0, 10), mk(10, 10, 12), 1.1, "2 pairs, 1.00–1.20"},
		{"none", mk(), mk(), 0, "no pairs"},
	} {
		rs := pairedRatios(tc.ref, tc.u, runRPS)
		if got := median(rs); got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("%s: median %.4f, want %.4f", tc.name, got, tc.want)
		}
		if got := spread(rs); got != tc.wantDesc {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.wantDesc)
		}
	}
}

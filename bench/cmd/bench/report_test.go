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

package main

import (
	"testing"
	"time"
)

const wrkSample = `Running 3s test @ http://127.0.0.1:40000/proxy
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  350.10us   9.87ms   88.00%
    Req/Sec    42.11k     1.20k   44.00k    70.00%
  Latency Distribution
     50%    1.48ms
     75%    1.61ms
     90%    1.80ms
     99%  812.00us
  125763 requests in 3.00s, 19.07MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:  41921.33
Transfer/sec:      6.36MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkSample)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{Requests: 125763, Seconds: 3, RPS: 41921.33, P50: 1480 * time.Microsecond,
		P99: 812 * time.Microsecond, Non2xx: 5, SocketErrors: 10}
	if r != want {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
	if _, err := parseWrk("Running 1s test\n"); err == nil {
		t.Error("truncated output accepted")
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
}

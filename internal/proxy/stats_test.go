package proxy

import (
	"bufio"
	"context"
	"maps"
	"net"
	"testing"
	"time"
)

// peerWant is what one peer's statistics must show after one Serve.
type peerWant struct {
	requests, responses, fails uint64
	codes                      map[int]uint64
}

// TestServeRecordsPeerStatistics checks that every try lands in the picked
// peer's statistics with NGINX Plus's meaning: a response head received is
// a response (by class and code, with its bytes and times), a try without
// one is a failure and not a response.
func TestServeRecordsPeerStatistics(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
	tests := []struct {
		name string
		// backends: a nil handler is an address nobody listens on.
		backends []func(net.Conn, *bufio.Reader)
		opts     func(*Options)
		status   int // to the client
		want     []peerWant
		// noResponse: no try got a response head; partialBytes: some did.
		noResponse, partialBytes bool
	}{
		{
			name:     "200",
			backends: []func(net.Conn, *bufio.Reader){canned(ok, false)},
			status:   200,
			want:     []peerWant{{requests: 1, responses: 1, codes: map[int]uint64{200: 1}}},
		},
		{
			name:     "404 is a response, not a failure",
			backends: []func(net.Conn, *bufio.Reader){canned("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false)},
			status:   404,
			want:     []peerWant{{requests: 1, responses: 1, codes: map[int]uint64{404: 1}}},
		},
		{
			name:     "refused, then the next peer",
			backends: []func(net.Conn, *bufio.Reader){nil, canned(ok, false)},
			status:   200,
			want: []peerWant{
				{requests: 1, fails: 1, codes: map[int]uint64{}},
				{requests: 1, responses: 1, codes: map[int]uint64{200: 1}},
			},
		},
		{
			name: "502 retried by http_502 is a response and a failure",
			backends: []func(net.Conn, *bufio.Reader){
				canned("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", false),
				canned(ok, false),
			},
			opts:   func(o *Options) { o.NextUpstream |= NextHTTP502 },
			status: 200,
			want: []peerWant{
				{requests: 1, responses: 1, fails: 1, codes: map[int]uint64{502: 1}},
				{requests: 1, responses: 1, codes: map[int]uint64{200: 1}},
			},
		},
		// The failure cases have a second peer: the upstream package does
		// not account failures of a single-peer upstream (nginx's
		// single-peer shortcut in Attempt.Finish).
		{
			name:       "invalid header is a failure only",
			backends:   []func(net.Conn, *bufio.Reader){canned("garbage\r\n\r\n", true), canned(ok, false)},
			status:     502, // invalid_header is not in the default proxy_next_upstream
			want:       []peerWant{{requests: 1, fails: 1, codes: map[int]uint64{}}, {codes: map[int]uint64{}}},
			noResponse: true,
		},
		{
			name: "timeout is a failure only",
			backends: []func(net.Conn, *bufio.Reader){func(c net.Conn, br *bufio.Reader) {
				_, _ = readReq(br)
				_, _ = br.ReadByte() // silent until the proxy gives up
			}, canned(ok, false)},
			opts:   func(o *Options) { o.ReadTimeout = 50 * time.Millisecond },
			status: 200,
			want: []peerWant{
				{requests: 1, fails: 1, codes: map[int]uint64{}},
				{requests: 1, responses: 1, codes: map[int]uint64{200: 1}},
			},
			partialBytes: true,
		},
		{
			name:     "body cut short is still a response",
			backends: []func(net.Conn, *bufio.Reader){canned("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", true)},
			status:   200,
			want:     []peerWant{{requests: 1, responses: 1, codes: map[int]uint64{200: 1}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addrs := make([]string, len(tc.backends))
			for i, h := range tc.backends {
				if h == nil {
					addrs[i] = deadAddr(t)
				} else {
					addrs[i] = newRaw(t, h).addr
				}
			}
			u := newUpstream(t, addrs...)
			o := baseOptions()
			if tc.opts != nil {
				tc.opts(o)
			}
			rec, res, _, _ := serve(t, context.Background(), getOut("/x"), Target{Upstream: u}, o)
			checkResult(t, res)
			if rec.Code != tc.status {
				t.Fatalf("client status %d, want %d", rec.Code, tc.status)
			}
			var sent, received uint64
			for i, w := range tc.want {
				p := peerOf(t, u, addrs[i])
				st, stats := p.State(), p.Stats()
				if st.Requests != w.requests || stats.Total != w.responses || st.FailsTotal != w.fails {
					t.Errorf("peer %d: requests %d responses %d fails %d, want %d %d %d",
						i, st.Requests, stats.Total, st.FailsTotal, w.requests, w.responses, w.fails)
				}
				if !maps.Equal(stats.Codes, w.codes) {
					t.Errorf("peer %d: codes %v, want %v", i, stats.Codes, w.codes)
				}
				var classes uint64
				for c, n := range w.codes {
					if stats.Responses[c/100-1] < n {
						t.Errorf("peer %d: class %dxx = %d, want >= %d", i, c/100, stats.Responses[c/100-1], n)
					}
					classes += n
				}
				if stats.Total != classes {
					t.Errorf("peer %d: total %d != sum of codes %d", i, stats.Total, classes)
				}
				if st.Conns != 0 {
					t.Errorf("peer %d: %d active after Serve", i, st.Conns)
				}
				if stats.Total > 0 {
					if stats.HeaderTime <= 0 || stats.ResponseTime < stats.HeaderTime {
						t.Errorf("peer %d: header_time %v response_time %v", i, stats.HeaderTime, stats.ResponseTime)
					}
				}
				sent += stats.Sent
				received += stats.Received
			}
			// Bytes are accounted with the response they belong to: when
			// every try got one, the sums are $upstream_bytes_*; a try
			// without a response accounts none (see session.record).
			wantSent, wantReceived := uint64(res.BytesSent), uint64(res.BytesReceived)
			switch {
			case tc.partialBytes:
				// Both tries sent the same request; only the answered
				// one's bytes are accounted.
				wantSent /= 2
			case tc.noResponse:
				wantSent, wantReceived = 0, 0
			case wantSent == 0 || wantReceived == 0:
				t.Fatalf("the proxy moved no bytes: %+v", res)
			}
			if sent != wantSent || received != wantReceived {
				t.Errorf("sent/received %d/%d, want %d/%d", sent, received, wantSent, wantReceived)
			}
		})
	}
}

package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"upstreamd/internal/upstream"
)

// TestUpstreamStatistics checks that the upstream object shows what the
// proxy recorded and the pool's idle connections as keepalive.
func TestUpstreamStatistics(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	u, err := upstream.New(upstream.Options{Name: "backend", Now: func() time.Time { return now }},
		[]upstream.ServerSpec{upstream.DefaultSpec("127.0.0.1:8081", "127.0.0.1:8081"), upstream.DefaultSpec("127.0.0.1:8082", "127.0.0.1:8082")})
	if err != nil {
		t.Fatal(err)
	}
	reg := upstream.NewRegistry()
	if err := reg.Add(u); err != nil {
		t.Fatal(err)
	}
	// Two tries as the proxy makes them: a response from the first peer,
	// a failure of the second.
	for _, status := range []int{200, 0} {
		a := u.Begin(upstream.Request{})
		p, err := a.Next()
		if err != nil {
			t.Fatal(err)
		}
		if status > 0 {
			p.RecordResponse(status, 120, 4000, 3*time.Millisecond, 5*time.Millisecond)
		}
		a.Finish(p, status == 0)
	}
	h := New(Options{
		Upstreams: func() *upstream.Registry { return reg },
		Prefix:    "/api",
		Keepalive: func(name string) int { return map[string]int{"backend": 4}[name] },
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/9/http/upstreams/backend", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	type peer struct {
		Server    string `json:"server"`
		State     string `json:"state"`
		Requests  uint64 `json:"requests"`
		Responses struct {
			OK    uint64            `json:"2xx"`
			Codes map[string]uint64 `json:"codes"`
			Total uint64            `json:"total"`
		} `json:"responses"`
		Sent, Received, Fails, Unavail uint64
		Selected                       string `json:"selected"`
		HeaderTime                     *int64 `json:"header_time"`
		ResponseTime                   *int64 `json:"response_time"`
	}
	var got struct {
		Peers     []peer `json:"peers"`
		Keepalive int    `json:"keepalive"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Keepalive != 4 || len(got.Peers) != 2 {
		t.Fatalf("upstream object %s", rec.Body)
	}
	ok, failed := got.Peers[0], got.Peers[1]
	if ok.Requests != 1 || ok.Responses.Total != 1 || ok.Responses.OK != 1 || ok.Responses.Codes["200"] != 1 ||
		ok.Sent != 120 || ok.Received != 4000 || ok.Fails != 0 || ok.Selected != "2025-03-01T12:00:00.000Z" ||
		ok.HeaderTime == nil || *ok.HeaderTime != 3 || ok.ResponseTime == nil || *ok.ResponseTime != 5 {
		t.Errorf("answered peer %+v", ok)
	}
	if failed.Requests != 1 || failed.Responses.Total != 0 || failed.Fails != 1 || failed.Unavail != 1 ||
		failed.State != "unavail" || failed.HeaderTime != nil {
		t.Errorf("failed peer %+v", failed)
	}
}

package metrics

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"upstreamd/internal/upstream"
)

// scrape GETs the handler and parses the text exposition.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return fams
}

// sample finds the value of the series of family name with exactly labels.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, lp := range m.GetLabel() {
			if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
				continue next
			}
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		case dto.MetricType_UNTYPED:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func newUp(t *testing.T, name string, specs ...upstream.ServerSpec) *upstream.Upstream {
	t.Helper()
	u, err := upstream.New(upstream.Options{Name: name}, specs)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// try picks a peer as the proxy does and ends the try: with a response
// (status > 0) or as a failure (status 0).
func try(t *testing.T, u *upstream.Upstream, status int) *upstream.Peer {
	t.Helper()
	a := u.Begin(upstream.Request{})
	p, err := a.Next()
	if err != nil {
		t.Fatal(err)
	}
	if status > 0 {
		p.RecordResponse(status, 100, 1000, 2*time.Millisecond, 4*time.Millisecond)
	}
	a.Finish(p, status == 0)
	return p
}

func TestPrometheusExposition(t *testing.T) {
	const a, b, d = "127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"
	specA := upstream.DefaultSpec(a, a)
	specA.MaxConns = 5
	specB := upstream.DefaultSpec(b, b)
	specB.Down = true
	backend := newUp(t, "backend", specA, specB)
	// The same address twice (nginx allows it): one series, summed.
	dup := newUp(t, "dup", upstream.DefaultSpec(d, d), upstream.DefaultSpec(d, d))

	try(t, backend, 200)
	try(t, backend, 503)
	try(t, backend, 0) // fails once: max_fails=1 makes it unavail
	for _, p := range dup.Snapshot().Primary {
		p.RecordResponse(204, 10, 20, 2*time.Millisecond, 6*time.Millisecond)
	}

	reg := upstream.NewRegistry()
	for _, u := range []*upstream.Upstream{backend, dup} {
		if err := reg.Add(u); err != nil {
			t.Fatal(err)
		}
	}
	fams := scrape(t, Handler(Options{
		Upstreams: func() *upstream.Registry { return reg },
		Keepalive: func(name string) int {
			if name == "backend" {
				return 3
			}
			return 0
		},
	}))

	srv := func(up, s string, extra ...string) map[string]string {
		l := map[string]string{"upstream": up, "server": s}
		for i := 0; i+1 < len(extra); i += 2 {
			l[extra[i]] = extra[i+1]
		}
		return l
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"nginxplus_up", map[string]string{}, 1},
		{"nginxplus_upstream_server_requests", srv("backend", a), 3},
		{"nginxplus_upstream_server_responses", srv("backend", a, "code", "2xx"), 1},
		{"nginxplus_upstream_server_responses", srv("backend", a, "code", "5xx"), 1},
		{"nginxplus_upstream_server_responses", srv("backend", a, "code", "4xx"), 0},
		{"nginxplus_upstream_server_responses_codes", srv("backend", a, "code", "200"), 1},
		{"nginxplus_upstream_server_responses_codes", srv("backend", a, "code", "503"), 1},
		{"nginxplus_upstream_server_sent", srv("backend", a), 200},
		{"nginxplus_upstream_server_received", srv("backend", a), 2000},
		{"nginxplus_upstream_server_fails", srv("backend", a), 1},
		{"nginxplus_upstream_server_unavail", srv("backend", a), 1},
		{"nginxplus_upstream_server_state", srv("backend", a), 4}, // unavail
		{"nginxplus_upstream_server_active", srv("backend", a), 0},
		{"nginxplus_upstream_server_limit", srv("backend", a), 5},
		{"nginxplus_upstream_server_header_time", srv("backend", a), 2},
		{"nginxplus_upstream_server_response_time", srv("backend", a), 4},
		{"nginxplus_upstream_server_health_checks_checks", srv("backend", a), 0},
		{"nginxplus_upstream_server_health_checks_fails", srv("backend", a), 0},
		{"nginxplus_upstream_server_health_checks_unhealthy", srv("backend", a), 0},
		{"nginxplus_upstream_server_state", srv("backend", b), 3}, // down
		{"nginxplus_upstream_server_requests", srv("backend", b), 0},
		{"nginxplus_upstream_server_limit", srv("backend", b), 0},
		{"nginxplus_upstream_keepalive", map[string]string{"upstream": "backend"}, 3},
		{"nginxplus_upstream_zombies", map[string]string{"upstream": "backend"}, 0},
		{"nginxplus_upstream_server_responses", srv("dup", d, "code", "2xx"), 2},
		{"nginxplus_upstream_server_responses_codes", srv("dup", d, "code", "204"), 2},
		{"nginxplus_upstream_server_sent", srv("dup", d), 20},
		{"nginxplus_upstream_server_response_time", srv("dup", d), 6},
		{"nginxplus_upstream_server_state", srv("dup", d), 1},
		{"nginxplus_upstream_keepalive", map[string]string{"upstream": "dup"}, 0},
	}
	for _, tc := range tests {
		got, ok := sample(fams, tc.name, tc.labels)
		if !ok {
			t.Errorf("%s%v: no such series", tc.name, tc.labels)
			continue
		}
		if got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if n := len(fams["nginxplus_upstream_server_state"].GetMetric()); n != 3 {
		t.Errorf("%d state series, want 3 (the duplicate address folded)", n)
	}
	if fams["nginxplus_upstream_server_requests"].GetType() != dto.MetricType_COUNTER ||
		fams["nginxplus_upstream_server_state"].GetType() != dto.MetricType_GAUGE {
		t.Error("wrong metric types")
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}

func TestSnapshotTotals(t *testing.T) {
	u := newUp(t, "backend", upstream.DefaultSpec("127.0.0.1:1", "127.0.0.1:1"), upstream.DefaultSpec("127.0.0.1:2", "127.0.0.1:2"))
	try(t, u, 200)
	try(t, u, 404)
	try(t, u, 0)
	try(t, u, 0)
	s := UpstreamOf(u, 7)
	tot := s.Totals
	if tot.Requests != 4 || tot.Total != 2 || tot.Fails != 2 || tot.Responses[1] != 1 || tot.Responses[3] != 1 {
		t.Fatalf("totals %+v", tot)
	}
	// Every pick ended in a response or a failure.
	if tot.Requests != tot.Total+tot.Fails {
		t.Fatalf("requests %d != responses %d + fails %d", tot.Requests, tot.Total, tot.Fails)
	}
	if s.Keepalive != 7 || s.Name != "backend" || len(s.Peers) != 2 {
		t.Fatalf("snapshot %+v", s)
	}
}

func TestHandlerWithoutRegistry(t *testing.T) {
	fams := scrape(t, Handler(Options{}))
	if v, ok := sample(fams, "nginxplus_up", map[string]string{}); !ok || v != 1 {
		t.Fatalf("nginxplus_up = %v %v", v, ok)
	}
	if fams["nginxplus_upstream_server_requests"] != nil {
		t.Fatal("upstream series without upstreams")
	}
}

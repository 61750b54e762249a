package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"upstreamd/internal/metrics"
)

// metricsBackend answers /ok with 200, /missing with 404 and /err with 500.
func metricsBackend(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
		case "/err":
			w.WriteHeader(http.StatusInternalServerError)
		}
		io.WriteString(w, "body of "+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// scrapeMetrics GETs url and parses it with the Prometheus text parser.
func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := svClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metricValue is the value of the series of family name with exactly labels.
func metricValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for _, lp := range m.GetLabel() {
			if labels[lp.GetName()] != lp.GetValue() {
				continue next
			}
		}
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// TestMetricsAddUpAfterLoad runs a bounded load through the real server to
// two live backends and one dead address, then checks that the numbers add
// up — every pick of a peer ended in a response or a failure, every client
// request in exactly one upstream response — and that /metrics (parsed by
// the Prometheus text parser) and the REST API report those same numbers.
func TestMetricsAddUpAfterLoad(t *testing.T) {
	a, b, dead := metricsBackend(t), metricsBackend(t), deadAddr(t)
	s, base, _ := startServer(t, fmt.Sprintf(`
events {}
http {
    access_log off;
    upstream backend {
        server %s;
        server %s;
        server %s max_fails=0;   # never unavailable: it fails all along
        keepalive 8;
    }
    server {
        listen LISTEN;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location = /metrics { prometheus; allow 127.0.0.1; deny all; }
        location = /denied-metrics { prometheus; deny all; }
        location /api { api; }
    }
}`, a, b, dead))

	paths := []string{"/ok", "/missing", "/err"}
	wantStatus := map[string]int{"/ok": 200, "/missing": 404, "/err": 500}
	const n = 300
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		sent = map[int]int{} // client status -> requests
	)
	work := make(chan string)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				resp, err := svClient.Get(base + p)
				if err != nil {
					t.Error(err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != wantStatus[p] {
					t.Errorf("GET %s: %d", p, resp.StatusCode)
				}
				mu.Lock()
				sent[resp.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- paths[i%len(paths)]
	}
	close(work)
	wg.Wait()

	// The proxy records a try before releasing the peer: once nothing is
	// in flight, every try is counted.
	u := s.Current().Upstreams.Get("backend")
	waitFor(t, func() bool { return metrics.UpstreamOf(u, 0).Totals.Active == 0 })
	snap := metrics.UpstreamOf(u, 0)

	tot := snap.Totals
	if tot.Requests != tot.Total+tot.Fails {
		t.Errorf("requests %d != responses %d + fails %d", tot.Requests, tot.Total, tot.Fails)
	}
	if tot.Total != n {
		t.Errorf("%d responses for %d client requests", tot.Total, n)
	}
	if tot.Responses[1] != uint64(sent[200]) || tot.Responses[3] != uint64(sent[404]) || tot.Responses[4] != uint64(sent[500]) {
		t.Errorf("responses by class %v, client saw %v", tot.Responses, sent)
	}
	byServer := map[string]metrics.Peer{}
	for _, p := range snap.Peers {
		byServer[p.Server] = p
		if p.Requests != p.Total+p.Fails {
			t.Errorf("%s: requests %d != responses %d + fails %d", p.Server, p.Requests, p.Total, p.Fails)
		}
	}
	if d := byServer[dead]; d.Requests == 0 || d.Fails != d.Requests || d.Total != 0 {
		t.Errorf("dead peer: %+v", d)
	}
	for _, live := range []string{a, b} {
		p := byServer[live]
		if p.Total == 0 || p.Fails != 0 || p.Sent == 0 || p.Received == 0 || p.ResponseTime < p.HeaderTime {
			t.Errorf("live peer %s: %+v", live, p)
		}
	}

	// /metrics: the same numbers, under the exporter's names and labels.
	fams := scrapeMetrics(t, base+"/metrics")
	for _, p := range snap.Peers {
		l := map[string]string{"upstream": "backend", "server": p.Server}
		checks := []struct {
			name string
			want float64
		}{
			{"nginxplus_upstream_server_requests", float64(p.Requests)},
			{"nginxplus_upstream_server_fails", float64(p.Fails)},
			{"nginxplus_upstream_server_sent", float64(p.Sent)},
			{"nginxplus_upstream_server_received", float64(p.Received)},
			{"nginxplus_upstream_server_unavail", 0},
			{"nginxplus_upstream_server_active", 0},
			{"nginxplus_upstream_server_state", 1}, // up
			{"nginxplus_upstream_server_health_checks_checks", 0},
		}
		for _, c := range checks {
			if got := metricValue(t, fams, c.name, l); got != c.want {
				t.Errorf("%s{server=%q} = %v, want %v", c.name, p.Server, got, c.want)
			}
		}
		for i, class := range []string{"1xx", "2xx", "3xx", "4xx", "5xx"} {
			lc := map[string]string{"upstream": "backend", "server": p.Server, "code": class}
			if got := metricValue(t, fams, "nginxplus_upstream_server_responses", lc); got != float64(p.Responses[i]) {
				t.Errorf("responses{server=%q,code=%s} = %v, want %d", p.Server, class, got, p.Responses[i])
			}
		}
		for code, cnt := range p.Codes {
			lc := map[string]string{"upstream": "backend", "server": p.Server, "code": fmt.Sprint(code)}
			if got := metricValue(t, fams, "nginxplus_upstream_server_responses_codes", lc); got != float64(cnt) {
				t.Errorf("responses_codes{server=%q,code=%d} = %v, want %d", p.Server, code, got, cnt)
			}
		}
	}
	if ka := metricValue(t, fams, "nginxplus_upstream_keepalive", map[string]string{"upstream": "backend"}); ka < 1 || ka > 8 {
		t.Errorf("keepalive %v, want 1..8 idle connections", ka)
	}
	if z := metricValue(t, fams, "nginxplus_upstream_zombies", map[string]string{"upstream": "backend"}); z != 0 {
		t.Errorf("zombies %v", z)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}

	// The REST API's peer objects carry the same counters.
	_, _, body := apiDo(t, "GET", base+"/api/9/http/upstreams/backend", "")
	var api struct {
		Peers []struct {
			Server    string `json:"server"`
			Requests  uint64 `json:"requests"`
			Fails     uint64 `json:"fails"`
			Sent      uint64 `json:"sent"`
			Received  uint64 `json:"received"`
			Responses struct {
				Total uint64            `json:"total"`
				Codes map[string]uint64 `json:"codes"`
			} `json:"responses"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(body), &api); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(api.Peers) != 3 {
		t.Fatalf("API peers: %s", body)
	}
	for _, ap := range api.Peers {
		p := byServer[ap.Server]
		if ap.Requests != p.Requests || ap.Fails != p.Fails || ap.Responses.Total != p.Total || ap.Sent != p.Sent || ap.Received != p.Received {
			t.Errorf("API peer %s: %+v, metrics %+v", ap.Server, ap, p)
		}
		for code, cnt := range p.Codes {
			if ap.Responses.Codes[fmt.Sprint(code)] != cnt {
				t.Errorf("API peer %s codes %v, metrics %v", ap.Server, ap.Responses.Codes, p.Codes)
			}
		}
	}

	// The guard runs before the handler; only GET and HEAD are served.
	if st, _, _ := svDo(t, "GET", base+"/denied-metrics", ""); st != http.StatusForbidden {
		t.Errorf("denied /metrics: %d", st)
	}
	if st, _, _ := svDo(t, "POST", base+"/metrics", "x"); st != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d", st)
	}
}

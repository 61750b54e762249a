package metrics

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace is nginx-prometheus-exporter's prefix for NGINX Plus metrics.
const Namespace = "nginxplus"

// StateValue is nginx-prometheus-exporter's numeric encoding of a peer's
// state (nginxplus_upstream_server_state); unknown states are 0.
var StateValue = map[string]float64{
	"up":        1,
	"draining":  2,
	"down":      3,
	"unavail":   4,
	"checking":  5,
	"unhealthy": 6,
}

// The label names are the exporter's: dashboards select on them.
var (
	serverLabels   = []string{"upstream", "server"}
	codeLabels     = []string{"upstream", "server", "code"}
	upstreamLabels = []string{"upstream"}
)

func serverDesc(name, help string, labels []string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "upstream_server", name), help, labels, nil)
}

// descs are built once: a Desc is immutable and the same for every scrape.
var (
	descUp = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "up"),
		"Status of the last metric scrape", nil, nil)

	descState       = serverDesc("state", "Current state", serverLabels)
	descActive      = serverDesc("active", "Active connections", serverLabels)
	descLimit       = serverDesc("limit", "Limit for connections which corresponds to the max_conns parameter of the upstream server. Zero value means there is no limit", serverLabels)
	descRequests    = serverDesc("requests", "Total client requests", serverLabels)
	descResp        = serverDesc("responses", "Total responses sent to clients", codeLabels)
	descCodes       = serverDesc("responses_codes", "Total responses sent to clients", codeLabels)
	descSent        = serverDesc("sent", "Bytes sent to this server", serverLabels)
	descReceived    = serverDesc("received", "Bytes received to this server", serverLabels)
	descFails       = serverDesc("fails", "Number of unsuccessful attempts to communicate with the server", serverLabels)
	descUnavail     = serverDesc("unavail", "How many times the server became unavailable for client requests (state 'unavail') due to the number of unsuccessful attempts reaching the max_fails threshold", serverLabels)
	descHeader      = serverDesc("header_time", "Average time to get the response header from the server", serverLabels)
	descResponse    = serverDesc("response_time", "Average time to get the full response from the server", serverLabels)
	descHCChecks    = serverDesc("health_checks_checks", "Total health check requests", serverLabels)
	descHCFails     = serverDesc("health_checks_fails", "Failed health checks", serverLabels)
	descHCUnhealthy = serverDesc("health_checks_unhealthy", "How many times the server became unhealthy (state 'unhealthy')", serverLabels)

	descKeepalive = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "upstream", "keepalive"),
		"Idle keepalive connections", upstreamLabels, nil)
	descZombies = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "upstream", "zombies"),
		"Servers removed from the group but still processing active client requests", upstreamLabels, nil)

	allDescs = []*prometheus.Desc{descUp, descState, descActive, descLimit, descRequests, descResp, descCodes,
		descSent, descReceived, descFails, descUnavail, descHeader, descResponse,
		descHCChecks, descHCFails, descHCUnhealthy, descKeepalive, descZombies}
)

var classLabels = [5]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Collector is a prometheus.Collector over the live upstreams: every
// Collect reads fresh snapshots (Snapshot) and emits constant metrics, so
// nothing is updated through client_golang while requests are served.
type Collector struct {
	o Options
}

// NewCollector returns a collector reading the upstreams o points to.
func NewCollector(o Options) *Collector { return &Collector{o: o} }

// Describe sends every metric's descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect sends the current value of every metric.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	// nginx-prometheus-exporter's "up" says whether NGINX Plus answered; here
	// the numbers are read in-process, so it is always 1.
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	for _, u := range Snapshot(c.o) {
		for _, p := range mergeByServer(u.Peers) {
			collectPeer(ch, u.Name, &p)
		}
		ch <- prometheus.MustNewConstMetric(descKeepalive, prometheus.GaugeValue, float64(u.Keepalive), u.Name)
		ch <- prometheus.MustNewConstMetric(descZombies, prometheus.GaugeValue, float64(u.Zombies), u.Name)
	}
}

func collectPeer(ch chan<- prometheus.Metric, up string, p *Peer) {
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, up, p.Server)
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), up, p.Server)
	}
	gauge(descState, StateValue[p.State])
	gauge(descActive, float64(p.Active))
	gauge(descLimit, float64(p.MaxConns))
	counter(descRequests, p.Requests)
	for i, n := range p.Responses {
		ch <- prometheus.MustNewConstMetric(descResp, prometheus.CounterValue, float64(n), up, p.Server, classLabels[i])
	}
	for code, n := range p.Codes {
		ch <- prometheus.MustNewConstMetric(descCodes, prometheus.CounterValue, float64(n), up, p.Server, strconv.Itoa(code))
	}
	counter(descSent, p.Sent)
	counter(descReceived, p.Received)
	counter(descFails, p.Fails)
	counter(descUnavail, p.Unavail)
	// Milliseconds, as the NGINX Plus API reports them and the exporter
	// passes them on.
	gauge(descHeader, float64(p.HeaderTime.Milliseconds()))
	gauge(descResponse, float64(p.ResponseTime.Milliseconds()))
	// Always sent (zero without health checks), so the series do not appear
	// out of nowhere when a check is configured.
	counter(descHCChecks, p.Health.Checks)
	counter(descHCFails, p.Health.Fails)
	counter(descHCUnhealthy, p.Health.Unhealthy)
}

// mergeByServer folds peers with the same address into one: an upstream may
// list an address twice (nginx allows it), but a Prometheus series must be
// unique per label set, and the exporter's only peer label is the address.
// Counters and active connections add up, the averages are weighted by
// responses, and the state and limit are the first peer's.
func mergeByServer(peers []Peer) []Peer {
	dup := false
	seen := make(map[string]int, len(peers))
	for _, p := range peers {
		if _, ok := seen[p.Server]; ok {
			dup = true
			break
		}
		seen[p.Server] = 0
	}
	if !dup {
		return peers
	}
	clear(seen)
	out := make([]Peer, 0, len(peers))
	for _, p := range peers {
		i, ok := seen[p.Server]
		if !ok {
			seen[p.Server] = len(out)
			p.Codes = cloneCodes(p.Codes)
			out = append(out, p)
			continue
		}
		m := &out[i]
		if n := m.Total + p.Total; n > 0 {
			m.HeaderTime = weighted(m.HeaderTime, m.Total, p.HeaderTime, p.Total)
			m.ResponseTime = weighted(m.ResponseTime, m.Total, p.ResponseTime, p.Total)
		}
		m.Active += p.Active
		m.Requests += p.Requests
		for j, n := range p.Responses {
			m.Responses[j] += n
		}
		for c, n := range p.Codes {
			m.Codes[c] += n
		}
		m.Total += p.Total
		m.Sent += p.Sent
		m.Received += p.Received
		m.Fails += p.Fails
		m.Unavail += p.Unavail
		m.Health.Checks += p.Health.Checks
		m.Health.Fails += p.Health.Fails
		m.Health.Unhealthy += p.Health.Unhealthy
	}
	return out
}

// weighted is the average of two averages over a and b samples.
func weighted(x time.Duration, a uint64, y time.Duration, b uint64) time.Duration {
	return time.Duration((float64(x)*float64(a) + float64(y)*float64(b)) / float64(a+b))
}

func cloneCodes(m map[int]uint64) map[int]uint64 {
	out := make(map[int]uint64, len(m))
	for c, n := range m {
		out[c] = n
	}
	return out
}

// The Go runtime and process collectors are shared by every scrape's
// registry: they keep no per-registry state, and building the Go collector
// (which enumerates runtime/metrics) once saves that work per scrape.
var runtimeCollectors = sync.OnceValue(func() []prometheus.Collector {
	return []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
})

// Registry returns a new registry with the upstream collector and the Go
// runtime and process collectors.
func Registry(o Options) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range append(runtimeCollectors(), NewCollector(o)) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// Handler serves the Prometheus exposition (text, or OpenMetrics when the
// scraper asks for it; gzip when accepted). The registry is built for each
// scrape, so the current generation's upstreams are the ones reported.
func Handler(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reg, err := Registry(o)
		if err != nil {
			// Only a programming error (a duplicate descriptor) gets here.
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			ErrorLog: logger(o.Log),
			// Serve what could be collected rather than nothing: one bad
			// series must not blind the whole dashboard.
			ErrorHandling:     promhttp.ContinueOnError,
			EnableOpenMetrics: true,
		}).ServeHTTP(w, r)
	})
}

// logger adapts Options.Log to promhttp's Logger.
type logger func(msg string)

func (l logger) Println(v ...any) {
	if l != nil {
		l(fmt.Sprint(v...))
	}
}

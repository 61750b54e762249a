package httpd

import (
	"net/http"

	"upstreamd/internal/errlog"
	"upstreamd/internal/metrics"
	"upstreamd/internal/upstream"
)

// servePrometheus answers a `prometheus` location with the Prometheus
// exposition of this generation's upstreams (internal/metrics). The guard
// (allow/deny, auth_basic) has already run. The handler is made per scrape:
// it is a few pointers, and a scrape every few seconds does not need it
// cached; the numbers themselves are read live from the upstreams.
func (r *request) servePrometheus() flow {
	if r.method != http.MethodGet && r.method != http.MethodHead {
		r.w.Header().Set("Allow", "GET, HEAD")
		return flow{kind: flowStatus, status: http.StatusMethodNotAllowed}
	}
	deps := &r.h.deps
	metrics.Handler(metrics.Options{
		Upstreams: func() *upstream.Registry { return deps.Upstreams },
		// The proxy's pool holds an upstream's idle keepalive connections
		// (a nil pool, for an upstream without keepalive, reports 0).
		Keepalive: func(name string) int { return deps.Pools[name].Idle() },
		Log:       func(msg string) { r.logf(errlog.Error, "prometheus: %s", msg) },
	}).ServeHTTP(r.w, r.req)
	return flow{kind: flowDone}
}

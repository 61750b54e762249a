// Package metrics turns the live upstream statistics into numbers an
// operator reads: per-peer and per-upstream snapshots, and a Prometheus
// exposition whose metric names and labels are nginx-prometheus-exporter's
// NGINX Plus ones, so dashboards written for that exporter work unchanged.
//
// Nothing here is on the request path. The proxy counts into the peers'
// atomic counters (upstream.Peer.RecordResponse, Attempt.Finish); this
// package only reads them, once per scrape or API call. docs/metrics.md is
// the user documentation.
package metrics

import (
	"time"

	"upstreamd/internal/upstream"
)

// Peer is one server's statistics at one moment, in NGINX Plus terms.
type Peer struct {
	ID       int    // the REST API id (Peer.UID)
	Server   string // the address connected to
	Name     string // as written in the configuration
	Backup   bool
	Weight   int
	State    string // up, draining, down, unavail, checking, unhealthy
	Active   int64  // requests in flight
	MaxConns int    // 0 = unlimited

	Requests  uint64         // times the peer was picked
	Responses [5]uint64      // responses received, by class: [0] = 1xx ... [4] = 5xx
	Codes     map[int]uint64 // responses received, by status code
	Total     uint64         // every response received
	Sent      uint64         // bytes sent to the peer with those responses' requests
	Received  uint64         // bytes received from the peer
	Fails     uint64         // failed attempts (cumulative)
	Unavail   uint64         // times the peer became unavailable (max_fails)

	// HeaderTime and ResponseTime average the time to the response header
	// and to the whole response over the responses received (0 before the
	// first one).
	HeaderTime, ResponseTime time.Duration
	Selected                 time.Time // last pick; zero when never

	Health upstream.PeerHealth // active health-check counters
}

// Upstream is one upstream's statistics: its peers (primary, then backup),
// the totals over them, and the upstream-wide gauges.
type Upstream struct {
	Name      string
	Peers     []Peer
	Totals    Totals
	Keepalive int // idle keepalive connections
	Zombies   int // removed peers still serving requests
}

// Totals sum the counters of an upstream's current peers. (A removed peer's
// numbers go with it, as in NGINX Plus.)
type Totals struct {
	Active    int64
	Requests  uint64
	Responses [5]uint64
	Total     uint64
	Sent      uint64
	Received  uint64
	Fails     uint64
	Unavail   uint64
}

// PeerOf reads one peer. The counters are loaded one by one without a lock,
// so a request finishing meanwhile may show in some and not yet in others.
func PeerOf(p *upstream.Peer) Peer {
	spec := p.Spec()
	st := p.State()
	stats := p.Stats()
	return Peer{
		ID:           p.UID(),
		Server:       p.Addr(),
		Name:         p.Name(),
		Backup:       p.IsBackup(),
		Weight:       spec.Weight,
		State:        upstream.StatusOf(spec, st),
		Active:       st.Conns,
		MaxConns:     spec.MaxConns,
		Requests:     st.Requests,
		Responses:    stats.Responses,
		Codes:        stats.Codes,
		Total:        stats.Total,
		Sent:         stats.Sent,
		Received:     stats.Received,
		Fails:        st.FailsTotal,
		Unavail:      st.UnavailCount,
		HeaderTime:   stats.HeaderTime,
		ResponseTime: stats.ResponseTime,
		Selected:     st.Selected,
		Health:       st.Health,
	}
}

// UpstreamOf reads every current peer of u; keepalive is the number of idle
// keepalive connections to it (the proxy's pool owns them, not u).
func UpstreamOf(u *upstream.Upstream, keepalive int) Upstream {
	snap := u.Snapshot()
	out := Upstream{Name: u.Name(), Keepalive: keepalive, Zombies: u.Zombies()}
	out.Peers = make([]Peer, 0, len(snap.Primary)+len(snap.Backup))
	for _, p := range snap.All() {
		pp := PeerOf(p)
		out.Totals.add(&pp)
		out.Peers = append(out.Peers, pp)
	}
	return out
}

func (t *Totals) add(p *Peer) {
	t.Active += p.Active
	t.Requests += p.Requests
	for i, n := range p.Responses {
		t.Responses[i] += n
	}
	t.Total += p.Total
	t.Sent += p.Sent
	t.Received += p.Received
	t.Fails += p.Fails
	t.Unavail += p.Unavail
}

// Options say where the live state is.
type Options struct {
	// Upstreams returns the current generation's registry; it is called
	// once per scrape so a reload is seen at once. nil or a nil result is an
	// empty registry.
	Upstreams func() *upstream.Registry
	// Keepalive returns the idle keepalive connections of an upstream; nil
	// reports 0.
	Keepalive func(upstream string) int
	// Log receives collection errors (nil discards them).
	Log func(msg string)
}

// Snapshot reads every upstream of the registry, in configuration order.
func Snapshot(o Options) []Upstream {
	if o.Upstreams == nil {
		return nil
	}
	reg := o.Upstreams()
	if reg == nil {
		return nil
	}
	all := reg.All()
	out := make([]Upstream, 0, len(all))
	for _, u := range all {
		ka := 0
		if o.Keepalive != nil {
			ka = o.Keepalive(u.Name())
		}
		out = append(out, UpstreamOf(u, ka))
	}
	return out
}

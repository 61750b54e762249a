package admin

import (
	"slices"
	"strconv"
	"time"

	"upstreamd/internal/upstream"
)

// upstreamObject is NGINX Plus's "HTTP Upstream": the peers with their
// statistics, then keepalive (the idle keepalive connections to the
// upstream, which the proxy's pool holds), zombies and zone.
func upstreamObject(u *upstream.Upstream, keepalive int) object {
	snap := u.Snapshot()
	peers := make([]object, 0, len(snap.Primary)+len(snap.Backup))
	for _, p := range snap.All() {
		peers = append(peers, peerObject(p))
	}
	return object{
		{"peers", peers},
		{"keepalive", keepalive},
		{"zombies", u.Zombies()},
		// Every upstream here is as dynamic as a Plus upstream with a
		// `zone`; the zone is named after the upstream.
		{"zone", u.Name()},
	}
}

// peerObject is one element of "peers", in the field order of the NGINX Plus
// docs. Fields Plus leaves out when they do not apply are left out: max_conns
// when unlimited, selected when never picked, header_time/response_time
// before the first response, downstart while the peer is up.
func peerObject(p *upstream.Peer) object {
	spec := p.Spec()
	st := p.State()
	stats := p.Stats()
	codes := object{}
	for _, c := range sortedCodes(stats.Codes) {
		codes = append(codes, member{strconv.Itoa(c), stats.Codes[c]})
	}
	o := object{
		{"id", p.UID()},
		{"server", p.Addr()},
		{"name", p.Name()},
		{"backup", p.IsBackup()},
		{"weight", spec.Weight},
		{"state", upstream.StatusOf(spec, st)},
		{"active", st.Conns},
	}
	if spec.MaxConns > 0 {
		o = append(o, member{"max_conns", spec.MaxConns})
	}
	o = append(o,
		member{"requests", st.Requests},
		member{"responses", object{
			{"1xx", stats.Responses[0]},
			{"2xx", stats.Responses[1]},
			{"3xx", stats.Responses[2]},
			{"4xx", stats.Responses[3]},
			{"5xx", stats.Responses[4]},
			{"codes", codes},
			{"total", stats.Total},
		}},
		member{"sent", stats.Sent},
		member{"received", stats.Received},
		member{"fails", st.FailsTotal},
		member{"unavail", st.UnavailCount},
		member{"health_checks", healthObject(st.Health)},
		member{"downtime", st.Downtime.Milliseconds()},
	)
	if !st.DownStart.IsZero() {
		o = append(o, member{"downstart", isoTime(st.DownStart)})
	}
	if !st.Selected.IsZero() {
		o = append(o, member{"selected", isoTime(st.Selected)})
	}
	if stats.Total > 0 {
		o = append(o,
			member{"header_time", stats.HeaderTime.Milliseconds()},
			member{"response_time", stats.ResponseTime.Milliseconds()})
	}
	return o
}

// healthObject is a peer's "health_checks": the active health-check
// counters, and last_passed once a check ran on the peer (NGINX Plus leaves
// it out before).
func healthObject(h upstream.PeerHealth) object {
	o := object{{"checks", h.Checks}, {"fails", h.Fails}, {"unhealthy", h.Unhealthy}}
	if h.Probed {
		o = append(o, member{"last_passed", h.LastPassed})
	}
	return o
}

// serverObject is NGINX Plus's "HTTP Upstream Server": the parameters that
// can be configured at run time. drain appears only when set, as in the
// NGINX Plus examples.
func serverObject(p *upstream.Peer) object {
	spec := p.Spec()
	o := object{
		{"id", p.UID()},
		{"server", p.Addr()},
		{"weight", spec.Weight},
		{"max_conns", spec.MaxConns},
		{"max_fails", spec.MaxFails},
		{"fail_timeout", seconds(spec.FailTimeout)},
		{"slow_start", seconds(spec.SlowStart)},
		{"route", spec.Route},
		{"backup", spec.Backup},
		{"down", spec.Down},
	}
	if spec.Drain {
		o = append(o, member{"drain", true})
	}
	return o
}

// serverList is the servers array: primary servers, then backup ones, each
// in id order.
func serverList(s *upstream.Snapshot, fields *fieldSet) []object {
	out := make([]object, 0, len(s.Primary)+len(s.Backup))
	for _, p := range s.All() {
		out = append(out, fields.filter(serverObject(p)))
	}
	return out
}

// seconds formats a duration as nginx prints these parameters: whole
// seconds with the unit ("10s").
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

func sortedCodes(m map[int]uint64) []int {
	out := make([]int, 0, len(m))
	for c := range m {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

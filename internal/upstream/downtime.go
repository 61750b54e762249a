package upstream

import "time"

// Down time (NGINX Plus "downtime" and "downstart"): the time a peer spends
// "unavail", "checking" or "unhealthy" — the states Status reports, so a
// peer marked down or draining is not counting down time.
//
// Picks never touch it. A down period begins and ends at events, all of
// which hold Upstream.mu: a failure reaching max_fails (Finish), the
// max_fails probe pick (markChecked), a success clearing fails, a health
// verdict changing between ok and not ok, a runtime change of the peer. The
// one silent transition is fail_timeout expiring: its end time is known
// ((checked + fail_timeout + 1 s), as unavailable tests whole seconds), so it
// is computed when the period is next looked at (downEnd).

// isDown reports whether Status would say unavail, checking or unhealthy.
// Called with Upstream.mu held.
func (p *Peer) isDown(now int64) bool {
	return !p.off() && (!p.st.hc.ok() || p.unavailable(now))
}

// downEnd is when a down period that is over ended: an operator's down or
// drain at once (nowMs, the event), otherwise the later of the health checks
// and max_fails letting the peer go, within [downStart, nowMs].
func (p *Peer) downEnd(nowMs int64) int64 {
	st := p.st
	if p.off() {
		return nowMs
	}
	unavailEnd := st.failsUpAt
	if p.spec.MaxFails > 0 && st.fails >= p.spec.MaxFails {
		unavailEnd = (st.checked + p.failTimeout + 1) * 1000
	}
	return min(max(st.hcUpAt, unavailEnd, st.downStart), nowMs)
}

// noteDown records a transition, if there was one, at nowMs (now in
// seconds). p must carry the peer's current spec. Called with Upstream.mu
// held, after the event changed the state.
func (p *Peer) noteDown(nowMs, now int64) {
	st := p.st
	down := p.isDown(now)
	switch {
	case down && st.downStart == 0:
		st.downStart = nowMs
	case !down && st.downStart != 0:
		st.downTotal += p.downEnd(nowMs) - st.downStart
		st.downStart = 0
	}
}

// downtime returns the total down time as of nowMs and the start of the
// current down period (0 when none), without recording anything. Called
// with Upstream.mu held.
func (p *Peer) downtime(nowMs, now int64) (time.Duration, int64) {
	st := p.st
	total, start := st.downTotal, st.downStart
	if start != 0 {
		if p.isDown(now) {
			total += nowMs - start
		} else {
			total += p.downEnd(nowMs) - start
			start = 0
		}
	}
	return time.Duration(total) * time.Millisecond, start
}

// noteDownCurrent is noteDown for the peer of st in the current snapshot
// (callers may hold a Peer of an older one, whose spec may be stale). A
// removed peer's down time no longer matters. Called with Upstream.mu held.
func (u *Upstream) noteDownCurrent(uid int, nowMs, now int64) {
	if p, err := u.snap.Load().FindUID(uid); err == nil {
		p.noteDown(nowMs, now)
	}
}

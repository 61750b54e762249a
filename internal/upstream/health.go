package upstream

import (
	"fmt"
	"sync/atomic"
)

// Active health checks (NGINX Plus's health_check) in the live peer model.
//
// The checker itself lives in internal/health; this file holds the verdicts
// the balancers act on. Every health check of an upstream (one
// `health_check` directive) has a number i in [0, MaxHealthChecks) and owns
// bit i of two masks kept per peer in one atomic word:
//
//   - bad: check i considers the peer unhealthy;
//   - pending: check i is mandatory and has not yet produced a result for
//     the peer (NGINX Plus's "checking" state).
//
// A peer takes traffic only while the word is zero — "a single failure of
// any check makes the server unhealthy", as NGINX Plus documents it. The
// word lives in the liveState, so verdicts survive snapshot swaps, and it is
// read without the balancer lock (one atomic load in usable), so a checker
// never contends with picks.
//
// Manual state wins: down and drain are tested before health (Status and
// usable), and nothing a check does changes them.

// MaxHealthChecks is the number of health checks one upstream may have.
const MaxHealthChecks = 32

// HealthState is a peer's health as the active checks see it.
type HealthState int

const (
	// HealthNone: the upstream has no active health check.
	HealthNone HealthState = iota
	// HealthHealthy: every check passes the peer (or has not failed it yet).
	HealthHealthy
	// HealthUnhealthy: at least one check failed the peer.
	HealthUnhealthy
	// HealthChecking: a mandatory check has not run on the peer yet.
	HealthChecking
)

func (h HealthState) String() string {
	switch h {
	case HealthNone:
		return "none"
	case HealthHealthy:
		return "healthy"
	case HealthUnhealthy:
		return "unhealthy"
	case HealthChecking:
		return "checking"
	}
	return fmt.Sprintf("HealthState(%d)", int(h))
}

// healthState is a peer's health-check state: the verdict word and the
// NGINX Plus counters.
type healthState struct {
	// word: bits 0..31 are the bad mask, bits 32..63 the pending mask.
	word      atomic.Uint64
	checks    atomic.Uint64 // probes made
	fails     atomic.Uint64 // probes failed
	unhealthy atomic.Uint64 // times the peer became unhealthy
	last      atomic.Int32  // 0 never probed, 1 last probe passed, 2 failed
}

func (h *healthState) ok() bool { return h.word.Load() == 0 }

func stateOf(word uint64) HealthState {
	switch {
	case uint32(word) != 0:
		return HealthUnhealthy
	case word>>32 != 0:
		return HealthChecking
	}
	return HealthHealthy
}

// PeerHealth is a copy of a peer's health-check state.
type PeerHealth struct {
	State HealthState
	// Checks, Fails and Unhealthy are NGINX Plus's health_checks counters:
	// probes made, probes failed, and times the peer became unhealthy.
	Checks, Fails, Unhealthy uint64
	// LastPassed is the result of the last probe; meaningful only when
	// Probed.
	LastPassed, Probed bool
}

// Health returns the peer's health-check state (State is HealthNone when
// the upstream has no active health check).
func (p *Peer) Health() PeerHealth {
	h := &p.st.hc
	ph := PeerHealth{
		State:     HealthNone,
		Checks:    h.checks.Load(),
		Fails:     h.fails.Load(),
		Unhealthy: h.unhealthy.Load(),
	}
	if p.u.hcCount.Load() > 0 {
		ph.State = stateOf(h.word.Load())
	}
	switch h.last.Load() {
	case 1:
		ph.LastPassed, ph.Probed = true, true
	case 2:
		ph.Probed = true
	}
	return ph
}

// SetHealthChecks declares the upstream's active health checks: n checks,
// numbered 0..n-1, of which those whose bit is set in mandatory hold every
// peer — current ones and any added later — in "checking" until their first
// result. It is meant to be called once, before the upstream serves (a
// later call replaces the declaration and puts every peer back in checking
// for the mandatory checks, clearing all verdicts).
func (u *Upstream) SetHealthChecks(n int, mandatory uint64) error {
	if n < 0 || n > MaxHealthChecks {
		return fmt.Errorf("too many health checks in upstream \"%s\" (%d, at most %d)", u.name, n, MaxHealthChecks)
	}
	mandatory &= 1<<n - 1
	// Hold the writer lock so no peer is added between publishing the mask
	// and setting the current peers: newPeer reads the mask under it.
	u.wmu.Lock()
	defer u.wmu.Unlock()
	u.hcMandatory.Store(mandatory << 32)
	u.hcCount.Store(int32(n))
	u.hcGen.Add(1)
	for _, p := range u.snap.Load().All() {
		p.st.hc.word.Store(mandatory << 32)
	}
	u.hcGen.Add(1)
	// Verdicts were cleared and mandatory checks hold every peer again.
	nowT := u.now()
	u.mu.Lock()
	for _, p := range u.snap.Load().All() {
		if p.st.hc.ok() {
			p.st.hcUpAt = nowT.UnixMilli()
		}
		p.noteDown(nowT.UnixMilli(), nowT.Unix())
	}
	u.mu.Unlock()
	return nil
}

// HealthChecks returns the number of active health checks declared.
func (u *Upstream) HealthChecks() int { return int(u.hcCount.Load()) }

// CheckPending reports whether check i has yet to produce a result for the
// peer (a mandatory check's "checking" state).
func (p *Peer) CheckPending(i int) bool {
	return p.st.hc.word.Load()>>32&(1<<i) != 0
}

// CountCheck accounts one probe of the peer in the health_checks counters.
func (p *Peer) CountCheck(passed bool) {
	h := &p.st.hc
	h.checks.Add(1)
	if passed {
		h.last.Store(1)
	} else {
		h.fails.Add(1)
		h.last.Store(2)
	}
}

// SetCheckVerdict records check i's verdict on the peer and ends its
// checking state for i. It returns the peer's health before and after, so
// the caller can log transitions; the peer's "unhealthy" counter counts the
// transitions into HealthUnhealthy. The very next pick sees the verdict.
func (p *Peer) SetCheckVerdict(i int, healthy bool) (before, after HealthState) {
	h := &p.st.hc
	for {
		old := h.word.Load()
		w := old &^ (1 << (32 + i))
		if healthy {
			w &^= 1 << i
		} else {
			w |= 1 << i
		}
		// A peer the fast round robin counts as usable stops being so:
		// bump hcGen before (a pick that saw the old value happened before
		// the verdict) and after (a steady-state check that read the old
		// word is invalidated).
		bad := old == 0 && w != 0
		if bad {
			p.u.hcGen.Add(1)
		}
		if h.word.CompareAndSwap(old, w) {
			if bad {
				p.u.hcGen.Add(1)
			}
			if (old == 0) != (w == 0) {
				// Between ok and not ok: a down period begins or ends
				// (downtime.go). Rare, so taking the balancer lock is fine.
				u := p.u
				nowT := u.now()
				u.mu.Lock()
				if w == 0 {
					p.st.hcUpAt = nowT.UnixMilli()
				}
				u.noteDownCurrent(p.uid, nowT.UnixMilli(), nowT.Unix())
				u.mu.Unlock()
			}
			before, after = stateOf(old), stateOf(w)
			if after == HealthUnhealthy && before != HealthUnhealthy {
				h.unhealthy.Add(1)
			}
			return before, after
		}
	}
}

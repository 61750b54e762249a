package upstream

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// srv builds a spec with nginx defaults; the name doubles as the address.
func srv(name string, mods ...func(*ServerSpec)) ServerSpec {
	s := DefaultSpec(name, name)
	for _, m := range mods {
		m(&s)
	}
	return s
}

func weight(w int) func(*ServerSpec)   { return func(s *ServerSpec) { s.Weight = w } }
func maxFails(n int) func(*ServerSpec) { return func(s *ServerSpec) { s.MaxFails = n } }
func maxConns(n int) func(*ServerSpec) { return func(s *ServerSpec) { s.MaxConns = n } }
func failTimeout(d time.Duration) func(*ServerSpec) {
	return func(s *ServerSpec) { s.FailTimeout = d }
}
func backup(s *ServerSpec) { s.Backup = true }
func down(s *ServerSpec)   { s.Down = true }

// weighted returns specs named a, b, c, ... with the given weights.
func weighted(ws ...int) []ServerSpec {
	out := make([]ServerSpec, len(ws))
	for i, w := range ws {
		out[i] = srv(string(rune('a'+i)), weight(w))
	}
	return out
}

type testLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *testLog) Log(level, msg string) {
	l.mu.Lock()
	l.lines = append(l.lines, level+": "+msg)
	l.mu.Unlock()
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func mustNew(t testing.TB, opts Options, specs ...ServerSpec) *Upstream {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "backend"
	}
	u, err := New(opts, specs)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return u
}

func seeded(seed uint64) func() uint64 {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return r.Uint64
}

// pickOK runs one request that succeeds on its first peer.
func pickOK(t testing.TB, u *Upstream, r Request) string {
	t.Helper()
	a := u.Begin(r)
	p, err := a.Next()
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	a.Finish(p, false)
	return p.Name()
}

// seq runs n successful single-try requests and returns the peer names.
func seq(t testing.TB, u *Upstream, n int) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(pickOK(t, u, Request{}))
	}
	return b.String()
}

// peerByName finds a peer in the current snapshot (primary then backup).
func peerByName(t testing.TB, u *Upstream, name string) *Peer {
	t.Helper()
	s := u.Snapshot()
	for _, p := range append(append([]*Peer{}, s.Primary...), s.Backup...) {
		if p.Name() == name {
			return p
		}
	}
	t.Fatalf("no peer %q", name)
	return nil
}

package app

import (
	"fmt"
	"net"
	"strings"
	"sync"

	"upstreamd/internal/config"
	"upstreamd/internal/errlog"
	"upstreamd/internal/statefile"
	"upstreamd/internal/upstream"
)

// stateSpecs loads an upstream's servers from its `state` file, resolving
// names afresh as NGINX Plus does on start (the file keeps names as written).
func stateSpecs(u *config.Upstream, resolve func(string) ([]string, error)) ([]upstream.ServerSpec, error) {
	servers, err := statefile.Read(u.StateFile)
	if err != nil {
		return nil, err
	}
	var specs []upstream.ServerSpec
	for _, s := range servers {
		addrs, err := resolveAddr(s.Addr, resolve)
		if err != nil {
			return nil, fmt.Errorf("%s in state file %s of upstream \"%s\"", err, u.StateFile, u.Name)
		}
		for _, a := range addrs {
			specs = append(specs, upstream.ServerSpec{
				Name: s.Addr, Addr: a, Weight: s.Weight, MaxFails: s.MaxFails, FailTimeout: s.FailTimeout,
				MaxConns: s.MaxConns, Backup: s.Backup, Down: s.Down, Drain: s.Drain, SlowStart: s.SlowStart,
			})
		}
	}
	return specs, nil
}

// resolveAddr turns "host:port" into "ip:port" addresses (port 80 when
// none is written, as for `server` lines).
func resolveAddr(name string, resolve func(string) ([]string, error)) ([]string, error) {
	host, port, err := net.SplitHostPort(name)
	if err != nil {
		host, port = strings.Trim(name, "[]"), "80"
	}
	if ip := net.ParseIP(host); ip != nil {
		return []string{net.JoinHostPort(ip.String(), port)}, nil
	}
	if resolve == nil {
		resolve = net.LookupHost
	}
	ips, err := resolve(host)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("host not found in upstream \"%s\"", name)
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip, port))
	}
	return out, nil
}

// stateServers is what the state file holds for a snapshot: one line per
// server as added (a name that resolved to several peers is one line).
func stateServers(s *upstream.Snapshot) []statefile.Server {
	var out []statefile.Server
	seen := map[int]bool{}
	for _, p := range s.All() {
		if seen[p.Group()] {
			continue
		}
		seen[p.Group()] = true
		sp := p.Spec()
		out = append(out, statefile.Server{
			Addr: sp.Name, Weight: sp.Weight, MaxFails: sp.MaxFails, FailTimeout: sp.FailTimeout,
			MaxConns: sp.MaxConns, SlowStart: sp.SlowStart, Backup: sp.Backup, Down: sp.Down, Drain: sp.Drain,
		})
	}
	return out
}

// stateSaver writes one upstream's `state` file after every change.
type stateSaver struct {
	path     string
	upstream string
	log      *errlog.Logger

	mu      sync.Mutex
	lastErr error
}

// save runs from upstream's OnPublish, under that upstream's writer lock, so
// saves happen in the order of the changes and before the change is
// reported as done.
func (s *stateSaver) save(snap *upstream.Snapshot) {
	err := statefile.Write(s.path, stateServers(snap))
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
	if err != nil {
		s.log.Logf(errlog.Alert, 0, "could not save state of upstream \"%s\" to %s: %v", s.upstream, s.path, err)
	}
}

func (s *stateSaver) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

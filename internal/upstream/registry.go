package upstream

import (
	"fmt"
	"sync"
)

// Registry holds all upstreams of a config generation, in config order.
// It is safe for concurrent use.
type Registry struct {
	mu     sync.RWMutex
	byName map[string]*Upstream
	order  []*Upstream
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byName: make(map[string]*Upstream)}
}

// Add registers u; it fails with `duplicate upstream "NAME"` if an upstream
// with the same name is already registered.
func (r *Registry) Add(u *Upstream) error {
	if u == nil {
		return fmt.Errorf("nil upstream")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byName[u.name]; ok {
		return fmt.Errorf("duplicate upstream %q", u.name)
	}
	r.byName[u.name] = u
	r.order = append(r.order, u)
	return nil
}

// Get returns the upstream with the given name, or nil.
func (r *Registry) Get(name string) *Upstream {
	r.mu.RLock()
	u := r.byName[name]
	r.mu.RUnlock()
	return u
}

// Names returns the upstream names in registration (config) order.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, len(r.order))
	for i, u := range r.order {
		names[i] = u.name
	}
	return names
}

// All returns the upstreams in registration (config) order.
func (r *Registry) All() []*Upstream {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]*Upstream(nil), r.order...)
}

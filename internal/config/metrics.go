package config

import (
	"upstreamd/internal/nginxconf"
)

// `prometheus;` makes a location serve the Prometheus metrics (the content
// handler is internal/metrics, served by internal/httpd). It is a content
// handler, so, like proxy_pass and api, it belongs to its own location and
// is not inherited by nested ones.
//
// The handler only marks the level (level.seen, the same set `once` uses
// for duplicates); finishMetrics, run after finishHTTP has merged every
// location's Settings, copies the mark to Settings.Prometheus. Setting it
// any earlier would be overwritten by that merge.

func init() {
	def("prometheus", cLocation, 0, 0, hPrometheus)
}

const prometheusKey = "prometheus"

func hPrometheus(b *builder, s *scope, d *nginxconf.Directive) error {
	return s.lvl.once(d, prometheusKey)
}

// finishMetrics sets Settings.Prometheus on every location with the
// directive. A location with another content handler as well is refused:
// which one would answer is a guess nobody should have to make.
func (b *builder) finishMetrics() error {
	if b.http == nil {
		return nil
	}
	for _, sb := range b.http.servers {
		if err := markPrometheus(sb.locs); err != nil {
			return err
		}
	}
	return nil
}

func markPrometheus(lbs []*locB) error {
	for _, lb := range lbs {
		if lb.lvl.seen[prometheusKey] {
			loc := lb.loc
			other := ""
			switch {
			case loc.Proxy != nil:
				other = "proxy_pass"
			case loc.Content != nil:
				other = "content_by_lua"
			case loc.API != nil:
				other = "api"
			case loc.Return != nil:
				other = "return"
			}
			if other != "" {
				return &nginxconf.Error{
					Msg:  `"prometheus" cannot be combined with "` + other + `" in location "` + loc.Pattern + `"`,
					File: loc.File, Line: loc.Line,
				}
			}
			loc.Prometheus = true
		}
		if err := markPrometheus(lb.children); err != nil {
			return err
		}
	}
	return nil
}

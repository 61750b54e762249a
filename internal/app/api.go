package app

import (
	"net/http"
	"os"
	"runtime"

	"upstreamd/internal/admin"
	"upstreamd/internal/config"
	"upstreamd/internal/httpd"
	"upstreamd/internal/upstream"
)

// apiHandler builds the REST API for an `api` location of this generation.
func (g *Generation) apiHandler(api *config.API, prefix string) http.Handler {
	return admin.New(admin.Options{
		Upstreams: func() *upstream.Registry { return g.Upstreams },
		Write:     api.Write,
		Keepalive: func(name string) int {
			if p := g.pools[name]; p != nil {
				return p.Idle()
			}
			return 0
		},
		Prefix: prefix,
		Nginx: func() admin.NginxInfo {
			return admin.NginxInfo{
				Version:       httpd.NginxVersion,
				Build:         httpd.ServerHeader + " " + runtime.Version(),
				Generation:    g.number,
				LoadTimestamp: g.loadedAt,
				PID:           os.Getpid(),
				PPID:          os.Getppid(),
			}
		},
		// The upstream's OnPublish already wrote the file; report how that
		// went so a failed save answers 500 rather than success.
		OnChange: func(name string) error {
			if s := g.savers[name]; s != nil {
				return s.err()
			}
			return nil
		},
	})
}

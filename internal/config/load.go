package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"upstreamd/internal/nginxconf"
)

// DefaultPrefix and DefaultConfFile are nginx's compiled-in defaults, used
// when Options leaves Prefix or ConfFile empty.
const (
	DefaultPrefix   = "/usr/local/nginx"
	DefaultConfFile = "conf/nginx.conf"
)

// Options says where the configuration is and how to build it.
type Options struct {
	Prefix   string // -p, default DefaultPrefix; relative paths in the config resolve under it
	ConfFile string // -c, relative to Prefix if not absolute; default DefaultConfFile
	Globals  string // -g 'directives;': extra main-context directives (nginx -g), applied before the file's; errors say "in command line"
	// Resolve looks a host name up, returning its addresses (IP literals, in
	// the resolver's order). nil means net.DefaultResolver.LookupHost.
	Resolve func(host string) ([]string, error)
}

func (o Options) prefix() string {
	p := o.Prefix
	if p == "" {
		p = DefaultPrefix
	}
	if !filepath.IsAbs(p) {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
	}
	return filepath.Clean(p)
}

func (o Options) confFile(prefix string) string {
	c := o.ConfFile
	if c == "" {
		c = DefaultConfFile
	}
	if !filepath.IsAbs(c) {
		c = filepath.Join(prefix, c)
	}
	return filepath.Clean(c)
}

// Load reads and parses the configuration file named by opts, then builds it.
func Load(opts Options) (*Config, error) {
	tree, err := nginxconf.ParseFile(opts.confFile(opts.prefix()))
	if err != nil {
		return nil, err
	}
	return Build(opts, tree)
}

// Build turns a parsed tree into a validated Config. Errors are
// *nginxconf.Error worded as nginx words them, positioned at the offending
// directive; the caller prints "upstreamd: [emerg] " + err.Error().
//
// Where upstreamd knowingly differs from nginx:
//   - Directives it does not implement (if, rewrite, set, try_files, alias,
//     gzip, ssl_*, ...) are `unknown directive`, never ignored. A few
//     tuning knobs with no meaning here are accepted and ignored: daemon,
//     master_process, worker_rlimit_nofile, accept_mutex, sendfile,
//     tcp_nopush, tcp_nodelay, types_hash_*, server_names_hash_*.
//   - Regexes are Go's RE2, not PCRE (no look-around or backreferences);
//     a pattern RE2 rejects fails with nginx's pcre_compile() wording.
//   - proxy_pass with variables, https:// upstreams, unix: sockets, ssl and
//     http2 listens, syslog: logs and gzip'ed access logs are refused.
//   - worker_processes 0 is refused (0 is how Config says "auto").
//   - A bare "stderr" is accepted as an access_log path (nginx would open a
//     file named PREFIX/stderr).
//   - The missing-events error has no position, as in nginx.
func Build(opts Options, tree []*nginxconf.Directive) (*Config, error) {
	prefix := opts.prefix()
	b := &builder{
		prefix:   prefix,
		confFile: opts.confFile(prefix),
		resolve:  opts.Resolve,
		once:     map[string]bool{},
	}
	if b.resolve == nil {
		b.resolve = func(host string) ([]string, error) {
			return netLookupHost(context.Background(), host)
		}
	}
	if strings.TrimSpace(opts.Globals) != "" {
		g, err := nginxconf.ParseParam(opts.Globals, filepath.Dir(b.confFile))
		if err != nil {
			return nil, err
		}
		tree = append(g[:len(g):len(g)], tree...)
	}
	return b.build(tree)
}

// getuid decides the default listen port (80 for root, 8000 otherwise, as
// nginx does); a variable so tests can pretend.
var getuid = os.Getuid

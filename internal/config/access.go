package config

import (
	"path/filepath"
	"strings"

	"upstreamd/internal/access"
	"upstreamd/internal/nginxconf"
)

// The directives that guard a location (ngx_http_access_module,
// ngx_http_auth_basic_module, satisfy), the NGINX Plus `api` handler and
// the upstream `state` file.
func registerAccess() {
	def("allow", cHSL, 1, 1, hAccessRule)
	def("deny", cHSL, 1, 1, hAccessRule)
	def("auth_basic", cHSL, 1, 1, hAuthBasic)
	def("auth_basic_user_file", cHSL, 1, 1, hAuthBasicUserFile)
	def("satisfy", cHSL, 1, 1, hSatisfy)
	def("api", cLocation, 0, 1, hAPI)
	def("state", cUpstream, 1, 1, hState)
}

// API is the `api [write=on|off]` content handler of a location.
type API struct {
	Write bool
}

// Guard is what a location requires of a client before its handlers run.
type Guard struct {
	Rules        access.Rules // allow/deny in order; empty = everyone
	AuthBasic    string       // realm; "" or "off" = no authentication
	UserFile     string       // absolute path of auth_basic_user_file
	Satisfy      access.Satisfy
	UserFileFile string // where auth_basic_user_file was set, for errors
	UserFileLine int
}

// Active reports whether the guard checks anything.
func (g *Guard) Active() bool {
	return len(g.Rules) > 0 || (g.AuthBasic != "" && g.AuthBasic != access.RealmOff)
}

func hAccessRule(b *builder, s *scope, d *nginxconf.Directive) error {
	rule, _, err := access.ParseRule(d.Name == "allow", d.Args[0])
	if err != nil {
		return errf(d, "%s", err.Error())
	}
	s.lvl.rules = append(s.lvl.rules, rule)
	return nil
}

func hAuthBasic(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.lvl.once(d, d.Name); err != nil {
		return err
	}
	s.lvl.authBasic = ptr(d.Args[0])
	return nil
}

func hAuthBasicUserFile(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.lvl.once(d, d.Name); err != nil {
		return err
	}
	// nginx resolves this one against the configuration prefix (the
	// directory of nginx.conf), not the server prefix.
	path := d.Args[0]
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(b.confFile), path)
	}
	s.lvl.userFile = ptr(path)
	return nil
}

func hSatisfy(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.lvl.once(d, d.Name); err != nil {
		return err
	}
	v, err := access.ParseSatisfy(d.Args[0])
	if err != nil {
		return errf(d, `invalid value "%s" in "satisfy" directive, it must be "all" or "any"`, d.Args[0])
	}
	s.lvl.satisfy = &v
	return nil
}

func hAPI(b *builder, s *scope, d *nginxconf.Directive) error {
	if s.lvl.api != nil {
		return errDup(d)
	}
	api := &API{}
	if len(d.Args) == 1 {
		v, ok := strings.CutPrefix(d.Args[0], "write=")
		switch {
		case ok && v == "on":
			api.Write = true
		case ok && v == "off":
		default:
			return errInvalidParam(d, d.Args[0])
		}
	}
	s.lvl.api = api
	return nil
}

func hState(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := s.up.once(d); err != nil {
		return err
	}
	path := d.Args[0]
	if !filepath.IsAbs(path) {
		path = filepath.Join(b.prefix, path)
	}
	s.up.u.StateFile = path
	s.up.stateDirective = d
	return nil
}

// mergeGuard applies nginx's inheritance: allow/deny rules and each auth
// setting come from the nearest level that sets them.
func mergeGuard(g Guard, l *level) Guard {
	if l.rules != nil {
		g.Rules = l.rules
	}
	set(&g.AuthBasic, l.authBasic)
	set(&g.UserFile, l.userFile)
	set(&g.Satisfy, l.satisfy)
	return g
}

package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"upstreamd/internal/nginxconf"
)

// ctxSet is the set of places a directive may appear in (nginx's
// NGX_MAIN_CONF, NGX_EVENT_CONF, NGX_HTTP_MAIN_CONF, ...).
type ctxSet uint16

const (
	cMain ctxSet = 1 << iota
	cEvents
	cHTTP
	cServer
	cLocation
	cUpstream
	cTypes // inside types{}: every line is `TYPE EXT...;`

	cHSL = cHTTP | cServer | cLocation
)

// handler applies one directive whose context, block-ness and argument count
// have already been checked.
type handler func(b *builder, s *scope, d *nginxconf.Directive) error

// spec describes one directive in one set of contexts (a name may have
// several: `server` is a block in http and a line in upstream).
type spec struct {
	ctx      ctxSet
	block    bool
	min, max int // argument count; max < 0: no upper limit
	fn       handler
}

var directives = map[string][]*spec{}

func def(name string, ctx ctxSet, min, max int, fn handler) {
	directives[name] = append(directives[name], &spec{ctx: ctx, min: min, max: max, fn: fn})
}

func defBlock(name string, ctx ctxSet, min, max int, fn handler) {
	directives[name] = append(directives[name], &spec{ctx: ctx, block: true, min: min, max: max, fn: fn})
}

// scope is where the walk currently is.
type scope struct {
	ctx   ctxSet
	lvl   *level // http, server, location
	srv   *serverB
	loc   *locB
	up    *upstreamB
	types map[string]string
}

type builder struct {
	prefix   string
	confFile string
	resolve  func(string) ([]string, error)

	cfg    *Config
	once   map[string]bool // main/events directives already seen
	events bool
	http   *httpB
	// healthB collects health_check and match until the http block is
	// complete (see finishHealth).
	healthB *healthB
}

func (b *builder) build(tree []*nginxconf.Directive) (*Config, error) {
	b.cfg = &Config{
		Prefix:            b.prefix,
		ConfFile:          b.confFile,
		WorkerProcesses:   1,
		PIDFile:           filepath.Join(b.prefix, "logs/nginx.pid"),
		WorkerConnections: 512,
	}
	if err := b.walk(&scope{ctx: cMain}, tree); err != nil {
		return nil, err
	}
	if !b.events {
		return nil, &nginxconf.Error{Msg: `no "events" section in configuration`}
	}
	if len(b.cfg.ErrorLogs) == 0 {
		b.cfg.ErrorLogs = []ErrorLog{{Path: filepath.Join(b.prefix, "logs/error.log"), Level: "error"}}
	}
	if b.http != nil {
		if err := b.finishHTTP(); err != nil {
			return nil, err
		}
		if err := b.finishHealth(); err != nil {
			return nil, err
		}
		if err := b.finishMetrics(); err != nil {
			return nil, err
		}
	}
	return b.cfg, nil
}

func (b *builder) walk(s *scope, dirs []*nginxconf.Directive) error {
	for _, d := range dirs {
		if err := b.directive(s, d); err != nil {
			return err
		}
	}
	return nil
}

// directive does what ngx_conf_handler does: find the directive, check its
// context, its block and its argument count, then run it.
func (b *builder) directive(s *scope, d *nginxconf.Directive) error {
	if s.ctx == cTypes {
		return typeLine(s, d)
	}
	specs, ok := directives[d.Name]
	if !ok {
		return errf(d, `unknown directive "%s"`, d.Name)
	}
	var sp *spec
	for _, c := range specs {
		if c.ctx&s.ctx != 0 {
			sp = c
			break
		}
	}
	if sp == nil {
		return errf(d, `"%s" directive is not allowed here`, d.Name)
	}
	if !sp.block && d.IsBlock {
		return errf(d, `directive "%s" is not terminated by ";"`, d.Name)
	}
	if sp.block && !d.IsBlock {
		return errf(d, `directive "%s" has no opening "{"`, d.Name)
	}
	if n := len(d.Args); n < sp.min || (sp.max >= 0 && n > sp.max) {
		return errf(d, `invalid number of arguments in "%s" directive`, d.Name)
	}
	return sp.fn(b, s, d)
}

func errf(d *nginxconf.Directive, format string, args ...any) *nginxconf.Error {
	return &nginxconf.Error{Msg: fmt.Sprintf(format, args...), File: d.File, Line: d.Line}
}

// The wordings nginx's ngx_conf_set_*_slot handlers return, prefixed by
// ngx_conf_handler with `"NAME" directive `.
func errDup(d *nginxconf.Directive) error { return errf(d, `"%s" directive is duplicate`, d.Name) }
func errInvalidValue(d *nginxconf.Directive) error {
	return errf(d, `"%s" directive invalid value`, d.Name)
}
func errInvalidNumber(d *nginxconf.Directive) error {
	return errf(d, `"%s" directive invalid number`, d.Name)
}
func errInvalidParam(d *nginxconf.Directive, p string) error {
	return errf(d, `invalid parameter "%s"`, p)
}

// full is ngx_conf_full_name: a relative path is taken from the prefix.
func (b *builder) full(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(b.prefix, p)
}

// flag parses on|off like ngx_conf_set_flag_slot (case-insensitively).
func flag(d *nginxconf.Directive) (bool, error) {
	switch v := d.Args[0]; {
	case strings.EqualFold(v, "on"):
		return true, nil
	case strings.EqualFold(v, "off"):
		return false, nil
	default:
		return false, errf(d, `invalid value "%s" in "%s" directive, it must be "on" or "off"`, v, d.Name)
	}
}

// hTimeout is the handler of a timeout directive that may appear once per
// level, stored in the field of the level that field selects.
func hTimeout(field func(*level) **time.Duration) handler {
	return func(b *builder, s *scope, d *nginxconf.Directive) error {
		if err := s.lvl.once(d, d.Name); err != nil {
			return err
		}
		t, err := msec(d, d.Args[0])
		if err != nil {
			return err
		}
		*field(s.lvl) = &t
		return nil
	}
}

func msec(d *nginxconf.Directive, v string) (time.Duration, error) {
	t, err := ParseDuration(v)
	if err != nil {
		return 0, errInvalidValue(d)
	}
	return t, nil
}

func size(d *nginxconf.Directive, v string) (int64, error) {
	n, err := ParseSize(v)
	if err != nil {
		return 0, errInvalidValue(d)
	}
	return n, nil
}

func num(d *nginxconf.Directive, v string) (int, error) {
	n, ok := atoiInt(v)
	if !ok {
		return 0, errInvalidNumber(d)
	}
	return n, nil
}

// mainOnce reports "is duplicate" for main/events directives seen before.
func (b *builder) mainOnce(d *nginxconf.Directive) error {
	if b.once[d.Name] {
		return errDup(d)
	}
	b.once[d.Name] = true
	return nil
}

func init() {
	// main
	def("worker_processes", cMain, 1, 1, hWorkerProcesses)
	def("error_log", cMain|cHSL, 1, -1, hErrorLog)
	def("pid", cMain, 1, 1, hPID)
	defBlock("events", cMain, 0, 0, hEvents)
	defBlock("http", cMain, 0, 0, hHTTP)
	// Accepted for compatibility with stock configurations; they have no
	// effect on a single Go process.
	def("daemon", cMain, 1, 1, hMainFlagNoop)
	def("master_process", cMain, 1, 1, hMainFlagNoop)
	def("worker_rlimit_nofile", cMain, 1, 1, hMainNumNoop)

	// events
	def("worker_connections", cEvents, 1, 1, hWorkerConnections)
	def("use", cEvents, 1, 1, hUse)
	def("multi_accept", cEvents, 1, 1, hMultiAccept)
	def("accept_mutex", cEvents, 1, 1, hMainFlagNoop)

	registerHTTP()
	registerUpstream()
	registerAccess()
	registerLua()
}

func hWorkerProcesses(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := b.mainOnce(d); err != nil {
		return err
	}
	if d.Args[0] == "auto" {
		b.cfg.WorkerProcesses = 0
		return nil
	}
	n, ok := atoiInt(d.Args[0])
	if !ok || n == 0 {
		return errInvalidValue(d)
	}
	b.cfg.WorkerProcesses = n
	return nil
}

var logLevels = map[string]bool{
	"emerg": true, "alert": true, "crit": true, "error": true,
	"warn": true, "notice": true, "info": true, "debug": true,
}

var debugLevels = map[string]bool{
	"debug_core": true, "debug_alloc": true, "debug_mutex": true, "debug_event": true,
	"debug_http": true, "debug_mail": true, "debug_stream": true,
}

// hErrorLog handles error_log in every context; only the main ones are kept.
func hErrorLog(b *builder, s *scope, d *nginxconf.Directive) error {
	path := d.Args[0]
	if strings.HasPrefix(path, "syslog:") || strings.HasPrefix(path, "memory:") {
		return errInvalidParam(d, path)
	}
	if path != "stderr" {
		path = b.full(path)
	}
	level := ""
	debug := false
	for _, a := range d.Args[1:] {
		switch {
		case logLevels[a]:
			if level != "" || debug {
				return errf(d, `duplicate log level "%s"`, a)
			}
			level = a
		case debugLevels[a]:
			if level != "" && level != "debug" {
				return errf(d, `invalid log level "%s"`, a)
			}
			debug = true
		default:
			return errf(d, `invalid log level "%s"`, a)
		}
	}
	if level == "" {
		level = "error"
		if debug {
			level = "debug"
		}
	}
	if s.ctx == cMain {
		b.cfg.ErrorLogs = append(b.cfg.ErrorLogs, ErrorLog{Path: path, Level: level})
	}
	return nil
}

func hPID(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := b.mainOnce(d); err != nil {
		return err
	}
	b.cfg.PIDFile = b.full(d.Args[0])
	return nil
}

func hEvents(b *builder, s *scope, d *nginxconf.Directive) error {
	if b.events {
		return errDup(d)
	}
	b.events = true
	return b.walk(&scope{ctx: cEvents}, d.Block)
}

func hMainFlagNoop(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := b.mainOnce(d); err != nil {
		return err
	}
	_, err := flag(d)
	return err
}

func hMainNumNoop(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := b.mainOnce(d); err != nil {
		return err
	}
	_, err := num(d, d.Args[0])
	return err
}

func hWorkerConnections(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := b.mainOnce(d); err != nil {
		return err
	}
	n, ok := atoiInt(d.Args[0])
	if !ok || n == 0 {
		return errf(d, `invalid number "%s"`, d.Args[0])
	}
	b.cfg.WorkerConnections = n
	return nil
}

func hUse(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := b.mainOnce(d); err != nil {
		return err
	}
	switch d.Args[0] {
	case "epoll", "poll", "select":
		return nil
	}
	return errf(d, `invalid event type "%s"`, d.Args[0])
}

func hMultiAccept(b *builder, s *scope, d *nginxconf.Directive) error {
	if err := b.mainOnce(d); err != nil {
		return err
	}
	v, err := flag(d)
	b.cfg.MultiAccept = v
	return err
}

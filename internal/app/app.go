// Package app wires a configuration generation together (upstreams,
// connection pools, Lua engine, HTTP handler), owns the listeners, and swaps
// generations atomically on reload so that in-flight requests finish on the
// generation they started on.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"upstreamd/internal/config"
	"upstreamd/internal/errlog"
	"upstreamd/internal/h1"
	"upstreamd/internal/health"
	"upstreamd/internal/httpd"
	"upstreamd/internal/ngxlua"
	"upstreamd/internal/proxy"
	"upstreamd/internal/upstream"
)

// Options are the command-line settings that locate the configuration.
type Options struct {
	Prefix   string
	ConfFile string
	Globals  string
	// Stderr receives log lines before the configured error_log is open and
	// is where `stderr` error logs go.
	Stderr io.Writer
}

// Generation is one loaded configuration with everything it serves with.
type Generation struct {
	Config    *config.Config
	Handler   *httpd.Handler
	Upstreams *upstream.Registry
	Log       *errlog.Logger

	pools    map[string]*proxy.Pool
	lua      *ngxlua.Engine
	logs     *httpd.LogFiles
	logFiles []*os.File // error_log files, in the order of errPaths
	errPaths []string
	active   atomic.Int64
	loadedAt time.Time
	number   int
	savers   map[string]*stateSaver // upstreams with a `state` file
	// stopHealth stops the generation's active health checks (nil until
	// the generation is started; idempotent).
	stopHealth func()
}

// Load reads and validates the configuration and builds a generation. It
// does not open listeners, so it also serves `-t`.
func Load(opts Options) (*Generation, error) { return load(opts, nil) }

// load builds a generation; prev is the one it will replace (nil at start),
// whose shared dicts it takes over.
func load(opts Options, prev *Generation) (*Generation, error) {
	cfg, err := config.Load(config.Options{Prefix: opts.Prefix, ConfFile: opts.ConfFile, Globals: opts.Globals})
	if err != nil {
		return nil, err
	}
	return build(cfg, opts, prev)
}

func build(cfg *config.Config, opts Options, prev *Generation) (g *Generation, err error) {
	g = &Generation{Config: cfg, Upstreams: upstream.NewRegistry(), pools: map[string]*proxy.Pool{}, logs: httpd.NewLogFiles(),
		loadedAt: time.Now(), savers: map[string]*stateSaver{}}
	defer func() {
		if err != nil {
			g.close()
		}
	}()
	if g.Log, err = g.openErrorLogs(opts.Stderr); err != nil {
		return nil, err
	}
	if cfg.HTTP != nil {
		for _, u := range cfg.HTTP.Upstreams {
			var saver *stateSaver
			if u.StateFile != "" {
				saver = &stateSaver{path: u.StateFile, upstream: u.Name, log: g.Log}
				g.savers[u.Name] = saver
			}
			up, err := newUpstream(u, g.Log, saver)
			if err != nil {
				return nil, fmt.Errorf("%s in %s:%d", err, u.File, u.Line)
			}
			if err := g.Upstreams.Add(up); err != nil {
				return nil, fmt.Errorf("%s in %s:%d", err, u.File, u.Line)
			}
			g.pools[u.Name] = proxy.NewPool(u.Keepalive*workerCount(cfg), u.KeepaliveTimeout, u.KeepaliveRequests)
		}
		if g.lua, err = newLuaEngine(cfg, g, prev); err != nil {
			return nil, err
		}
	}
	g.Handler, err = httpd.New(cfg, httpd.Deps{Upstreams: g.Upstreams, Pools: g.pools, Log: g.Log, Lua: g.lua, Logs: g.logs, API: g.apiHandler})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func newUpstream(u *config.Upstream, log *errlog.Logger, saver *stateSaver) (*upstream.Upstream, error) {
	var specs []upstream.ServerSpec
	for _, s := range u.Servers {
		for _, addr := range s.Addrs {
			specs = append(specs, upstream.ServerSpec{
				Name: s.Name, Addr: addr, Weight: s.Weight, MaxFails: s.MaxFails, FailTimeout: s.FailTimeout,
				MaxConns: s.MaxConns, Backup: s.Backup, Down: s.Down, Drain: s.Drain, SlowStart: s.SlowStart,
				Route: s.Route,
			})
		}
	}
	opts := upstream.Options{
		Name:           u.Name,
		Method:         upstream.Method(u.Method),
		HashConsistent: u.HashConsistent,
		RandomTwo:      u.RandomTwo,
		Log: func(level, msg string) {
			if l, ok := errlog.ParseLevel(level); ok {
				log.Log(l, 0, msg+" while connecting to upstream, upstream: \""+u.Name+"\"")
			}
		},
	}
	if u.StateFile != "" {
		var err error
		if specs, err = stateSpecs(u, nil); err != nil {
			return nil, err
		}
		opts.AllowEmpty = true
		opts.OnPublish = saver.save
	}
	return upstream.New(opts, specs)
}

func newLuaEngine(cfg *config.Config, g, prev *Generation) (*ngxlua.Engine, error) {
	lua := cfg.HTTP.Lua
	dicts := map[string]int64{}
	for _, d := range lua.SharedDicts {
		dicts[d.Name] = d.Size
	}
	e, err := ngxlua.NewEngine(ngxlua.Options{
		PackagePath:  lua.PackagePath,
		PackageCPath: lua.PackageCPath,
		CodeCache:    lua.CodeCache,
		SharedDicts:  dicts,
		Upstreams:    func() *upstream.Registry { return g.Upstreams },
		Log:          g.Log,
		Prefix:       cfg.Prefix,
		Keep: func(name string) *ngxlua.SharedDict {
			if prev == nil || prev.lua == nil {
				return nil
			}
			return prev.lua.SharedDict(name)
		},
	})
	if err != nil {
		return nil, err
	}
	if lua.Init != nil {
		h, err := e.Compile(httpd.LuaCode(lua.Init))
		if err != nil {
			e.Close()
			return nil, err
		}
		if err := e.RunInit(h); err != nil {
			e.Close()
			return nil, fmt.Errorf("init_by_lua error: %v", err)
		}
	}
	return e, nil
}

// openErrorLogs opens the main-context error_log targets, each with its own
// level as in nginx.
func (g *Generation) openErrorLogs(stderr io.Writer) (*errlog.Logger, error) {
	if stderr == nil {
		stderr = os.Stderr
	}
	var sinks []errlog.Sink
	for _, el := range g.Config.ErrorLogs {
		level, ok := errlog.ParseLevel(el.Level)
		if !ok {
			level = errlog.Error
		}
		if el.Path == "stderr" {
			sinks = append(sinks, errlog.Sink{W: stderr, Level: level})
			continue
		}
		if err := os.MkdirAll(filepath.Dir(el.Path), 0o755); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(el.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open() \"%s\" failed (%v)", el.Path, err)
		}
		g.logFiles = append(g.logFiles, f)
		g.errPaths = append(g.errPaths, el.Path)
		sinks = append(sinks, errlog.Sink{W: f, Level: level})
	}
	if len(sinks) == 0 {
		sinks = append(sinks, errlog.Sink{W: stderr, Level: errlog.Error})
	}
	return errlog.NewSinks(sinks...), nil
}

func (g *Generation) close() {
	if g.stopHealth != nil {
		g.stopHealth()
	}
	if g.lua != nil {
		g.lua.Close()
	}
	for _, p := range g.pools {
		p.Close()
	}
	g.logs.Close()
	for _, f := range g.logFiles {
		f.Close()
	}
}

// Server runs generations on listeners.
type Server struct {
	opts Options
	gen  atomic.Pointer[Generation]

	mu        sync.Mutex
	listeners map[string]*listener
	count     int
}

type listener struct {
	addr string
	ln   net.Listener
	srv  httpServer
	done chan struct{}
}

// httpServer is what a listener serves with: internal/h1 by default, or
// net/http's server with UPSTREAMD_HTTP_SERVER=net/http (kept as a
// fallback while h1 is new; both pass the same tests).
type httpServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// useNetHTTP selects net/http's server instead of internal/h1.
var useNetHTTP = func() bool {
	switch os.Getenv("UPSTREAMD_HTTP_SERVER") {
	case "net/http", "nethttp":
		return true
	}
	return false
}()

// NewServer prepares a server for the first generation g.
func NewServer(opts Options, g *Generation) *Server {
	s := &Server{opts: opts, listeners: map[string]*listener{}}
	g.number = 1
	s.count = 1
	s.gen.Store(g)
	return s
}

// Current returns the generation serving new requests.
func (s *Server) Current() *Generation { return s.gen.Load() }

// Start opens the listeners of the current generation and runs
// init_worker_by_lua.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gen.Load()
	// Before the listeners: mandatory peers are "checking" from the first
	// request on.
	g.stopHealth = health.Start(g.Config, g.Upstreams, nil, g.Log)
	if err := s.syncListeners(g); err != nil {
		return err
	}
	s.applyProcess(g)
	return s.initWorker(g)
}

func (s *Server) initWorker(g *Generation) error {
	if g.lua == nil || g.Config.HTTP.Lua.InitWorker == nil {
		return nil
	}
	h, err := g.lua.Compile(httpd.LuaCode(g.Config.HTTP.Lua.InitWorker))
	if err != nil {
		return err
	}
	if err := g.lua.RunInitWorker(h); err != nil {
		g.Log.Logf(errlog.Error, 0, "init_worker_by_lua error: %v", err)
	}
	return nil
}

func (s *Server) applyProcess(g *Generation) {
	runtime.GOMAXPROCS(workerCount(g.Config))
}

// workerCount is what worker_processes stands for here: the number of
// threads running Go code (auto or unset: one per CPU the process may use).
// nginx sizes per-worker resources by it, e.g. an upstream's keepalive
// cache, which upstreamd keeps once for all of them.
func workerCount(cfg *config.Config) int {
	if n := cfg.WorkerProcesses; n > 0 {
		return n
	}
	return runtime.NumCPU()
}

// syncListeners opens listeners g needs and closes those it doesn't.
// Listeners for unchanged addresses stay open across reloads, so no
// connection is refused while reloading.
func (s *Server) syncListeners(g *Generation) error {
	want := map[string]bool{}
	for _, addr := range g.Handler.Addrs() {
		want[addr] = true
	}
	var opened []*listener
	for addr := range want {
		if _, ok := s.listeners[addr]; ok {
			continue
		}
		l, err := s.listen(addr, g)
		if err != nil && s.releasePort(addr, want) {
			// A listener this generation drops held the port (say the
			// config moved from 127.0.0.1:P to *:P): free it and retry.
			l, err = s.listen(addr, g)
		}
		if err != nil {
			for _, o := range opened {
				o.ln.Close()
				delete(s.listeners, o.addr)
			}
			return err
		}
		opened = append(opened, l)
		s.listeners[addr] = l
	}
	for addr, l := range s.listeners {
		if !want[addr] {
			delete(s.listeners, addr)
			go l.srv.Shutdown(context.Background())
		}
	}
	for _, l := range opened {
		go func(l *listener) {
			defer close(l.done)
			if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.Current().Log.Logf(errlog.Emerg, 0, "serve on %s: %v", l.addr, err)
			}
		}(l)
	}
	return nil
}

// releasePort closes the listeners on addr's port that the new generation
// does not want, reporting whether there were any.
func (s *Server) releasePort(addr string, want map[string]bool) bool {
	_, port, _ := net.SplitHostPort(addr)
	released := false
	for a, l := range s.listeners {
		if _, p, _ := net.SplitHostPort(a); p == port && !want[a] && a != addr {
			delete(s.listeners, a)
			l.ln.Close()
			go l.srv.Shutdown(context.Background())
			released = true
		}
	}
	return released
}

func (s *Server) listen(addr string, g *Generation) (*listener, error) {
	ln, err := net.Listen(listenNetwork(addr), addr)
	if err != nil {
		return nil, fmt.Errorf("bind() to %s failed (%s)", addr, errlog.ErrnoText(err))
	}
	l := &listener{addr: addr, ln: ln, done: make(chan struct{})}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serve(addr, w, r) })
	connContext := func(ctx context.Context, c net.Conn) context.Context { return httpd.ConnContext(ctx, c) }
	if useNetHTTP {
		l.srv = &http.Server{
			Handler:           handler,
			ConnContext:       connContext,
			ReadHeaderTimeout: 60 * time.Second,
			IdleTimeout:       idleTimeout(g),
			MaxHeaderBytes:    32 << 10,
		}
		return l, nil
	}
	// h1: nginx's client_header_timeout, client_body_timeout (60s) and
	// keepalive_timeout; 32 KB of request head as before (nginx: 4 × 8k).
	l.srv = &h1.Server{
		Handler:           handler,
		ConnContext:       connContext,
		ReadHeaderTimeout: 60 * time.Second,
		IdleTimeout:       idleTimeout(g),
		BodyReadTimeout:   60 * time.Second,
		MaxHeaderBytes:    32 << 10,
		Name:              httpd.ServerHeader,
	}
	return l, nil
}

// listenNetwork keeps "listen 8080" (0.0.0.0:8080) IPv4-only as in nginx;
// Go would otherwise bind a dual-stack socket for the wildcard address.
func listenNetwork(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	switch ip := net.ParseIP(host); {
	case ip == nil:
		return "tcp"
	case ip.To4() != nil:
		return "tcp4"
	default:
		return "tcp6"
	}
}

// idleTimeout is keepalive_timeout of the http level (75s by default).
func idleTimeout(g *Generation) time.Duration {
	for _, srv := range g.Config.HTTP.Servers {
		if srv.Root != nil && srv.Root.KeepaliveTimeout > 0 {
			return srv.Root.KeepaliveTimeout
		}
	}
	return 75 * time.Second
}

func (s *Server) serve(addr string, w http.ResponseWriter, r *http.Request) {
	// Count the request on the generation that is current after counting,
	// so retire never sees zero while a request holds a generation that
	// was swapped out between the load and the increment.
	var g *Generation
	for {
		g = s.gen.Load()
		g.active.Add(1)
		if s.gen.Load() == g {
			break
		}
		g.active.Add(-1)
	}
	defer g.active.Add(-1)
	g.Handler.ServeAddr(addr, w, r)
}

// Reload loads the configuration again and, if it is valid and its
// listeners open, makes it serve new requests. On any error the running
// generation keeps serving and the error is returned (and logged).
func (s *Server) Reload() error {
	old := s.Current()
	g, err := load(s.opts, old)
	if err != nil {
		old.Log.Logf(errlog.Emerg, 0, "%v", err)
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	carryRuntimeState(old, g)
	g.stopHealth = health.Start(g.Config, g.Upstreams, old.Upstreams, g.Log)
	if err := s.syncListeners(g); err != nil {
		g.close()
		old.Log.Logf(errlog.Emerg, 0, "%v", err)
		return err
	}
	s.count++
	g.number = s.count
	s.gen.Store(g)
	// The old checks stop now, not when the old generation retires: two
	// sets probing the same servers would double the load on them.
	if old.stopHealth != nil {
		old.stopHealth()
	}
	s.applyProcess(g)
	if err := s.initWorker(g); err != nil {
		g.Log.Logf(errlog.Error, 0, "%v", err)
	}
	g.Log.Logf(errlog.Notice, 0, "reconfiguring: generation %d", g.number)
	go retire(old)
	return nil
}

// ReopenLogs reopens the current generation's error_log and access_log
// files at the same paths, as nginx does on SIGUSR1 (`-s reopen`), so that
// logrotate can move them away: nothing else changes and the configuration
// is not read again. Each new handle is swapped in under its writers' lock
// before the old one is closed, so concurrent requests lose no line. A file
// that cannot be opened keeps its old handle; the errors are logged and
// returned.
func (s *Server) ReopenLogs() error {
	// Under s.mu a generation cannot be replaced (and then closed by
	// retire) while its files are swapped.
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gen.Load()
	var errs []error
	for i, path := range g.errPaths {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			errs = append(errs, fmt.Errorf("open() \"%s\" failed (%s)", path, errlog.ErrnoText(err)))
			continue
		}
		old := g.logFiles[i]
		g.Log.ReplaceWriter(old, f)
		g.logFiles[i] = f
		old.Close()
	}
	if err := g.logs.Reopen(); err != nil {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = append(errs, j.Unwrap()...)
		} else {
			errs = append(errs, err)
		}
	}
	// One line per file, as nginx logs each failed open().
	for _, err := range errs {
		g.Log.Logf(errlog.Emerg, 0, "%v", err)
	}
	return errors.Join(errs...)
}

// carryRuntimeState keeps, across a reload, the down/drain/weight changes
// made at run time to servers that still exist (same upstream, name,
// address and role). A value is carried only where the old live value
// differs from what the old config said, so an edit of the config itself
// still takes effect.
func carryRuntimeState(old, cur *Generation) {
	for _, name := range cur.Upstreams.Names() {
		o, n := old.Upstreams.Get(name), cur.Upstreams.Get(name)
		// An upstream with a state file was just loaded from it: the file
		// already holds every runtime change.
		if o == nil || cur.savers[name] != nil {
			continue
		}
		configured := configuredSpecs(old.Config, name)
		carryList(o.Snapshot().Primary, configured, n, false)
		carryList(o.Snapshot().Backup, configured, n, true)
	}
}

// configuredSpecs maps "name|addr" to what the config said for that peer.
func configuredSpecs(cfg *config.Config, upstreamName string) map[string]config.UpstreamServer {
	out := map[string]config.UpstreamServer{}
	if cfg.HTTP == nil {
		return out
	}
	for _, u := range cfg.HTTP.Upstreams {
		if u.Name != upstreamName {
			continue
		}
		for _, s := range u.Servers {
			for _, a := range s.Addrs {
				out[s.Name+"|"+a] = *s
			}
		}
	}
	return out
}

func carryList(oldPeers []*upstream.Peer, configured map[string]config.UpstreamServer, n *upstream.Upstream, backup bool) {
	live := map[string]upstream.ServerSpec{}
	for _, p := range oldPeers {
		live[p.Spec().Name+"|"+p.Addr()] = p.Spec()
	}
	for _, p := range n.Snapshot().Peers(backup) {
		key := p.Spec().Name + "|" + p.Addr()
		o, ok := live[key]
		if !ok {
			continue
		}
		was, fromConfig := configured[key]
		id := p.ID()
		if o.Down != p.Spec().Down && (!fromConfig || o.Down != was.Down) {
			_ = n.SetDown(backup, id, o.Down)
		}
		if o.Drain != p.Spec().Drain && (!fromConfig || o.Drain != was.Drain) {
			_ = n.SetDrain(backup, id, o.Drain)
		}
		if o.Weight != p.Spec().Weight && (!fromConfig || o.Weight != was.Weight) {
			_ = n.SetWeight(backup, id, o.Weight)
		}
	}
}

// retire frees an old generation once the requests it was serving are done
// (bounded, so a stuck request cannot pin it forever).
func retire(g *Generation) {
	deadline := time.Now().Add(5 * time.Minute)
	for g.active.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	g.close()
}

// Shutdown stops accepting and waits for in-flight requests (graceful) up to
// ctx's deadline; with an already-cancelled ctx it closes at once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	ls := make([]*listener, 0, len(s.listeners))
	for _, l := range s.listeners {
		ls = append(ls, l)
	}
	s.listeners = map[string]*listener{}
	s.mu.Unlock()
	var (
		errMu    sync.Mutex
		firstErr error
	)
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func(l *listener) {
			defer wg.Done()
			err := l.srv.Shutdown(ctx)
			if err != nil {
				l.srv.Close()
			}
			errMu.Lock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			errMu.Unlock()
		}(l)
	}
	wg.Wait()
	s.Current().close()
	return firstErr
}

// Addrs are the bound listener addresses (resolved, so ":0" shows its port).
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range s.listeners {
		out = append(out, l.ln.Addr().String())
	}
	sort.Strings(out)
	return out
}

// Command upstreamd runs an nginx-syntax configuration with embedded Lua and
// live upstreams. Its flags, messages and signals follow nginx's.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"upstreamd/internal/app"
	"upstreamd/internal/config"
	"upstreamd/internal/errlog"
	"upstreamd/internal/httpd"
	"upstreamd/internal/nginxconf"
)

// gracefulTimeout bounds SIGQUIT's wait for in-flight requests.
const gracefulTimeout = 30 * time.Second

func main() {
	os.Exit(profiled(os.Getenv("UPSTREAMD_CPUPROFILE"), os.Stderr, func() int {
		return run(os.Args[1:], os.Stdout, os.Stderr)
	}))
}

// profiled runs f, writing a CPU profile of the whole run to path when
// path is not empty (UPSTREAMD_CPUPROFILE: how bench/run.sh -pgo makes
// cmd/upstreamd/default.pgo, the profile go build optimises with).
func profiled(path string, stderr io.Writer, f func() int) int {
	if path == "" {
		return f()
	}
	out, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "upstreamd: UPSTREAMD_CPUPROFILE: %v\n", err)
		return 1
	}
	rc := f()
	pprof.StopCPUProfile()
	if err := out.Close(); err != nil {
		fmt.Fprintf(stderr, "upstreamd: UPSTREAMD_CPUPROFILE: %v\n", err)
	}
	return rc
}

// cmdline is what the command line asked for.
type cmdline struct {
	help, version, configure, test, dump, quiet bool
	prefix, conf, globals, signal               string
}

// signals are the names -s accepts, as nginx's.
var signals = map[string]syscall.Signal{
	"stop":   syscall.SIGTERM,
	"quit":   syscall.SIGQUIT,
	"reopen": syscall.SIGUSR1,
	"reload": syscall.SIGHUP,
}

// parseArgs reads options the way nginx does rather than with package flag:
// single-letter options may be bundled ("-tq"), a value may be attached
// ("-cfile") or follow as the next argument, and every mistake is reported
// with nginx's wording and exit status 1.
func parseArgs(args []string) (cmdline, error) {
	var c cmdline
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") {
			return c, fmt.Errorf("invalid option: \"%s\"", arg)
		}
	opts:
		for j := 1; j < len(arg); j++ {
			switch opt := arg[j]; opt {
			case '?', 'h':
				c.version, c.help = true, true
			case 'v':
				c.version = true
			case 'V':
				c.version, c.configure = true, true
			case 't':
				c.test = true
			case 'T':
				c.test, c.dump = true, true
			case 'q':
				c.quiet = true
			case 'p', 'c', 'g', 's':
				var val string
				switch {
				case j+1 < len(arg):
					val = arg[j+1:]
				case i+1 < len(args):
					i++
					val = args[i]
				default:
					return c, fmt.Errorf("option \"-%c\" requires %s", opt, map[byte]string{
						'p': "directory name", 'c': "file name", 'g': "parameter", 's': "parameter",
					}[opt])
				}
				switch opt {
				case 'p':
					c.prefix = val
				case 'c':
					c.conf = val
				case 'g':
					c.globals = val
				case 's':
					if _, ok := signals[val]; !ok {
						return c, fmt.Errorf("invalid option: \"-s %s\"", val)
					}
					c.signal = val
				}
				break opts
			default:
				return c, fmt.Errorf("invalid option: \"%c\"", opt)
			}
		}
	}
	return c, nil
}

const usage = `Usage: upstreamd [-?hvVtTq] [-s signal] [-p prefix]
                 [-c filename] [-g directives]

Options:
  -?,-h         : this help
  -v            : show version and exit
  -V            : show version and build information, then exit
  -t            : test configuration and exit
  -T            : test configuration, dump it and exit
  -q            : suppress non-error messages during configuration testing
  -s signal     : send signal to the running instance: stop, quit, reopen, reload
  -p prefix     : set prefix path (default: current directory)
  -c filename   : set configuration file (default: conf/nginx.conf)
  -g directives : set global directives out of configuration file

`

func run(args []string, stdout, stderr io.Writer) int {
	c, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "upstreamd: %v\n", err)
		return 1
	}
	if c.version {
		fmt.Fprintf(stderr, "upstreamd version: %s (nginx-compatible %s)\n", httpd.ServerHeader, httpd.NginxVersion)
		if c.help {
			io.WriteString(stderr, usage)
		}
		if c.configure {
			fmt.Fprintf(stderr, "built with %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
		}
		// As in nginx, -v with -t still tests.
		if !c.test {
			return 0
		}
	}
	opts, err := resolvePaths(c.prefix, c.conf, c.globals, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "upstreamd: [emerg] %v\n", err)
		return 1
	}
	if c.signal != "" {
		return sendSignal(opts, c.signal, stderr)
	}
	if c.test {
		return testConfig(opts, c.dump, c.quiet, stdout, stderr)
	}
	return serve(opts, stderr)
}

func resolvePaths(prefix, conf, globals string, stderr io.Writer) (app.Options, error) {
	if prefix == "" {
		prefix = "."
	}
	p, err := filepath.Abs(prefix)
	if err != nil {
		return app.Options{}, err
	}
	if conf == "" {
		conf = config.DefaultConfFile
	}
	if !filepath.IsAbs(conf) {
		conf = filepath.Join(p, conf)
	}
	return app.Options{Prefix: p + string(filepath.Separator), ConfFile: conf, Globals: globals, Stderr: stderr}, nil
}

func testConfig(opts app.Options, dump, quiet bool, stdout, stderr io.Writer) int {
	if _, err := app.Load(opts); err != nil {
		fmt.Fprintf(stderr, "upstreamd: [emerg] %v\n", err)
		fmt.Fprintf(stderr, "upstreamd: configuration file %s test failed\n", opts.ConfFile)
		return 1
	}
	if !quiet {
		fmt.Fprintf(stderr, "upstreamd: the configuration file %s syntax is ok\n", opts.ConfFile)
		fmt.Fprintf(stderr, "upstreamd: configuration file %s test is successful\n", opts.ConfFile)
	}
	if dump {
		return dumpConfig(opts.ConfFile, stdout, stderr)
	}
	return 0
}

// dumpConfig prints every configuration file as written, comments and all,
// the main file first, each under a "# configuration file PATH:" header and
// followed by an empty line, as nginx -T does.
func dumpConfig(confFile string, stdout, stderr io.Writer) int {
	tree, err := nginxconf.ParseFile(confFile)
	if err != nil {
		fmt.Fprintf(stderr, "upstreamd: [emerg] %v\n", err)
		return 1
	}
	for _, name := range configFiles(confFile, tree) {
		data, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(stderr, "upstreamd: [emerg] open() \"%s\" failed (%s)\n", name, errlog.ErrnoText(err))
			return 1
		}
		fmt.Fprintf(stdout, "# configuration file %s:\n%s\n", name, data)
	}
	return 0
}

// configFiles lists the files the expanded tree was read from, each once,
// in order of first appearance. Included files that hold no directive are
// not in the tree and so are not listed.
func configFiles(main string, tree []*nginxconf.Directive) []string {
	files := []string{main}
	seen := map[string]bool{main: true}
	var walk func([]*nginxconf.Directive)
	walk = func(ds []*nginxconf.Directive) {
		for _, d := range ds {
			if !seen[d.File] {
				seen[d.File] = true
				files = append(files, d.File)
			}
			walk(d.Block)
		}
	}
	walk(tree)
	return files
}

func sendSignal(opts app.Options, name string, stderr io.Writer) int {
	sig := signals[name]
	cfg, err := config.Load(config.Options{Prefix: opts.Prefix, ConfFile: opts.ConfFile, Globals: opts.Globals})
	if err != nil {
		fmt.Fprintf(stderr, "upstreamd: [emerg] %v\n", err)
		return 1
	}
	data, err := os.ReadFile(cfg.PIDFile)
	if err != nil {
		fmt.Fprintf(stderr, "upstreamd: [error] open() \"%s\" failed (%s)\n", cfg.PIDFile, errlog.ErrnoText(err))
		return 1
	}
	// nginx strips only the line ending before reading the number.
	text := strings.TrimRight(string(data), "\r\n")
	pid, err := strconv.Atoi(text)
	if err != nil || pid <= 0 {
		fmt.Fprintf(stderr, "upstreamd: [error] invalid PID number \"%s\" in \"%s\"\n", text, cfg.PIDFile)
		return 1
	}
	if err := syscall.Kill(pid, sig); err != nil {
		fmt.Fprintf(stderr, "upstreamd: [alert] kill(%d, %d) failed (%s)\n", pid, sig, errlog.ErrnoText(err))
		return 1
	}
	return 0
}

func serve(opts app.Options, stderr io.Writer) int {
	// Subscribe before the pid file exists: a SIGHUP sent as soon as it
	// appears would otherwise kill the process (the default action).
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	g, err := app.Load(opts)
	if err != nil {
		fmt.Fprintf(stderr, "upstreamd: [emerg] %v\n", err)
		return 1
	}
	srv := app.NewServer(opts, g)
	if err := srv.Start(); err != nil {
		fmt.Fprintf(stderr, "upstreamd: [emerg] %v\n", err)
		g.Log.Logf(errlog.Emerg, 0, "%v", err)
		stopNow(srv)
		return 1
	}
	pidFile := g.Config.PIDFile
	if err := writePID(pidFile); err != nil {
		// nginx does not start without its pid file: -s could not reach it.
		msg := fmt.Sprintf("open() \"%s\" failed (%s)", pidFile, errlog.ErrnoText(err))
		fmt.Fprintf(stderr, "upstreamd: [emerg] %s\n", msg)
		g.Log.Log(errlog.Emerg, 0, msg)
		stopNow(srv)
		return 1
	}
	defer func() { os.Remove(pidFile) }()
	g.Log.Logf(errlog.Notice, 0, "upstreamd %s started, listening on %s", httpd.Version, strings.Join(srv.Addrs(), " "))

	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			srv.Current().Log.Logf(errlog.Notice, 0, "signal %d (SIGHUP) received, reconfiguring", syscall.SIGHUP)
			if srv.Reload() == nil {
				pidFile = movePID(srv.Current(), pidFile)
			}
		case syscall.SIGUSR1:
			// Only the log files are reopened (for logrotate); an edited
			// configuration waits for SIGHUP, as in nginx.
			srv.Current().Log.Logf(errlog.Notice, 0, "signal %d (SIGUSR1) received, reopening logs", syscall.SIGUSR1)
			_ = srv.ReopenLogs()
		case syscall.SIGQUIT:
			srv.Current().Log.Logf(errlog.Notice, 0, "signal %d (SIGQUIT) received, gracefully shutting down", syscall.SIGQUIT)
			ctx, cancel := context.WithTimeout(context.Background(), gracefulTimeout)
			// As in nginx, SIGTERM or SIGINT turns a graceful shutdown
			// into a fast one.
			done := make(chan struct{})
			go func() {
				for {
					select {
					case s := <-sigs:
						if s == syscall.SIGTERM || s == syscall.SIGINT {
							cancel()
							return
						}
					case <-done:
						return
					}
				}
			}()
			_ = srv.Shutdown(ctx)
			close(done)
			cancel()
			return 0
		default:
			srv.Current().Log.Logf(errlog.Notice, 0, "signal %d (%s) received, exiting", sig, sigName(sig))
			stopNow(srv)
			return 0
		}
	}
	return 0
}

// stopNow closes the listeners and every connection at once.
func stopNow(srv *app.Server) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = srv.Shutdown(ctx)
}

// movePID follows a reload that changed the pid directive, as nginx does:
// the new file is written and the old one removed. If the new one cannot
// be written, the old one stays so that -s with the old configuration
// still works.
func movePID(g *app.Generation, old string) string {
	cur := g.Config.PIDFile
	if cur == old {
		return old
	}
	if err := writePID(cur); err != nil {
		g.Log.Logf(errlog.Emerg, 0, "open() \"%s\" failed (%s)", cur, errlog.ErrnoText(err))
		return old
	}
	os.Remove(old)
	return cur
}

// writePID writes the pid file by renaming a complete temporary file into
// place, so that -s run at any moment reads either nothing or the whole
// number, never an empty file.
func writePID(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func sigName(sig os.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	}
	return sig.String()
}

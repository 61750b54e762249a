// Command upstreamd runs an nginx-syntax configuration with embedded Lua and
// live upstreams. Its flags follow nginx's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
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
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("upstreamd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	prefix := fs.String("p", "", "set prefix path (default: current directory)")
	conf := fs.String("c", "conf/nginx.conf", "set configuration file")
	test := fs.Bool("t", false, "test configuration and exit")
	dump := fs.Bool("T", false, "test configuration, dump it and exit")
	globals := fs.String("g", "", "set global directives out of configuration file")
	signalName := fs.String("s", "", "send signal to the running instance: stop, quit, reopen, reload")
	version := fs.Bool("v", false, "show version and exit")
	versionFull := fs.Bool("V", false, "show version and build information and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *version || *versionFull {
		fmt.Fprintf(stderr, "upstreamd version: %s (nginx-compatible %s)\n", httpd.ServerHeader, httpd.NginxVersion)
		if *versionFull {
			fmt.Fprintf(stderr, "built with %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
		}
		return 0
	}
	opts, err := resolvePaths(*prefix, *conf, *globals, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "upstreamd: [emerg] %v\n", err)
		return 1
	}
	if *signalName != "" {
		return sendSignal(opts, *signalName, stderr)
	}
	if *test || *dump {
		return testConfig(opts, *dump, stdout, stderr)
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
	if !filepath.IsAbs(conf) {
		conf = filepath.Join(p, conf)
	}
	return app.Options{Prefix: p + string(filepath.Separator), ConfFile: conf, Globals: globals, Stderr: stderr}, nil
}

func testConfig(opts app.Options, dump bool, stdout, stderr io.Writer) int {
	g, err := app.Load(opts)
	if err != nil {
		fmt.Fprintf(stderr, "upstreamd: [emerg] %v\n", err)
		fmt.Fprintf(stderr, "upstreamd: configuration file %s test failed\n", opts.ConfFile)
		return 1
	}
	_ = g
	fmt.Fprintf(stderr, "upstreamd: the configuration file %s syntax is ok\n", opts.ConfFile)
	fmt.Fprintf(stderr, "upstreamd: configuration file %s test is successful\n", opts.ConfFile)
	if dump {
		tree, err := nginxconf.ParseFile(opts.ConfFile)
		if err == nil {
			fmt.Fprintf(stdout, "# configuration file %s:\n%s", opts.ConfFile, nginxconf.Dump(tree))
		}
	}
	return 0
}

func sendSignal(opts app.Options, name string, stderr io.Writer) int {
	sigs := map[string]syscall.Signal{"stop": syscall.SIGTERM, "quit": syscall.SIGQUIT, "reload": syscall.SIGHUP, "reopen": syscall.SIGUSR1}
	sig, ok := sigs[name]
	if !ok {
		fmt.Fprintf(stderr, "upstreamd: [emerg] invalid option: \"-s %s\"\n", name)
		return 1
	}
	cfg, err := config.Load(config.Options{Prefix: opts.Prefix, ConfFile: opts.ConfFile, Globals: opts.Globals})
	if err != nil {
		fmt.Fprintf(stderr, "upstreamd: [emerg] %v\n", err)
		return 1
	}
	data, err := os.ReadFile(cfg.PIDFile)
	if err != nil {
		fmt.Fprintf(stderr, "upstreamd: [error] open() \"%s\" failed (%v)\n", cfg.PIDFile, errors.Unwrap(err))
		return 1
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		fmt.Fprintf(stderr, "upstreamd: [error] invalid PID number \"%s\" in \"%s\"\n", strings.TrimSpace(string(data)), cfg.PIDFile)
		return 1
	}
	if err := syscall.Kill(pid, sig); err != nil {
		fmt.Fprintf(stderr, "upstreamd: [error] kill(%d, %d) failed (%v)\n", pid, sig, err)
		return 1
	}
	return 0
}

func serve(opts app.Options, stderr io.Writer) int {
	g, err := app.Load(opts)
	if err != nil {
		fmt.Fprintf(stderr, "upstreamd: [emerg] %v\n", err)
		return 1
	}
	srv := app.NewServer(opts, g)
	if err := srv.Start(); err != nil {
		fmt.Fprintf(stderr, "upstreamd: [emerg] %v\n", err)
		g.Log.Logf(errlog.Emerg, 0, "%v", err)
		return 1
	}
	pidFile := g.Config.PIDFile
	if err := app.WritePID(pidFile); err != nil {
		g.Log.Logf(errlog.Alert, 0, "could not write pid file %s: %v", pidFile, err)
	}
	defer os.Remove(pidFile)
	g.Log.Logf(errlog.Notice, 0, "upstreamd %s started, listening on %s", httpd.Version, strings.Join(srv.Addrs(), " "))

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGUSR1)
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			srv.Current().Log.Logf(errlog.Notice, 0, "signal %d (SIGHUP) received, reconfiguring", syscall.SIGHUP)
			_ = srv.Reload()
		case syscall.SIGUSR1:
			// Reopening logs is what a reload does too; keep it cheap.
			_ = srv.Reload()
		case syscall.SIGQUIT:
			srv.Current().Log.Logf(errlog.Notice, 0, "gracefully shutting down")
			ctx, cancel := context.WithTimeout(context.Background(), gracefulTimeout)
			_ = srv.Shutdown(ctx)
			cancel()
			return 0
		default:
			srv.Current().Log.Logf(errlog.Notice, 0, "exiting")
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = srv.Shutdown(ctx)
			return 0
		}
	}
	return 0
}

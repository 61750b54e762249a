// Command bench runs upstreamd and nginx side by side on loopback and
// writes a results table (issue 7). Run it through bench/run.sh, which
// installs the Debian packages it needs; see docs/benchmarks.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type options struct {
	allCPUs       string // taskset list of every CPU, when pinning (else "")
	duration      time.Duration
	warmup        time.Duration
	reps          int
	conns         int
	workers       []string
	pin           bool
	out           string
	work          string
	adminInterval time.Duration
	goBench       bool
	instructions  bool
	pgo           bool
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	var o options
	var workers string
	dur, _ := time.ParseDuration(envOr("BENCH_DURATION", "3s"))
	reps, _ := strconv.Atoi(envOr("BENCH_REPS", "3"))
	conns, _ := strconv.Atoi(envOr("BENCH_CONNS", "64"))
	flag.DurationVar(&o.duration, "d", dur, "length of each measured wrk run, whole seconds (env BENCH_DURATION)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured wrk run per server and scenario before the measured ones")
	flag.IntVar(&o.reps, "reps", reps, "measured runs per server and scenario, interleaved; medians are reported (env BENCH_REPS)")
	flag.IntVar(&o.conns, "c", conns, "wrk connections (env BENCH_CONNS)")
	flag.StringVar(&workers, "workers", envOr("BENCH_WORKERS", "1,auto"), "comma-separated worker_processes values to run, each for both servers (env BENCH_WORKERS)")
	flag.BoolVar(&o.pin, "pin", envOr("BENCH_PIN", "1") != "0", "pin wrk and backends to CPU 0 and a 1-worker server to CPU 1 (env BENCH_PIN=0 disables)")
	flag.StringVar(&o.out, "out", envOr("BENCH_OUT", "bench/results/LATEST.md"), "results file (\"\" = stdout only)")
	flag.StringVar(&o.work, "work", "", "scratch directory (default: a new temporary directory, removed at exit)")
	flag.DurationVar(&o.adminInterval, "admin-interval", 10*time.Millisecond, "pause between runtime-change calls in scenario (f)")
	flag.BoolVar(&o.goBench, "gobench", true, "also run the peer-selection Go benchmark (BenchmarkPick rr/10000)")
	flag.BoolVar(&o.pgo, "pgo", false, "instead of the comparison: profile upstreamd (built without a profile) under each workload for -d and write "+pgoProfile+", the profile go build optimises it with")
	flag.BoolVar(&o.instructions, "instructions", false, "instead of the comparison: upstreamd's user-space instructions per request under valgrind's cachegrind (-d per workload; stdout only)")
	flag.Parse()
	for _, w := range strings.Split(workers, ",") {
		if w = strings.TrimSpace(w); w != "" {
			o.workers = append(o.workers, w)
		}
	}
	if o.reps < 1 || o.conns < 1 || o.duration < time.Second || len(o.workers) == 0 {
		fmt.Fprintln(os.Stderr, "bench: need -reps ≥ 1, -c ≥ 1, -d ≥ 1s and at least one -workers value")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// target is one thing wrk is pointed at.
type target struct {
	scenario string // "a" … "g", "f0"
	server   string // "backend", "nginx", "upstreamd"
	url      string
	proc     *proc
	changes  bool // scenario (f): runtime changes through /admin during the run
	admin    string
}

// series is the runs of one (scenario, server).
type series struct {
	scenario string
	server   string
	runs     []runResult
	admin    adminStats
}

type runResult struct {
	wrk    wrkResult
	cpuSec float64
	opens  int64 // connections the server opened (-1: unknown)
}

type adminStats struct {
	calls, failures int
	firstFailure    string
}

type modeResult struct {
	workers              string
	serverCPU, clientCPU string
	series               []*series
}

func run(ctx context.Context, o options) error {
	if _, err := os.Stat("go.mod"); err != nil {
		return errors.New("run from the repository root (bench/run.sh does)")
	}
	for _, tool := range []string{"nginx", "wrk", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (bench/run.sh installs nginx, libnginx-mod-http-lua and wrk)", tool)
		}
	}
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_http_lua_module.so"); err != nil {
		return errors.New("ngx_http_lua_module.so missing: apt-get install libnginx-mod-http-lua")
	}
	if o.work == "" {
		d, err := os.MkdirTemp("", "upstreamd-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.work = d
	}
	o.work, _ = filepath.Abs(o.work)
	ps := &procs{workDir: o.work}
	defer ps.stopAll()

	info := machineInfo()
	start := time.Now()
	loadBefore := loadavg()

	logf("building upstreamd into %s", o.work)
	bin := filepath.Join(o.work, "upstreamd")
	build := []string{"build", "-o", bin}
	if o.pgo {
		build = append(build, "-pgo=off") // the new profile must not depend on the old one
	}
	if out, err := exec.CommandContext(ctx, "go", append(build, "./cmd/upstreamd")...).CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/upstreamd: %v\n%s", err, out)
	}

	var pick string
	if o.goBench && !o.instructions && !o.pgo {
		logf("go test -bench BenchmarkPick/rr/10000 ./internal/upstream")
		pick = goBenchPick(ctx)
	}

	pin := o.pin && runtime.NumCPU() >= 2
	clientCPU := ""
	if pin {
		clientCPU = "0"
		// Unpinned servers get every CPU explicitly: they would inherit
		// the driver's mask below.
		o.allCPUs = fmt.Sprintf("0-%d", runtime.NumCPU()-1)
		// The driver's own work (the admin calls of (f) and their HTTP
		// client) belongs with wrk, not on the 1-worker server's CPU.
		if out, err := exec.Command("taskset", "-a", "-p", "-c", clientCPU, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
			logf("could not pin the driver to CPU %s: %v %s", clientCPU, err, strings.TrimSpace(string(out)))
		}
	}

	ports, err := freePorts(6)
	if err != nil {
		return err
	}
	portA, portB := ports[0], ports[1]

	// Backends: one nginx, one worker, pinned with wrk.
	bePrefix := filepath.Join(o.work, "backends")
	if err := writeConf(bePrefix, "nginx.conf", backendConf(bePrefix, portA, portB)); err != nil {
		return err
	}
	beLog := filepath.Join(bePrefix, "logs", "stderr.log")
	be, err := ps.start("backends", clientCPU, beLog, "nginx", "-p", bePrefix, "-c", filepath.Join(bePrefix, "conf", "nginx.conf"), "-e", filepath.Join(bePrefix, "logs", "error.log"))
	if err != nil {
		return err
	}
	for _, p := range []int{portA, portB} {
		if err := waitReady(ctx, be, fmt.Sprintf("http://127.0.0.1:%d/", p), beLog); err != nil {
			return err
		}
	}

	// A 1-worker server's CPU: the other one than wrk's.
	oneWorkerCPU := ""
	if pin {
		oneWorkerCPU = "1"
	}
	if o.pgo {
		path, err := runPGO(ctx, o, ps, bin, oneWorkerCPU, clientCPU, ports[2], portA, portB)
		if err != nil {
			return err
		}
		fmt.Printf("wrote %s: commit it; go build uses it for ./cmd/upstreamd\n", path)
		return nil
	}
	if o.instructions {
		table, err := runInstructions(ctx, o, ps, bin, oneWorkerCPU, clientCPU, ports[2], portA, portB)
		if err != nil {
			return err
		}
		fmt.Print("\n" + table)
		return nil
	}

	nSeries := 14
	logf("%d worker setting(s) × %d series × %d runs × %s (+ %s warm-up each): about %s",
		len(o.workers), nSeries, o.reps, o.duration, o.warmup,
		(time.Duration(len(o.workers)*nSeries) * (time.Duration(o.reps)*(o.duration+300*time.Millisecond) + o.warmup)).Round(time.Second))

	var modes []*modeResult
	for mi, workers := range o.workers {
		serverCPU := "" // auto: unpinned
		if workers == "1" {
			serverCPU = oneWorkerCPU
		}
		m, err := runMode(ctx, o, ps, bin, workers, serverCPU, clientCPU, ports[2+2*(mi%2)], ports[3+2*(mi%2)], portA, portB, be)
		if m != nil {
			modes = append(modes, m)
		}
		if err != nil {
			return err
		}
	}
	ps.stopAll()

	report := renderReport(o, info, pick, modes, start, time.Since(start), loadBefore, loadavg())
	fmt.Print("\n" + report)
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	return nil
}

func writeConf(prefix, name, text string) error {
	for _, d := range []string{"conf", "logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(prefix, "conf", name), []byte(text), 0o644)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func runMode(ctx context.Context, o options, ps *procs, bin, workers, serverCPU, clientCPU string, ngxPort, updPort, portA, portB int, be *proc) (*modeResult, error) {
	ngxPrefix := filepath.Join(o.work, "nginx-w"+workers)
	updPrefix := filepath.Join(o.work, "upstreamd-w"+workers)
	if err := writeConf(ngxPrefix, "nginx.conf", proxyConf(true, ngxPrefix, workers, ngxPort, portA, portB)); err != nil {
		return nil, err
	}
	if err := writeConf(updPrefix, "upstreamd.conf", proxyConf(false, updPrefix, workers, updPort, portA, portB)); err != nil {
		return nil, err
	}
	ngxLog := filepath.Join(ngxPrefix, "logs", "stderr.log")
	launchCPU := serverCPU
	if launchCPU == "" {
		launchCPU = o.allCPUs
	}
	ngx, err := ps.start("nginx", launchCPU, ngxLog, "nginx", "-p", ngxPrefix, "-c", filepath.Join(ngxPrefix, "conf", "nginx.conf"), "-e", filepath.Join(ngxPrefix, "logs", "error.log"))
	if err != nil {
		return nil, err
	}
	defer ps.remove(ngx)
	updLog := filepath.Join(updPrefix, "logs", "stderr.log")
	upd, err := ps.start("upstreamd", launchCPU, updLog, bin, "-p", updPrefix, "-c", filepath.Join(updPrefix, "conf", "upstreamd.conf"))
	if err != nil {
		return nil, err
	}
	defer ps.remove(upd)
	ngxBase := fmt.Sprintf("http://127.0.0.1:%d", ngxPort)
	updBase := fmt.Sprintf("http://127.0.0.1:%d", updPort)
	if err := waitReady(ctx, ngx, ngxBase+pathLua, ngxLog); err != nil {
		return nil, err
	}
	if err := waitReady(ctx, upd, updBase+pathLua, updLog); err != nil {
		return nil, err
	}
	for _, base := range []string{ngxBase, updBase} {
		if err := verify(ctx, base, base == updBase); err != nil {
			return nil, err
		}
	}

	direct := fmt.Sprintf("http://127.0.0.1:%d/", portA)
	// Each group's runs are interleaved. (e) shares (b)'s group because its
	// goal is a ratio to (b): measured minutes apart, that ratio would
	// follow this box's drift more than the 1,000 peers.
	groups := [][]target{
		{{scenario: "a", server: "backend", url: direct, proc: be}},
		{{scenario: "b", server: "nginx", url: ngxBase + pathProxy, proc: ngx}, {scenario: "b", server: "upstreamd", url: updBase + pathProxy, proc: upd},
			{scenario: "e", server: "nginx", url: ngxBase + pathPeers, proc: ngx}, {scenario: "e", server: "upstreamd", url: updBase + pathPeers, proc: upd}},
		{{scenario: "c", server: "nginx", url: ngxBase + pathLua, proc: ngx}, {scenario: "c", server: "upstreamd", url: updBase + pathLua, proc: upd}},
		{{scenario: "d", server: "nginx", url: ngxBase + pathProxyLua, proc: ngx}, {scenario: "d", server: "upstreamd", url: updBase + pathProxyLua, proc: upd}},
		{{scenario: "f0", server: "upstreamd", url: updBase + pathChanging, proc: upd},
			{scenario: "f", server: "upstreamd", url: updBase + pathChanging, proc: upd, changes: true, admin: updBase + pathAdmin}},
		{{scenario: "g", server: "nginx", url: ngxBase + pathNoKeep, proc: ngx}, {scenario: "g", server: "upstreamd", url: updBase + pathNoKeep, proc: upd}},
	}
	m := &modeResult{workers: workers, serverCPU: serverCPU, clientCPU: clientCPU}
	for _, g := range groups {
		var ss []*series
		for _, t := range g {
			s := &series{scenario: t.scenario, server: t.server}
			ss = append(ss, s)
			m.series = append(m.series, s)
		}
		if o.warmup > 0 {
			for _, t := range g {
				if !t.changes {
					if _, _, err := runWrk(ctx, clientCPU, o.conns, o.warmup, t.url); err != nil {
						return m, err
					}
				}
			}
		}
		for rep := 0; rep < o.reps; rep++ {
			for i, t := range g {
				r, st, err := measure(ctx, o, clientCPU, t)
				if err != nil {
					return m, err
				}
				ss[i].runs = append(ss[i].runs, r)
				ss[i].admin.calls += st.calls
				ss[i].admin.failures += st.failures
				if ss[i].admin.firstFailure == "" {
					ss[i].admin.firstFailure = st.firstFailure
				}
				logf("w=%s (%s) %-9s %s: %8.0f req/s  p50 %-9v p99 %-9v %6.2f CPU-s  %8.0f req/CPU-s  errors %d",
					workers, ss[i].scenario, t.server, t.url, r.wrk.RPS, r.wrk.P50, r.wrk.P99, r.cpuSec,
					reqPerCPU(r), r.wrk.Non2xx+r.wrk.SocketErrors)
			}
		}
	}
	for _, p := range []*proc{ngx, upd, be} {
		if p.exited() {
			return m, fmt.Errorf("%s died during the run: %v", p.name, p.err)
		}
	}
	return m, nil
}

func reqPerCPU(r runResult) float64 {
	if r.cpuSec <= 0 {
		return 0
	}
	return float64(r.wrk.Requests) / r.cpuSec
}

// measure runs wrk once against t, reading the server's CPU time around it.
func measure(ctx context.Context, o options, clientCPU string, t target) (runResult, adminStats, error) {
	before, err := cpuTicks(t.proc.pid())
	if err != nil {
		return runResult{}, adminStats{}, err
	}
	opensBefore, opensErr := activeOpens()
	var st adminStats
	var wg sync.WaitGroup
	stop := make(chan struct{})
	if t.changes {
		wg.Add(1)
		go func() { defer wg.Done(); st = adminLoop(ctx, t.admin, o.adminInterval, stop) }()
	}
	w, _, err := runWrk(ctx, clientCPU, o.conns, o.duration, t.url)
	close(stop)
	wg.Wait()
	if err != nil {
		return runResult{}, st, err
	}
	after, err := cpuTicks(t.proc.pid())
	if err != nil {
		return runResult{}, st, err
	}
	opens := int64(-1)
	if opensAfter, err := activeOpens(); err == nil && opensErr == nil {
		// wrk opens its connections at the start (and again after a
		// socket error); the admin loop of (f) keeps one alive.
		opens = max(0, opensAfter-opensBefore-int64(o.conns)-w.SocketErrors)
	}
	return runResult{wrk: w, cpuSec: float64(after-before) / clockTick, opens: opens}, st, nil
}

// adminLoop alternates step=1 (down peer 0, add a server) and step=2 (up
// peer 0, remove it) until stop, always ending on step 2.
func adminLoop(ctx context.Context, url string, interval time.Duration, stop <-chan struct{}) adminStats {
	var st adminStats
	call := func(step int) {
		st.calls++
		code, _, body, err := get(ctx, url+"?step="+strconv.Itoa(step))
		if err != nil || code != 200 || strings.TrimSpace(body) != "ok" {
			st.failures++
			if st.firstFailure == "" {
				st.firstFailure = fmt.Sprintf("step %d: status %d %q %v", step, code, strings.TrimSpace(body), err)
			}
		}
	}
	for {
		call(1)
		time.Sleep(interval)
		call(2)
		select {
		case <-stop:
			return st
		case <-ctx.Done():
			return st
		case <-time.After(interval):
		}
	}
}

// verify checks every scenario answers as expected before measuring.
func verify(ctx context.Context, base string, upstreamd bool) error {
	checks := []struct{ path, body, header string }{
		{pathProxy, "ok\n", ""},
		{pathLua, "hello world\n", ""},
		{pathProxyLua, "ok\n", "X-Bench"},
		{pathPeers, "ok\n", ""},
		{pathNoKeep, "ok\n", ""},
	}
	if upstreamd {
		checks = append(checks, struct{ path, body, header string }{pathChanging, "ok\n", ""},
			struct{ path, body, header string }{pathAdmin + "?step=1", "ok\n", ""},
			struct{ path, body, header string }{pathAdmin + "?step=2", "ok\n", ""})
	}
	for _, c := range checks {
		code, h, body, err := get(ctx, base+c.path)
		if err != nil {
			return fmt.Errorf("check %s%s: %v", base, c.path, err)
		}
		if code != 200 || body != c.body || (c.header != "" && h.Get(c.header) == "") {
			return fmt.Errorf("check %s%s: status %d, body %q, headers %v", base, c.path, code, body, h)
		}
	}
	return nil
}

// goBenchPick runs the peer-selection micro-benchmark and returns
// "N ns/op, M allocs/op" (median of 3) or a reason it could not.
func goBenchPick(ctx context.Context) string {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkPick$/^rr$/^10000$",
		"-benchmem", "-benchtime", "200000x", "-count", "3", "-cpu", "1", "./internal/upstream")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "not measured (" + strings.TrimSpace(tail(string(out), 200)) + ")"
	}
	var ns, allocs []float64
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		for i := 1; i < len(f); i++ {
			v, err := strconv.ParseFloat(f[i-1], 64)
			if err != nil {
				continue
			}
			switch f[i] {
			case "ns/op":
				ns = append(ns, v)
			case "allocs/op":
				allocs = append(allocs, v)
			}
		}
	}
	if len(ns) == 0 {
		return "not measured (no ns/op in output)"
	}
	return fmt.Sprintf("%.1f ns/op, %.0f allocs/op", median(ns), median(allocs))
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Instruction counts: user-space instructions upstreamd executes per
// request, counted by valgrind's cachegrind while wrk drives it. Unlike
// req/CPU-s they do not depend on what else the machine is doing (the
// count for one binary and workload repeats within about 1%), so they can
// tell a 2% change in the server's own code apart, which the side-by-side
// runs on a shared box cannot. They leave out the kernel (most of a
// proxy's CPU), so they complement req/CPU-s; they do not replace it.

// instrCase is one workload measured by -instructions.
type instrCase struct {
	name string
	path string
}

var instrCases = []instrCase{
	{"(b) proxy, keepalive, no reconnects (upstream `changing`)", pathChanging},
	{"(c) Lua `ngx.say(\"hello world\")`", pathLua},
	{"(g) proxy, no keepalive (a connection per request)", pathNoKeep},
}

// instrConns is the wrk concurrency under valgrind: enough to keep the
// server busy, few enough that `changing` (keepalive 256) never reconnects.
const instrConns = 16

// runInstructions measures each instrCase: once upstreamd started and
// answered its readiness check only, then the same with duration of wrk
// load; the difference over the requests wrk completed is the cost of one
// request, startup excluded.
func runInstructions(ctx context.Context, o options, ps *procs, bin, serverCPU, clientCPU string, port, portA, portB int) (string, error) {
	if _, err := exec.LookPath("valgrind"); err != nil {
		return "", errors.New("-instructions needs valgrind (apt-get install valgrind)")
	}
	prefix := filepath.Join(o.work, "upstreamd-instructions")
	if err := writeConf(prefix, "upstreamd.conf", proxyConf(false, prefix, "1", port, portA, portB)); err != nil {
		return "", err
	}
	// Go's asynchronous preemption signals trip cachegrind's signal
	// bookkeeping; the count does not depend on them.
	os.Setenv("GODEBUG", "asyncpreemptoff=1")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	measure := func(tag, path string, load time.Duration) (instr, requests int64, err error) {
		out := filepath.Join(prefix, "logs", "cachegrind."+tag)
		log := filepath.Join(prefix, "logs", "valgrind."+tag+".log")
		p, err := ps.start("upstreamd (cachegrind)", serverCPU, log, "valgrind", "--tool=cachegrind", "--cache-sim=no",
			"--cachegrind-out-file="+out, bin, "-p", prefix, "-c", filepath.Join(prefix, "conf", "upstreamd.conf"))
		if err != nil {
			return 0, 0, err
		}
		defer ps.remove(p)
		if err := waitReady(ctx, p, base+path, log); err != nil {
			return 0, 0, err
		}
		if load > 0 {
			w, _, err := runWrk(ctx, clientCPU, instrConns, load, base+path)
			if err != nil {
				return 0, 0, err
			}
			if w.Non2xx+w.SocketErrors > 0 {
				return 0, 0, fmt.Errorf("%s: %d failed requests under valgrind", path, w.Non2xx+w.SocketErrors)
			}
			requests = w.Requests
		}
		ps.remove(p) // SIGTERM: upstreamd exits and cachegrind writes its file
		instr, err = cachegrindTotal(out)
		return instr, requests, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## User-space instructions per request (upstreamd, cachegrind)\n\n")
	fmt.Fprintf(&b, "`wrk -t1 -c%d -d%s` against upstreamd under `valgrind --tool=cachegrind`, 1 worker; "+
		"(instructions with load − instructions of a start and one request) ÷ requests. Kernel work is not counted.\n\n", instrConns, o.duration)
	b.WriteString("| workload | requests | instructions / request |\n|---|---:|---:|\n")
	for i, c := range instrCases {
		logf("cachegrind %s", c.name)
		idle, _, err := measure(fmt.Sprintf("%d.idle", i), c.path, 0)
		if err != nil {
			return "", err
		}
		total, n, err := measure(fmt.Sprintf("%d.load", i), c.path, o.duration)
		if err != nil {
			return "", err
		}
		if n == 0 {
			return "", fmt.Errorf("%s: no request completed under valgrind", c.path)
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", c.name, thousands(float64(n)), thousands(float64(total-idle)/float64(n)))
	}
	return b.String(), nil
}

// cachegrindTotal reads the instruction total ("summary: N") of a
// cachegrind output file.
func cachegrindTotal(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("cachegrind wrote no output: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "summary:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no summary line", path)
}

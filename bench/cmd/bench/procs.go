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
	"sync"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of utime/stime in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports.
const clockTick = 100

// procs tracks every server process the benchmark starts, so that all of
// them are stopped on any exit path. Each server runs in its own process
// group (nginx master + workers share it); the group ids are also appended
// to workDir/pgids so bench/run.sh can kill them if this program dies
// without running its cleanup.
type procs struct {
	mu      sync.Mutex
	workDir string
	list    []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// start runs bin with args, pinned to cpus (taskset list, "" = unpinned),
// output to logPath.
func (ps *procs) start(name, cpus, logPath, bin string, args ...string) (*proc, error) {
	argv := append([]string{bin}, args...)
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	if f, err := os.OpenFile(filepath.Join(ps.workDir, "pgids"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprintln(f, cmd.Process.Pid)
		f.Close()
	}
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group (nginx: fast shutdown; upstreamd:
// stop at once), then SIGKILL after a grace period.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	pg := p.pid()
	syscall.Kill(-pg, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-pg, syscall.SIGKILL)
		<-p.done
	}
	// Workers left behind by a dead master, if any.
	syscall.Kill(-pg, syscall.SIGKILL)
}

func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
}

// remove forgets p after it was stopped.
func (ps *procs) remove(p *proc) {
	p.stop()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for i, q := range ps.list {
		if q == p {
			ps.list = append(ps.list[:i], ps.list[i+1:]...)
			return
		}
	}
}

// statFields returns the fields after the command name of /proc/PID/stat
// (fields[0] is the state, field 3 of proc(5)).
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("bad stat for %d", pid)
	}
	return strings.Fields(s[i+1:]), nil
}

// cpuTicks is utime+stime of pid and of its direct children (nginx
// workers), in clock ticks.
func cpuTicks(pid int) (int64, error) {
	pids := append([]int{pid}, children(pid)...)
	var total int64
	for _, p := range pids {
		f, err := statFields(p)
		if err != nil {
			if p == pid {
				return 0, err
			}
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		total += u + s
	}
	return total, nil
}

func children(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		f, err := statFields(p)
		if err != nil || len(f) < 2 {
			continue
		}
		if pp, _ := strconv.Atoi(f[1]); pp == pid {
			out = append(out, p)
		}
	}
	return out
}

// waitReady polls url until it answers 200 or the process exits.
func waitReady(ctx context.Context, p *proc, url, logPath string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if p.exited() {
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, tail(string(b), 2000))
		}
		if st, _, _, err := get(ctx, url); err == nil && st == 200 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: %s not ready after 20s (log: %s)", p.name, url, logPath)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// activeOpens is the kernel's count of TCP connections this machine
// opened (Tcp ActiveOpens in /proc/net/snmp). Read around a run, minus
// wrk's own connections, it counts the connections the server under test
// opened to its upstreams: keepalive churn, which costs a proxy more CPU
// than anything else it does per request.
func activeOpens() (int64, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "ActiveOpens" && i < len(f) {
				return strconv.ParseInt(f[i], 10, 64)
			}
		}
	}
	return 0, errors.New("no Tcp ActiveOpens in /proc/net/snmp")
}

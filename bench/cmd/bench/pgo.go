package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// The profile go build optimises upstreamd with (profile-guided
// optimisation): cmd/upstreamd/default.pgo, which -pgo rewrites from a
// CPU profile of upstreamd serving the kit's workloads.

// pgoPaths are the workloads profiled, each for -d: what upstreamd spends
// its time on in the comparison.
var pgoPaths = []string{pathProxy, pathChanging, pathLua, pathProxyLua, pathNoKeep, pathPeers}

// pgoProfile is where -pgo writes the profile, relative to the repository.
const pgoProfile = "cmd/upstreamd/default.pgo"

// runPGO profiles bin (built without a profile) under wrk and writes
// pgoProfile; it returns the path written.
func runPGO(ctx context.Context, o options, ps *procs, bin, serverCPU, clientCPU string, port, portA, portB int) (string, error) {
	prefix := filepath.Join(o.work, "upstreamd-pgo")
	if err := writeConf(prefix, "upstreamd.conf", proxyConf(false, prefix, "1", port, portA, portB)); err != nil {
		return "", err
	}
	cpu := filepath.Join(prefix, "logs", "cpu.pprof")
	os.Setenv("UPSTREAMD_CPUPROFILE", cpu)
	defer os.Unsetenv("UPSTREAMD_CPUPROFILE")
	log := filepath.Join(prefix, "logs", "stderr.log")
	p, err := ps.start("upstreamd (profiling)", serverCPU, log, bin, "-p", prefix, "-c", filepath.Join(prefix, "conf", "upstreamd.conf"))
	if err != nil {
		return "", err
	}
	defer ps.remove(p)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitReady(ctx, p, base+pathProxy, log); err != nil {
		return "", err
	}
	for _, path := range pgoPaths {
		logf("profiling %s for %s", path, o.duration)
		w, _, err := runWrk(ctx, clientCPU, o.conns, o.duration, base+path)
		if err != nil {
			return "", err
		}
		if w.Non2xx+w.SocketErrors > 0 {
			return "", fmt.Errorf("%s: %d failed requests while profiling", path, w.Non2xx+w.SocketErrors)
		}
	}
	// SIGTERM: upstreamd exits and writes the profile on its way out.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	b, err := os.ReadFile(cpu)
	if err != nil || len(b) == 0 {
		return "", fmt.Errorf("upstreamd wrote no profile (%v); see %s", err, log)
	}
	if err := os.WriteFile(pgoProfile, b, 0o644); err != nil {
		return "", err
	}
	return pgoProfile, nil
}

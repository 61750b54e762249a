package testutil

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// RerunWithEnv runs the test binary's other tests again in a child process
// with env (NAME=value) added, and fails with the child's output if any
// fails. It covers code paths chosen once per process from the
// environment (such as UPSTREAMD_POLLWAIT=off). It does nothing where NAME
// is set already (in a child, of this rerun or of another for NAME), so it
// never recurses.
func RerunWithEnv(t *testing.T, env string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short")
	}
	name, value, _ := strings.Cut(env, "=")
	if v := os.Getenv(name); v != "" {
		t.Skip("this is a rerun, or " + name + " is set (" + name + "=" + v + "); not rerunning with " + value)
	}
	cmd := exec.Command(os.Args[0], "-test.skip=^"+t.Name()+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the tests with %s failed: %v\n%s", env, err, out)
	}
}

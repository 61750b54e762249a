package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// binPath is the upstreamd binary built once for every test of the package.
var (
	binPath     string
	raceEnabled bool
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "upstreamd-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "upstreamd")
	args := []string{"build", "-o", binPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newPrefix makes a prefix directory holding conf/nginx.conf with conf.
func newPrefix(t *testing.T, conf string) string {
	t.Helper()
	prefix := t.TempDir()
	writeConf(t, prefix, conf)
	return prefix
}

// writeConf replaces PREFIX/conf/nginx.conf atomically, so that a reload
// racing with the write can never read half a file.
func writeConf(t *testing.T, prefix, conf string) {
	t.Helper()
	writeFile(t, filepath.Join(prefix, "conf", "nginx.conf"), conf)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// runBin runs the binary to completion and returns its output and exit
// status.
func runBin(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = binEnv()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("run %v: %v", args, err)
	}
	checkNoRace(t, errOut.String())
	return out.String(), errOut.String(), code
}

// binEnv is the environment for the binary: a -race build otherwise
// sleeps a second at exit, which would make this package slow.
func binEnv() []string {
	return append(os.Environ(), "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
}

func checkNoRace(t *testing.T, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "WARNING: DATA RACE") {
		t.Errorf("the binary reported a data race:\n%s", stderr)
	}
}

const okConf = "events {}\n"

// TestConfigTestErrors runs -t on one configuration per class of error and
// checks the exact two lines nginx would print (with "upstreamd:" for
// "nginx:") and exit status 1. CONF stands for the configuration file's
// path and PREFIX for the prefix directory (with no trailing slash).
func TestConfigTestErrors(t *testing.T) {
	tests := []struct {
		name, conf, want string
		extra            []string // more command-line arguments
	}{
		{name: "unknown directive", conf: "events {}\nfoo bar;\n",
			want: `unknown directive "foo" in CONF:2`},
		{name: "not allowed here", conf: "events {}\nhttp {\nproxy_pass http://127.0.0.1;\n}\n",
			want: `"proxy_pass" directive is not allowed here in CONF:3`},
		{name: "argument count", conf: "events {}\nhttp {\nserver {\nlisten;\n}\n}\n",
			want: `invalid number of arguments in "listen" directive in CONF:4`},
		{name: "no opening brace", conf: "events {}\nhttp {\nserver {\nlocation /x;\n}\n}\n",
			want: `directive "location" has no opening "{" in CONF:4`},
		{name: "not terminated", conf: "events {}\nhttp {\ndefault_type text/html {\n}\n}\n",
			want: `directive "default_type" is not terminated by ";" in CONF:3`},
		{name: "unexpected brace", conf: "events {}\n}\n",
			want: `unexpected "}" in CONF:2`},
		{name: "unexpected end of file", conf: "events {}\nhttp {\n",
			want: `unexpected end of file, expecting "}" in CONF:3`},
		{name: "duplicate directive", conf: "worker_processes 1;\nevents {}\nworker_processes 2;\n",
			want: `"worker_processes" directive is duplicate in CONF:3`},
		{name: "invalid value", conf: "events {}\nworker_processes many;\n",
			want: `"worker_processes" directive invalid value in CONF:2`},
		{name: "invalid port", conf: "events {}\nhttp {\nserver {\nlisten 99999;\n}\n}\n",
			want: `invalid port in "99999" of the "listen" directive in CONF:4`},
		{name: "duplicate upstream", conf: "events {}\nhttp {\nupstream b {\nserver 127.0.0.1;\n}\nupstream b {\nserver 127.0.0.2;\n}\n}\n",
			want: `duplicate upstream "b" in CONF:6`},
		{name: "no servers in upstream", conf: "events {}\nhttp {\nupstream b {\n}\n}\n",
			want: `no servers are inside upstream in CONF:3`},
		{name: "invalid upstream parameter", conf: "events {}\nhttp {\nupstream b {\nserver 127.0.0.1 weight=0;\n}\n}\n",
			want: `invalid parameter "weight=0" in CONF:4`},
		{name: "host not found", conf: "events {}\nhttp {\nserver {\nlocation / {\nproxy_pass http://nowhere.invalid;\n}\n}\n}\n",
			want: `host not found in upstream "nowhere.invalid" in CONF:5`},
		{name: "missing include", conf: "events {}\nhttp {\ninclude extra.conf;\n}\n",
			want: `open() "PREFIX/conf/extra.conf" failed (2: No such file or directory) in CONF:3`},
		{name: "no events", conf: "http {}\n",
			want: `no "events" section in configuration`},
		{name: "-g unknown directive", conf: okConf, extra: []string{"-g", "foo on;"},
			want: `unknown directive "foo" in command line`},
		{name: "-g duplicate directive", conf: okConf, extra: []string{"-g", "worker_processes 2; worker_processes 3;"},
			want: `"worker_processes" directive is duplicate in command line`},
		{name: "-g block", conf: okConf, extra: []string{"-g", "events {}"},
			want: `block directives are not supported in -g option in command line`},
		{name: "-g unterminated", conf: okConf, extra: []string{"-g", "worker_processes 2"},
			want: `unexpected end of parameter, expecting ";" in command line`},
		// -g directives are read first, so the file's copy is the duplicate.
		{name: "-g duplicated by file", conf: "events {}\nworker_processes 1;\n", extra: []string{"-g", "worker_processes 2;"},
			want: `"worker_processes" directive is duplicate in CONF:2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			prefix := newPrefix(t, tt.conf)
			conf := filepath.Join(prefix, "conf", "nginx.conf")
			stdout, stderr, code := runBin(t, append([]string{"-p", prefix, "-t"}, tt.extra...)...)
			want := "upstreamd: [emerg] " + strings.NewReplacer("CONF", conf, "PREFIX", prefix).Replace(tt.want) + "\n" +
				"upstreamd: configuration file " + conf + " test failed\n"
			if stderr != want || code != 1 || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr\n%s\nwant exit 1, stderr\n%s", code, stdout, stderr, want)
			}
		})
	}
}

func TestConfigTestMissingFile(t *testing.T) {
	prefix := t.TempDir()
	_, stderr, code := runBin(t, "-p", prefix, "-c", "conf/none.conf", "-t")
	conf := filepath.Join(prefix, "conf", "none.conf")
	want := `upstreamd: [emerg] open() "` + conf + `" failed (2: No such file or directory)` + "\n" +
		"upstreamd: configuration file " + conf + " test failed\n"
	if stderr != want || code != 1 {
		t.Errorf("exit %d, stderr\n%s\nwant exit 1, stderr\n%s", code, stderr, want)
	}
}

func TestConfigTestOK(t *testing.T) {
	prefix := newPrefix(t, okConf)
	conf := filepath.Join(prefix, "conf", "nginx.conf")
	want := "upstreamd: the configuration file " + conf + " syntax is ok\n" +
		"upstreamd: configuration file " + conf + " test is successful\n"
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{"-t", []string{"-t"}, want},
		{"-g accepted", []string{"-g", "worker_processes 2;", "-t"}, want},
		{"-q", []string{"-t", "-q"}, ""},
		{"bundled", []string{"-tq"}, ""},
		{"-v with -t still tests", []string{"-v", "-t"}, "upstreamd version: upstreamd/0.1.0 (nginx-compatible 1.25.0)\n" + want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runBin(t, append([]string{"-p", prefix}, tt.args...)...)
			if code != 0 || stdout != "" || stderr != tt.wantStderr {
				t.Errorf("exit %d, stdout %q, stderr\n%s\nwant exit 0, stderr\n%s", code, stdout, stderr, tt.wantStderr)
			}
		})
	}
}

// TestConfigTestRelativeConf checks that -c is taken relative to the
// prefix, not to the working directory.
func TestConfigTestRelativeConf(t *testing.T) {
	prefix := t.TempDir()
	writeFile(t, filepath.Join(prefix, "etc", "main.conf"), okConf)
	cmd := exec.Command(binPath, "-p", prefix, "-c", "etc/main.conf", "-t")
	cmd.Env = binEnv()
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if want := filepath.Join(prefix, "etc", "main.conf") + " test is successful"; !strings.Contains(string(out), want) {
		t.Errorf("output %q lacks %q", out, want)
	}
}

// TestConfigDump checks -T: the test lines on stderr, then every file read,
// verbatim and main file first, on stdout.
func TestConfigDump(t *testing.T) {
	main := "# main file\nevents {}\nhttp {\n    include  sites/*.conf;   # all sites\n}\n"
	site := "server {\n    listen 127.0.0.1:1;  # never opened by -T\n    return 204;\n}\n"
	prefix := newPrefix(t, main)
	writeFile(t, filepath.Join(prefix, "conf", "sites", "a.conf"), site)
	conf := filepath.Join(prefix, "conf", "nginx.conf")
	stdout, stderr, code := runBin(t, "-p", prefix, "-T")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	wantErr := "upstreamd: the configuration file " + conf + " syntax is ok\n" +
		"upstreamd: configuration file " + conf + " test is successful\n"
	if stderr != wantErr {
		t.Errorf("stderr\n%s\nwant\n%s", stderr, wantErr)
	}
	wantOut := "# configuration file " + conf + ":\n" + main + "\n" +
		"# configuration file " + filepath.Join(prefix, "conf", "sites", "a.conf") + ":\n" + site + "\n"
	if stdout != wantOut {
		t.Errorf("stdout\n%s\nwant\n%s", stdout, wantOut)
	}

	// An invalid configuration is not dumped.
	writeConf(t, prefix, "events {}\nbogus;\n")
	stdout, _, code = runBin(t, "-p", prefix, "-T")
	if code != 1 || stdout != "" {
		t.Errorf("invalid config: exit %d, stdout %q", code, stdout)
	}
}

func TestVersion(t *testing.T) {
	const v = "upstreamd version: upstreamd/0.1.0 (nginx-compatible 1.25.0)\n"
	stdout, stderr, code := runBin(t, "-v")
	if code != 0 || stdout != "" || stderr != v {
		t.Errorf("-v: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	_, stderr, code = runBin(t, "-V")
	if code != 0 || !strings.HasPrefix(stderr, v+"built with go") {
		t.Errorf("-V: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runBin(t, "-h")
	if code != 0 || !strings.HasPrefix(stderr, v+"Usage: upstreamd ") {
		t.Errorf("-h: exit %d, stderr %q", code, stderr)
	}
}

// TestBadOptions checks nginx's wording and exit status 1 for mistakes on
// the command line.
func TestBadOptions(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-x"}, `invalid option: "x"`},
		{[]string{"-tx"}, `invalid option: "x"`},
		{[]string{"--help"}, `invalid option: "-"`},
		{[]string{"stop"}, `invalid option: "stop"`},
		{[]string{"-s", "restart"}, `invalid option: "-s restart"`},
		{[]string{"-s"}, `option "-s" requires parameter`},
		{[]string{"-p"}, `option "-p" requires directory name`},
		{[]string{"-c"}, `option "-c" requires file name`},
		{[]string{"-g"}, `option "-g" requires parameter`},
	}
	for _, tt := range tests {
		stdout, stderr, code := runBin(t, tt.args...)
		if want := "upstreamd: " + tt.want + "\n"; code != 1 || stdout != "" || stderr != want {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 1, stderr %q", tt.args, code, stdout, stderr, want)
		}
	}
}

// TestSignalErrors covers -s when there is nothing to signal.
func TestSignalErrors(t *testing.T) {
	prefix := newPrefix(t, okConf)
	pidFile := filepath.Join(prefix, "logs", "nginx.pid")
	check := func(name, want string) {
		t.Helper()
		stdout, stderr, code := runBin(t, "-p", prefix, "-s", "stop")
		if code != 1 || stdout != "" || stderr != want+"\n" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1, stderr %q", name, code, stdout, stderr, want)
		}
	}
	check("no pid file", `upstreamd: [error] open() "`+pidFile+`" failed (2: No such file or directory)`)

	writeFile(t, pidFile, "")
	check("empty pid file", `upstreamd: [error] invalid PID number "" in "`+pidFile+`"`)

	writeFile(t, pidFile, "12ab\n")
	check("garbage", `upstreamd: [error] invalid PID number "12ab" in "`+pidFile+`"`)

	// Beyond any pid_max, so no such process can exist.
	writeFile(t, pidFile, "999999999\n")
	check("stale pid", `upstreamd: [alert] kill(999999999, 15) failed (3: No such process)`)

	// The pid file's path comes from the configuration.
	writeConf(t, prefix, "pid run/x.pid;\nevents {}\n")
	check("pid directive", `upstreamd: [error] open() "`+filepath.Join(prefix, "run", "x.pid")+`" failed (2: No such file or directory)`)

	// So an invalid configuration stops -s before it reads the pid file.
	writeConf(t, prefix, "events {}\nbogus;\n")
	check("invalid config", `upstreamd: [emerg] unknown directive "bogus" in `+filepath.Join(prefix, "conf", "nginx.conf")+`:2`)
}

// readPID returns the number in a pid file, or 0 if it holds none.
func readPID(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

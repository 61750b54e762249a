// Command upstreamctl lists and changes the upstream groups of upstreamd (or
// of NGINX Plus) through the NGINX Plus REST API, so operators and scripts do
// not have to hand-craft curl calls and parse the JSON themselves.
//
// See docs/upstreamctl.md for the commands, flags and exit codes.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Exit codes. They are part of the command's interface: scripts branch on
// them, so they must never be renumbered.
const (
	exitOK          = 0
	exitAPI         = 1 // the API answered with an error (or with garbage)
	exitUsage       = 2 // bad command line; nothing was sent
	exitUnreachable = 3 // no HTTP answer at all: refused, DNS, timeout, TLS
	exitAuth        = 4 // 401 or 403: retrying without new credentials is pointless
)

const (
	defaultAPI     = "http://127.0.0.1:8080/api"
	defaultTimeout = 10 * time.Second
)

const usageText = `Usage: upstreamctl [--api URL] [--user USER:PASS] [--json] [--timeout D] COMMAND [ARGS]

Commands:
  upstreams                 list upstream groups with their peers counted by state
  servers NAME              list the servers (peers) of upstream NAME
  add NAME ADDR [FLAGS]     add server ADDR to NAME and print the new server's id
        --weight N  --max-fails N  --fail-timeout D  --max-conns N
        --slow-start D  --backup  --down
  down NAME ID              mark server ID of NAME down
  up NAME ID                mark server ID of NAME up (clears down)
  drain NAME ID             put server ID of NAME into drain mode
  undrain NAME ID           take server ID of NAME out of drain mode
  weight NAME ID N          set the weight of server ID of NAME to N
  remove NAME ID            remove server ID from NAME

Global flags (also accepted after COMMAND):
  --api URL      API base URL (default $UPSTREAMCTL_API, else http://127.0.0.1:8080/api)
  --user U:P     HTTP basic auth credentials (default $UPSTREAMCTL_USER)
  --json         print the API's JSON response instead of a table or message
  --timeout D    timeout of each HTTP request (default 10s)

Exit status: 0 success, 1 API error, 2 usage error, 3 cannot reach the API,
4 authentication or authorization failure (401/403).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// usageError is a command-line mistake: it is reported together with the
// usage text and exit status 2, and guarantees no request was sent.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// exitError carries the exit status a failure maps to, so the mapping is
// decided once, where the failure is understood (see client.go).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// globals holds the flags accepted both before and after the command.
type globals struct {
	api     string
	user    string
	json    bool
	timeout time.Duration
}

// register defines the global flags on fs. The current values become the
// defaults, so registering them again on the command's flag set (to accept
// `servers backend --json`) keeps whatever was given before the command.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.api, "api", g.api, "API base URL")
	fs.StringVar(&g.user, "user", g.user, "basic auth USER:PASS")
	fs.BoolVar(&g.json, "json", g.json, "print JSON")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "request timeout")
}

// run is the whole command, minus the process: it is what the tests drive.
func run(args []string, stdout, stderr io.Writer, env func(string) string) int {
	g := &globals{api: env("UPSTREAMCTL_API"), user: env("UPSTREAMCTL_USER"), timeout: defaultTimeout}
	if g.api == "" {
		g.api = defaultAPI
	}
	err := runCommand(g, args, stdout)
	return report(err, stdout, stderr)
}

func runCommand(g *globals, args []string, stdout io.Writer) error {
	fs := newFlagSet("upstreamctl")
	g.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usagef("missing command")
	}
	if rest[0] == "help" {
		return flag.ErrHelp
	}
	cmd, ok := lookupCommand(rest[0])
	if !ok {
		return usagef("unknown command %q", rest[0])
	}
	cfs := newFlagSet(rest[0])
	g.register(cfs)
	if cmd.flags != nil {
		cmd.flags(cfs)
	}
	pos, err := parseInterleaved(cfs, rest[1:])
	if err != nil {
		return err
	}
	switch {
	case len(pos) != len(cmd.args) && len(cmd.args) == 0:
		return usagef("%s: takes no arguments, got %d", rest[0], len(pos))
	case len(pos) != len(cmd.args):
		return usagef("%s: want %s, got %d argument(s)", rest[0], strings.Join(cmd.args, " "), len(pos))
	}
	c, err := newClient(g)
	if err != nil {
		return err
	}
	defer c.close()
	return cmd.run(c, pos, stdout)
}

// report prints err the way its class demands and returns the exit status.
func report(err error, stdout, stderr io.Writer) int {
	var ue *usageError
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		// Asked-for help is output, not a diagnostic.
		fmt.Fprint(stdout, usageText)
		return exitOK
	case errors.As(err, &ee):
		fmt.Fprintf(stderr, "upstreamctl: %s\n", ee.msg)
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "upstreamctl: %s\n\n%s", ue.msg, usageText)
		return exitUsage
	default:
		// Flag parse errors from the flag package are usage errors too.
		fmt.Fprintf(stderr, "upstreamctl: %v\n\n%s", err, usageText)
		return exitUsage
	}
}

// newFlagSet returns a flag set that reports nothing itself: report prints
// every error, so each one appears once and in one format.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseInterleaved parses flags mixed with positional arguments, as in
// `add backend 10.0.0.5:80 --weight 3`. The flag package stops at the first
// positional argument, so parsing resumes after each one; a "--" ends flag
// parsing for good.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

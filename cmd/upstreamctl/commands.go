package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// command describes one subcommand. flags, when set, registers the
// command's own flags on a fresh flag set before parsing.
type command struct {
	args  []string // names of the positional arguments, for messages
	flags func(fs *flag.FlagSet)
	run   func(c *client, args []string, out io.Writer) error
}

// lookupCommand builds the named command. Commands are built per call
// because add's flags bind to variables the run closure reads.
func lookupCommand(name string) (command, bool) {
	switch name {
	case "upstreams":
		return command{run: cmdUpstreams}, true
	case "servers":
		return command{args: []string{"NAME"}, run: cmdServers}, true
	case "add":
		return addCommand(), true
	case "down":
		return patchCommand(name, func([]string) (any, error) { return map[string]bool{"down": true}, nil }, "marked down"), true
	case "up":
		return patchCommand(name, func([]string) (any, error) { return map[string]bool{"down": false}, nil }, "marked up"), true
	case "drain":
		return patchCommand(name, func([]string) (any, error) { return map[string]bool{"drain": true}, nil }, "set to drain"), true
	case "undrain":
		// up clears only down; taking a server out of drain mode is its own
		// step, so a script cannot undo a drain by accident.
		return patchCommand(name, func([]string) (any, error) { return map[string]bool{"drain": false}, nil }, "taken out of drain"), true
	case "weight":
		cmd := patchCommand(name, func(args []string) (any, error) {
			n, err := strconv.Atoi(args[2])
			if err != nil {
				return nil, usagef("weight: invalid weight %q: want an integer", args[2])
			}
			// Range checks (weight >= 1) are left to the server, the one
			// authority on what it accepts.
			return map[string]int{"weight": n}, nil
		}, "weight set to %s")
		cmd.args = append(cmd.args, "N")
		return cmd, true
	case "remove":
		return command{args: []string{"NAME", "ID"}, run: cmdRemove}, true
	}
	return command{}, false
}

// send performs a call. Under --json it also prints the response and
// reports done, since the raw JSON is then the command's whole output.
func (c *client) send(out io.Writer, method string, body any, segments ...string) (resp []byte, done bool, err error) {
	resp, err = c.call(method, body, segments...)
	if err != nil || !c.json {
		return resp, false, err
	}
	return nil, true, c.jsonOut(out, resp)
}

// jsonOut pretty-prints body, keeping the API's key order.
func (c *client) jsonOut(out io.Writer, body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		return &exitError{exitAPI, fmt.Sprintf("invalid JSON from %s: %v", c.shown, err)}
	}
	buf.WriteByte('\n')
	_, err := out.Write(buf.Bytes())
	return err
}

// peer is the part of an upstream's "peers" entry the tables show.
type peer struct {
	ID       int    `json:"id"`
	Server   string `json:"server"`
	Backup   bool   `json:"backup"`
	Weight   int    `json:"weight"`
	State    string `json:"state"`
	Active   int    `json:"active"`
	Requests uint64 `json:"requests"`
	Fails    uint64 `json:"fails"`
}

type upstream struct {
	Peers []peer `json:"peers"`
	Zone  string `json:"zone"`
}

// server is the part of a dynamically configurable server object that the
// messages need.
type server struct {
	ID     int    `json:"id"`
	Server string `json:"server"`
}

func decode(c *client, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return &exitError{exitAPI, fmt.Sprintf("invalid response from %s: %v", c.shown, err)}
	}
	return nil
}

func newTable(out io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
}

func cmdUpstreams(c *client, _ []string, out io.Writer) error {
	body, done, err := c.send(out, http.MethodGet, nil, "http", "upstreams")
	if done || err != nil {
		return err
	}
	var ups map[string]upstream
	if err := decode(c, body, &ups); err != nil {
		return err
	}
	tw := newTable(out)
	fmt.Fprintln(tw, "NAME\tPEERS\tUP\tDOWN\tDRAINING\tUNHEALTHY\tZONE")
	names := make([]string, 0, len(ups))
	for name := range ups {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		u := ups[name]
		var up, down, draining, unhealthy int
		for _, p := range u.Peers {
			switch p.State {
			case "up":
				up++
			case "down":
				down++
			case "draining":
				draining++
			default:
				// unavail (max_fails), unhealthy (health check), checking
				// (awaiting its first check) and any future state all mean
				// "not taking traffic for a reason the operator did not
				// choose"; counting them here keeps the columns summing to
				// PEERS.
				unhealthy++
			}
		}
		zone := u.Zone
		if zone == "" {
			zone = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", name, len(u.Peers), up, down, draining, unhealthy, zone)
	}
	return tw.Flush()
}

// cmdServers shows the peers of the upstream GET rather than the
// /servers configuration list: only peers carry the live state and counters,
// and they also carry weight and backup.
func cmdServers(c *client, args []string, out io.Writer) error {
	body, done, err := c.send(out, http.MethodGet, nil, "http", "upstreams", args[0])
	if done || err != nil {
		return err
	}
	var u upstream
	if err := decode(c, body, &u); err != nil {
		return err
	}
	slices.SortFunc(u.Peers, func(a, b peer) int { return a.ID - b.ID })
	tw := newTable(out)
	fmt.Fprintln(tw, "ID\tSERVER\tWEIGHT\tSTATE\tBACKUP\tACTIVE\tREQUESTS\tFAILS")
	for _, p := range u.Peers {
		backup := "no"
		if p.Backup {
			backup = "yes"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%d\t%d\t%d\n", p.ID, p.Server, p.Weight, p.State, backup, p.Active, p.Requests, p.Fails)
	}
	return tw.Flush()
}

// newServer is the POST body. Pointers and omitempty send only what the
// user gave, so the server applies its own defaults to the rest, and an
// explicit zero (--max-fails 0, "never mark unavailable") still goes out.
type newServer struct {
	Server      string `json:"server"`
	Weight      *int   `json:"weight,omitempty"`
	MaxConns    *int   `json:"max_conns,omitempty"`
	MaxFails    *int   `json:"max_fails,omitempty"`
	FailTimeout string `json:"fail_timeout,omitempty"`
	SlowStart   string `json:"slow_start,omitempty"`
	Backup      *bool  `json:"backup,omitempty"`
	Down        *bool  `json:"down,omitempty"`
}

// nginxSeconds is a flag holding a time in nginx's notation. fail_timeout
// and slow_start have one-second resolution in nginx, so anything finer is
// refused here instead of being silently rounded by the server.
type nginxSeconds struct{ v string }

func (n *nginxSeconds) String() string { return n.v }

func (n *nginxSeconds) Set(s string) error {
	var d time.Duration
	if secs, err := strconv.Atoi(s); err == nil {
		d = time.Duration(secs) * time.Second // nginx reads a bare number as seconds
	} else if d, err = time.ParseDuration(s); err != nil {
		return fmt.Errorf("want a duration such as 10s or 1m")
	}
	if d < 0 || d%time.Second != 0 {
		return fmt.Errorf("want a whole, non-negative number of seconds")
	}
	n.v = strconv.FormatInt(int64(d/time.Second), 10) + "s"
	return nil
}

func addCommand() command {
	var weight, maxFails, maxConns int
	var failTimeout, slowStart nginxSeconds
	var backup, down bool
	var fs *flag.FlagSet
	return command{
		args: []string{"NAME", "ADDR"},
		flags: func(f *flag.FlagSet) {
			fs = f
			f.IntVar(&weight, "weight", 0, "")
			f.IntVar(&maxFails, "max-fails", 0, "")
			f.IntVar(&maxConns, "max-conns", 0, "")
			f.Var(&failTimeout, "fail-timeout", "")
			f.Var(&slowStart, "slow-start", "")
			f.BoolVar(&backup, "backup", false, "")
			f.BoolVar(&down, "down", false, "")
		},
		run: func(c *client, args []string, out io.Writer) error {
			req := newServer{Server: args[1], FailTimeout: failTimeout.v, SlowStart: slowStart.v}
			fs.Visit(func(f *flag.Flag) {
				switch f.Name {
				case "weight":
					req.Weight = &weight
				case "max-fails":
					req.MaxFails = &maxFails
				case "max-conns":
					req.MaxConns = &maxConns
				case "backup":
					req.Backup = &backup
				case "down":
					req.Down = &down
				}
			})
			body, done, err := c.send(out, http.MethodPost, req, "http", "upstreams", args[0], "servers")
			if done || err != nil {
				return err
			}
			var s server
			if err := decode(c, body, &s); err != nil {
				return err
			}
			// The bare id, so that `id=$(upstreamctl add ...)` just works.
			_, err = fmt.Fprintln(out, s.ID)
			return err
		},
	}
}

// patchCommand builds down/up/drain/weight: each PATCHes one server with
// the body made by mkBody and reports outcome, which may quote the last
// argument.
func patchCommand(name string, mkBody func(args []string) (any, error), outcome string) command {
	return command{
		args: []string{"NAME", "ID"},
		run: func(c *client, args []string, out io.Writer) error {
			id, err := parseID(name, args[1])
			if err != nil {
				return err
			}
			patch, err := mkBody(args)
			if err != nil {
				return err
			}
			body, done, err := c.send(out, http.MethodPatch, patch, "http", "upstreams", args[0], "servers", id)
			if done || err != nil {
				return err
			}
			what := outcome
			if strings.Contains(outcome, "%s") {
				what = fmt.Sprintf(outcome, args[len(args)-1])
			}
			_, err = fmt.Fprintf(out, "%s: server %s%s %s\n", args[0], id, describe(body), what)
			return err
		},
	}
}

// describe returns " (ADDR)" from a server object in a response, or nothing
// if the response does not carry one: the change already succeeded, so a
// terse response must not turn it into a failure.
func describe(body []byte) string {
	var s server
	if json.Unmarshal(body, &s) != nil || s.Server == "" {
		return ""
	}
	return " (" + s.Server + ")"
}

func cmdRemove(c *client, args []string, out io.Writer) error {
	id, err := parseID("remove", args[1])
	if err != nil {
		return err
	}
	// The DELETE answers with the servers that remain.
	_, done, err := c.send(out, http.MethodDelete, nil, "http", "upstreams", args[0], "servers", id)
	if done || err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s: server %s removed\n", args[0], id)
	return err
}

// parseID checks ID locally: a typo such as "l" must be a usage error, not
// a request the server rejects as UpstreamBadServerId.
func parseID(cmd, s string) (string, error) {
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return "", usagef("%s: invalid server ID %q: want a non-negative integer", cmd, s)
	}
	return strconv.FormatUint(n, 10), nil
}

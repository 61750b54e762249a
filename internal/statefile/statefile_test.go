package statefile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// withDefaults returns Default(addr) changed by f, for compact tables.
func withDefaults(addr string, f func(*Server)) Server {
	s := Default(addr)
	if f != nil {
		f(&s)
	}
	return s
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name    string
		servers []Server
		want    string
	}{
		{"empty", nil, ""},
		{"defaults omitted", []Server{Default("127.0.0.1:8080")}, "server 127.0.0.1:8080;\n"},
		{"zero weight means default", []Server{withDefaults("a:1", func(s *Server) { s.Weight = 0 })}, "server a:1;\n"},
		{
			// The example from the brief, which is what NGINX Plus writes.
			"example",
			[]Server{
				withDefaults("127.0.0.1:8081", func(s *Server) { s.Weight, s.MaxFails = 2, 3 }),
				withDefaults("127.0.0.1:8082", func(s *Server) { s.Backup, s.Down = true, true }),
				withDefaults("127.0.0.1:8083", func(s *Server) { s.MaxConns, s.SlowStart, s.Drain = 10, 30*time.Second, true }),
			},
			"server 127.0.0.1:8081 weight=2 max_fails=3 fail_timeout=10s;\n" +
				"server 127.0.0.1:8082 backup down;\n" +
				"server 127.0.0.1:8083 max_conns=10 slow_start=30s drain;\n",
		},
		{
			"every parameter in documented order",
			[]Server{{Addr: "h:1", Weight: 5, MaxConns: 7, MaxFails: 0, FailTimeout: 90 * time.Second,
				Backup: true, Down: true, SlowStart: time.Hour, Drain: true}},
			"server h:1 weight=5 max_conns=7 max_fails=0 fail_timeout=90s backup down slow_start=3600s drain;\n",
		},
		{"fail_timeout alone brings max_fails", []Server{withDefaults("h:1", func(s *Server) { s.FailTimeout = 30 * time.Second })},
			"server h:1 max_fails=1 fail_timeout=30s;\n"},
		{"zero fail_timeout", []Server{withDefaults("h:1", func(s *Server) { s.FailTimeout = 0 })},
			"server h:1 max_fails=1 fail_timeout=0s;\n"},
		{"sub-second truncated", []Server{withDefaults("h:1", func(s *Server) { s.SlowStart = 2500 * time.Millisecond })},
			"server h:1 slow_start=2s;\n"},
		{"ipv6 and unix and hostname", []Server{Default("[::1]:80"), Default("unix:/tmp/b.sock"), Default("Backend.Example.COM:8080")},
			"server [::1]:80;\nserver unix:/tmp/b.sock;\nserver Backend.Example.COM:8080;\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Format(tt.servers)); got != tt.want {
				t.Errorf("Format =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		s    Server
	}{
		{"defaults", Default("127.0.0.1:80")},
		{"weight", withDefaults("127.0.0.1:80", func(s *Server) { s.Weight = 100 })},
		{"max_fails", withDefaults("127.0.0.1:80", func(s *Server) { s.MaxFails = 5 })},
		{"max_fails zero", withDefaults("127.0.0.1:80", func(s *Server) { s.MaxFails = 0 })},
		{"max_conns", withDefaults("127.0.0.1:80", func(s *Server) { s.MaxConns = 42 })},
		{"fail_timeout", withDefaults("127.0.0.1:80", func(s *Server) { s.FailTimeout = 3 * time.Minute })},
		{"fail_timeout zero", withDefaults("127.0.0.1:80", func(s *Server) { s.FailTimeout = 0 })},
		{"slow_start", withDefaults("127.0.0.1:80", func(s *Server) { s.SlowStart = 45 * time.Second })},
		{"backup", withDefaults("127.0.0.1:80", func(s *Server) { s.Backup = true })},
		{"down", withDefaults("127.0.0.1:80", func(s *Server) { s.Down = true })},
		{"drain", withDefaults("127.0.0.1:80", func(s *Server) { s.Drain = true })},
		{"everything", Server{Addr: "[2001:db8::1]:8443", Weight: 3, MaxFails: 2, MaxConns: 9,
			FailTimeout: 20 * time.Second, SlowStart: time.Minute, Backup: true, Down: true, Drain: true}},
		{"ipv6 loopback", Default("[::1]:80")},
		{"ipv6 without port", Default("[fe80::1]")},
		{"hostname as written", Default("Backend1.Example.com:8080")},
		{"hostname without port", Default("backend")},
		{"unix socket", Default("unix:/var/run/app.sock")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.conf")
			want := []Server{tt.s, Default("10.0.0.1:1")} // a second line checks separation
			if err := Write(path, want); err != nil {
				t.Fatal(err)
			}
			got, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Read = %+v\nwant   %+v\nfile:\n%s", got, want, Format(want))
			}
			// Re-formatting what was read gives byte-identical text, so a
			// restart followed by a no-op change does not churn the file.
			data, _ := os.ReadFile(path)
			if string(Format(got)) != string(data) {
				t.Errorf("Format(Read) = %q, file %q", Format(got), data)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []Server
	}{
		{"empty file", "", []Server{}},
		{"only comments and blank lines", "# state of backend\n\n   \n# end\n", []Server{}},
		{"comments between servers",
			"# written by upstreamd\n\nserver a:1; # first\n\n# second:\nserver b:2 down;\n",
			[]Server{Default("a:1"), withDefaults("b:2", func(s *Server) { s.Down = true })}},
		{"several per line and odd spacing", "server a:1;server b:2\tweight=2 ;",
			[]Server{Default("a:1"), withDefaults("b:2", func(s *Server) { s.Weight = 2 })}},
		{"quoted address", `server "a:1" 'backup';`, []Server{withDefaults("a:1", func(s *Server) { s.Backup = true })}},
		{"bare time is seconds", "server a:1 fail_timeout=30 slow_start=0;",
			[]Server{withDefaults("a:1", func(s *Server) { s.FailTimeout = 30 * time.Second })}},
		{"time units", "server a:1 fail_timeout=1m30s slow_start=2h;",
			[]Server{withDefaults("a:1", func(s *Server) { s.FailTimeout, s.SlowStart = 90*time.Second, 2*time.Hour })}},
		{"large units", "server a:1 fail_timeout=1d slow_start=1w;",
			[]Server{withDefaults("a:1", func(s *Server) { s.FailTimeout, s.SlowStart = 24*time.Hour, 7*24*time.Hour })}},
		{"months and years", "server a:1 slow_start=1y1M;",
			[]Server{withDefaults("a:1", func(s *Server) { s.SlowStart = 395 * 24 * time.Hour })}},
		{"minutes then bare seconds", "server a:1 slow_start=1m5;",
			[]Server{withDefaults("a:1", func(s *Server) { s.SlowStart = 65 * time.Second })}},
		{"spaced parts", `server a:1 "slow_start=1h 30m";`,
			[]Server{withDefaults("a:1", func(s *Server) { s.SlowStart = 90 * time.Minute })}},
		{"repeated parameter: last wins", "server a:1 weight=2 weight=3;",
			[]Server{withDefaults("a:1", func(s *Server) { s.Weight = 3 })}},
		{"duplicate servers kept", "server a:1;\nserver a:1;", []Server{Default("a:1"), Default("a:1")}},
		{"ipv4-mapped ipv6", "server [::ffff:10.0.0.1]:80;", []Server{Default("[::ffff:10.0.0.1]:80")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse("/x/state.conf", []byte(tt.text))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parse = %+v\nwant    %+v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const file = "/var/lib/upstreamd/backend.state"
	tests := []struct {
		name, text, want string
	}{
		{"unknown parameter", "server a:1;\nserver b:2;\nserver c:3 x;\n", `invalid parameter "x" in ` + file + ":3"},
		{"unknown key=value", "server a:1 resolve_timeout=5s;", `invalid parameter "resolve_timeout=5s" in ` + file + ":1"},
		{"zero weight", "\nserver a:1 weight=0;", `invalid parameter "weight=0" in ` + file + ":2"},
		{"negative weight", "server a:1 weight=-1;", `invalid parameter "weight=-1" in ` + file + ":1"},
		{"empty weight", "server a:1 weight=;", `invalid parameter "weight=" in ` + file + ":1"},
		{"weight overflow", "server a:1 weight=99999999999;", `invalid parameter "weight=99999999999" in ` + file + ":1"},
		{"signed count", "server a:1 max_fails=+1;", `invalid parameter "max_fails=+1" in ` + file + ":1"},
		{"bad max_conns", "server a:1 max_conns=ten;", `invalid parameter "max_conns=ten" in ` + file + ":1"},
		{"milliseconds", "server a:1 fail_timeout=500ms;", `invalid parameter "fail_timeout=500ms" in ` + file + ":1"},
		{"unknown unit", "server a:1 fail_timeout=5x;", `invalid parameter "fail_timeout=5x" in ` + file + ":1"},
		{"units out of order", "server a:1 slow_start=30s1m;", `invalid parameter "slow_start=30s1m" in ` + file + ":1"},
		{"unit repeated", "server a:1 slow_start=1m1m;", `invalid parameter "slow_start=1m1m" in ` + file + ":1"},
		{"unit without number", "server a:1 slow_start=s;", `invalid parameter "slow_start=s" in ` + file + ":1"},
		{"bare seconds after s", "server a:1 slow_start=1s5;", `invalid parameter "slow_start=1s5" in ` + file + ":1"},
		{"time overflow", "server a:1 slow_start=99999999999999y;", `invalid parameter "slow_start=99999999999999y" in ` + file + ":1"},
		{"flag with value", "server a:1 backup=on;", `invalid parameter "backup=on" in ` + file + ":1"},
		{"other directive", "upstream b {}", `unknown directive "upstream" in ` + file + ":1"},
		{"zone is not a server", "zone z 64k;", `unknown directive "zone" in ` + file + ":1"},
		{"server block", "server a:1 {}", `directive "server" is not terminated by ";" in ` + file + ":1"},
		{"no address", "server;", `invalid number of arguments in "server" directive in ` + file + ":1"},
		{"bad port", "server a:99999;", `invalid port in upstream "a:99999" in ` + file + ":1"},
		{"empty port", "server a:;", `invalid port in upstream "a:" in ` + file + ":1"},
		{"no host", "server :80;", `no host in upstream ":80" in ` + file + ":1"},
		{"unclosed ipv6", "server [::1:80;", `invalid host in upstream "[::1:80" in ` + file + ":1"},
		{"bad ipv6", "server [zz::1]:80;", `invalid IPv6 address in upstream "[zz::1]:80" in ` + file + ":1"},
		{"bare ipv6", "server ::1:80;", `invalid host in upstream "::1:80" in ` + file + ":1"},
		{"unix without path", "server unix:;", `no path in the unix domain socket in upstream "unix:" in ` + file + ":1"},
		{"missing semicolon (from the parser)", "server a:1", `unexpected end of file, expecting ";" or "}" in ` + file + ":1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(file, []byte(tt.text))
			if err == nil {
				t.Fatalf("parse(%q) succeeded, want %q", tt.text, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q\nwant    %q", err, tt.want)
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()

	t.Run("missing file is empty", func(t *testing.T) {
		got, err := Read(filepath.Join(dir, "nope", "state.conf"))
		if err != nil || len(got) != 0 {
			t.Fatalf("Read = %v, %v; want empty, nil", got, err)
		}
	})
	t.Run("errors name the real path", func(t *testing.T) {
		path := filepath.Join(dir, "bad.conf")
		if err := os.WriteFile(path, []byte("# hand-edited\nserver a:1 wieght=2;\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Read(path)
		want := `invalid parameter "wieght=2" in ` + path + ":2"
		if err == nil || err.Error() != want {
			t.Fatalf("Read error = %v, want %q", err, want)
		}
	})
	t.Run("unreadable path", func(t *testing.T) {
		// A directory where the file should be: an I/O error, not "empty".
		_, err := Read(dir)
		if err == nil || !strings.Contains(err.Error(), "failed") {
			t.Fatalf("Read(dir) error = %v, want an open() failure", err)
		}
	})
}

func TestWrite(t *testing.T) {
	t.Run("creates directory, mode 0644, no temp left", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "b")
		path := filepath.Join(dir, "state.conf")
		old := setUmask(0o077) // a strict umask must not make the file private
		defer setUmask(old)
		if err := Write(path, []Server{Default("a:1")}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
		}
		assertOnlyFile(t, dir, "state.conf")
	})
	t.Run("replaces content, including with an empty list", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.conf")
		for _, servers := range [][]Server{
			{Default("a:1"), Default("b:2")},
			{withDefaults("b:2", func(s *Server) { s.Down = true })},
			{},
		} {
			if err := Write(path, servers); err != nil {
				t.Fatal(err)
			}
			got, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(servers) || (len(got) > 0 && !reflect.DeepEqual(got, servers)) {
				t.Fatalf("Read = %+v, want %+v", got, servers)
			}
		}
		if data, _ := os.ReadFile(path); len(data) != 0 {
			t.Errorf("empty list wrote %q", data)
		}
	})
	t.Run("removes temp files of a killed writer", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "st[1].conf") // glob metacharacters in the name
		for _, stale := range []string{".st[1].conf.tmp-123", ".st[1].conf.tmp-456"} {
			if err := os.WriteFile(filepath.Join(dir, stale), []byte("server half"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		other := filepath.Join(dir, ".other.conf.tmp-1") // another file's temp is not ours
		if err := os.WriteFile(other, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Write(path, []Server{Default("a:1")}); err != nil {
			t.Fatal(err)
		}
		assertOnlyFile(t, dir, ".other.conf.tmp-1", "st[1].conf")
	})
}

func TestWriteRejects(t *testing.T) {
	tests := []struct {
		name string
		s    Server
		want string
	}{
		{"empty address", Server{Weight: 1}, "no host"},
		{"space in address", Default("a b:1"), "address contains"},
		{"semicolon in address", Default("a:1;server evil:2"), "address contains"},
		{"brace", Default("a{:1"), "address contains"},
		{"bad port", Default("a:0"), "invalid port"},
		{"negative weight", withDefaults("a:1", func(s *Server) { s.Weight = -1 }), "weight"},
		{"negative max_fails", withDefaults("a:1", func(s *Server) { s.MaxFails = -1 }), "max_fails"},
		{"negative max_conns", withDefaults("a:1", func(s *Server) { s.MaxConns = -1 }), "max_conns"},
		{"negative fail_timeout", withDefaults("a:1", func(s *Server) { s.FailTimeout = -time.Second }), "fail_timeout"},
		{"negative slow_start", withDefaults("a:1", func(s *Server) { s.SlowStart = -time.Second }), "slow_start"},
		{"huge weight", withDefaults("a:1", func(s *Server) { s.Weight = 1 << 40 }), "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.conf")
			if err := Write(path, []Server{Default("ok:1")}); err != nil {
				t.Fatal(err)
			}
			err := Write(path, []Server{Default("ok:1"), tt.s})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "server 2") {
				t.Fatalf("Write error = %v, want one about server 2 containing %q", err, tt.want)
			}
			// A refused change leaves the previous state intact.
			got, err := Read(path)
			if err != nil || !reflect.DeepEqual(got, []Server{Default("ok:1")}) {
				t.Fatalf("after refused Write: Read = %+v, %v", got, err)
			}
			assertOnlyFile(t, dir, "state.conf")
		})
	}
}

// assertOnlyFile fails unless dir holds exactly the named entries.
func assertOnlyFile(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !reflect.DeepEqual(got, names) {
		t.Errorf("directory holds %q, want %q", got, names)
	}
}

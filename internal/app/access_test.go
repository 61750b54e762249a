package app

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestAllowDenyFirstMatchWins(t *testing.T) {
	_, base, logs := startServer(t, `
error_log stderr;
events {}
http {
    access_log off;
    server {
        listen LISTEN;
        location /open { return 200 "open"; }
        location /local { allow 127.0.0.1; deny all; return 200 "local"; }
        location /denied { deny 127.0.0.0/8; allow all; default_type text/plain; content_by_lua_block { ngx.say("never") } }
        location /nested {
            deny all;
            location /nested/inner { allow all; default_type text/plain; content_by_lua_block { ngx.say("inner") } }
            location /nested/inherits { default_type text/plain; content_by_lua_block { ngx.say("never") } }
        }
    }
}`)
	tests := []struct {
		path string
		code int
	}{
		{"/open", 200},
		{"/local", 200},
		{"/denied", 403},
		{"/nested/inner", 200},
		{"/nested/inherits", 403},
	}
	for _, tt := range tests {
		if code, body, _ := get(t, base+tt.path); code != tt.code {
			t.Errorf("%s: %d %q, want %d", tt.path, code, body, tt.code)
		}
	}
	if !strings.Contains(logs.String(), "access forbidden by rule") {
		t.Fatalf("no [error] access forbidden by rule:\n%s", logs.String())
	}
}

func TestAuthBasic(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum([]byte("shapass"))
	users := fmt.Sprintf("# users\nalice:%s\nbob:{SHA}%s\n", hash, base64.StdEncoding.EncodeToString(sum[:]))
	s, base, logs := startServer(t, `
error_log stderr info;
events {}
http {
    access_log off;
    server {
        listen LISTEN;
        location / {
            auth_basic "Restricted API";
            auth_basic_user_file htpasswd;
            default_type text/plain;
            content_by_lua_block { ngx.say("hello ", ngx.var.remote_user) }
        }
        location /any {
            satisfy any;
            allow 127.0.0.1;
            deny all;
            auth_basic "x";
            auth_basic_user_file htpasswd;
            return 200 "any";
        }
    }
}`)
	if err := os.WriteFile(filepath.Join(filepath.Dir(s.opts.ConfFile), "htpasswd"), []byte(users), 0o644); err != nil {
		t.Fatal(err)
	}
	do := func(path, user, pass string) (int, string, http.Header) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := new(strings.Builder)
		_, _ = fmt.Fprint(buf, readAll(resp))
		return resp.StatusCode, buf.String(), resp.Header
	}
	code, _, h := do("/", "", "")
	if code != 401 || h.Get("WWW-Authenticate") != `Basic realm="Restricted API"` {
		t.Fatalf("no credentials: %d %q", code, h.Get("WWW-Authenticate"))
	}
	if code, body, _ := do("/", "alice", "s3cret"); code != 200 || body != "hello alice\n" {
		t.Fatalf("bcrypt user: %d %q", code, body)
	}
	if code, body, _ := do("/", "bob", "shapass"); code != 200 || body != "hello bob\n" {
		t.Fatalf("{SHA} user: %d %q", code, body)
	}
	if code, _, _ := do("/", "alice", "wrong"); code != 401 {
		t.Fatalf("wrong password: %d", code)
	}
	if code, _, _ := do("/", "mallory", "x"); code != 401 {
		t.Fatalf("unknown user: %d", code)
	}
	if code, body, _ := do("/any", "", ""); code != 200 || body != "any" {
		t.Fatalf("satisfy any with an allowed address: %d %q", code, body)
	}
	for _, want := range []string{`user "alice": password mismatch`, `user "mallory" was not found in "`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("error log lacks %q:\n%s", want, logs.String())
		}
	}
}

func readAll(resp *http.Response) string {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

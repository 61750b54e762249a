package nginxconf

import (
	"strings"
	"testing"
)

func TestParseTree(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{
			name: "empty",
			src:  "# nothing here\n",
			want: "",
		},
		{
			name: "simple directives",
			src:  "worker_processes 4;\nerror_log /dev/stderr  warn ;",
			want: `c.conf:1 "worker_processes" "4"
c.conf:2 "error_log" "/dev/stderr" "warn"
`,
		},
		{
			name: "nested blocks with positions",
			src: `events {}
http {
    server {
        listen 80;

        location / {
            return 200 "ok";
        }
    }
}
`,
			want: `c.conf:1 "events" {
c.conf:2 "http" {
  c.conf:3 "server" {
    c.conf:4 "listen" "80"
    c.conf:6 "location" "/" {
      c.conf:7 "return" "200" "ok"
`,
		},
		{
			name: "directive spanning lines is positioned at its name",
			src:  "a\n  b\n  c;\nd;",
			want: `c.conf:1 "a" "b" "c"
c.conf:4 "d"
`,
		},
		{
			name: "blocks on one line",
			src:  `a{b{c;}}d;`,
			want: `c.conf:1 "a" {
  c.conf:1 "b" {
    c.conf:1 "c"
c.conf:1 "d"
`,
		},
		{
			name: "if with quoted operand",
			src:  `if ($http_x = "a b") { return 403; }`,
			want: `c.conf:1 "if" "($http_x" "=" "a b" ")" {
  c.conf:1 "return" "403"
`,
		},
		{
			name: "variables in braces and empty argument",
			src:  `set $v "${host}x"; proxy_set_header X-A ${scheme}://$host ""; map $a $b {}`,
			want: `c.conf:1 "set" "$v" "${host}x"
c.conf:1 "proxy_set_header" "X-A" "${scheme}://$host" ""
c.conf:1 "map" "$a" "$b" {
`,
		},
		{
			name: "quoted name",
			src:  `"a b" c;`,
			want: `c.conf:1 "a b" "c"
`,
		},
		{
			name: "lua block with args",
			src:  "set_by_lua_block $res { return 1 }\nx;",
			want: `c.conf:1 "set_by_lua_block" "$res" lua@1 " return 1 "
c.conf:2 "x"
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := Parse("c.conf", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := outline(ds); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestParseBlockShape(t *testing.T) {
	ds, err := Parse("c.conf", []byte("a {}\nb;"))
	if err != nil {
		t.Fatal(err)
	}
	if !ds[0].IsBlock || len(ds[0].Block) != 0 {
		t.Errorf("a: IsBlock=%v Block=%v, want empty block", ds[0].IsBlock, ds[0].Block)
	}
	if ds[1].IsBlock {
		t.Errorf("b: IsBlock=true for a simple directive")
	}
}

func TestErrorWithoutFile(t *testing.T) {
	e := &Error{Msg: "boom"}
	if e.Error() != "boom" {
		t.Errorf("got %q", e.Error())
	}
}

func TestParseErrorsAreTyped(t *testing.T) {
	_, err := Parse("c.conf", []byte("}"))
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %T, want *Error", err)
	}
	if e.File != "c.conf" || e.Line != 1 || !strings.Contains(e.Msg, "}") {
		t.Errorf("got %+v", e)
	}
}

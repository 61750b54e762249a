package nginxconf

import (
	"fmt"
	"strings"
	"testing"
)

// TestErrors pins the full text of every error class, in nginx's wording
// where nginx (or lua-nginx-module) has one. The main file is
// /conf/nginx.conf; other entries of files are reachable through include.
func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		files memFS
		want  string
	}{
		{name: "close at top level", src: "a;\n}",
			want: `unexpected "}" in /conf/nginx.conf:2`},
		{name: "extra close", src: "a {\n}\n}\n",
			want: `unexpected "}" in /conf/nginx.conf:3`},
		{name: "close after arguments", src: "a {\n b c }\n}",
			want: `unexpected "}" in /conf/nginx.conf:2`},
		{name: "lone semicolon", src: "a;\n;",
			want: `unexpected ";" in /conf/nginx.conf:2`},
		{name: "semicolon after block", src: "a {\n};",
			want: `unexpected ";" in /conf/nginx.conf:2`},
		{name: "lone open", src: "a;\n  {",
			want: `unexpected "{" in /conf/nginx.conf:2`},
		{name: "word after quote", src: "a\n\"b\"c;",
			want: `unexpected "c" in /conf/nginx.conf:2`},
		{name: "unterminated directive", src: "a;\nb c",
			want: `unexpected end of file, expecting ";" or "}" in /conf/nginx.conf:2`},
		{name: "unterminated directive, trailing newline", src: "a;\nb c\n",
			want: `unexpected end of file, expecting ";" or "}" in /conf/nginx.conf:3`},
		{name: "unterminated directive in block", src: "a {\n b",
			want: `unexpected end of file, expecting ";" or "}" in /conf/nginx.conf:2`},
		{name: "unterminated quote", src: "a \"b;\n\n",
			want: `unexpected end of file, expecting ";" or "}" in /conf/nginx.conf:3`},
		{name: "end of file after quote", src: "a\n\"b\"",
			want: `unexpected end of file, expecting ";" or "}" in /conf/nginx.conf:2`},
		{name: "bad glob pattern", src: "include [a*;",
			want: `glob() "/conf/[a*" failed (syntax error in pattern) in /conf/nginx.conf:1`},
		{name: "unclosed block", src: "http {\n  server {\n  }\n",
			want: `unexpected end of file, expecting "}" in /conf/nginx.conf:4`},
		{name: "include without argument", src: "\ninclude;",
			want: `invalid number of arguments in "include" directive in /conf/nginx.conf:2`},
		{name: "include with two arguments", src: "include a b;",
			want: `invalid number of arguments in "include" directive in /conf/nginx.conf:1`},
		{name: "include as block", src: "include a {}",
			want: `directive "include" is not terminated by ";" in /conf/nginx.conf:1`},
		{name: "include missing file", src: "a;\ninclude missing.conf;",
			want: `open() "/conf/missing.conf" failed (2: No such file or directory) in /conf/nginx.conf:2`},
		{name: "include missing absolute file", src: "include /etc/x.conf;",
			want: `open() "/etc/x.conf" failed (2: No such file or directory) in /conf/nginx.conf:1`},
		{name: "error inside included file", src: "http {\ninclude sites/*.conf;\n}",
			files: memFS{"/conf/sites/a.conf": "server {\n listen 80;\n"},
			want:  `unexpected end of file, expecting "}" in /conf/sites/a.conf:3`},
		{name: "include of missing file inside included file", src: "include a.conf;",
			files: memFS{"/conf/a.conf": "\n\ninclude b.conf;"},
			want:  `open() "/conf/b.conf" failed (2: No such file or directory) in /conf/a.conf:3`},
		{name: "block cannot close in included file", src: "http {\ninclude a.conf;\n}",
			files: memFS{"/conf/a.conf": "}"},
			want:  `unexpected "}" in /conf/a.conf:1`},
		{name: "self include", src: "include nginx.conf;",
			want: `recursive include of "/conf/nginx.conf" in /conf/nginx.conf:1`},
		{name: "include cycle", src: "include a.conf;",
			files: memFS{"/conf/a.conf": "include b.conf;", "/conf/b.conf": "\ninclude a.conf;"},
			want:  `recursive include of "/conf/a.conf" in /conf/b.conf:2`},
		{name: "include nesting too deep", src: "include n1.conf;",
			files: includeChain(60),
			want:  `include nesting is deeper than 50 levels in /conf/n50.conf:1`},
		{name: "lua block without brace", src: "content_by_lua_block;",
			want: `directive "content_by_lua_block" has no opening "{" in /conf/nginx.conf:1`},
		{name: "lua block unterminated", src: "location / {\n content_by_lua_block {\n  ngx.say('}')\n",
			want: `unexpected end of file, expecting terminating characters for lua code block in /conf/nginx.conf:2`},
		{name: "lua block unterminated nested table", src: "init_by_lua_block {\n t = {\n a = {}\n",
			want: `unexpected end of file, expecting terminating characters for lua code block in /conf/nginx.conf:2`},
		{name: "lua long string unterminated", src: "init_by_lua_block {\n\n s = [[ }\n}\n",
			want: `Lua code block missing the closing long bracket "]]" in /conf/nginx.conf:3`},
		{name: "lua long comment unterminated", src: "init_by_lua_block {\n --[==[ ]] }\n}\n",
			want: `Lua code block missing the closing long bracket "]==]" in /conf/nginx.conf:2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := memFS{"/conf/nginx.conf": tt.src}
			for k, v := range tt.files {
				files[k] = v
			}
			ds, err := parse(files, "/conf/nginx.conf", []byte(tt.src))
			if err == nil {
				t.Fatalf("no error; parsed\n%s", outline(ds))
			}
			if _, ok := err.(*Error); !ok {
				t.Errorf("error is %T, want *Error", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

// includeChain returns files /conf/n1.conf ... /conf/nN.conf, each including
// the next.
func includeChain(n int) memFS {
	files := memFS{}
	for i := 1; i <= n; i++ {
		files[fmt.Sprintf("/conf/n%d.conf", i)] = fmt.Sprintf("include n%d.conf;", i+1)
	}
	files[fmt.Sprintf("/conf/n%d.conf", n)] = "end;"
	return files
}

func TestIncludeChainWithinLimit(t *testing.T) {
	files := includeChain(50)
	ds, err := parse(files, "/conf/nginx.conf", []byte("include n1.conf;"))
	if err != nil {
		t.Fatal(err)
	}
	if got := outline(ds); got != "/conf/n50.conf:1 \"end\"\n" {
		t.Errorf("got %s", got)
	}
}

// Wildcards that match nothing are fine; only plain paths must exist.
func TestIncludeGlobNoMatch(t *testing.T) {
	ds, err := parse(memFS{}, "/conf/nginx.conf", []byte("include /nowhere/*.conf;\ninclude /conf/?.cnf;\na;"))
	if err != nil {
		t.Fatal(err)
	}
	if got := outline(ds); !strings.HasSuffix(got, "/conf/nginx.conf:3 \"a\"\n") {
		t.Errorf("got %s", got)
	}
}

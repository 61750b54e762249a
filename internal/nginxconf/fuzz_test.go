package nginxconf

import (
	"errors"
	"testing"
)

func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"a b;",
		"http { server { listen 80; location / { return 200 'ok'; } } }",
		`if ($a = "b") { set $x "${y}z"; }`,
		"a \"b\\\"c\" 'd\\n';",
		"# c\na#b c}d;",
		"content_by_lua_block { local t = {\"}\"} -- }\n x = [==[ } ]==] --[[ { ]] }",
		"include x.conf;",
		"include *.conf;",
		"a {",
		"}",
		`"a"b`,
		"init_by_lua_block { [[",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	files := memFS{
		"/conf/x.conf":     "x { y; }\n",
		"/conf/lua.conf":   "init_by_lua_block { z = '}' }",
		"/conf/self.conf":  "include self.conf;",
		"/conf/other.conf": "include x.conf; include *.conf;",
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ds, err := parse(files, "/conf/nginx.conf", data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.File == "" || e.Line < 1 {
				t.Fatalf("error %#v is not a positioned *Error", err)
			}
			return
		}
		out := Dump(ds)
		back, err := parse(memFS{}, "/conf/dump.conf", []byte(out))
		if err != nil {
			t.Fatalf("Dump output does not parse: %v\ninput %q\ndump:\n%s", err, data, out)
		}
		if !sameTree(ds, back) {
			t.Fatalf("round trip differs\ninput %q\nfirst\n%s\nthen\n%s", data, outline(ds), outline(back))
		}
		if again := Dump(back); again != out {
			t.Fatalf("Dump is not stable\nfirst\n%s\nthen\n%s", out, again)
		}
	})
}

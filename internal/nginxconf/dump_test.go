package nginxconf

import "testing"

func TestDumpGolden(t *testing.T) {
	src := `http{server{listen 80;location ~ "^/a{2}$" {return 200 'it\'s';}
set $x "a b";  set $e "" ; add_header X ${host}y;
content_by_lua_block {
  ngx.say("}")
}
}}
events{}`
	want := `http {
    server {
        listen 80;
        location ~ "^/a{2}$" {
            return 200 "it's";
        }
        set $x "a b";
        set $e "";
        add_header X ${host}y;
        content_by_lua_block {
  ngx.say("}")
}
    }
}
events {
}
`
	ds, err := Parse("c.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := Dump(ds); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestQuoteWord(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"", `""`},
		{"a b", `"a b"`},
		{"a;b", `"a;b"`},
		{"#x", `"#x"`},
		{"a#x", "a#x"},
		{"}x", `"}x"`},
		{"a}", "a}"},
		{"{x", `"{x"`},
		{"a{", `"a{"`},
		{"${x}", "${x}"},
		{"${{x}}", "${{x}}"},
		{"$x{", `"$x{"`},
		{`a"b`, `"a\"b"`},
		{`a'b`, `"a'b"`},
		{`\d`, `"\\d"`},
		{"a\nb\tc\rd", `"a\nb\tc\rd"`},
		{")", ")"},
	}
	for _, tt := range tests {
		if got := quoteWord(tt.in); got != tt.want {
			t.Errorf("quoteWord(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// Every word must come back unchanged whatever bytes it holds.
func TestQuoteWordRoundTrip(t *testing.T) {
	words := []string{"", " ", `\`, `\\`, `\"`, `"`, "'", "$", "${", "$}", "$ {",
		"a\\nb", "\x00\xff", ";", "{", "}", "#", "))", `\n`, "a$", "$$"}
	for _, w := range words {
		src := "x " + quoteWord(w) + ";"
		ds, err := Parse("c.conf", []byte(src))
		if err != nil {
			t.Errorf("%q written as %s: %v", w, src, err)
			continue
		}
		if len(ds) != 1 || len(ds[0].Args) != 1 || ds[0].Args[0] != w {
			t.Errorf("%q written as %s read back as\n%s", w, src, outline(ds))
		}
	}
}

func TestDumpRoundTrip(t *testing.T) {
	srcs := []string{
		"",
		"a;",
		"a b c;",
		`a "" '' "x y" 'z\'' "\t";`,
		"a { b { c { } } d; }",
		`if ($a = "x") { return 403; }`,
		`map $uri $v { default 0; "~^/a{2}" 1; }`,
		"content_by_lua_block { local t = {'}'} --[[ } ]] }",
		"x { init_by_lua_block {} y; }",
		`"" "{";`,
		"set_by_lua_block $v { -- }\n return 1 }",
	}
	for _, src := range srcs {
		ds, err := Parse("c.conf", []byte(src))
		if err != nil {
			t.Errorf("Parse(%q): %v", src, err)
			continue
		}
		out := Dump(ds)
		back, err := Parse("dump.conf", []byte(out))
		if err != nil {
			t.Errorf("Parse(Dump(%q)): %v\n%s", src, err, out)
			continue
		}
		if !sameTree(ds, back) {
			t.Errorf("round trip of %q\nfirst\n%s\nthen\n%s", src, outline(ds), outline(back))
		}
	}
}

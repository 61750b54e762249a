package nginxconf

import (
	"fmt"
	"strings"
	"testing"
)

// lexAll renders the token stream as "line:kind" or "line:«text»" items.
func lexAll(src string) (string, error) {
	lx := newLexer("t.conf", []byte(src))
	var out []string
	for {
		tok, err := lx.next()
		if err != nil {
			return strings.Join(out, " "), err
		}
		if tok.kind == tokWord {
			out = append(out, fmt.Sprintf("%d:«%s»", tok.line, tok.text))
		} else {
			out = append(out, fmt.Sprintf("%d:%s", tok.line, tok.kind))
		}
		if tok.kind == tokEOF {
			return strings.Join(out, " "), nil
		}
	}
}

func TestLexer(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"words", "a b;", `1:«a» 1:«b» 1:";" 1:EOF`},
		{"whitespace kinds", "a\tb\r\nc ;", `1:«a» 1:«b» 2:«c» 2:";" 2:EOF`},
		{"block", "a{b;}", `1:«a» 1:"{" 1:«b» 1:";" 1:"}" 1:EOF`},
		{"close brace inside word", "a b};", `1:«a» 1:«b}» 1:";" 1:EOF`},
		{"comment line", "# x { ; }\na;", `2:«a» 2:";" 2:EOF`},
		{"comment after word", "a; # x\nb;", `1:«a» 1:";" 2:«b» 2:";" 2:EOF`},
		{"hash inside word", "a#b;", `1:«a#b» 1:";" 1:EOF`},
		{"comment at eof", "a;#x", `1:«a» 1:";" 1:EOF`},
		{"double quoted", `a "b c";`, `1:«a» 1:«b c» 1:";" 1:EOF`},
		{"single quoted", `a 'b c';`, `1:«a» 1:«b c» 1:";" 1:EOF`},
		{"empty quoted", `a "" '';`, `1:«a» 1:«» 1:«» 1:";" 1:EOF`},
		{"quote then block", `a "b"{}`, `1:«a» 1:«b» 1:"{" 1:"}" 1:EOF`},
		{"quote in word is literal", `a b"c d";`, `1:«a» 1:«b"c» 1:«d"» 1:";" 1:EOF`},
		{"quoted braces", `a "{;}";`, `1:«a» 1:«{;}» 1:";" 1:EOF`},
		{"multi-line quote", "a \"b\nc\"\nd;", "1:«a» 1:«b\nc» 3:«d» 3:\";\" 3:EOF"},
		{"paren after quote", `if ($a = "b") {}`, `1:«if» 1:«($a» 1:«=» 1:«b» 1:«)» 1:"{" 1:"}" 1:EOF`},
		{"variable braces", "set $a ${b}c;", `1:«set» 1:«$a» 1:«${b}c» 1:";" 1:EOF`},
		{"variable brace run", "a ${{x}};", `1:«a» 1:«${{x}}» 1:";" 1:EOF`},
		{"brace after variable name", "map $x{}", `1:«map» 1:«$x» 1:"{" 1:"}" 1:EOF`},
		{"regex quantifier ends word", "x ^/a{2};", `1:«x» 1:«^/a» 1:"{" 1:«2}» 1:";" 1:EOF`},
		{"escaped terminators", `a b\;c\ d;`, `1:«a» 1:«b\;c\ d» 1:";" 1:EOF`},
		{"escape at word start", `a \{b;`, `1:«a» 1:«\{b» 1:";" 1:EOF`},
		{"escaped newline counts", "a b\\\nc;\nd;", "1:«a» 1:«b\\\nc» 2:\";\" 3:«d» 3:\";\" 3:EOF"},
		{"empty", "", `1:EOF`},
		{"only space", "  \n\n ", `3:EOF`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lexAll(tt.src)
			if err != nil {
				t.Fatalf("lex(%q): %v (tokens so far: %s)", tt.src, err, got)
			}
			if got != tt.want {
				t.Errorf("lex(%q)\n got %s\nwant %s", tt.src, got, tt.want)
			}
		})
	}
}

func TestLexerEscapes(t *testing.T) {
	tests := []struct {
		src, want string
	}{
		{`"a\"b"`, `a"b`},
		{`'a\'b'`, `a'b`},
		{`"a'b"`, `a'b`},
		{`'a"b'`, `a"b`},
		{`"a\\b"`, `a\b`},
		{`"a\\"`, `a\`},
		{`"\n\r\t"`, "\n\r\t"},
		{`"\d+\.\$"`, `\d+\.\$`},
		{`'\n'`, "\n"},
		{`a\"b`, `a"b`},
		{`a\tb`, "a\tb"},
		{`\\`, `\`},
		{`"\\\\n"`, `\\n`},
	}
	for _, tt := range tests {
		got, err := lexAll(tt.src + ";")
		if err != nil {
			t.Errorf("lex(%q): %v", tt.src, err)
			continue
		}
		want := fmt.Sprintf(`1:«%s» 1:";" 1:EOF`, tt.want)
		if got != want {
			t.Errorf("lex(%q)\n got %s\nwant %s", tt.src, got, want)
		}
	}
}

func TestLexerErrors(t *testing.T) {
	tests := []struct {
		src, want string
	}{
		{`"a"b;`, `unexpected "b" in t.conf:1`},
		{`'a'"b";`, `unexpected """ in t.conf:1`},
		{`"a"# c`, `unexpected "#" in t.conf:1`},
		{`"a"}`, `unexpected "}" in t.conf:1`},
		{"a\n\"b\n\nc", `unexpected end of file, expecting ";" or "}" in t.conf:4`},
		{`a 'b\'`, `unexpected end of file, expecting ";" or "}" in t.conf:1`},
		{"a b", `unexpected end of file, expecting ";" or "}" in t.conf:1`},
		{`a b\`, `unexpected end of file, expecting ";" or "}" in t.conf:1`},
	}
	for _, tt := range tests {
		_, err := lexAll(tt.src)
		if err == nil || err.Error() != tt.want {
			t.Errorf("lex(%q) error = %v, want %s", tt.src, err, tt.want)
		}
	}
}

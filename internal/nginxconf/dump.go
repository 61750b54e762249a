package nginxconf

import "strings"

const dumpIndent = "    "

// Dump renders directives back as nginx configuration text that parses to
// the same tree. Includes have already been expanded, so the output is one
// self-contained file. Lua bodies are written back verbatim.
func Dump(ds []*Directive) string {
	var b strings.Builder
	dumpBlock(&b, ds, 0)
	return b.String()
}

func dumpBlock(b *strings.Builder, ds []*Directive, depth int) {
	for _, d := range ds {
		dumpDirective(b, d, depth)
	}
}

func dumpDirective(b *strings.Builder, d *Directive, depth int) {
	indent := strings.Repeat(dumpIndent, depth)
	b.WriteString(indent)
	b.WriteString(quoteWord(d.Name))
	for _, a := range d.Args {
		b.WriteByte(' ')
		b.WriteString(quoteWord(a))
	}
	switch {
	case !d.IsBlock:
		b.WriteString(";\n")
	case isLuaBlock(d.Name):
		b.WriteString(" {")
		b.WriteString(d.LuaBody)
		b.WriteString("}\n")
	default:
		b.WriteString(" {\n")
		dumpBlock(b, d.Block, depth+1)
		b.WriteString(indent)
		b.WriteString("}\n")
	}
}

// quoteWord returns w as written in a configuration file: bare when the
// lexer would read it back unchanged, double-quoted otherwise.
func quoteWord(w string) string {
	if !needsQuotes(w) {
		return w
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(w); i++ {
		switch c := w[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// needsQuotes reports whether w must be quoted to be read back as the
// same single word. It follows the lexer so that common words stay bare:
// "}" and "#" only matter at the start of a word, and "{" right after "$"
// does not end it, so "${name}" is written as is. Quote characters anywhere
// are quoted, although nginx reads "a'b" bare, because they read ambiguously.
func needsQuotes(w string) bool {
	if w == "" || w[0] == '#' || w[0] == '}' {
		return true
	}
	variable := false
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c == '{' && variable:
			continue
		case c == '{', c == ';', c == '"', c == '\'', c == '\\', isSpace(c):
			return true
		}
		variable = c == '$'
	}
	return false
}

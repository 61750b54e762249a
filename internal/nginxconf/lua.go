package nginxconf

import (
	"bytes"
	"strings"
)

// luaBlockSuffix marks directives whose block is Lua source, not directives
// (content_by_lua_block, init_by_lua_block, set_by_lua_block, ...).
const luaBlockSuffix = "_by_lua_block"

func isLuaBlock(name string) bool {
	return strings.HasSuffix(name, luaBlockSuffix)
}

// luaBody scans Lua source starting just after the "{" that opened a
// *_by_lua_block directive and returns the text up to (not including) the
// matching "}", plus the line on which that text starts.
//
// Only what can hide a brace is understood: strings, long brackets and
// comments; everything else is opaque. This follows lua-nginx-module's
// block lexer, so the same inputs are accepted and rejected.
func (l *lexer) luaBody() (body string, line int, err error) {
	start := l.pos
	line = l.line
	// Lines of the braces still open, innermost last; an unterminated body
	// is reported where its innermost open brace is.
	open := []int{l.line}
	for l.pos < len(l.data) {
		c := l.data[l.pos]
		switch {
		case c == '{':
			open = append(open, l.line)
			l.pos++
		case c == '}':
			open = open[:len(open)-1]
			if len(open) == 0 {
				body = string(l.data[start:l.pos])
				l.pos++
				return body, line, nil
			}
			l.pos++
		case c == '"' || c == '\'':
			l.skipLuaString(c)
		case c == '-' && l.peek(1) == '-':
			if err := l.skipLuaComment(); err != nil {
				return "", 0, err
			}
		case c == '[':
			if err := l.skipLongBracket(l.pos); err != nil {
				return "", 0, err
			}
		default:
			l.advance()
		}
	}
	return "", 0, l.errorf(open[len(open)-1],
		"unexpected end of file, expecting terminating characters for lua code block")
}

func (l *lexer) peek(off int) byte {
	if l.pos+off < len(l.data) {
		return l.data[l.pos+off]
	}
	return 0
}

// skipLuaString skips a '...' or "..." string. A quote whose string does not
// end on the same line is not a string at all for lua-nginx-module (Lua
// itself will reject the code later, with a better message), so it is passed
// over as an ordinary byte and scanning resumes right after it.
func (l *lexer) skipLuaString(quote byte) {
	if l.pos < l.unclosedQuote[quote] {
		l.pos++
		return
	}
	for i := l.pos + 1; i < len(l.data); i++ {
		switch l.data[i] {
		case '\\':
			i++ // a backslash may even escape a newline in Lua
		case '\n':
			l.failedLuaString(quote, i)
			return
		case quote:
			l.skipTo(i + 1)
			return
		}
	}
	l.failedLuaString(quote, len(l.data))
}

// failedLuaString records that no string opened by quote before end can be
// closed: any later opening quote before end was escaped for the failed
// scan, so a scan from it resynchronises with the failed one and fails
// too. Remembering this keeps a long line of \" linear instead of quadratic.
func (l *lexer) failedLuaString(quote byte, end int) {
	l.unclosedQuote[quote] = end
	l.pos++
}

// skipTo moves to end, counting the newlines it passes.
func (l *lexer) skipTo(end int) {
	for l.pos < end && l.pos < len(l.data) {
		l.advance()
	}
}

// skipLuaComment skips "--" and what it comments out: a long bracket if one
// follows immediately, otherwise the rest of the line.
func (l *lexer) skipLuaComment() error {
	l.pos += 2
	if _, ok := longBracketLevel(l.data, l.pos); ok {
		return l.skipLongBracket(l.pos)
	}
	for l.pos < len(l.data) && l.data[l.pos] != '\n' {
		l.pos++
	}
	return nil
}

// skipLongBracket skips [[...]], [==[...]==] and so on when one opens at
// at; a lone "[" is skipped as an ordinary byte.
func (l *lexer) skipLongBracket(at int) error {
	level, ok := longBracketLevel(l.data, at)
	if !ok {
		l.advance()
		return nil
	}
	closing := "]" + strings.Repeat("=", level) + "]"
	bodyStart := at + level + 2
	end := bytes.Index(l.data[bodyStart:], []byte(closing))
	if end < 0 {
		return l.errorf(l.line, "Lua code block missing the closing long bracket %q", closing)
	}
	l.skipTo(bodyStart + end + len(closing))
	return nil
}

// longBracketLevel reports whether an opening long bracket "[" "="* "["
// starts at i, and how many "=" it has.
func longBracketLevel(data []byte, i int) (level int, ok bool) {
	if i >= len(data) || data[i] != '[' {
		return 0, false
	}
	j := i + 1
	for j < len(data) && data[j] == '=' {
		j++
	}
	if j < len(data) && data[j] == '[' {
		return j - i - 1, true
	}
	return 0, false
}

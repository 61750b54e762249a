package nginxconf

import "fmt"

type tokenKind int

const (
	tokWord      tokenKind = iota
	tokSemicolon           // ";" ends a simple directive
	tokOpen                // "{" starts a block
	tokClose               // "}" ends a block
	tokEOF
)

func (k tokenKind) String() string {
	switch k {
	case tokWord:
		return "word"
	case tokSemicolon:
		return `";"`
	case tokOpen:
		return `"{"`
	case tokClose:
		return `"}"`
	case tokEOF:
		return "EOF"
	}
	return fmt.Sprintf("tokenKind(%d)", int(k))
}

type token struct {
	kind tokenKind
	text string // unescaped value, words only
	line int    // line the token starts on
}

// lexer splits nginx configuration text into tokens. It is pull-based
// because the parser has to take over the raw input after the "{" of a
// *_by_lua_block directive and scan it with Lua rules instead.
//
// The rules mirror ngx_conf_read_token() byte for byte, including its less
// obvious corners, so that any file nginx accepts is read identically:
//   - "#" starts a comment only where a token could start ("a#b" is a word);
//   - "}" ends nothing inside a word ("a}" is a word), only ";" and "{" do;
//   - "{" right after "$" belongs to the word, so "${var}" stays whole;
//   - quotes open a quoted word only at the start of a token;
//   - a closing quote must be followed by whitespace, ";", "{" or ")".
type lexer struct {
	file string
	data []byte
	pos  int
	line int

	// param is set for text from the -g command line option, which nginx
	// reads without line numbers and with its own end-of-input message.
	param bool

	// afterQuote is set after a quoted word: nginx insists that the next
	// byte separates it from whatever follows.
	afterQuote bool

	// unclosedQuote maps a Lua quote character to the offset before which
	// no string it opens can be closed (see failedLuaString).
	unclosedQuote [256]int
}

func newLexer(file string, data []byte) *lexer {
	return &lexer{file: file, data: data, line: 1}
}

func (l *lexer) errorf(line int, format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), File: l.file, Line: line}
}

// errEOF is what nginx reports when the input ends inside a directive,
// be it between words, inside a word or inside an unterminated quote.
func (l *lexer) errEOF() *Error {
	if l.param {
		return l.errorf(l.line, `unexpected end of parameter, expecting ";"`)
	}
	return l.errorf(l.line, `unexpected end of file, expecting ";" or "}"`)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

// advance consumes one byte, keeping the line count in step.
func (l *lexer) advance() {
	if l.data[l.pos] == '\n' && !l.param {
		l.line++
	}
	l.pos++
}

func (l *lexer) next() (token, error) {
	if l.afterQuote {
		if tok, done, err := l.afterQuoted(); done || err != nil {
			return tok, err
		}
	}
	l.skipSpaceAndComments()
	if l.pos >= len(l.data) {
		return token{kind: tokEOF, line: l.line}, nil
	}
	line := l.line
	switch c := l.data[l.pos]; c {
	case ';':
		l.pos++
		return token{kind: tokSemicolon, line: line}, nil
	case '{':
		l.pos++
		return token{kind: tokOpen, line: line}, nil
	case '}':
		l.pos++
		return token{kind: tokClose, line: line}, nil
	case '"', '\'':
		return l.quotedWord(c)
	default:
		return l.bareWord()
	}
}

// afterQuoted applies nginx's need_space rule to the byte after a closing
// quote. done reports that it produced the token itself. ")" is let through
// as the start of a new word so that `if ($a = "b")` works.
func (l *lexer) afterQuoted() (tok token, done bool, err error) {
	if l.pos >= len(l.data) {
		return token{}, false, nil
	}
	c := l.data[l.pos]
	switch {
	case isSpace(c), c == ')':
		l.afterQuote = false
		return token{}, false, nil
	case c == ';':
		l.afterQuote = false
		l.pos++
		return token{kind: tokSemicolon, line: l.line}, true, nil
	case c == '{':
		l.afterQuote = false
		l.pos++
		return token{kind: tokOpen, line: l.line}, true, nil
	}
	return token{}, true, l.errorf(l.line, `unexpected "%s"`, []byte{c})
}

func (l *lexer) skipSpaceAndComments() {
	for l.pos < len(l.data) {
		c := l.data[l.pos]
		switch {
		case isSpace(c):
			l.advance()
		case c == '#':
			for l.pos < len(l.data) && l.data[l.pos] != '\n' {
				l.pos++
			}
		default:
			return
		}
	}
}

// quotedWord reads '...' or "..." starting at the opening quote. A
// backslash protects the following byte from ending the word; escapes are
// decoded afterwards by unescape, exactly as nginx does.
func (l *lexer) quotedWord(quote byte) (token, error) {
	line := l.line
	l.pos++ // opening quote
	start := l.pos
	for l.pos < len(l.data) {
		switch l.data[l.pos] {
		case '\\':
			l.pos++
			if l.pos < len(l.data) {
				l.advance()
			}
		case quote:
			raw := l.data[start:l.pos]
			l.pos++
			l.afterQuote = true
			return token{kind: tokWord, text: unescape(raw), line: line}, nil
		default:
			l.advance()
		}
	}
	return token{}, l.errEOF()
}

// bareWord reads an unquoted word. It ends before whitespace, ";" or "{";
// but a "{" directly after "$" (or after such a "{") is part of the word,
// which is how nginx lets "${name}" appear in arguments.
func (l *lexer) bareWord() (token, error) {
	line := l.line
	start := l.pos
	variable := false
	for l.pos < len(l.data) {
		c := l.data[l.pos]
		if c == '{' && variable {
			l.pos++
			continue
		}
		variable = c == '$'
		switch {
		case c == '\\':
			l.pos++
			if l.pos < len(l.data) {
				l.advance()
			}
			continue
		case isSpace(c), c == ';', c == '{':
			return token{kind: tokWord, text: unescape(l.data[start:l.pos]), line: line}, nil
		}
		l.pos++
	}
	// nginx demands a terminator even after the last word of a file.
	return token{}, l.errEOF()
}

// unescape decodes the backslash sequences nginx recognises in any word:
// \" \' \\ stand for the character itself and \n \r \t for control
// characters. Every other backslash is kept literally, so regexes such as
// "\d+" survive unharmed.
func unescape(raw []byte) string {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' || i+1 == len(raw) {
			out = append(out, c)
			continue
		}
		switch next := raw[i+1]; next {
		case '"', '\'', '\\':
			out = append(out, next)
			i++
		case 'n':
			out = append(out, '\n')
			i++
		case 'r':
			out = append(out, '\r')
			i++
		case 't':
			out = append(out, '\t')
			i++
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

package nginxconf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
)

// maxIncludeDepth bounds include nesting. Real configurations stay within a
// handful of levels; the limit turns a self-including file into an error
// instead of a crash, including loops the path comparison cannot see
// (symlinks, the same file reached by two spellings).
const maxIncludeDepth = 50

// Parse parses nginx configuration text read from file. file names the
// text in positions and errors, and its directory is the base against which
// relative include paths are resolved, as nginx resolves them against its
// configuration prefix.
func Parse(file string, data []byte) ([]*Directive, error) {
	return parse(osFS{}, file, data)
}

// ParseFile reads and parses the configuration file at path.
func ParseFile(path string) ([]*Directive, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// Like nginx, a main file that cannot be read has no position.
		return nil, &Error{Msg: ioErrorMsg(path, err)}
	}
	return Parse(path, data)
}

// commandLine is the File of directives given with -g, as nginx names it in
// messages ("... in command line").
const commandLine = "command line"

// ParseParam parses directives given on the command line with -g. As in
// nginx they carry no line (File is "command line", Line 0), blocks are
// rejected, and relative includes resolve against confDir, the directory
// of the main configuration file.
func ParseParam(param, confDir string) ([]*Directive, error) {
	p := &parser{fsys: osFS{}, prefix: confDir}
	lx := newLexer(commandLine, []byte(param))
	lx.param, lx.line = true, 0
	return p.parseBlock(lx, false)
}

// fileSystem is the parser's only access to files, so tests and the fuzzer
// can keep include away from the real disk.
type fileSystem interface {
	ReadFile(name string) ([]byte, error)
	Glob(pattern string) ([]string, error)
}

type osFS struct{}

func (osFS) ReadFile(name string) ([]byte, error)  { return os.ReadFile(name) }
func (osFS) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }

func parse(fsys fileSystem, file string, data []byte) ([]*Directive, error) {
	p := &parser{fsys: fsys, prefix: filepath.Dir(file)}
	return p.parseFile(file, data)
}

type parser struct {
	fsys fileSystem
	// prefix is the directory of the main file. Relative includes resolve
	// against it at every nesting level, never against the including file.
	prefix string
	// including lists the (cleaned) files being parsed, outermost first.
	including []string
}

func (p *parser) parseFile(file string, data []byte) ([]*Directive, error) {
	p.including = append(p.including, filepath.Clean(file))
	defer func() { p.including = p.including[:len(p.including)-1] }()
	return p.parseBlock(newLexer(file, data), false)
}

// parseBlock reads directives up to the "}" closing the current block, or
// up to the end of the file when nested is false.
func (p *parser) parseBlock(lx *lexer, nested bool) ([]*Directive, error) {
	var list []*Directive
	var words []token
	for {
		tok, err := lx.next()
		if err != nil {
			return nil, err
		}
		switch tok.kind {
		case tokWord:
			words = append(words, tok)
			continue
		case tokSemicolon, tokOpen:
			if len(words) == 0 {
				return nil, lx.errorf(tok.line, "unexpected %s", tok.kind)
			}
			if tok.kind == tokOpen && lx.param {
				return nil, lx.errorf(tok.line, "block directives are not supported in -g option")
			}
			d := newDirective(lx.file, words)
			words = nil
			var ds []*Directive
			if tok.kind == tokSemicolon {
				ds, err = p.simple(d)
			} else {
				ds, err = p.block(lx, d)
			}
			if err != nil {
				return nil, err
			}
			list = append(list, ds...)
		case tokClose:
			if len(words) > 0 || !nested {
				return nil, lx.errorf(tok.line, `unexpected "}"`)
			}
			return list, nil
		case tokEOF:
			if len(words) > 0 {
				return nil, lx.errEOF()
			}
			if nested {
				return nil, lx.errorf(tok.line, `unexpected end of file, expecting "}"`)
			}
			return list, nil
		}
	}
}

func newDirective(file string, words []token) *Directive {
	d := &Directive{Name: words[0].text, File: file, Line: words[0].line}
	for _, w := range words[1:] {
		d.Args = append(d.Args, w.text)
	}
	return d
}

// simple finishes a directive terminated by ";". include is replaced by
// what it includes.
func (p *parser) simple(d *Directive) ([]*Directive, error) {
	switch {
	case d.Name == "include":
		return p.include(d)
	case isLuaBlock(d.Name):
		return nil, d.Errorf(`directive "%s" has no opening "{"`, d.Name)
	}
	return []*Directive{d}, nil
}

// block finishes a directive whose "{" has just been read.
func (p *parser) block(lx *lexer, d *Directive) ([]*Directive, error) {
	d.IsBlock = true
	var err error
	switch {
	case d.Name == "include":
		return nil, d.Errorf(`directive "include" is not terminated by ";"`)
	case isLuaBlock(d.Name):
		d.LuaBody, d.LuaLine, err = lx.luaBody()
	default:
		d.Block, err = p.parseBlock(lx, true)
	}
	if err != nil {
		return nil, err
	}
	return []*Directive{d}, nil
}

// include expands `include PATTERN;`. As in nginx, a pattern with wildcards
// may match nothing, while a plain path must exist.
func (p *parser) include(d *Directive) ([]*Directive, error) {
	if len(d.Args) != 1 {
		return nil, d.Errorf(`invalid number of arguments in "include" directive`)
	}
	if len(p.including) > maxIncludeDepth {
		return nil, d.Errorf("include nesting is deeper than %d levels", maxIncludeDepth)
	}
	pattern := p.resolve(d.Args[0])
	if !hasGlobMeta(pattern) {
		return p.includeFile(d, pattern)
	}
	matches, err := p.fsys.Glob(pattern)
	if err != nil {
		return nil, d.Errorf(`glob() "%s" failed (%v)`, pattern, err)
	}
	// glob(3) sorts whole paths; filepath.Glob only sorts per directory.
	sort.Strings(matches)
	var out []*Directive
	for _, m := range matches {
		if matchesDotfile(pattern, m) {
			continue
		}
		ds, err := p.includeFile(d, m)
		if err != nil {
			return nil, err
		}
		out = append(out, ds...)
	}
	return out, nil
}

func (p *parser) includeFile(d *Directive, path string) ([]*Directive, error) {
	if slices.Contains(p.including, filepath.Clean(path)) {
		return nil, d.Errorf(`recursive include of "%s"`, path)
	}
	data, err := p.fsys.ReadFile(path)
	if err != nil {
		return nil, d.Errorf("%s", ioErrorMsg(path, err))
	}
	return p.parseFile(path, data)
}

// resolve joins a relative include path to the prefix without cleaning it,
// so messages show the path the way nginx would.
func (p *parser) resolve(name string) string {
	switch {
	case filepath.IsAbs(name), p.prefix == ".":
		return name
	case strings.HasSuffix(p.prefix, string(filepath.Separator)):
		return p.prefix + name
	}
	return p.prefix + string(filepath.Separator) + name
}

// hasGlobMeta uses nginx's test for a wildcard include, which (unlike
// filepath's) does not count a backslash.
func hasGlobMeta(path string) bool {
	return strings.ContainsAny(path, "*?[")
}

// matchesDotfile reports whether a filepath.Glob match has a wildcard
// matching a leading "." somewhere. glob(3), which nginx uses, never does
// that, so editor leftovers like ".site.conf.swp" are not loaded.
func matchesDotfile(pattern, match string) bool {
	pat := strings.Split(filepath.Clean(pattern), string(filepath.Separator))
	got := strings.Split(match, string(filepath.Separator))
	if len(pat) != len(got) {
		return false
	}
	for i := range got {
		if strings.HasPrefix(got[i], ".") && !strings.HasPrefix(pat[i], ".") {
			return true
		}
	}
	return false
}

// ioErrorMsg words a failed file access the way nginx logs it:
// `open() "/etc/nginx/x.conf" failed (2: No such file or directory)`.
func ioErrorMsg(path string, err error) string {
	call := "open()"
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Op == "read" {
		call = "pread()"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Sprintf(`%s "%s" failed (%d: %s)`, call, path, int(errno), strerror(errno))
	}
	return fmt.Sprintf(`%s "%s" failed (%v)`, call, path, err)
}

// strerror capitalises Go's errno text to match C's strerror(), which is
// what nginx prints.
func strerror(errno syscall.Errno) string {
	s := errno.Error()
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

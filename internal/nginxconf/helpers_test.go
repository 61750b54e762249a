package nginxconf

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// memFS is an in-memory fileSystem keyed by path, so include tests and the
// fuzzer never touch the real disk.
type memFS map[string]string

func (m memFS) ReadFile(name string) ([]byte, error) {
	s, ok := m[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENOENT}
	}
	return []byte(s), nil
}

func (m memFS) Glob(pattern string) ([]string, error) {
	var out []string
	for name := range m {
		ok, err := filepath.Match(pattern, name)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// outline renders a tree with every position, one directive per line, so
// table tests can state expectations compactly and diffs stay readable.
func outline(ds []*Directive) string {
	var b strings.Builder
	writeOutline(&b, ds, 0)
	return b.String()
}

func writeOutline(b *strings.Builder, ds []*Directive, depth int) {
	for _, d := range ds {
		fmt.Fprintf(b, "%s%s:%d %q", strings.Repeat("  ", depth), d.File, d.Line, d.Name)
		for _, a := range d.Args {
			fmt.Fprintf(b, " %q", a)
		}
		switch {
		case d.LuaLine != 0 || d.LuaBody != "":
			fmt.Fprintf(b, " lua@%d %q\n", d.LuaLine, d.LuaBody)
		case d.IsBlock:
			b.WriteString(" {\n")
			writeOutline(b, d.Block, depth+1)
		default:
			b.WriteString("\n")
		}
	}
}

// sameTree compares trees ignoring positions; nil and empty are equal.
func sameTree(a, b []*Directive) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Name != y.Name || x.IsBlock != y.IsBlock || x.LuaBody != y.LuaBody ||
			len(x.Args) != len(y.Args) || !sameTree(x.Block, y.Block) {
			return false
		}
		for j := range x.Args {
			if x.Args[j] != y.Args[j] {
				return false
			}
		}
	}
	return true
}

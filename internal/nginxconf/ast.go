// Package nginxconf reads nginx-syntax configuration text into a tree of
// directives that remember where they came from (file:line), so that every
// later error can be reported the way nginx reports it.
package nginxconf

import "fmt"

// Directive is one statement: `name arg...;` or `name arg... { block }`.
//
// For every `*_by_lua_block { ... }` directive the block is not parsed as
// directives: its raw text (between the braces, exactly as written) is kept in
// LuaBody, and LuaLine is the line on which that text starts.
type Directive struct {
	Name string
	Args []string
	File string // path of the file the directive was read from
	Line int    // 1-based line of the directive name

	// Block holds the children of a block directive. IsBlock distinguishes
	// `name {}` (IsBlock, empty Block) from `name;`.
	Block   []*Directive
	IsBlock bool

	// Raw Lua body of a *_by_lua_block directive (IsBlock is true, Block nil).
	LuaBody string
	LuaLine int
}

// Error is a configuration error positioned at file:line. Error() renders it
// as nginx does after its "[emerg] " prefix: `MSG in FILE:LINE`, or
// `MSG in command line` for -g directives, which have no line (Line 0).
type Error struct {
	Msg  string
	File string
	Line int
}

func (e *Error) Error() string {
	if e.File == "" {
		return e.Msg
	}
	if e.Line == 0 {
		return fmt.Sprintf("%s in %s", e.Msg, e.File)
	}
	return fmt.Sprintf("%s in %s:%d", e.Msg, e.File, e.Line)
}

// Errorf builds an *Error positioned at d.
func (d *Directive) Errorf(format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), File: d.File, Line: d.Line}
}

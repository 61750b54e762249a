package config

import (
	_ "embed"
	"strings"
	"sync"
)

//go:embed mime.types
var mimeTypesFile string

// MimeTypesFile is the bundled mime.types (nginx syntax), for tools that
// want to write it next to a generated configuration.
func MimeTypesFile() string { return mimeTypesFile }

// defaultTypes is the extension → type map of the bundled mime.types, used
// when the configuration has no types{} block. Shared: do not modify.
var defaultTypes = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	var lines []string
	for _, l := range strings.Split(mimeTypesFile, "\n") {
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		lines = append(lines, l)
	}
	body := strings.Join(lines, " ")
	if i := strings.IndexByte(body, '{'); i >= 0 {
		body = body[i+1:]
	}
	if i := strings.LastIndexByte(body, '}'); i >= 0 {
		body = body[:i]
	}
	for _, stmt := range strings.Split(body, ";") {
		f := strings.Fields(stmt)
		if len(f) < 2 {
			continue
		}
		for _, ext := range f[1:] {
			m[strings.ToLower(ext)] = f[0]
		}
	}
	return m
})

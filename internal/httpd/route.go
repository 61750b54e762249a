package httpd

import (
	"net"
	"regexp"
	"sort"
	"strings"

	"upstreamd/internal/config"
)

// locLevel is the set of locations at one nesting level, arranged for
// nginx's search: exact matches, prefixes (longest wins), then regexes in
// config order.
type locLevel struct {
	exact    map[string]*locNode
	prefixes []*locNode // sorted by pattern length, longest first
	regexes  []*locNode
}

type locNode struct {
	loc      *config.Location
	children *locLevel
}

func buildLevel(locs []*config.Location, named map[string]*config.Location) *locLevel {
	if len(locs) == 0 {
		return nil
	}
	lv := &locLevel{exact: map[string]*locNode{}}
	for _, l := range locs {
		n := &locNode{loc: l, children: buildLevel(l.Locations, named)}
		switch l.Modifier {
		case "=":
			lv.exact[l.Pattern] = n
		case "~", "~*":
			lv.regexes = append(lv.regexes, n)
		case "@":
			named[l.Pattern] = l
		default:
			lv.prefixes = append(lv.prefixes, n)
		}
	}
	sort.SliceStable(lv.prefixes, func(i, j int) bool {
		return len(lv.prefixes[i].loc.Pattern) > len(lv.prefixes[j].loc.Pattern)
	})
	return lv
}

// find implements ngx_http_core_find_location: the longest prefix match
// (searching its nested locations), then, unless that prefix is "^~", this
// level's regexes in order. final reports a match that ends the search in
// every enclosing level too (an exact or a regex match).
func (lv *locLevel) find(uri string) (loc *config.Location, final bool) {
	if lv == nil {
		return nil, false
	}
	if n, ok := lv.exact[uri]; ok {
		return n.loc, true
	}
	noregex := false
	for _, n := range lv.prefixes {
		if !strings.HasPrefix(uri, n.loc.Pattern) {
			continue
		}
		loc = n.loc
		noregex = n.loc.Modifier == "^~"
		if inner, innerFinal := n.children.find(uri); inner != nil {
			loc = inner
			if innerFinal {
				return loc, true
			}
		}
		break
	}
	if noregex {
		return loc, false
	}
	for _, n := range lv.regexes {
		if !n.loc.Regex.MatchString(uri) {
			continue
		}
		if inner, _ := n.children.find(uri); inner != nil {
			return inner, true
		}
		return n.loc, true
	}
	return loc, false
}

// vserver is one server{} block ready to serve.
type vserver struct {
	cfg       *config.Server
	locations *locLevel
	named     map[string]*config.Location
}

func newVServer(s *config.Server) *vserver {
	vs := &vserver{cfg: s, named: map[string]*config.Location{}}
	vs.locations = buildLevel(s.Locations, vs.named)
	return vs
}

func (vs *vserver) primaryName() string {
	if len(vs.cfg.Names) == 0 {
		return ""
	}
	return vs.cfg.Names[0]
}

// match returns the location for uri, or the server's own settings when no
// location matches (nginx then serves with the server-level configuration).
func (vs *vserver) match(uri string) *config.Location {
	if loc, _ := vs.locations.find(uri); loc != nil {
		return loc
	}
	return vs.cfg.Root
}

// nameTable selects the virtual server for a Host header among the servers
// that share one listen address, in nginx's order: exact name, longest
// leading wildcard, longest trailing wildcard, first matching regex, then the
// default server.
type nameTable struct {
	exact    map[string]*vserver
	leading  []wildName // "*.example.com" / ".example.com", longest first
	trailing []wildName // "www.example.*", longest first
	regexes  []regexName
	dflt     *vserver
}

type wildName struct {
	suffixOrPrefix string
	vs             *vserver
}

type regexName struct {
	re *regexp.Regexp
	vs *vserver
}

func newNameTable() *nameTable {
	return &nameTable{exact: map[string]*vserver{}}
}

func (t *nameTable) add(vs *vserver, isDefault bool) {
	if t.dflt == nil || isDefault {
		t.dflt = vs
	}
	for _, name := range vs.cfg.Names {
		if !strings.HasPrefix(name, "~") {
			name = strings.ToLower(name)
		}
		switch {
		case strings.HasPrefix(name, "~"):
			pattern := name[1:]
			if strings.ToLower(pattern) != pattern {
				// nginx compiles a server_name regex caselessly when it has
				// capitals, since the Host it is matched against is lower case.
				pattern = "(?i)" + pattern
			}
			if re, err := regexp.Compile(pattern); err == nil {
				t.regexes = append(t.regexes, regexName{re, vs})
			}
		case strings.HasPrefix(name, "*."):
			t.leading = append(t.leading, wildName{name[1:], vs})
		case strings.HasPrefix(name, "."):
			// ".example.com" is both "example.com" and "*.example.com".
			t.addExact(name[1:], vs)
			t.leading = append(t.leading, wildName{name, vs})
		case strings.HasSuffix(name, ".*"):
			t.trailing = append(t.trailing, wildName{name[:len(name)-1], vs})
		default:
			t.addExact(name, vs)
		}
	}
}

func (t *nameTable) addExact(name string, vs *vserver) {
	if _, dup := t.exact[name]; !dup {
		t.exact[name] = vs
	}
}

func (t *nameTable) finish() {
	longestFirst := func(ws []wildName) {
		sort.SliceStable(ws, func(i, j int) bool { return len(ws[i].suffixOrPrefix) > len(ws[j].suffixOrPrefix) })
	}
	longestFirst(t.leading)
	longestFirst(t.trailing)
}

func (t *nameTable) lookup(host string) *vserver {
	host = normalizeHost(host)
	if vs, ok := t.exact[host]; ok {
		return vs
	}
	for _, w := range t.leading {
		if strings.HasSuffix(host, w.suffixOrPrefix) {
			return w.vs
		}
	}
	for _, w := range t.trailing {
		if strings.HasPrefix(host, w.suffixOrPrefix) {
			return w.vs
		}
	}
	for _, r := range t.regexes {
		if r.re.MatchString(host) {
			return r.vs
		}
	}
	return t.dflt
}

// normalizeHost strips the port and a trailing dot and lower-cases, as nginx
// validates the Host header before server selection.
func normalizeHost(host string) string {
	// Without a colon SplitHostPort can only fail, and its error allocates:
	// skip it for the common "Host: name" case.
	if i := strings.IndexByte(host, ':'); i >= 0 {
		if host[0] != '[' && strings.IndexByte(host[i+1:], ':') < 0 && strings.IndexByte(host[:i], ']') < 0 {
			host = host[:i] // "name:port", without SplitHostPort's general case
		} else if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	host = strings.TrimSuffix(host, ".")
	return strings.ToLower(host)
}

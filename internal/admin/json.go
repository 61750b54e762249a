package admin

import (
	"bytes"
	"encoding/json"
	"strings"
)

// object is a JSON object that keeps its members in order. encoding/json
// sorts map keys, which would list upstreams alphabetically rather than in
// config order and shuffle a peer's fields away from the order NGINX Plus
// (and its docs) show; it also lets a field be left out where NGINX Plus
// leaves it out (max_conns when unset, selected when never).
type object []member

type member struct {
	key string
	val any
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshal(m.key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		v, err := marshal(m.val)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshal is json.Marshal without HTML escaping: server names and error
// texts are shown as they are (NGINX Plus does not escape <, > or &).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// fieldSet is the `fields` query argument: the top-level members of the
// requested objects to output. nil means no filtering; an empty set (from
// "?fields=") outputs empty objects, which for a collection leaves only the
// names, as NGINX Plus documents.
type fieldSet map[string]bool

func parseFields(s string) *fieldSet {
	fs := fieldSet{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			fs[f] = true
		}
	}
	return &fs
}

// filter keeps the members of o named in the set.
func (fs *fieldSet) filter(o object) object {
	if fs == nil {
		return o
	}
	out := object{}
	for _, m := range o {
		if (*fs)[m.key] {
			out = append(out, m)
		}
	}
	return out
}

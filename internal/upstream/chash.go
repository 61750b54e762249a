package upstream

import (
	"cmp"
	"encoding/binary"
	"hash/crc32"
	"slices"
	"strings"
)

// chashPoint is one point of the ketama ring: the server *name* (as written
// in the config) owns the point, exactly like nginx's
// ngx_http_upstream_chash_point_t, so several peers resolved from the same
// name share the same points.
type chashPoint struct {
	hash uint32
	name int32 // index into ring.byName
}

// ring is the consistent-hash continuum of a snapshot's primary peers.
type ring struct {
	points []chashPoint
	byName [][]int // name index -> indexes into Snapshot.Primary, config order
}

// buildRing reproduces ngx_http_upstream_update_chash: 160 points per weight
// unit per peer; the points of a peer are
//
//	base = crc32(HOST "\0" PORT)
//	point[j] = crc32(HOST "\0" PORT prev_hash)   (prev_hash little endian, 0 at j=0)
//
// (Cache::Memcached::Fast compatible). HOST/PORT come from the server name as
// written: "unix:" prefix stripped; PORT is the trailing run of digits after
// the last ':' (none if a non-digit is met first, e.g. "[::1]").
//
// The points are sorted by hash and points with equal hashes are collapsed
// to the first one. nginx uses qsort, which is not stable, so when two
// *different* server names produce the same 32-bit point (a crc collision)
// nginx's choice is unspecified; we keep the one from the earlier server in
// config order. Identical points from peers sharing a name are
// indistinguishable, as in nginx.
//
// buildRing also sets nameID on the given (snapshot-owned) peers.
func buildRing(primary []*Peer) *ring {
	r := &ring{}
	names := make(map[string]int32, len(primary))
	total := 0
	for _, p := range primary {
		total += p.spec.Weight
	}
	pts := make([]chashPoint, 0, total*160)
	var prev [4]byte
	for i, p := range primary {
		id, ok := names[p.spec.Name]
		if !ok {
			id = int32(len(r.byName))
			names[p.spec.Name] = id
			r.byName = append(r.byName, nil)
		}
		r.byName[id] = append(r.byName[id], i)
		p.nameID = id

		host, port := chashHostPort(p.spec.Name)
		base := crcUpdate(0, host)
		base = crcUpdate(base, "\x00")
		base = crcUpdate(base, port)

		prev = [4]byte{}
		n := p.spec.Weight * 160
		for j := 0; j < n; j++ {
			h := crc32.Update(base, crc32.IEEETable, prev[:])
			pts = append(pts, chashPoint{hash: h, name: id})
			binary.LittleEndian.PutUint32(prev[:], h)
		}
	}
	slices.SortStableFunc(pts, func(a, b chashPoint) int { return cmp.Compare(a.hash, b.hash) })
	if len(pts) > 0 {
		i := 0
		for j := 1; j < len(pts); j++ {
			if pts[i].hash != pts[j].hash {
				i++
				pts[i] = pts[j]
			}
		}
		pts = pts[:i+1]
	}
	r.points = slices.Clip(pts)
	return r
}

// chashHostPort splits a server name like nginx's chash init does.
func chashHostPort(name string) (host, port string) {
	if len(name) >= 5 && strings.EqualFold(name[:5], "unix:") {
		return name[5:], ""
	}
	for j := len(name) - 1; j >= 0; j-- {
		c := name[j]
		if c == ':' {
			return name[:j], name[j+1:]
		}
		if c < '0' || c > '9' {
			break
		}
	}
	return name, ""
}

// find returns the index of the first point whose hash is >= h (may be
// len(points), which wraps to 0) — ngx_http_upstream_find_chash_point.
func (r *ring) find(h uint32) uint32 {
	i, j := 0, len(r.points)
	for i < j {
		k := (i + j) / 2
		switch {
		case h > r.points[k].hash:
			i = k + 1
		case h < r.points[k].hash:
			j = k
		default:
			return uint32(k)
		}
	}
	return uint32(i)
}

// crcUpdate continues an IEEE CRC-32 (as crc32.Update does) over a string or
// byte slice without converting or allocating.
func crcUpdate[T string | []byte](crc uint32, s T) uint32 {
	tab := crc32.IEEETable
	crc = ^crc
	for i := 0; i < len(s); i++ {
		crc = tab[byte(crc)^s[i]] ^ (crc >> 8)
	}
	return ^crc
}

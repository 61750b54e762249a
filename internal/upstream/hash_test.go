package upstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func TestCRCUpdateMatchesStdlib(t *testing.T) {
	for _, s := range []string{"", "a", "abc", "127.0.0.1\x008080", "a much longer key with /path?and=query"} {
		if got, want := crcUpdate(0, s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Fatalf("crc(%q) = %08x, want %08x", s, got, want)
		}
		// incremental
		if len(s) > 1 {
			h := crcUpdate(crcUpdate(0, s[:1]), []byte(s[1:]))
			if h != crc32.ChecksumIEEE([]byte(s)) {
				t.Fatalf("incremental crc(%q) mismatch", s)
			}
		}
	}
}

// ---- ip_hash ----

// refIPHash is an independent transcription of nginx's ip_hash loop for the
// first pick of a request: it returns the peer index, or -1 when it would
// fall back to round robin.
func refIPHash(ip net.IP, weights []int, usable func(int) bool) int {
	var addr []byte
	if ip4 := ip.To4(); ip4 != nil {
		addr = ip4[:3]
	} else {
		addr = ip.To16()
	}
	total := 0
	for _, w := range weights {
		total += w
	}
	hash := uint(89)
	for tries := 0; tries <= 20; tries++ {
		for _, b := range addr {
			hash = (hash*113 + uint(b)) % 6271
		}
		w := int(hash % uint(total))
		p := 0
		for w >= weights[p] {
			w -= weights[p]
			p++
		}
		if usable(p) {
			return p
		}
	}
	return -1
}

func TestIPHashKnownValues(t *testing.T) {
	// hand computed: 192.168.1.x -> hash 154 -> 154 % 3 = 1 (b);
	// with b down the rehash gives 5654 % 3 = 2 (c).
	u := mustNew(t, Options{Method: IPHash}, srv("a"), srv("b"), srv("c"))
	for _, ip := range []string{"192.168.1.7", "192.168.1.200", "::ffff:192.168.1.9"} {
		if got := pickOK(t, u, Request{ClientIP: net.ParseIP(ip)}); got != "b" {
			t.Fatalf("%s -> %s, want b", ip, got)
		}
	}
	if err := u.SetDown(false, 1, true); err != nil {
		t.Fatal(err)
	}
	if got := pickOK(t, u, Request{ClientIP: net.ParseIP("192.168.1.7")}); got != "c" {
		t.Fatalf("with b down -> %s, want c", got)
	}
}

func TestIPHashMatchesReference(t *testing.T) {
	weights := []int{1, 3, 2, 1}
	var specs []ServerSpec
	for i, w := range weights {
		specs = append(specs, srv(fmt.Sprintf("s%d", i), weight(w)))
	}
	specs[2].Down = true
	u := mustNew(t, Options{Method: IPHash}, specs...)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		var ip net.IP
		if i%4 == 0 {
			ip = make(net.IP, 16)
			for j := range ip {
				ip[j] = byte(r.IntN(256))
			}
			ip[0] = 0x20
		} else {
			ip = net.IPv4(byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)))
		}
		want := refIPHash(ip, weights, func(p int) bool { return p != 2 })
		if want < 0 {
			continue
		}
		if got := pickOK(t, u, Request{ClientIP: ip}); got != specs[want].Name {
			t.Fatalf("%s -> %s, want %s", ip, got, specs[want].Name)
		}
	}
}

func TestIPHashStickinessAndDistribution(t *testing.T) {
	u := mustNew(t, Options{Method: IPHash}, srv("a"), srv("b"), srv("c"))
	counts := map[string]int{}
	r := rand.New(rand.NewPCG(3, 4))
	const n = 3000
	for i := 0; i < n; i++ {
		ip := net.IPv4(byte(1+r.IntN(223)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)))
		first := pickOK(t, u, Request{ClientIP: ip})
		for j := 0; j < 3; j++ {
			if got := pickOK(t, u, Request{ClientIP: ip}); got != first {
				t.Fatalf("%s not sticky: %s then %s", ip, first, got)
			}
		}
		counts[first]++
	}
	for name, c := range counts {
		if c < n*25/100 || c > n*42/100 {
			t.Fatalf("uneven distribution %v (%s)", counts, name)
		}
	}
}

func TestIPHashRetriesAndFallback(t *testing.T) {
	u := mustNew(t, Options{Method: IPHash}, srv("a", maxFails(0)), srv("b", maxFails(0)), srv("c", maxFails(0)))
	a := u.Begin(Request{ClientIP: net.ParseIP("10.1.2.3")})
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		p, err := a.Next()
		if err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		if seen[p.Name()] {
			t.Fatalf("%s retried", p.Name())
		}
		seen[p.Name()] = true
		a.Finish(p, true)
	}
	if _, err := a.Next(); !errors.Is(err, ErrNoLiveUpstreams) {
		t.Fatalf("err = %v", err)
	}
	// no client address (e.g. unix socket): nginx's pseudo address
	if got := pickOK(t, u, Request{}); got == "" {
		t.Fatal("no peer for pseudo address")
	}
}

// ---- hash KEY ----

// refHash transcribes nginx's hash loop for the first pick.
func refHash(key string, weights []int, usable func(int) bool) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	var hash uint32
	for rehash := 0; rehash <= 20; rehash++ {
		s := key
		if rehash > 0 {
			s = strconv.Itoa(rehash) + key
		}
		hash += (crc32.ChecksumIEEE([]byte(s)) >> 16) & 0x7fff
		w := int(hash % uint32(total))
		p := 0
		for w >= weights[p] {
			w -= weights[p]
			p++
		}
		if usable(p) {
			return p
		}
	}
	return -1
}

func TestHashKnownValue(t *testing.T) {
	// crc32("abc") = 0x352441c2 -> 0x3524 = 13604 -> 13604 % 3 = 2 -> c
	u := mustNew(t, Options{Method: Hash}, srv("a"), srv("b"), srv("c"))
	if got := pickOK(t, u, Request{HashKey: "abc"}); got != "c" {
		t.Fatalf("abc -> %s, want c", got)
	}
}

func TestHashMatchesReference(t *testing.T) {
	weights := []int{2, 1, 1, 3, 1}
	var specs []ServerSpec
	for i, w := range weights {
		specs = append(specs, srv(fmt.Sprintf("s%d", i), weight(w)))
	}
	specs[0].Down = true
	specs[3].Down = true
	u := mustNew(t, Options{Method: Hash}, specs...)
	for i := 0; i < 3000; i++ {
		key := fmt.Sprintf("/item/%d?x=%d", i, i*7)
		want := refHash(key, weights, func(p int) bool { return p != 0 && p != 3 })
		if want < 0 {
			continue
		}
		if got := pickOK(t, u, Request{HashKey: key}); got != specs[want].Name {
			t.Fatalf("%q -> %s, want %s", key, got, specs[want].Name)
		}
	}
}

func TestHashStickinessAndEmptyKey(t *testing.T) {
	u := mustNew(t, Options{Method: Hash}, srv("a"), srv("b"), srv("c"))
	counts := map[string]int{}
	for i := 0; i < 3000; i++ {
		key := "user" + strconv.Itoa(i)
		first := pickOK(t, u, Request{HashKey: key})
		if got := pickOK(t, u, Request{HashKey: key}); got != first {
			t.Fatalf("%s not sticky", key)
		}
		counts[first]++
	}
	for _, c := range counts {
		if c < 800 || c > 1200 {
			t.Fatalf("uneven %v", counts)
		}
	}
	// empty key: round robin
	if got := seq(t, u, 3); got != "a b c" {
		t.Fatalf("empty key sequence %q", got)
	}
}

// ---- hash KEY consistent ----

type refPoint struct {
	hash uint32
	name string
}

// refRing builds the ketama ring the straightforward way, from the nginx
// description: crc32(HOST "\0" PORT PREV_HASH) with PREV_HASH little endian.
func refRing(names []string, weights []int) []refPoint {
	var pts []refPoint
	for i, name := range names {
		host, port := name, ""
		if strings.HasPrefix(strings.ToLower(name), "unix:") {
			host = name[5:]
		} else if j := lastColonBeforeDigits(name); j >= 0 {
			host, port = name[:j], name[j+1:]
		}
		prev := make([]byte, 4)
		for j := 0; j < 160*weights[i]; j++ {
			buf := append([]byte(host+"\x00"+port), prev...)
			h := crc32.ChecksumIEEE(buf)
			pts = append(pts, refPoint{h, name})
			binary.LittleEndian.PutUint32(prev, h)
		}
	}
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].hash < pts[j].hash })
	out := pts[:0]
	for _, p := range pts {
		if len(out) == 0 || out[len(out)-1].hash != p.hash {
			out = append(out, p)
		}
	}
	return out
}

func lastColonBeforeDigits(s string) int {
	for j := len(s) - 1; j >= 0; j-- {
		if s[j] == ':' {
			return j
		}
		if s[j] < '0' || s[j] > '9' {
			return -1
		}
	}
	return -1
}

// refCHash returns the owner name of the first point >= crc32(key),
// skipping names for which skip returns true.
func refCHash(pts []refPoint, key string, skip func(string) bool) string {
	h := crc32.ChecksumIEEE([]byte(key))
	i := sort.Search(len(pts), func(i int) bool { return pts[i].hash >= h })
	for n := 0; n < 21; n++ {
		name := pts[(i+n)%len(pts)].name
		if !skip(name) {
			return name
		}
	}
	return ""
}

func TestChashHostPort(t *testing.T) {
	tests := []struct{ in, host, port string }{
		{"127.0.0.1:8080", "127.0.0.1", "8080"},
		{"localhost:8081", "localhost", "8081"},
		{"backend", "backend", ""},
		{"[::1]:80", "[::1]", "80"},
		{"[::1]", "[::1]", ""},
		{"unix:/tmp/sock", "/tmp/sock", ""},
		{"UNIX:/tmp/sock", "/tmp/sock", ""},
		{"host:", "host", ""},
	}
	for _, tt := range tests {
		if h, p := chashHostPort(tt.in); h != tt.host || p != tt.port {
			t.Errorf("%q -> %q %q, want %q %q", tt.in, h, p, tt.host, tt.port)
		}
	}
}

func TestConsistentHashMatchesReference(t *testing.T) {
	names := []string{"10.0.0.1:80", "10.0.0.2:80", "backend3.example.com:8080", "unix:/run/app.sock", "[2001:db8::1]:443"}
	weights := []int{1, 2, 1, 3, 1}
	var specs []ServerSpec
	for i, n := range names {
		specs = append(specs, srv(n, weight(weights[i])))
	}
	u := mustNew(t, Options{Method: Hash, HashConsistent: true}, specs...)
	pts := refRing(names, weights)
	if got := len(u.Snapshot().ring.points); got != len(pts) {
		t.Fatalf("ring has %d points, reference %d", got, len(pts))
	}
	for i, p := range u.Snapshot().ring.points {
		if p.hash != pts[i].hash {
			t.Fatalf("point %d = %08x, want %08x", i, p.hash, pts[i].hash)
		}
	}
	for i := 0; i < 3000; i++ {
		key := fmt.Sprintf("k%d", i)
		want := refCHash(pts, key, func(string) bool { return false })
		if got := pickOK(t, u, Request{HashKey: key}); got != want {
			t.Fatalf("%q -> %s, want %s", key, got, want)
		}
	}
	// a down server: its keys move to the next point's owner on the ring
	if err := u.SetDown(false, 1, true); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3000; i++ {
		key := fmt.Sprintf("k%d", i)
		want := refCHash(pts, key, func(n string) bool { return n == names[1] })
		if got := pickOK(t, u, Request{HashKey: key}); got != want {
			t.Fatalf("down: %q -> %s, want %s", key, got, want)
		}
	}
}

func TestConsistentHashSameNameSharesPoints(t *testing.T) {
	// a hostname resolving to two addresses: both peers share the name's
	// points and alternate by round robin; another name is untouched.
	u := mustNew(t, Options{Method: Hash, HashConsistent: true},
		ServerSpec{Name: "app:80", Addr: "10.0.0.1:80"},
		ServerSpec{Name: "app:80", Addr: "10.0.0.2:80"},
		ServerSpec{Name: "other:80", Addr: "10.0.0.3:80"})
	if got, want := len(u.Snapshot().ring.points), len(refRing([]string{"app:80", "other:80"}, []int{1, 1})); got != want {
		t.Fatalf("points %d, want %d", got, want)
	}
	var key string
	for i := 0; ; i++ {
		key = fmt.Sprintf("k%d", i)
		a := u.Begin(Request{HashKey: key})
		p, _ := a.Next()
		a.Finish(p, false)
		if p.Name() == "app:80" {
			break
		}
	}
	addrs := map[string]int{}
	for i := 0; i < 4; i++ {
		a := u.Begin(Request{HashKey: key})
		p, _ := a.Next()
		a.Finish(p, false)
		addrs[p.Addr()]++
	}
	if addrs["10.0.0.1:80"] != 2 || addrs["10.0.0.2:80"] != 2 {
		t.Fatalf("addresses %v", addrs)
	}
}

func keyOwners(t *testing.T, u *Upstream, n int) map[string]string {
	t.Helper()
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		key := "key-" + strconv.Itoa(i)
		m[key] = pickOK(t, u, Request{HashKey: key})
	}
	return m
}

func TestConsistentHashMinimalRemapping(t *testing.T) {
	var specs []ServerSpec
	for i := 0; i < 10; i++ {
		specs = append(specs, srv(fmt.Sprintf("10.0.0.%d:8080", i+1)))
	}
	u := mustNew(t, Options{Method: Hash, HashConsistent: true}, specs...)
	const n = 5000
	before := keyOwners(t, u, n)

	// remove one server: only its keys move
	removed := specs[3].Name
	if err := u.Remove(false, 3); err != nil {
		t.Fatal(err)
	}
	after := keyOwners(t, u, n)
	moved := 0
	for k, was := range before {
		now := after[k]
		if was != removed && now != was {
			t.Fatalf("key %s moved %s -> %s though %s was removed", k, was, now, removed)
		}
		if was != now {
			moved++
		}
	}
	if moved == 0 || moved > n/5 {
		t.Fatalf("moved %d keys", moved)
	}

	// add a server: keys only move to the new one
	added := "10.0.0.99:8080"
	if _, err := u.Add(srv(added)); err != nil {
		t.Fatal(err)
	}
	again := keyOwners(t, u, n)
	moved = 0
	for k, was := range after {
		now := again[k]
		if now != was && now != added {
			t.Fatalf("key %s moved %s -> %s, not to the added server", k, was, now)
		}
		if now != was {
			moved++
		}
	}
	if moved == 0 || moved > n/5 {
		t.Fatalf("moved %d keys to the new server", moved)
	}

	// a non-consistent hash remaps most keys on the same change
	plain := mustNew(t, Options{Method: Hash}, specs...)
	b := keyOwners(t, plain, n)
	if err := plain.Remove(false, 3); err != nil {
		t.Fatal(err)
	}
	a := keyOwners(t, plain, n)
	changed := 0
	for k := range b {
		if a[k] != b[k] {
			changed++
		}
	}
	if changed < n/2 {
		t.Fatalf("plain hash changed only %d keys; test assumptions wrong", changed)
	}
}

func TestConsistentHashWeights(t *testing.T) {
	u := mustNew(t, Options{Method: Hash, HashConsistent: true}, srv("a:1", weight(3)), srv("b:1"))
	c := map[string]int{}
	for _, owner := range keyOwners(t, u, 8000) {
		c[owner]++
	}
	if r := float64(c["a:1"]) / float64(c["b:1"]); r < 2 || r > 4.5 {
		t.Fatalf("weight 3:1 gave %v", c)
	}
}

func TestConsistentHashRetriesWalkTheRing(t *testing.T) {
	u := mustNew(t, Options{Method: Hash, HashConsistent: true},
		srv("a:1", maxFails(0)), srv("b:1", maxFails(0)), srv("c:1", maxFails(0)))
	a := u.Begin(Request{HashKey: "some-key"})
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		p, err := a.Next()
		if err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		if seen[p.Name()] {
			t.Fatalf("%s retried", p.Name())
		}
		seen[p.Name()] = true
		a.Finish(p, true)
	}
	if _, err := a.Next(); !errors.Is(err, ErrNoLiveUpstreams) {
		t.Fatalf("err = %v", err)
	}
}

package ngxlua

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func TestSharedDict(t *testing.T) {
	clk := newClock()
	e, _ := newTestEngine(t, Options{SharedDicts: map[string]int64{"d": 1 << 20}, Now: clk.now})
	steps := []struct {
		name, src, want string
		advance         time.Duration
	}{
		{"set get types", `local d = ngx.shared.d
d:set("s", "str") d:set("n", 1.5) d:set("b", false) d:set("f", "flagged", 0, 7)
local v, f = d:get("f")
ngx.say(d:get("s"), " ", d:get("n"), " ", tostring(d:get("b")), " ", v, " ", f, " ", select("#", d:get("s")), " ", tostring(d:get("nope")))`,
			"str 1.5 false flagged 7 1 nil\n", 0},
		{"set nil deletes", `local d = ngx.shared.d d:set("s", nil) ngx.say(tostring(d:get("s")))`, "nil\n", 0},
		{"add replace", `local d = ngx.shared.d
ngx.say(tostring(d:add("a", 1)), " ", select(2, d:add("a", 2)), " ", d:get("a"))
ngx.say(select(2, d:replace("zz", 1)), " ", tostring(d:replace("a", 3)), " ", d:get("a"))
ngx.say(tostring(d:safe_add("a", 1)), " ", tostring(d:safe_set("a", 9)), " ", d:get("a"))`,
			"true exists 1\nnot found true 3\nfalse true 9\n", 0},
		{"incr", `local d = ngx.shared.d
ngx.say(select(2, d:incr("cnt", 1)))
ngx.say(d:incr("cnt", 1, 0), " ", d:incr("cnt", 5), " ", d:incr("cnt", -2.5))
ngx.say(select(2, d:incr("f", 1)))
ngx.say(d:incr("tmp", 1, 10, 2), " ", d:ttl("tmp"))`,
			"not found\n1 6 3.5nil\nnot a number\n11 2\n", 0},
		{"ttl expire", `local d = ngx.shared.d
d:set("e", "v", 10)
ngx.say(d:ttl("e"), " ", d:ttl("a"), " ", select(2, d:ttl("none")))
d:expire("a", 5)
ngx.say(d:ttl("a"))`,
			"10 0 not found\n5\n", 0},
		{"after 6s", `local d = ngx.shared.d
ngx.say(d:get("e"), " ", tostring(d:get("a")), " ", tostring(d:get("tmp")))
local v, f, stale = d:get_stale("a")
ngx.say(v, " ", tostring(f), " ", tostring(stale))
ngx.say(select(2, d:expire("a", 1)))`,
			"v nil nil\n9 nil true\nnot found\n", 6 * time.Second},
		{"keys flush", `local d = ngx.shared.d
local keys = d:get_keys()
ngx.say(table.concat(keys, ","))
ngx.say(#d:get_keys(2))
ngx.say(d:flush_expired())
d:flush_all()
ngx.say(#d:get_keys(0), " ", tostring(d:get("n")))
local v, _, stale = d:get_stale("n")
ngx.say(v, " ", tostring(stale))
ngx.say(d:flush_expired(1))`,
			"b,cnt,e,f,n\n2\n2\n0 nil\n1.5 true\n1\n", 0},
		{"key errors", `local d = ngx.shared.d
ngx.say(select(2, d:get(nil)), " ", select(2, d:get("")), " ", select(2, d:set("k", {})))
ngx.say(pcall(d.get, "x", "k"))`,
			"nil key empty key bad value type\nfalsecontent_by_lua(nginx.conf:10):3: bad \"zone\" argument\n", 0},
		{"capacity", `local d = ngx.shared.d
ngx.say(d:capacity(), " ", d:free_space() > 0)`,
			"1048576 true\n", 0},
		{"lists", `local d = ngx.shared.d
ngx.say(d:lpush("l", "a"), d:rpush("l", 2), d:lpush("l", "c"), " ", d:llen("l"))
ngx.say(d:lpop("l"), d:rpop("l"), d:lpop("l"), tostring(d:lpop("l")), " ", d:llen("l"))
d:set("num", 1) ngx.say(select(2, d:lpush("num", 1)))`,
			"123 3\nc2anil 0\nvalue not a list\n", 0},
	}
	for _, s := range steps {
		clk.advance(s.advance)
		r := newFakeReq()
		if got := runOK(t, e, r, s.src); got != s.want {
			t.Fatalf("%s: got %q want %q", s.name, got, s.want)
		}
	}
}

func TestSharedDictEviction(t *testing.T) {
	d := newSharedDict("x", 1000, time.Now)
	big := string(make([]byte, 300))
	for _, k := range []string{"a", "b"} {
		if ok, _, forcible := d.store(modeSet, k, dictValue{kind: kindString, s: big}, 0, 0, false); !ok || forcible {
			t.Fatal(k)
		}
	}
	// touch a so b is the LRU victim
	d.get("a", false)
	if ok, errs, _ := d.store(modeSet, "c", dictValue{kind: kindString, s: big}, 0, 0, true); ok || errs != "no memory" {
		t.Fatalf("safe_set: %v %q", ok, errs)
	}
	ok, _, forcible := d.store(modeSet, "c", dictValue{kind: kindString, s: big}, 0, 0, false)
	if !ok || !forcible {
		t.Fatal("set should evict")
	}
	if _, _, _, found, _ := d.get("b", false); found {
		t.Fatal("b should be evicted")
	}
	if _, _, _, found, _ := d.get("a", false); !found {
		t.Fatal("a should stay")
	}
	if ok, errs, _ := d.store(modeSet, "huge", dictValue{kind: kindString, s: string(make([]byte, 2000))}, 0, 0, false); ok || errs != "no memory" {
		t.Fatal("huge value stored")
	}
}

func TestSharedDictConcurrent(t *testing.T) {
	e, _ := newTestEngine(t, Options{SharedDicts: map[string]int64{"d": 1 << 20}})
	h := compile(t, e, `ngx.shared.d:incr("n", 1, 0)`)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if _, err := e.Run(h, PhaseContent, newFakeReq(), NewRequestState()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	val, _, _, _, _ := e.SharedDict("d").get("n", false)
	if val.n != 800 {
		t.Fatalf("n = %v", val.n)
	}
}

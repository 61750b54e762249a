package ngxlua

import (
	"container/list"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// SharedDict is a lua_shared_dict zone. It lives in Go (not in a Lua
// state), so every VM and timer sees the same data.
//
// Memory accounting approximates nginx's slab allocator: every item costs
// dictItemOverhead + len(key) + len(value) bytes (numbers and booleans 8
// bytes, list items 16 + len each) against the configured size. When a
// set/add/incr/lpush doesn't fit, expired items are dropped first, then
// the least recently used items ("forcible" = true); safe_set/safe_add
// never evict valid items and fail with "no memory" instead.
// free_space() reports the unused bytes rounded down to 4 KiB pages.
type SharedDict struct {
	name     string
	capacity int64
	now      func() time.Time

	mu    sync.Mutex
	items map[string]*dictItem
	lru   list.List // front = most recently used
	used  int64
}

const dictItemOverhead = 64

type dictKind uint8

const (
	kindString dictKind = iota + 1
	kindNumber
	kindBool
	kindList
)

type dictItem struct {
	key     string
	kind    dictKind
	s       string
	n       float64
	b       bool
	list    *list.List // of string/number values (lua.LValue)
	flags   uint32
	expires time.Time // zero: never
	elem    *list.Element
	size    int64
}

func newSharedDict(name string, size int64, now func() time.Time) *SharedDict {
	return &SharedDict{name: name, capacity: size, now: now, items: make(map[string]*dictItem)}
}

// Name is the zone name.
func (d *SharedDict) Name() string { return d.name }

func (it *dictItem) expired(now time.Time) bool {
	return !it.expires.IsZero() && !now.Before(it.expires)
}

func valueSize(kind dictKind, s string) int64 {
	if kind == kindString {
		return int64(len(s))
	}
	return 8
}

func (d *SharedDict) remove(it *dictItem) {
	d.lru.Remove(it.elem)
	delete(d.items, it.key)
	d.used -= it.size
}

// makeRoom frees space for need bytes. safe forbids evicting valid items.
// It returns whether there is room and whether valid items were evicted.
func (d *SharedDict) makeRoom(need int64, safe bool, keep *dictItem, now time.Time) (ok, forcible bool) {
	if need > d.capacity {
		return false, false
	}
	if d.used+need <= d.capacity {
		return true, false
	}
	// drop expired items first (from the LRU end)
	for e := d.lru.Back(); e != nil && d.used+need > d.capacity; {
		prev := e.Prev()
		it := e.Value.(*dictItem)
		if it != keep && it.expired(now) {
			d.remove(it)
		}
		e = prev
	}
	if d.used+need <= d.capacity {
		return true, false
	}
	if safe {
		return false, false
	}
	for e := d.lru.Back(); e != nil && d.used+need > d.capacity; {
		prev := e.Prev()
		it := e.Value.(*dictItem)
		if it != keep {
			d.remove(it)
			forcible = true
		}
		e = prev
	}
	return d.used+need <= d.capacity, forcible
}

func expiry(now time.Time, exptime float64) time.Time {
	if exptime <= 0 {
		return time.Time{}
	}
	return now.Add(time.Duration(exptime * float64(time.Second)))
}

type dictValue struct {
	kind dictKind
	s    string
	n    float64
	b    bool
}

type setMode int

const (
	modeSet setMode = iota
	modeAdd
	modeReplace
)

// store implements set/safe_set/add/safe_add/replace. nil value (kind 0)
// deletes.
func (d *SharedDict) store(mode setMode, key string, val dictValue, exptime float64, flags uint32, safe bool) (ok bool, err string, forcible bool) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	it := d.items[key]
	if it != nil && it.expired(now) && mode != modeSet {
		// expired items count as absent for add/replace
		d.remove(it)
		it = nil
	}
	switch mode {
	case modeAdd:
		if it != nil {
			return false, "exists", false
		}
	case modeReplace:
		if it == nil {
			return false, "not found", false
		}
	}
	if val.kind == 0 {
		if it != nil {
			d.remove(it)
		}
		return true, "", false
	}
	size := int64(dictItemOverhead+len(key)) + valueSize(val.kind, val.s)
	if it != nil {
		d.remove(it)
	}
	room, forced := d.makeRoom(size, safe, nil, now)
	if !room {
		return false, "no memory", false
	}
	nit := &dictItem{key: key, kind: val.kind, s: val.s, n: val.n, b: val.b, flags: flags, expires: expiry(now, exptime), size: size}
	nit.elem = d.lru.PushFront(nit)
	d.items[key] = nit
	d.used += size
	return true, "", forced
}

// get returns the item's value; stale reports whether it is expired (only
// returned when allowStale).
func (d *SharedDict) get(key string, allowStale bool) (val dictValue, flags uint32, stale, found bool, isList bool) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	it := d.items[key]
	if it == nil {
		return
	}
	exp := it.expired(now)
	if exp && !allowStale {
		return
	}
	if it.kind == kindList {
		return dictValue{}, 0, exp, true, true
	}
	if !exp {
		d.lru.MoveToFront(it.elem)
	}
	return dictValue{kind: it.kind, s: it.s, n: it.n, b: it.b}, it.flags, exp, true, false
}

func (d *SharedDict) incr(key string, delta float64, init *float64, initTTL float64) (float64, string, bool) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	it := d.items[key]
	if it != nil && it.expired(now) {
		d.remove(it)
		it = nil
	}
	if it == nil {
		if init == nil {
			return 0, "not found", false
		}
		val := *init + delta
		size := int64(dictItemOverhead+len(key)) + 8
		room, forced := d.makeRoom(size, false, nil, now)
		if !room {
			return 0, "no memory", false
		}
		nit := &dictItem{key: key, kind: kindNumber, n: val, expires: expiry(now, initTTL), size: size}
		nit.elem = d.lru.PushFront(nit)
		d.items[key] = nit
		d.used += size
		return val, "", forced
	}
	if it.kind != kindNumber {
		return 0, "not a number", false
	}
	it.n += delta
	d.lru.MoveToFront(it.elem)
	return it.n, "", false
}

func (d *SharedDict) ttl(key string) (float64, bool) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	it := d.items[key]
	if it == nil || it.expired(now) {
		return 0, false
	}
	if it.expires.IsZero() {
		return 0, true
	}
	return math.Round(float64(it.expires.Sub(now))/float64(time.Millisecond)) / 1000, true
}

func (d *SharedDict) expire(key string, exptime float64) bool {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	it := d.items[key]
	if it == nil || it.expired(now) {
		return false
	}
	it.expires = expiry(now, exptime)
	return true
}

func (d *SharedDict) flushAll() {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	past := now.Add(-time.Millisecond)
	for _, it := range d.items {
		it.expires = past
	}
}

func (d *SharedDict) flushExpired(max int) int {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for e := d.lru.Back(); e != nil; {
		prev := e.Prev()
		it := e.Value.(*dictItem)
		if it.expired(now) {
			d.remove(it)
			n++
			if max > 0 && n >= max {
				break
			}
		}
		e = prev
	}
	return n
}

func (d *SharedDict) keys(max int) []string {
	now := d.now()
	d.mu.Lock()
	keys := make([]string, 0, len(d.items))
	for k, it := range d.items {
		if !it.expired(now) {
			keys = append(keys, k)
		}
	}
	d.mu.Unlock()
	sort.Strings(keys)
	if max > 0 && len(keys) > max {
		keys = keys[:max]
	}
	return keys
}

func (d *SharedDict) freeSpace() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	free := d.capacity - d.used
	if free < 0 {
		free = 0
	}
	return free / 4096 * 4096
}

// push implements lpush/rpush; returns the new length.
func (d *SharedDict) push(key string, val lua.LValue, left bool) (int, string) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	it := d.items[key]
	if it != nil && it.expired(now) {
		d.remove(it)
		it = nil
	}
	var vs int64 = 8
	if s, ok := val.(lua.LString); ok {
		vs = int64(len(s))
	}
	need := 16 + vs
	if it == nil {
		need += int64(dictItemOverhead + len(key))
	} else if it.kind != kindList {
		return 0, "value not a list"
	}
	room, _ := d.makeRoom(need, false, it, now)
	if !room {
		return 0, "no memory"
	}
	if it == nil {
		it = &dictItem{key: key, kind: kindList, list: list.New(), size: int64(dictItemOverhead + len(key))}
		it.elem = d.lru.PushFront(it)
		d.items[key] = it
		d.used += it.size
	}
	if left {
		it.list.PushFront(val)
	} else {
		it.list.PushBack(val)
	}
	it.size += 16 + vs
	d.used += 16 + vs
	d.lru.MoveToFront(it.elem)
	return it.list.Len(), ""
}

func (d *SharedDict) pop(key string, left bool) (lua.LValue, string) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	it := d.items[key]
	if it == nil || it.expired(now) {
		return lua.LNil, ""
	}
	if it.kind != kindList {
		return lua.LNil, "value not a list"
	}
	var e *list.Element
	if left {
		e = it.list.Front()
	} else {
		e = it.list.Back()
	}
	if e == nil {
		return lua.LNil, ""
	}
	val := it.list.Remove(e).(lua.LValue)
	var vs int64 = 8
	if s, ok := val.(lua.LString); ok {
		vs = int64(len(s))
	}
	it.size -= 16 + vs
	d.used -= 16 + vs
	if it.list.Len() == 0 {
		d.remove(it)
	}
	return val, ""
}

func (d *SharedDict) llen(key string) (int, string) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	it := d.items[key]
	if it == nil || it.expired(now) {
		return 0, ""
	}
	if it.kind != kindList {
		return 0, "value not a list"
	}
	return it.list.Len(), ""
}

// ---- Lua binding -----------------------------------------------------------

func (v *vm) newShared() *lua.LTable {
	L := v.L
	methods := L.CreateTable(0, 24)
	meta := L.CreateTable(0, 1)
	meta.RawSetString("__index", methods)
	t := L.CreateTable(0, len(v.e.dicts))
	for name, d := range v.e.dicts {
		ud := L.NewUserData()
		ud.Value = d
		ud.Metatable = meta
		t.RawSetString(name, ud)
	}

	reg := func(name string, fn func(L *lua.LState, d *SharedDict) int) {
		methods.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			ud, ok := L.Get(1).(*lua.LUserData)
			var d *SharedDict
			if ok {
				d, ok = ud.Value.(*SharedDict)
			}
			if !ok {
				L.RaiseError("bad \"zone\" argument")
			}
			return fn(L, d)
		}))
	}
	// dictKey validates argument 2; on failure it pushes nil, err and
	// returns ok=false.
	dictKey := func(L *lua.LState) (string, bool) {
		var key string
		switch k := L.Get(2).(type) {
		case *lua.LNilType:
			L.Push(lua.LNil)
			L.Push(lua.LString("nil key"))
			return "", false
		case lua.LString:
			key = string(k)
		case lua.LNumber:
			key = numStr(k)
		default:
			L.Push(lua.LNil)
			L.Push(lua.LString("bad key type"))
			return "", false
		}
		if key == "" {
			L.Push(lua.LNil)
			L.Push(lua.LString("empty key"))
			return "", false
		}
		if len(key) > 65535 {
			L.Push(lua.LNil)
			L.Push(lua.LString("key too long"))
			return "", false
		}
		return key, true
	}
	pushValue := func(L *lua.LState, val dictValue) {
		switch val.kind {
		case kindString:
			L.Push(lua.LString(val.s))
		case kindNumber:
			L.Push(lua.LNumber(val.n))
		case kindBool:
			L.Push(lua.LBool(val.b))
		default:
			L.Push(lua.LNil)
		}
	}
	getImpl := func(stale bool) func(L *lua.LState, d *SharedDict) int {
		return func(L *lua.LState, d *SharedDict) int {
			key, ok := dictKey(L)
			if !ok {
				return 2
			}
			val, flags, isStale, found, isList := d.get(key, stale)
			if isList {
				L.Push(lua.LNil)
				L.Push(lua.LString("value is a list"))
				return 2
			}
			if !found {
				L.Push(lua.LNil)
				return 1
			}
			pushValue(L, val)
			if stale {
				if flags != 0 {
					L.Push(lua.LNumber(flags))
				} else {
					L.Push(lua.LNil)
				}
				L.Push(lua.LBool(isStale))
				return 3
			}
			if flags != 0 {
				L.Push(lua.LNumber(flags))
				return 2
			}
			return 1
		}
	}
	reg("get", getImpl(false))
	reg("get_stale", getImpl(true))

	storeImpl := func(mode setMode, safe bool) func(L *lua.LState, d *SharedDict) int {
		return func(L *lua.LState, d *SharedDict) int {
			key, ok := dictKey(L)
			if !ok {
				return 2
			}
			var val dictValue
			switch x := L.Get(3).(type) {
			case *lua.LNilType:
			case lua.LString:
				val = dictValue{kind: kindString, s: string(x)}
			case lua.LNumber:
				val = dictValue{kind: kindNumber, n: float64(x)}
			case lua.LBool:
				val = dictValue{kind: kindBool, b: bool(x)}
			default:
				L.Push(lua.LNil)
				L.Push(lua.LString("bad value type"))
				return 2
			}
			var exptime float64
			if e := L.Get(4); e != lua.LNil {
				n, ok := e.(lua.LNumber)
				if !ok || n < 0 {
					L.ArgError(4, "bad \"exptime\" argument")
				}
				exptime = float64(n)
			}
			var flags uint32
			if f := L.Get(5); f != lua.LNil {
				n, ok := f.(lua.LNumber)
				if !ok {
					L.ArgError(5, "bad \"flags\" argument")
				}
				flags = uint32(n)
			}
			if v.replay {
				L.Push(lua.LTrue)
				L.Push(lua.LNil)
				L.Push(lua.LFalse)
				return 3
			}
			if mode == modeSet && val.kind == 0 {
				d.store(modeSet, key, val, 0, 0, false)
				L.Push(lua.LTrue)
				L.Push(lua.LNil)
				L.Push(lua.LFalse)
				return 3
			}
			ok, errs, forcible := d.store(mode, key, val, exptime, flags, safe)
			if !ok {
				L.Push(lua.LFalse)
				L.Push(lua.LString(errs))
				L.Push(lua.LFalse)
				return 3
			}
			L.Push(lua.LTrue)
			L.Push(lua.LNil)
			L.Push(lua.LBool(forcible))
			return 3
		}
	}
	reg("set", storeImpl(modeSet, false))
	reg("safe_set", storeImpl(modeSet, true))
	reg("add", storeImpl(modeAdd, false))
	reg("safe_add", storeImpl(modeAdd, true))
	reg("replace", storeImpl(modeReplace, false))
	reg("delete", func(L *lua.LState, d *SharedDict) int {
		key, ok := dictKey(L)
		if !ok {
			return 2
		}
		if !v.replay {
			d.store(modeSet, key, dictValue{}, 0, 0, false)
		}
		L.Push(lua.LTrue)
		return 1
	})
	reg("incr", func(L *lua.LState, d *SharedDict) int {
		key, ok := dictKey(L)
		if !ok {
			return 2
		}
		n, isNum := L.Get(3).(lua.LNumber)
		if !isNum {
			if s, isStr := L.Get(3).(lua.LString); isStr {
				if f, err := parseNumber(string(s)); err == nil {
					n, isNum = lua.LNumber(f), true
				}
			}
		}
		if !isNum {
			L.Push(lua.LNil)
			L.Push(lua.LString("not a number"))
			return 2
		}
		var init *float64
		if iv := L.Get(4); iv != lua.LNil {
			in, ok := iv.(lua.LNumber)
			if !ok {
				L.Push(lua.LNil)
				L.Push(lua.LString("init: not a number"))
				return 2
			}
			f := float64(in)
			init = &f
		}
		var initTTL float64
		if tv := L.Get(5); tv != lua.LNil {
			tn, ok := tv.(lua.LNumber)
			if !ok || tn < 0 {
				L.ArgError(5, "bad \"init_ttl\" argument")
			}
			initTTL = float64(tn)
		}
		if v.replay {
			L.Push(n)
			L.Push(lua.LNil)
			L.Push(lua.LFalse)
			return 3
		}
		val, errs, forcible := d.incr(key, float64(n), init, initTTL)
		if errs != "" {
			L.Push(lua.LNil)
			L.Push(lua.LString(errs))
			return 2
		}
		L.Push(lua.LNumber(val))
		L.Push(lua.LNil)
		if init != nil {
			L.Push(lua.LBool(forcible))
			return 3
		}
		return 2
	})
	reg("ttl", func(L *lua.LState, d *SharedDict) int {
		key, ok := dictKey(L)
		if !ok {
			return 2
		}
		ttl, found := d.ttl(key)
		if !found {
			L.Push(lua.LNil)
			L.Push(lua.LString("not found"))
			return 2
		}
		L.Push(lua.LNumber(ttl))
		return 1
	})
	reg("expire", func(L *lua.LState, d *SharedDict) int {
		key, ok := dictKey(L)
		if !ok {
			return 2
		}
		n, isNum := L.Get(3).(lua.LNumber)
		if !isNum || n < 0 {
			L.ArgError(3, "bad \"exptime\" argument")
		}
		if v.replay {
			L.Push(lua.LTrue)
			return 1
		}
		if !d.expire(key, float64(n)) {
			L.Push(lua.LNil)
			L.Push(lua.LString("not found"))
			return 2
		}
		L.Push(lua.LTrue)
		return 1
	})
	reg("flush_all", func(L *lua.LState, d *SharedDict) int {
		if !v.replay {
			d.flushAll()
		}
		return 0
	})
	reg("flush_expired", func(L *lua.LState, d *SharedDict) int {
		max := 0
		if L.GetTop() >= 2 && L.Get(2) != lua.LNil {
			max = L.CheckInt(2)
		}
		if v.replay {
			L.Push(lua.LNumber(0))
			return 1
		}
		L.Push(lua.LNumber(d.flushExpired(max)))
		return 1
	})
	reg("get_keys", func(L *lua.LState, d *SharedDict) int {
		max := 1024
		if L.GetTop() >= 2 && L.Get(2) != lua.LNil {
			max = L.CheckInt(2)
		}
		keys := d.keys(max)
		t := L.CreateTable(len(keys), 0)
		for _, k := range keys {
			t.Append(lua.LString(k))
		}
		L.Push(t)
		return 1
	})
	reg("capacity", func(L *lua.LState, d *SharedDict) int {
		L.Push(lua.LNumber(d.capacity))
		return 1
	})
	reg("free_space", func(L *lua.LState, d *SharedDict) int {
		L.Push(lua.LNumber(d.freeSpace()))
		return 1
	})
	pushImpl := func(left bool) func(L *lua.LState, d *SharedDict) int {
		return func(L *lua.LState, d *SharedDict) int {
			key, ok := dictKey(L)
			if !ok {
				return 2
			}
			val := L.Get(3)
			switch val.(type) {
			case lua.LString, lua.LNumber:
			default:
				L.Push(lua.LNil)
				L.Push(lua.LString("bad value type"))
				return 2
			}
			if v.replay {
				L.Push(lua.LNumber(1))
				return 1
			}
			n, errs := d.push(key, val, left)
			if errs != "" {
				L.Push(lua.LNil)
				L.Push(lua.LString(errs))
				return 2
			}
			L.Push(lua.LNumber(n))
			return 1
		}
	}
	reg("lpush", pushImpl(true))
	reg("rpush", pushImpl(false))
	popImpl := func(left bool) func(L *lua.LState, d *SharedDict) int {
		return func(L *lua.LState, d *SharedDict) int {
			key, ok := dictKey(L)
			if !ok {
				return 2
			}
			if v.replay {
				L.Push(lua.LNil)
				return 1
			}
			val, errs := d.pop(key, left)
			if errs != "" {
				L.Push(lua.LNil)
				L.Push(lua.LString(errs))
				return 2
			}
			L.Push(val)
			return 1
		}
	}
	reg("lpop", popImpl(true))
	reg("rpop", popImpl(false))
	reg("llen", func(L *lua.LState, d *SharedDict) int {
		key, ok := dictKey(L)
		if !ok {
			return 2
		}
		n, errs := d.llen(key)
		if errs != "" {
			L.Push(lua.LNil)
			L.Push(lua.LString(errs))
			return 2
		}
		L.Push(lua.LNumber(n))
		return 1
	})
	return t
}

func parseNumber(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		n, err := strconv.ParseUint(s[2:], 16, 64)
		return float64(n), err
	}
	return strconv.ParseFloat(s, 64)
}

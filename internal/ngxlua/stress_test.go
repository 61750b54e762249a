package ngxlua

import (
	"fmt"
	"sync"
	"testing"
)

func TestConcurrentRequestsAndTimers(t *testing.T) {
	e, _ := newTestEngine(t, Options{SharedDicts: map[string]int64{"d": 1 << 20}})
	rw := compile(t, e, `ngx.ctx.id = ngx.var.arg_id`)
	ct := compile(t, e, `
ngx.timer.at(0, function(_, id) ngx.shared.d:incr("timers", 1, 0) end, ngx.ctx.id)
ngx.sleep(0.001)
ngx.say(ngx.ctx.id)`)
	var wg sync.WaitGroup
	const n = 16
	const per = 25
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				r := newFakeReq()
				id := fmt.Sprintf("%d-%d", g, i)
				r.args = "id=" + id
				st := NewRequestState()
				if _, err := e.Run(rw, PhaseRewrite, r, st); err != nil {
					t.Error(err)
					return
				}
				if _, err := e.Run(ct, PhaseContent, r, st); err != nil {
					t.Error(err)
					return
				}
				if r.out.String() != id+"\n" {
					t.Errorf("got %q want %q", r.out.String(), id)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	waitFor(t, "all timers", func() bool { return dictNum(e, "d", "timers") == n*per })
}

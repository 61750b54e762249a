package ngxlua

import "testing"

func BenchmarkHelloWorld(b *testing.B) {
	e, _ := newTestEngine(b, Options{})
	h := compile(b, e, `ngx.say("hello world")`)
	r := newFakeReq()
	st := NewRequestState()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.out.Reset()
		r.headersSent = false
		if _, err := e.Run(h, PhaseContent, r, st); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHelloWorldParallel(b *testing.B) {
	e, _ := newTestEngine(b, Options{})
	h := compile(b, e, `ngx.say("hello world")`)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := newFakeReq()
		st := NewRequestState()
		for pb.Next() {
			r.out.Reset()
			r.headersSent = false
			if _, err := e.Run(h, PhaseContent, r, st); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkHelloWorldNoCodeCache(b *testing.B) {
	e, err := NewEngine(Options{CodeCache: false})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	h, _ := e.Compile(Code{Source: `ngx.say("hello world")`, ChunkName: "content_by_lua(nginx.conf:1)"})
	r := newFakeReq()
	st := NewRequestState()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.out.Reset()
		r.headersSent = false
		if _, err := e.Run(h, PhaseContent, r, st); err != nil {
			b.Fatal(err)
		}
	}
}

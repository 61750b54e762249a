package proxy

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkDial: one upstream connect + close per op to a loopback listener
// that accepts and closes.
//
//	go test -run '^$' -bench Dial -benchmem -count 8 ./internal/proxy
func BenchmarkDial(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, bc := range []struct {
		name string
		ctx  context.Context
	}{{"background", context.Background()}, {"cancelable", cctx}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				pc, err := dial(bc.ctx, addr, netip.AddrPort{}, 5*time.Second, nil)
				if err != nil {
					b.Fatal(err)
				}
				pc.close()
			}
		})
	}
}

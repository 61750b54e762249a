package main

import (
	"net"
	"runtime"
	"testing"
)

// activeOpens counts the connections this machine opens: dialing a local
// listener must move it by at least one.
func TestActiveOpensCountsDials(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/net/snmp is Linux's")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	before, err := activeOpens()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	after, err := activeOpens()
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 3 {
		t.Fatalf("ActiveOpens moved by %d after 3 dials", after-before)
	}
}

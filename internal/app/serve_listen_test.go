package app

import (
	"fmt"
	"net"
	"net/http"
	"testing"
)

// A server listening on a specific address and one on the wildcard
// address of the same port coexist, as in nginx: the port is bound once
// (on the wildcard) and a connection is served by the servers of its local
// address when there are any, else by the wildcard's.
func TestServeListenWildcardAndSpecific(t *testing.T) {
	_, port, _ := net.SplitHostPort(freeAddr(t))
	_, _, _ = startServer(t, fmt.Sprintf(`
events {}
http {
    server { listen %[1]s; return 200 "wildcard $server_addr"; }
    server { listen 127.0.0.1:%[1]s; server_name a.test; return 200 "specific-a"; }
    server { listen 127.0.0.1:%[1]s; server_name b.test; return 200 "specific-b"; }
}`, port))
	tests := []struct{ ip, host, want string }{
		{"127.0.0.1", "a.test", "specific-a"},
		{"127.0.0.1", "b.test", "specific-b"},
		{"127.0.0.1", "other.test", "specific-a"}, // the address's first server is its default
		{"127.0.0.2", "a.test", "wildcard 127.0.0.2"},
	}
	for _, tc := range tests {
		t.Run(tc.ip+" "+tc.host, func(t *testing.T) {
			code, body, _ := svDo(t, "GET", "http://"+net.JoinHostPort(tc.ip, port)+"/", "", svHost(tc.host))
			if code != http.StatusOK || body != tc.want {
				t.Fatalf("%d %q, want %q", code, body, tc.want)
			}
		})
	}
}

package main

import (
	"fmt"
	"strings"
)

// Scenario paths, the same on nginx and upstreamd.
const (
	pathProxy    = "/proxy"       // (b)
	pathLua      = "/lua"         // (c)
	pathProxyLua = "/proxylua"    // (d)
	pathPeers    = "/peers"       // (e)
	pathAdmin    = "/admin"       // (f), upstreamd only
	pathChanging = "/changing"    // (f) and its reference (f0), upstreamd only
	pathNoKeep   = "/nokeepalive" // (g)
)

// changingKeepalive is the keepalive cache of the upstream (f) changes: as
// large as the connections its three peers may need (64 clients), so that
// moving traffic between peers does not have to reconnect, and (f) measures
// the runtime changes rather than the cache size (docs/benchmarks.md).
const changingKeepalive = 256

// nPeers is the size of the upstream of scenario (e).
const nPeers = 1000

// peerAddr is the i-th distinct loopback address of scenario (e):
// 127.1.0.1 … 127.1.3.250. Linux routes all of 127.0.0.0/8 to lo.
func peerAddr(i int) string {
	return fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)
}

// addedPeer is the address (f) adds and removes: backend A listens there.
const addedPeerIP = "127.0.0.2"

// backendConf is one nginx (1 worker) serving `return 200 "ok\n"` as two
// backends A and B, each on 127.0.0.1 and on half of the (e) addresses.
func backendConf(prefix string, portA, portB int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `daemon off;
master_process on;
worker_processes 1;
pid %[1]s/logs/nginx.pid;
error_log %[1]s/logs/error.log warn;

events {
    worker_connections 16000;
}

http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
`, prefix)
	for k, port := range []int{portA, portB} {
		fmt.Fprintf(&b, "\n    server {\n        listen 127.0.0.1:%d;\n", port)
		if k == 0 {
			fmt.Fprintf(&b, "        listen %s:%d;\n", addedPeerIP, port)
		}
		for i := k; i < nPeers; i += 2 {
			fmt.Fprintf(&b, "        listen %s:%d;\n", peerAddr(i), port)
		}
		b.WriteString("        location / {\n            default_type text/plain;\n            return 200 \"ok\\n\";\n        }\n    }\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// proxyConf is the configuration of the server under test. nginx and
// upstreamd get the same http block; nginx adds load_module and temp paths,
// upstreamd adds /admin (scenario f: ngx.upstream is upstreamd's).
func proxyConf(nginx bool, prefix, workers string, port, portA, portB int) string {
	var b strings.Builder
	if nginx {
		b.WriteString("load_module /usr/lib/nginx/modules/ndk_http_module.so;\nload_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\n")
	}
	fmt.Fprintf(&b, `daemon off;
master_process on;
worker_processes %[2]s;
pid %[1]s/logs/nginx.pid;
error_log %[1]s/logs/error.log warn;

events {
    worker_connections 8192;
}

http {
    access_log off;
`, prefix, workers)
	if nginx {
		fmt.Fprintf(&b, `    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
`, prefix)
	}
	fmt.Fprintf(&b, `
    upstream backend {
        server 127.0.0.1:%[1]d;
        server 127.0.0.1:%[2]d;
        keepalive 32;
    }

    upstream nokeepalive {
        server 127.0.0.1:%[1]d;
        server 127.0.0.1:%[2]d;
    }

    upstream peers1000 {
`, portA, portB)
	for i := 0; i < nPeers; i++ {
		p := portA
		if i%2 == 1 {
			p = portB
		}
		fmt.Fprintf(&b, "        server %s:%d;\n", peerAddr(i), p)
	}
	fmt.Fprintf(&b, `        keepalive 1024;
    }
`)
	if !nginx {
		fmt.Fprintf(&b, `
    upstream changing {
        server 127.0.0.1:%d;
        server 127.0.0.1:%d;
        keepalive %d;
    }
`, portA, portB, changingKeepalive)
	}
	fmt.Fprintf(&b, `
    server {
        listen 127.0.0.1:%[1]d;

        location = %[2]s {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }

        location = %[3]s {
            default_type text/plain;
            content_by_lua_block {
                ngx.say("hello world")
            }
        }

        location = %[4]s {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            header_filter_by_lua_block {
                ngx.header["X-Bench"] = "lua"
            }
        }

        location = %[5]s {
            proxy_pass http://peers1000;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }

        # nginx's defaults: HTTP/1.0 to the upstream, a connection per request.
        location = %[6]s {
            proxy_pass http://nokeepalive;
        }
`, port, pathProxy, pathLua, pathProxyLua, pathPeers, pathNoKeep)
	if !nginx {
		fmt.Fprintf(&b, `
        location = %[4]s {
            proxy_pass http://changing;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }

        # Scenario (f): step=1 downs peer 0 of "changing" and adds
        # %[2]s:%[3]d, step=2 ups peer 0 and removes it again.
        location = %[1]s {
            default_type text/plain;
            content_by_lua_block {
                local upstream = require "ngx.upstream"
                local function fail(what, err)
                    ngx.status = 500
                    ngx.say(what, ": ", err)
                end
                if ngx.var.arg_step == "1" then
                    local ok, err = upstream.set_peer_down("changing", false, 0, true)
                    if not ok then return fail("down", err) end
                    local id, err = upstream.add_server("changing", "%[2]s:%[3]d")
                    if not id then return fail("add", err) end
                else
                    local ok, err = upstream.set_peer_down("changing", false, 0, false)
                    if not ok then return fail("up", err) end
                    ok, err = upstream.remove_server("changing", "%[2]s:%[3]d")
                    if not ok then return fail("remove", err) end
                end
                ngx.say("ok")
            }
        }
`, pathAdmin, addedPeerIP, portA, pathChanging)
	}
	b.WriteString("    }\n}\n")
	return b.String()
}

package config

import (
	"errors"
	"testing"

	"upstreamd/internal/nginxconf"
)

// TestErrors checks the full message, as printed after "[emerg] ", for each
// class of error. Lines count from 1 in the conf text.
func TestErrors(t *testing.T) {
	tests := []struct {
		name, conf, want string
	}{
		// dispatch: ngx_conf_handler's own messages
		{"unknown directive", "events {}\nfoo bar;\n",
			`unknown directive "foo" in nginx.conf:2`},
		{"unknown in location", httpConf("server {\nlocation / {\ntry_files $uri =404;\n}\n}"),
			`unknown directive "try_files" in nginx.conf:5`},
		{"not allowed here", httpConf("proxy_pass http://127.0.0.1;"),
			`"proxy_pass" directive is not allowed here in nginx.conf:3`},
		{"content_by_lua at server", httpConf("server {\ncontent_by_lua_block { ngx.say(1) }\n}"),
			`"content_by_lua_block" directive is not allowed here in nginx.conf:4`},
		{"upstream server outside", httpConf("server {\nserver 127.0.0.1;\n}"),
			`"server" directive is not allowed here in nginx.conf:4`},
		{"log_format in server", httpConf("server {\nlog_format x '$a';\n}"),
			`"log_format" directive is not allowed here in nginx.conf:4`},
		{"worker_processes in http", httpConf("worker_processes 2;"),
			`"worker_processes" directive is not allowed here in nginx.conf:3`},
		{"argument count", httpConf("server {\nlisten;\n}"),
			`invalid number of arguments in "listen" directive in nginx.conf:4`},
		{"argument count too many", httpConf("root a b;"),
			`invalid number of arguments in "root" directive in nginx.conf:3`},
		{"block args", "events {}\nhttp x {\n}\n",
			`invalid number of arguments in "http" directive in nginx.conf:2`},
		{"no opening brace", httpConf("server {\nlocation /x;\n}"),
			`directive "location" has no opening "{" in nginx.conf:4`},
		{"not terminated", httpConf("default_type text/html {\n}"),
			`directive "default_type" is not terminated by ";" in nginx.conf:3`},

		// duplicates
		{"main duplicate", "worker_processes 1;\nworker_processes 2;\nevents {}\n",
			`"worker_processes" directive is duplicate in nginx.conf:2`},
		{"events duplicate", "events {}\nevents {}\n",
			`"events" directive is duplicate in nginx.conf:2`},
		{"worker_connections duplicate", "events {\nworker_connections 1;\nworker_connections 2;\n}\n",
			`"worker_connections" directive is duplicate in nginx.conf:3`},
		{"http duplicate", "events {}\nhttp {}\nhttp {}\n",
			`"http" directive is duplicate in nginx.conf:3`},
		{"level duplicate", httpConf("proxy_read_timeout 1s;\nproxy_read_timeout 2s;"),
			`"proxy_read_timeout" directive is duplicate in nginx.conf:4`},
		{"root duplicate", httpConf("server {\nroot /a;\nroot /b;\n}"),
			`"root" directive is duplicate in nginx.conf:5`},
		{"content duplicate across forms", httpConf("server {\nlocation / {\ncontent_by_lua 'ngx.say(1)';\ncontent_by_lua_block { ngx.say(2) }\n}\n}"),
			`"content_by_lua_block" directive is duplicate in nginx.conf:6`},
		{"proxy_pass duplicate", httpConf("server {\nlocation / {\nproxy_pass http://127.0.0.1;\nproxy_pass http://127.0.0.2;\n}\n}"),
			`"proxy_pass" directive is duplicate in nginx.conf:6`},
		{"init_by_lua duplicate", httpConf("init_by_lua 'x = 1';\ninit_by_lua_file init.lua;"),
			`"init_by_lua_file" directive is duplicate in nginx.conf:4`},
		{"duplicate upstream", httpConf("upstream backend {\nserver 127.0.0.1;\n}\nupstream Backend {\nserver 127.0.0.2;\n}"),
			`duplicate upstream "Backend" in nginx.conf:6`},
		{"duplicate location", httpConf("server {\nlocation /x {}\nlocation ^~ /x {}\n}"),
			`duplicate location "/x" in nginx.conf:5`},
		{"duplicate exact location", httpConf("server {\nlocation = /x {}\nlocation =/x {}\n}"),
			`duplicate location "/x" in nginx.conf:5`},
		{"duplicate nested location", httpConf("server {\nlocation /a {\nlocation /a/b {}\nlocation /a/b {}\n}\n}"),
			`duplicate location "/a/b" in nginx.conf:6`},
		{"duplicate log_format", httpConf("log_format main '$a';\nlog_format main '$b';"),
			`duplicate "log_format" name "main" in nginx.conf:4`},
		{"combined is predefined", httpConf("log_format combined '$a';"),
			`duplicate "log_format" name "combined" in nginx.conf:3`},
		{"duplicate shared dict", httpConf("lua_shared_dict cache 1m;\nlua_shared_dict cache 1m;"),
			`lua_shared_dict "cache" is already defined as "cache" in nginx.conf:4`},
		{"duplicate listen", httpConf("server {\nlisten 8080;\nlisten 0.0.0.0:8080;\n}"),
			`a duplicate listen 0.0.0.0:8080 in nginx.conf:5`},
		{"duplicate default server", httpConf("server {\nlisten 8080 default_server;\n}\nserver {\nlisten *:8080 default;\n}"),
			`a duplicate default server for 0.0.0.0:8080 in nginx.conf:7`},
		{"duplicate listen options", httpConf("server {\nlisten 8080 backlog=10;\n}\nserver {\nlisten 8080 reuseport;\n}"),
			`duplicate listen options for 0.0.0.0:8080 in nginx.conf:7`},

		// values
		{"flag", httpConf("proxy_buffering yes;"),
			`invalid value "yes" in "proxy_buffering" directive, it must be "on" or "off" in nginx.conf:3`},
		{"time", httpConf("proxy_read_timeout 10x;"),
			`"proxy_read_timeout" directive invalid value in nginx.conf:3`},
		{"time units out of order", httpConf("keepalive_timeout 30s1m;"),
			`"keepalive_timeout" directive invalid value in nginx.conf:3`},
		{"size", httpConf("client_max_body_size 1t;"),
			`"client_max_body_size" directive invalid value in nginx.conf:3`},
		{"number", httpConf("proxy_next_upstream_tries -1;"),
			`"proxy_next_upstream_tries" directive invalid number in nginx.conf:3`},
		{"worker_processes", "worker_processes many;\nevents {}\n",
			`"worker_processes" directive invalid value in nginx.conf:1`},
		{"worker_connections", "events {\nworker_connections lots;\n}\n",
			`invalid number "lots" in nginx.conf:2`},
		{"event type", "events {\nuse kqueue;\n}\n",
			`invalid event type "kqueue" in nginx.conf:2`},
		{"error_log level", "error_log logs/error.log loud;\nevents {}\n",
			`invalid log level "loud" in nginx.conf:1`},
		{"error_log two levels", "error_log logs/error.log info warn;\nevents {}\n",
			`duplicate log level "warn" in nginx.conf:1`},
		{"enum", httpConf("proxy_http_version 2.0;"),
			`invalid value "2.0" in nginx.conf:3`},
		{"bitmask", httpConf("proxy_next_upstream error http_418;"),
			`invalid value "http_418" in nginx.conf:3`},
		{"server_tokens", httpConf("server_tokens maybe;"),
			`invalid value "maybe" in nginx.conf:3`},
		{"return code", httpConf("server {\nreturn abc;\n}"),
			`invalid return code "abc" in nginx.conf:4`},
		{"return code too big", httpConf("server {\nreturn 1000;\n}"),
			`invalid return code "1000" in nginx.conf:4`},
		{"error_page range", httpConf("error_page 200 /x;"),
			`value "200" must be between 300 and 599 in nginx.conf:3`},
		{"error_page code", httpConf("error_page 5xx /x;"),
			`invalid value "5xx" in nginx.conf:3`},
		{"error_page overwrite", httpConf("error_page 404 =abc /x;"),
			`invalid value "=abc" in nginx.conf:3`},
		{"index absolute not last", httpConf("index /index.html index.htm;"),
			`only the last index in "index" directive should be absolute in nginx.conf:3`},
		{"index empty", httpConf("index \"\";"),
			`index "" in "index" directive is invalid in nginx.conf:3`},
		{"keepalive_requests", httpConf("keepalive_requests many;"),
			`"keepalive_requests" directive invalid number in nginx.conf:3`},
		{"keepalive header timeout", httpConf("keepalive_timeout 65 10ms;"),
			`"keepalive_timeout" directive invalid value in nginx.conf:3`},
		{"lua_socket_pool_size", httpConf("lua_socket_pool_size 0;"),
			`"lua_socket_pool_size" directive invalid number in nginx.conf:3`},
		{"zone size value", httpConf("upstream b {\nzone b big;\nserver 127.0.0.1;\n}"),
			`invalid zone size "big" in nginx.conf:4`},
		{"access_log buffer", httpConf("access_log logs/a.log combined buffer=lots;"),
			`invalid buffer size "lots" in nginx.conf:3`},
		{"access_log gzip", httpConf("access_log logs/a.log combined gzip;"),
			`invalid parameter "gzip" in nginx.conf:3`},
		{"add_header parameter", httpConf("add_header X-A b sometimes;"),
			`invalid parameter "sometimes" in nginx.conf:3`},
		{"access_log off extra", httpConf("access_log off main;"),
			`invalid parameter "main" in nginx.conf:3`},
		{"unknown log format", httpConf("access_log logs/a.log main;"),
			`unknown log format "main" in nginx.conf:3`},
		{"log format defined later", httpConf("access_log logs/a.log main;\nlog_format main '$a';"),
			`unknown log format "main" in nginx.conf:3`},
		{"log format escaping", httpConf("log_format j escape=xml '$a';"),
			`unknown log format escaping "xml" in nginx.conf:3`},
		{"lua shared dict size", httpConf("lua_shared_dict cache 4k;"),
			`invalid lua shared dict size "4k" in nginx.conf:3`},
		{"empty lua code", httpConf("server {\nlocation / {\ncontent_by_lua '';\n}\n}"),
			`invalid location config: no runnable Lua code in nginx.conf:5`},

		// listen
		{"listen port", httpConf("server {\nlisten 99999;\n}"),
			`invalid port in "99999" of the "listen" directive in nginx.conf:4`},
		{"listen host port", httpConf("server {\nlisten 127.0.0.1:http;\n}"),
			`invalid port in "127.0.0.1:http" of the "listen" directive in nginx.conf:4`},
		{"listen host not found", httpConf("server {\nlisten nosuch.example:8080;\n}"),
			`host not found in "nosuch.example:8080" of the "listen" directive in nginx.conf:4`},
		{"listen no host", httpConf("server {\nlisten :8080;\n}"),
			`no host in ":8080" of the "listen" directive in nginx.conf:4`},
		{"listen bad ipv6", httpConf("server {\nlisten [zz]:80;\n}"),
			`invalid IPv6 address in "[zz]:80" of the "listen" directive in nginx.conf:4`},
		{"listen unix", httpConf("server {\nlisten unix:/tmp/s.sock;\n}"),
			`unix domain sockets are not supported in "unix:/tmp/s.sock" of the "listen" directive in nginx.conf:4`},
		{"listen parameter", httpConf("server {\nlisten 80 fast;\n}"),
			`invalid parameter "fast" in nginx.conf:4`},
		{"listen ssl", httpConf("server {\nlisten 443 ssl;\n}"),
			`the "ssl" parameter requires ngx_http_ssl_module in nginx.conf:4`},
		{"listen backlog", httpConf("server {\nlisten 80 backlog=lots;\n}"),
			`invalid backlog "lots" in nginx.conf:4`},

		// upstreams
		{"upstream host not found", httpConf("upstream b {\nserver 127.0.0.1:8080;\nserver nosuch:8080 weight=2;\n}"),
			`host not found in upstream "nosuch:8080" in nginx.conf:5`},
		{"upstream server port", httpConf("upstream b {\nserver 127.0.0.1:0;\n}"),
			`invalid port in upstream "127.0.0.1:0" in nginx.conf:4`},
		{"upstream unix", httpConf("upstream b {\nserver unix:/tmp/b.sock;\n}"),
			`unix domain sockets are not supported in upstream "unix:/tmp/b.sock" in nginx.conf:4`},
		{"no servers", httpConf("server {}\nupstream b {\nkeepalive 8;\n}"),
			`no servers are inside upstream in nginx.conf:4`},
		{"weight=0", httpConf("upstream b {\nserver 127.0.0.1 weight=0;\n}"),
			`invalid parameter "weight=0" in nginx.conf:4`},
		{"fail_timeout", httpConf("upstream b {\nserver 127.0.0.1 fail_timeout=10ms;\n}"),
			`invalid parameter "fail_timeout=10ms" in nginx.conf:4`},
		{"server parameter", httpConf("upstream b {\nserver 127.0.0.1 resolve;\n}"),
			`invalid parameter "resolve" in nginx.conf:4`},
		{"backup after hash", httpConf("upstream b {\nhash $uri;\nserver 127.0.0.1;\nserver 127.0.0.2 backup;\n}"),
			`balancing method does not support parameter "backup" in nginx.conf:6`},
		{"backup before ip_hash", httpConf("upstream b {\nserver 127.0.0.1;\nserver 127.0.0.2 backup;\nip_hash;\n}"),
			`balancing method does not support parameter "backup" in nginx.conf:5`},
		{"backup with random", httpConf("upstream b {\nrandom two least_conn;\nserver 127.0.0.2 backup;\n}"),
			`balancing method does not support parameter "backup" in nginx.conf:5`},
		{"hash parameter", httpConf("upstream b {\nhash $uri ketama;\nserver 127.0.0.1;\n}"),
			`invalid parameter "ketama" in nginx.conf:4`},
		{"random parameter", httpConf("upstream b {\nrandom three;\nserver 127.0.0.1;\n}"),
			`invalid parameter "three" in nginx.conf:4`},
		{"keepalive", httpConf("upstream b {\nserver 127.0.0.1;\nkeepalive 0;\n}"),
			`invalid value "0" in "keepalive" directive in nginx.conf:5`},
		{"upstream keepalive_timeout", httpConf("upstream b {\nserver 127.0.0.1;\nkeepalive_timeout forever;\n}"),
			`"keepalive_timeout" directive invalid value in nginx.conf:5`},
		{"zone size", httpConf("upstream b {\nzone b 1k;\nserver 127.0.0.1;\n}"),
			`zone "b" is too small in nginx.conf:4`},

		// proxy_pass
		{"implicit host not found", httpConf("server {\nlocation / {\nproxy_pass http://nosuch.example:8080/app;\n}\n}"),
			`host not found in upstream "nosuch.example" in nginx.conf:5`},
		{"implicit host not found no port", httpConf("server {\nlocation / {\nproxy_pass http://backend;\n}\n}"),
			`host not found in upstream "backend" in nginx.conf:5`},
		{"proxy_pass port", httpConf("server {\nlocation / {\nproxy_pass http://127.0.0.1:99999;\n}\n}"),
			`invalid port in upstream "127.0.0.1:99999" in nginx.conf:5`},
		{"proxy_pass variables", httpConf("server {\nlocation / {\nproxy_pass http://$host;\n}\n}"),
			`proxy_pass with variables is not supported in nginx.conf:5`},
		{"proxy_pass https", httpConf("server {\nlocation / {\nproxy_pass https://127.0.0.1;\n}\n}"),
			`https protocol requires SSL support in nginx.conf:5`},
		{"proxy_pass prefix", httpConf("server {\nlocation / {\nproxy_pass 127.0.0.1:8080;\n}\n}"),
			`invalid URL prefix in "127.0.0.1:8080" in nginx.conf:5`},
		{"proxy_pass unix", httpConf("server {\nlocation / {\nproxy_pass http://unix:/tmp/a.sock:/;\n}\n}"),
			`unix domain sockets are not supported in upstream "unix:/tmp/a.sock:/" in nginx.conf:5`},
		{"upstream may not have port", httpConf("upstream backend {\nserver 127.0.0.1;\n}\nserver {\nlocation / {\nproxy_pass http://backend:8080;\n}\n}"),
			`upstream "backend" may not have port 8080 in nginx.conf:8`},
		{"proxy_pass uri in regex location", httpConf("server {\nlocation ~ ^/api {\nproxy_pass http://127.0.0.1/v1;\n}\n}"),
			`"proxy_pass" cannot have URI part in location given by regular expression, or inside named location, or inside "if" statement, or inside "limit_except" block in nginx.conf:5`},

		// locations
		{"outside location", httpConf("server {\nlocation /y {\nlocation /x {}\n}\n}"),
			`location "/x" is outside location "/y" in nginx.conf:5`},
		{"inside exact location", httpConf("server {\nlocation = /y {\nlocation /y/x {}\n}\n}"),
			`location "/y/x" cannot be inside the exact location "/y" in nginx.conf:5`},
		{"inside named location", httpConf("server {\nlocation @y {\nlocation /x {}\n}\n}"),
			`location "/x" cannot be inside the named location "@y" in nginx.conf:5`},
		{"nested named location", httpConf("server {\nlocation /y {\nlocation @x {}\n}\n}"),
			`named location "@x" can be on the server level only in nginx.conf:5`},
		{"location modifier", httpConf("server {\nlocation ~~ /x {}\n}"),
			`invalid location modifier "~~" in nginx.conf:4`},
		{"bad regex", httpConf("server {\nlocation ~ ^/(a {}\n}"),
			"pcre_compile() failed: missing closing ): `^/(a` in \"^/(a\" in nginx.conf:4"},
		{"bad server_name regex", httpConf("server {\nserver_name ~^(www\\.)?(.+;\n}"),
			"pcre_compile() failed: missing closing ): `^(www\\.)?(.+` in \"^(www\\.)?(.+\" in nginx.conf:4"},

		// whole configuration
		{"no events", "worker_processes 1;\n",
			`no "events" section in configuration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildConf(t, tt.conf)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			var ce *nginxconf.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T %v is not a *nginxconf.Error", err, err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestGlobalsErrors(t *testing.T) {
	_, err := buildOpts(t, Options{Globals: "foo on;"}, "events {}\n")
	if err == nil || err.Error() != `unknown directive "foo" in command line` {
		t.Fatalf("got %v", err)
	}
	// As in nginx, -g directives come first, so the file's copy is the
	// duplicate.
	_, err = buildOpts(t, Options{Globals: "worker_processes 4;"}, "events {}\nworker_processes 2;\n")
	if err == nil || err.Error() != `"worker_processes" directive is duplicate in nginx.conf:2` {
		t.Fatalf("got %v", err)
	}
}

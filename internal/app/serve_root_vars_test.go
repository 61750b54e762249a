package app

import (
	"path/filepath"
	"testing"
)

// root may contain variables, as in nginx (`root sites/$host;`); relative
// roots resolve under the prefix like any root.
func TestServeRootWithVariables(t *testing.T) {
	_, base, prefix, _ := startServerWithFiles(t, `
events {}
http {
    access_log off;
    server {
        listen LISTEN;
        root sites/$host;
        location /doc { return 200 "$document_root"; }
    }
}`, map[string]string{
		"sites/a.test/index.html": "site a\n",
		"sites/b.test/index.html": "site b\n",
	})
	tests := []struct{ host, path, want string }{
		{"a.test", "/index.html", "site a\n"},
		{"b.test", "/index.html", "site b\n"},
		{"a.test", "/doc", filepath.Join(prefix, "sites") + "/a.test"},
	}
	for _, tt := range tests {
		code, body, _ := svDo(t, "GET", base+tt.path, "", svHost(tt.host))
		if code != 200 || body != tt.want {
			t.Errorf("%s%s: %d %q, want %q", tt.host, tt.path, code, body, tt.want)
		}
	}
}

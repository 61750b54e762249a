package httpd

import (
	"net/http"
	"strings"

	"upstreamd/internal/access"
	"upstreamd/internal/config"
	"upstreamd/internal/errlog"
)

// newGuard builds the access-phase check of a location, sharing one
// user-file source per path so each file is watched once.
func (h *Handler) newGuard(g config.Guard) *access.Guard {
	if !g.Active() {
		return nil
	}
	ag := &access.Guard{Rules: g.Rules, Satisfy: g.Satisfy}
	if g.AuthBasic != "" && g.AuthBasic != access.RealmOff && g.UserFile != "" {
		src := h.userFiles[g.UserFile]
		if src == nil {
			src = access.NewUserFileSource(g.UserFile)
			h.userFiles[g.UserFile] = src
		}
		ag.Auth = &access.BasicAuth{Realm: g.AuthBasic, Users: src}
	}
	return ag
}

// checkAccess runs allow/deny and auth_basic, as nginx's access phase does
// before access_by_lua.
func (r *request) checkAccess() flow {
	d := r.rt.guard.Check(r.req)
	if d.LogMsg != "" {
		r.logf(d.LogLevel, "%s", d.LogMsg)
	}
	if d.Allowed() {
		return flow{kind: flowNext}
	}
	if d.Challenge != "" {
		r.w.Header().Set("WWW-Authenticate", d.Challenge)
	}
	return flow{kind: flowStatus, status: d.Status}
}

// serveAPI hands the request to the REST API handler with the location
// prefix the handler strips.
func (r *request) serveAPI() flow {
	if r.rt.api == nil {
		r.logf(errlog.Error, "api handler is not available")
		return flow{kind: flowStatus, status: http.StatusInternalServerError}
	}
	if !strings.HasPrefix(r.uri, r.loc.Pattern) {
		return flow{kind: flowStatus, status: http.StatusNotFound}
	}
	r.rt.api.ServeHTTP(r.w, r.req)
	return flow{kind: flowDone}
}

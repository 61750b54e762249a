package access

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"syscall"

	"upstreamd/internal/errlog"
)

// Satisfy is nginx's "satisfy" directive.
type Satisfy int

const (
	// SatisfyAll (the default): the address rules must not deny and, when
	// auth_basic is on, valid credentials are required as well.
	SatisfyAll Satisfy = iota
	// SatisfyAny: a request passes when an allow rule matches (credentials
	// are then not even looked at) or when valid credentials are given.
	// As in nginx, an access list that matches nothing is not a grant, so
	// with auth on the credentials are still required; when both checks
	// fail the answer is 401 if authentication failed, otherwise 403.
	SatisfyAny
)

// ParseSatisfy accepts the directive's argument, "all" or "any".
func ParseSatisfy(s string) (Satisfy, error) {
	switch s {
	case "all":
		return SatisfyAll, nil
	case "any":
		return SatisfyAny, nil
	}
	return SatisfyAll, fmt.Errorf("invalid value %q in \"satisfy\" directive, it must be \"all\" or \"any\"", s)
}

// BasicAuth is auth_basic + auth_basic_user_file for one location.
type BasicAuth struct {
	Realm string          // sent in the challenge; never "off" (that means no BasicAuth)
	Users *UserFileSource // required
}

// Guard is the access-phase configuration of one location. The zero value
// lets everything through.
type Guard struct {
	Rules   Rules      // allow/deny in order; empty = no address check
	Auth    *BasicAuth // nil = auth_basic off
	Satisfy Satisfy
}

// Decision is what the server should do with a request.
type Decision struct {
	// Status is 0 to continue processing, otherwise the status to answer:
	// 401, 403 or 500.
	Status int
	// Challenge is the WWW-Authenticate value to send with a 401.
	Challenge string
	// User is the name from the request's Basic credentials when the
	// auth step ran and could parse them, whether or not they were
	// accepted. It is meant for logging; $remote_user should be derived
	// from the header with ParseAuthorization, since nginx sets it even
	// when auth_basic is off or the rules rejected the client.
	User string
	// LogMsg, when not empty, should be written to the error log at
	// LogLevel; texts and levels are nginx's.
	LogMsg   string
	LogLevel errlog.Level
}

// Allowed reports whether the request may proceed.
func (d Decision) Allowed() bool { return d.Status == 0 }

// Check evaluates the guard for an incoming request.
func (g *Guard) Check(r *http.Request) Decision {
	return g.Evaluate(r.RemoteAddr, r.Header.Get("Authorization"))
}

// Evaluate is Check on the raw peer address (as in Request.RemoteAddr) and
// Authorization header value, for callers that are not net/http handlers.
//
// The order is nginx's: the address rules run before Basic authentication,
// so under "satisfy all" a denied client gets 403 without being asked for a
// password, and nothing about its credentials is logged.
func (g *Guard) Evaluate(remoteAddr, authorization string) Decision {
	allowed, matched := g.Rules.MatchRemoteAddr(remoteAddr)
	denied := matched && !allowed

	if g.Satisfy == SatisfyAny {
		if matched && allowed {
			return Decision{}
		}
		if g.Auth == nil {
			if denied {
				// nginx only logs "access forbidden by rule" under
				// satisfy all.
				return Decision{Status: http.StatusForbidden}
			}
			return Decision{}
		}
		// Whatever authentication concludes is final here: success
		// passes, a 401 outranks the rules' 403 (nginx keeps 401 once
		// seen), and a 403/500 for an unusable user file stands.
		return g.Auth.check(authorization)
	}

	if denied {
		return Decision{
			Status:   http.StatusForbidden,
			LogMsg:   "access forbidden by rule",
			LogLevel: errlog.Error,
		}
	}
	if g.Auth == nil {
		return Decision{}
	}
	return g.Auth.check(authorization)
}

// check performs the auth_basic step with nginx's statuses and messages.
func (a *BasicAuth) check(authorization string) Decision {
	user, password, ok := ParseAuthorization(authorization)
	if !ok {
		return Decision{
			Status:    http.StatusUnauthorized,
			Challenge: Challenge(a.Realm),
			LogMsg:    "no user/password was provided for basic authentication",
			LogLevel:  errlog.Info,
		}
	}
	users, err := a.Users.Get()
	if err != nil {
		// nginx: a missing file is a configuration matter for this
		// location (403, error level); anything else is a server
		// failure (500, crit level).
		d := Decision{User: user, LogMsg: openFailure(a.Users.Path(), err)}
		if errors.Is(err, fs.ErrNotExist) {
			d.Status, d.LogLevel = http.StatusForbidden, errlog.Error
		} else {
			d.Status, d.LogLevel = http.StatusInternalServerError, errlog.Crit
		}
		return d
	}
	if err := users.Verify(user, password); err != nil {
		return Decision{
			Status:    http.StatusUnauthorized,
			Challenge: Challenge(a.Realm),
			User:      user,
			LogMsg:    err.Error(),
			LogLevel:  errlog.Error,
		}
	}
	return Decision{User: user}
}

// openFailure formats like nginx's `open() "path" failed (2: No such file or
// directory)`. A failed stat is reported as open(), the call nginx would have
// made; a failed read (e.g. the path is a directory) as read().
func openFailure(path string, err error) string {
	op := "open"
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Op == "read" {
		op = "read"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Sprintf("%s() %q failed (%d: %s)", op, path, int(errno), errno.Error())
	}
	return fmt.Sprintf("%s() %q failed (%v)", op, path, err)
}

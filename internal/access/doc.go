// Package access implements nginx's address-based access control
// (ngx_http_access_module: allow/deny) and HTTP Basic authentication
// (ngx_http_auth_basic_module: auth_basic/auth_basic_user_file), plus the
// "satisfy" combination of the two, without depending on the config layer.
//
// The HTTP server builds a Guard per location from parsed directives and calls
// Guard.Check for each request; the Decision says which status to answer and
// which message to log at which level, with nginx's wording so that existing
// log monitoring keeps working.
package access

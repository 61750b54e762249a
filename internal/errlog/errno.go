package errlog

import (
	"errors"
	"net"
	"strconv"
	"syscall"
)

// ErrnoText renders err as nginx does inside the parentheses of its system
// call errors: "2: No such file or directory". Go's errno texts are C's
// strerror() in lower case; errors without an errno keep their own text.
func ErrnoText(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			return op.Err.Error()
		}
		return err.Error()
	}
	s := errno.Error()
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		s = string(s[0]-'a'+'A') + s[1:]
	}
	return strconv.Itoa(int(errno)) + ": " + s
}

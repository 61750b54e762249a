package proxy

import (
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
)

var (
	errClientCanceled = errors.New("client canceled the request")
	errBufferFull     = errors.New("buffer full")
	errBadChunk       = errors.New("invalid chunked response")
	errShortBody      = errors.New("upstream prematurely closed connection")
)

// The "while ..." part of nginx's log lines (c->log->action).
const (
	actConnect = "connecting to upstream"
	actSend    = "sending request to upstream"
	actHeader  = "reading response header from upstream"
	actBody    = "reading upstream"
	actClient  = "sending to client"
)

// glibc's strerror texts for the errnos a proxy meets, so that log lines read
// exactly like nginx's. Others fall back to Go's text, capitalised.
var errnoText = map[syscall.Errno]string{
	syscall.EPIPE:         "Broken pipe",
	syscall.ECONNREFUSED:  "Connection refused",
	syscall.ECONNRESET:    "Connection reset by peer",
	syscall.ECONNABORTED:  "Software caused connection abort",
	syscall.ETIMEDOUT:     "Connection timed out",
	syscall.EHOSTUNREACH:  "No route to host",
	syscall.ENETUNREACH:   "Network is unreachable",
	syscall.EADDRNOTAVAIL: "Cannot assign requested address",
	syscall.EMFILE:        "Too many open files",
	syscall.ENFILE:        "Too many open files in system",
	syscall.ENOENT:        "No such file or directory",
	syscall.EACCES:        "Permission denied",
}

// errnoPart formats err as nginx's "(111: Connection refused)".
func errnoPart(err error) string {
	var en syscall.Errno
	if errors.As(err, &en) {
		txt, ok := errnoText[en]
		if !ok {
			txt = en.Error()
			if txt != "" && txt[0] >= 'a' && txt[0] <= 'z' {
				txt = string(txt[0]-'a'+'A') + txt[1:]
			}
		}
		return "(" + strconv.Itoa(int(en)) + ": " + txt + ")"
	}
	return "(" + err.Error() + ")"
}

const timedOut = "upstream timed out (110: Connection timed out) while "

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// connectFailure classifies a dial error.
func connectFailure(err error) failure {
	if isTimeout(err) {
		return failure{class: NextTimeout, msg: timedOut + actConnect}
	}
	return failure{class: NextError, msg: "connect() failed " + errnoPart(err) + " while " + actConnect}
}

// ioFailure classifies a read (or, with write set, a write) error in the
// phase act.
func ioFailure(err error, act string, write bool) failure {
	switch {
	case errors.Is(err, errClientCanceled):
		return failure{class: 0, msg: "client prematurely closed connection while " + act}
	case isTimeout(err):
		return failure{class: NextTimeout, msg: timedOut + act}
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errShortBody):
		return failure{class: NextError, msg: "upstream prematurely closed connection while " + act}
	case errors.Is(err, errBadChunk):
		return failure{class: NextError, msg: "upstream sent invalid chunked response while " + act}
	case write:
		return failure{class: NextError, msg: "writev() failed " + errnoPart(err) + " while " + act}
	default:
		return failure{class: NextError, msg: "recv() failed " + errnoPart(err) + " while " + act}
	}
}

// isStaleErr reports whether err on a reused connection looks like the peer
// closed it while it was idle (rather than a slow or broken peer).
func isStaleErr(err error) bool {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED)
}

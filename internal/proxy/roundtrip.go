package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"syscall"
	"time"

	"upstreamd/internal/errlog"
)

// readHeader reads the response head into s.hdr (skipping interim 1xx
// responses other than 101). On failure, ioErr is the read error, if that
// was the cause.
func (s *session) readHeader() (f failure, ok bool, ioErr error) {
	rd := &s.rd
	hdr := &s.hdr
restart:
	rd.compact()
	lineStart, scan := 0, 0
	statusEnd := -1
	for {
		for {
			i := bytes.IndexByte(rd.buf[scan:rd.w], '\n')
			if i < 0 {
				scan = rd.w
				break
			}
			nl := scan + i
			line := rd.buf[lineStart:nl]
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			start := lineStart
			lineStart, scan = nl+1, nl+1
			if statusEnd < 0 {
				st, major, minor, reasonAt, ok := parseStatusLine(line)
				if !ok {
					return failure{class: NextInvalidHeader,
						msg: "upstream sent no valid HTTP/1.0 header while " + actHeader}, false, nil
				}
				hdr.status, hdr.major, hdr.minor = st, major, minor
				hdr.reasonStart, hdr.reasonEnd = int32(start+reasonAt), int32(start+len(line))
				statusEnd = nl + 1
				hdr.beginFields()
				continue
			}
			// Each line is parsed as it is found, as nginx does: its bytes
			// are in the cache now, and it is not looked for again.
			if len(line) > 0 {
				if e := hdr.addLine(rd.buf, start, start+len(line)); e != "" {
					return failure{class: NextInvalidHeader, msg: string(e) + " while " + actHeader}, false, nil
				}
				continue
			}
			// The empty line: the head is complete.
			hdr.block = rd.buf[:nl+1]
			if e := hdr.endFields(); e != "" {
				return failure{class: NextInvalidHeader, msg: string(e) + " while " + actHeader}, false, nil
			}
			rd.r = nl + 1
			if hdr.status < 200 && hdr.status != http.StatusSwitchingProtocols {
				goto restart // 100 Continue, 102, 103: wait for the final response
			}
			if hdr.status == http.StatusSwitchingProtocols && headerValue(s.out.Header, "Upgrade") == "" {
				return failure{class: NextInvalidHeader,
					msg: "upstream sent unexpected \"101 Switching Protocols\" while " + actHeader}, false, nil
			}
			return failure{}, true, nil
		}
		if rd.w == len(rd.buf) {
			return failure{class: NextInvalidHeader,
				msg: "upstream sent too big header while " + actHeader}, false, nil
		}
		if err := rd.fill(); err != nil {
			err = s.cancelErr(err)
			return ioFailure(err, actHeader, false), false, err
		}
	}
}

// errnoOf returns the errno in err's chain.
func errnoOf(err error) (syscall.Errno, bool) {
	var en syscall.Errno
	ok := errors.As(err, &en)
	return en, ok
}

// upgrade relays an upgraded connection (WebSocket and the like): it sends
// the 101 head to the client over the hijacked connection and copies bytes
// both ways until either side closes or the upstream is silent for
// ReadTimeout.
func (s *session) upgrade() {
	pc := s.pc
	rc := http.NewResponseController(s.w)
	cc, brw, err := rc.Hijack()
	if err != nil {
		s.logf(errlog.Error, s.url(), "cannot upgrade the client connection: "+err.Error()+" while "+actHeader)
		s.closeConn()
		s.endTry()
		s.finish(false)
		s.setStatus(http.StatusBadGateway)
		s.errorResponse(http.StatusBadGateway)
		return
	}
	// The upgraded connection lives past the request: stop watching the
	// request context, and clear the server's deadlines on the client side.
	s.unwatch()
	if s.watching {
		s.mu.Lock()
		s.abortPC = nil
		s.mu.Unlock()
	}
	if s.abortLate {
		pc.canceled.Store(true) // the client went away meanwhile
	}
	_ = cc.SetDeadline(time.Time{})
	s.res.Status = http.StatusSwitchingProtocols

	// The head: the caller's headers, the upstream's end-to-end headers
	// (through HeaderFilter, as for any response), then Upgrade and
	// Connection.
	hdr := &s.hdr
	h := s.w.Header()
	hdr.copyTo(h)
	if s.o.HeaderFilter != nil {
		s.o.HeaderFilter(s.w, http.StatusSwitchingProtocols)
	}
	b := append(s.reqBuf[:0], "HTTP/1.1 101 Switching Protocols\r\n"...)
	if _, ok := h["Date"]; !ok {
		b = append(b, "Date: "...)
		b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
		b = append(b, "\r\n"...)
	}
	for k, vs := range h {
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection", "Upgrade":
			continue
		}
		for _, v := range vs {
			b = appendClean(append(appendClean(b, k), ": "...), v)
			b = append(b, "\r\n"...)
		}
	}
	if up := hdr.get("Upgrade"); up != "" {
		b = append(b, "Upgrade: "...)
		b = appendClean(b, up)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Connection: upgrade\r\n\r\n"...)
	b = append(b, s.rd.buf[s.rd.r:s.rd.w]...)
	s.rd.r = s.rd.w
	s.reqBuf = b[:0]

	if _, err := cc.Write(b); err == nil && !pc.canceled.Load() {
		done := make(chan struct{})
		go func() {
			// client → upstream; brw.Reader holds what the server read
			// ahead from the client.
			_, _ = io.Copy(pc, brw.Reader)
			_ = cc.Close()
			_ = pc.nc.Close()
			close(done)
		}()
		_, _ = io.Copy(cc, pc) // upstream → client, ReadTimeout between reads
		_ = cc.Close()
		_ = pc.nc.Close()
		<-done
	} else {
		_ = cc.Close()
	}
	s.closeConn()
	s.endTry()
	s.finish(false)
}

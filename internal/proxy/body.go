package proxy

import (
	"bytes"
	"io"
)

// connReader is the per-request read buffer in front of a peer connection
// (nginx's u->buffer, proxy_buffer_size): the response head must fit in it,
// and body bytes read along with the head are served from it.
type connReader struct {
	pc   *pconn
	buf  []byte
	r, w int

	// wait, if set, is called before every read from the connection, that
	// is, before possibly waiting for the upstream (unbuffered proxying
	// flushes the client response there).
	wait func()
}

func (b *connReader) reset(pc *pconn) {
	b.pc = pc
	b.r, b.w = 0, 0
	b.wait = nil
}

func (b *connReader) buffered() int { return b.w - b.r }

// compact moves the unread bytes to the start of the buffer.
func (b *connReader) compact() {
	if b.r > 0 {
		copy(b.buf, b.buf[b.r:b.w])
		b.w -= b.r
		b.r = 0
	}
}

// fill reads more bytes into the buffer (which must have room).
func (b *connReader) fill() error {
	if b.w == len(b.buf) {
		return errBufferFull
	}
	if b.wait != nil {
		b.wait()
	}
	n, err := b.pc.Read(b.buf[b.w:])
	b.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// readLine returns the next line (without its line end) from the buffer,
// reading more as needed. The line is valid until the next read.
func (b *connReader) readLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(b.buf[b.r:b.w], '\n'); i >= 0 {
			line := b.buf[b.r : b.r+i]
			b.r += i + 1
			if len(line) > 0 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			return line, nil
		}
		b.compact()
		if err := b.fill(); err != nil {
			if err == errBufferFull {
				err = errBadChunk
			}
			return nil, err
		}
	}
}

// Body framing of a response.
const (
	bodyNone    = iota // HEAD, 1xx, 204, 304, Content-Length: 0
	bodyLength         // Content-Length
	bodyChunked        // Transfer-Encoding: chunked
	bodyClose          // delimited by the upstream closing the connection
)

// chunk decoder states
const (
	chSize    = iota // expecting a chunk-size line
	chData           // inside chunk data
	chDataEnd        // expecting the CRLF after chunk data
	chTrailer        // reading trailer lines after the last chunk
)

// bodyReader yields the decoded response body.
type bodyReader struct {
	rd     *connReader
	mode   int
	remain int64 // bodyLength: bytes left; bodyChunked: bytes left in the chunk
	state  int
	done   bool
}

func (br *bodyReader) init(rd *connReader, mode int, clen int64) {
	*br = bodyReader{rd: rd, mode: mode, remain: clen}
	if mode == bodyNone || (mode == bodyLength && clen == 0) {
		br.done = true
	}
}

// next returns the next piece of body data, either a slice of the read
// buffer or of scratch (into which it reads directly; scratch is only called
// when a read is needed). It returns data or an error, never both; io.EOF
// means the body is complete.
func (br *bodyReader) next(scratch func() []byte) ([]byte, error) {
	if br.done {
		return nil, io.EOF
	}
	switch br.mode {
	case bodyLength:
		p, err := br.data(br.remain, scratch)
		br.remain -= int64(len(p))
		if br.remain == 0 {
			br.done = true
		}
		if err == io.EOF {
			err = errShortBody
		}
		if len(p) > 0 {
			return p, nil
		}
		return nil, err
	case bodyClose:
		p, err := br.data(-1, scratch)
		if len(p) > 0 {
			return p, nil
		}
		if err == io.EOF {
			br.done = true
		}
		return nil, err
	case bodyChunked:
		return br.nextChunked(scratch)
	}
	br.done = true
	return nil, io.EOF
}

// data returns up to limit (-1: unlimited) bytes: buffered ones first,
// otherwise read straight into scratch.
func (br *bodyReader) data(limit int64, scratch func() []byte) ([]byte, error) {
	rd := br.rd
	if n := rd.buffered(); n > 0 {
		if limit >= 0 && int64(n) > limit {
			n = int(limit)
		}
		p := rd.buf[rd.r : rd.r+n]
		rd.r += n
		return p, nil
	}
	rd.r, rd.w = 0, 0
	buf := scratch()
	if limit >= 0 && int64(len(buf)) > limit {
		buf = buf[:limit]
	}
	if rd.wait != nil {
		rd.wait()
	}
	n, err := rd.pc.Read(buf)
	if n > 0 {
		return buf[:n], nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return nil, err
}

func (br *bodyReader) nextChunked(scratch func() []byte) ([]byte, error) {
	rd := br.rd
	for {
		switch br.state {
		case chSize:
			line, err := rd.readLine()
			if err != nil {
				return nil, eofToShort(err)
			}
			n, ok := parseChunkSize(line)
			if !ok {
				return nil, errBadChunk
			}
			if n == 0 {
				br.state = chTrailer
				continue
			}
			br.remain = n
			br.state = chData
		case chData:
			p, err := br.data(br.remain, scratch)
			br.remain -= int64(len(p))
			if br.remain == 0 {
				br.state = chDataEnd
			}
			if len(p) > 0 {
				return p, nil
			}
			return nil, eofToShort(err)
		case chDataEnd:
			line, err := rd.readLine()
			if err != nil {
				return nil, eofToShort(err)
			}
			if len(line) != 0 {
				return nil, errBadChunk
			}
			br.state = chSize
		case chTrailer:
			// Trailers are read and dropped, as nginx does by default.
			line, err := rd.readLine()
			if err != nil {
				return nil, eofToShort(err)
			}
			if len(line) == 0 {
				br.done = true
				return nil, io.EOF
			}
		}
	}
}

func eofToShort(err error) error {
	if err == io.EOF {
		return errShortBody
	}
	return err
}

// parseChunkSize parses "1a3f[;ext]" (optionally with whitespace before the
// extension).
func parseChunkSize(line []byte) (int64, bool) {
	var n int64
	digits := 0
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto rest
		}
		if digits >= 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
		digits++
	}
rest:
	if digits == 0 {
		return 0, false
	}
	for ; i < len(line); i++ {
		switch line[i] {
		case ' ', '\t':
			continue
		case ';':
			return n, true
		default:
			return 0, false
		}
	}
	return n, true
}

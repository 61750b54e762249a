package h1

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strconv"
)

// maxDiscard is how much of a request body the handler did not read is
// read and dropped to keep the connection (net/http: 256 KB); beyond that
// the connection closes.
const maxDiscard = 256 << 10

var errBadChunk = errors.New("h1: malformed chunked encoding")

// body reads a request body (Content-Length or chunked) from the
// connection's reader. One per connection, reset per request.
type body struct {
	c         *conn
	chunked   bool
	remaining int64 // Content-Length: bytes left; chunked: left in this chunk
	inChunk   bool  // chunked: between a chunk's size line and its CRLF
	expect    bool  // 100-continue still to send before the first read
	done      bool  // the whole body was read
	closed    bool  // Close was called
	err       error // sticky read error
}

func (b *body) reset() {
	*b = body{c: b.c, done: true}
}

func (b *body) Close() error {
	b.closed = true
	return nil
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	return b.read(p)
}

func (b *body) read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if b.err != nil {
		return 0, b.err
	}
	c := b.c
	if b.expect {
		// The client waits for this before sending the body; it leaves
		// with the next read's flush.
		b.expect = false
		if c.werr == nil && !c.w.committed {
			_, _ = c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	c.phase = phaseBody
	defer func() { c.phase = phaseNone }()
	var n int
	var err error
	if b.chunked {
		n, err = b.readChunked(p)
	} else {
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
		n, err = c.br.Read(p)
		b.remaining -= int64(n)
		if b.remaining == 0 {
			b.done = true
			err = nil
			if n == 0 {
				err = io.EOF
			}
		} else if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil && err != io.EOF {
		b.err = err
		c.closeAfter = true
	}
	if b.done && n > 0 {
		return n, io.EOF
	}
	return n, err
}

func (b *body) readChunked(p []byte) (int, error) {
	br := b.c.br
	for b.remaining == 0 {
		if b.inChunk {
			if err := expectCRLF(br); err != nil {
				return 0, err
			}
			b.inChunk = false
		}
		size, err := readChunkSize(br)
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := skipTrailer(br); err != nil {
				return 0, err
			}
			b.done = true
			return 0, io.EOF
		}
		b.remaining, b.inChunk = size, true
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := br.Read(p)
	b.remaining -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errBadChunk
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func expectCRLF(br *bufio.Reader) error {
	line, err := readLine(br)
	if err != nil {
		return err
	}
	if len(line) != 0 {
		return errBadChunk
	}
	return nil
}

func readChunkSize(br *bufio.Reader) (int64, error) {
	line, err := readLine(br)
	if err != nil {
		return 0, err
	}
	for i, ch := range line {
		if ch == ';' || ch == ' ' || ch == '\t' {
			line = line[:i] // chunk extensions are ignored
			break
		}
	}
	if len(line) == 0 || len(line) > 15 {
		return 0, errBadChunk
	}
	n, err := strconv.ParseInt(string(line), 16, 64)
	if err != nil || n < 0 {
		return 0, errBadChunk
	}
	return n, nil
}

// skipTrailer reads and drops trailer fields, as nginx does.
func skipTrailer(br *bufio.Reader) error {
	for i := 0; ; i++ {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		if i > 64 {
			return errBadChunk
		}
	}
}

// drain reads what the handler left of the body so the next request can
// be read; too much (or a client still waiting for 100 Continue) closes
// the connection instead.
func (b *body) drain() {
	c := b.c
	if b.done || c.closeAfter || c.werr != nil {
		return
	}
	if b.expect {
		c.closeAfter = true
		return
	}
	if !b.chunked && b.remaining > maxDiscard {
		c.closeAfter = true
		return
	}
	var scratch [4096]byte
	total := 0
	for !b.done {
		n, err := b.read(scratch[:])
		total += n
		if total > maxDiscard || (err != nil && err != io.EOF) {
			c.closeAfter = true
			return
		}
	}
}

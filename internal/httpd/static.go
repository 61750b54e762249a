package httpd

import (
	"crypto/rand"
	"encoding/hex"
	"os"
)

func statFile(name string) (os.FileInfo, error) { return os.Stat(name) }

func openFile(name string) (*os.File, os.FileInfo, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, st, nil
}

// newRequestID is $request_id: 16 random bytes in hex.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

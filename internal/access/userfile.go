package access

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
)

// Errors returned (wrapped in *AuthError) by UserFile.Verify.
var (
	ErrUserNotFound     = errors.New("user not found")
	ErrPasswordMismatch = errors.New("password mismatch")
	ErrUnsupportedHash  = errors.New("unsupported password hash")
)

// AuthError is a failed credential check. Its Error text is what nginx logs
// (at error level) for the same failure, so callers can log it unchanged.
type AuthError struct {
	Err  error // ErrUserNotFound, ErrPasswordMismatch or ErrUnsupportedHash
	User string
	Path string // user file, "" if parsed from memory without a name
}

func (e *AuthError) Error() string {
	switch e.Err {
	case ErrUserNotFound:
		return fmt.Sprintf("user %q was not found in %q", e.User, e.Path)
	case ErrPasswordMismatch:
		return fmt.Sprintf("user %q: password mismatch", e.User)
	case ErrUnsupportedHash:
		// Deliberately without the hash itself: logs are read by more
		// people than the password file.
		return fmt.Sprintf("user %q: unsupported password hash format in %q (DES crypt, $5$ and $6$ are not supported)", e.User, e.Path)
	}
	return fmt.Sprintf("user %q: %v", e.User, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// UserFile is a parsed htpasswd-style file as auth_basic_user_file reads it:
//
//	# comment
//	name1:password1
//	name2:password2:comment
//
// It is immutable and safe for concurrent use.
type UserFile struct {
	path      string
	users     map[string]string
	malformed []int
}

// ParseUserFile parses the file content; path is only used in messages.
//
// Parsing follows nginx's scanner: a line starting with '#' or CR is a
// comment, empty lines are skipped, the user name is everything before the
// first ':' (whitespace included, nothing is trimmed), and the hash ends at
// the next ':', CR or end of line. If a name appears twice the first line
// wins, because nginx stops scanning at the first match. Lines without a ':'
// or with an empty name can never match in nginx; they are skipped and their
// 1-based numbers reported by Malformed so that config checks can warn.
func ParseUserFile(path string, data []byte) *UserFile {
	u := &UserFile{path: path, users: make(map[string]string)}
	for n, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 || line[0] == '#' || line[0] == '\r' {
			continue
		}
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 {
			u.malformed = append(u.malformed, n+1)
			continue
		}
		if i := bytes.IndexAny(rest, ":\r"); i >= 0 {
			rest = rest[:i]
		}
		if _, dup := u.users[string(name)]; !dup {
			u.users[string(name)] = string(rest)
		}
	}
	return u
}

// LoadUserFile reads and parses path once. Use UserFileSource to pick up
// later edits.
func LoadUserFile(path string) (*UserFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseUserFile(path, data), nil
}

// Path returns the file name given to LoadUserFile or ParseUserFile.
func (u *UserFile) Path() string { return u.path }

// Len returns the number of distinct users.
func (u *UserFile) Len() int { return len(u.users) }

// Malformed returns the line numbers that were skipped as unusable.
func (u *UserFile) Malformed() []int { return append([]int(nil), u.malformed...) }

// Verify checks a user's password. It returns nil on success and otherwise
// an *AuthError wrapping ErrUserNotFound, ErrPasswordMismatch or
// ErrUnsupportedHash; all three mean "answer 401" and the error text is the
// message to log at error level.
func (u *UserFile) Verify(user, password string) error {
	hash, found := u.users[user]
	if !found {
		return &AuthError{Err: ErrUserNotFound, User: user, Path: u.path}
	}
	ok, supported := verifyHash(hash, password)
	switch {
	case !supported:
		return &AuthError{Err: ErrUnsupportedHash, User: user, Path: u.path}
	case !ok:
		return &AuthError{Err: ErrPasswordMismatch, User: user, Path: u.path}
	}
	return nil
}

// Check reports whether the user exists and the password matches.
func (u *UserFile) Check(user, password string) bool {
	return u.Verify(user, password) == nil
}

// UserFileSource serves the current contents of a user file.
//
// nginx opens and re-reads auth_basic_user_file on every request, so edits
// apply immediately without a reload. Re-reading and re-parsing per request is
// wasteful (and bcrypt files can be large), so instead Get stats the file on
// every call and re-parses only when its size, modification time or identity
// (inode, which catches "write new file and rename over") changed. The only
// edit this can miss is an in-place rewrite to the same size within the
// filesystem's timestamp granularity; a later change or a rename picks it up.
type UserFileSource struct {
	path string

	mu   sync.Mutex
	cur  *UserFile
	info os.FileInfo // stat of the file cur was read from
}

// NewUserFileSource returns a source for path; nothing is read until Get.
func NewUserFileSource(path string) *UserFileSource {
	return &UserFileSource{path: path}
}

// Path returns the file name.
func (s *UserFileSource) Path() string { return s.path }

// Get returns the parsed file, reloading it if it changed on disk. Errors
// are those of os.Stat/os.Open/Read (check errors.Is(err, fs.ErrNotExist);
// nginx answers 403 for a missing file and 500 for other failures).
func (s *UserFileSource) Get() (*UserFile, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		s.mu.Lock()
		s.cur, s.info = nil, nil
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && sameVersion(s.info, fi) {
		return s.cur, nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Stamp with the stat of the opened file, not the earlier path stat, so
	// the cached version describes exactly what we read.
	openInfo, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, err
	}
	s.cur, s.info = ParseUserFile(s.path, buf.Bytes()), openInfo
	return s.cur, nil
}

func sameVersion(a, b os.FileInfo) bool {
	return a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && os.SameFile(a, b)
}

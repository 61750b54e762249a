package statefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// FileMode is the mode of a written state file. It is set explicitly (not
// left to the umask) so operators can always read the file they are told
// not to edit.
const FileMode = 0o644

// tempMarker is part of every temporary file name so that leftovers from a
// process killed mid-write can be recognised and removed by the next Write.
const tempMarker = ".tmp-"

// pathLocks serialises Writes to the same file within this process. Two
// interleaved writers would each rename a complete file, so the result is
// never torn, but without the lock a stale-temp sweep could delete the other
// writer's temp file, and "last rename wins" would not match "last call
// wins".
var pathLocks sync.Map // absolute path -> *sync.Mutex

// Write replaces the state file at path with servers, atomically and
// durably: when Write returns nil the new content survives a crash of the
// process or the machine, and at no moment can a reader (or a restart) see
// a partial file — only the old content or the new.
//
// The sequence is the classic one: write a temporary file in the same
// directory (rename is atomic only within a file system), fsync it (so the
// rename cannot reach the disk before the data), rename it over the target,
// then fsync the directory (so the rename itself is on disk). The directory
// is created if missing.
//
// Callers must serialise the changes they persist (e.g. under the upstream's
// writer mutex) so that the file follows the order of the changes; Write
// itself only guarantees that concurrent calls do not corrupt each other.
func Write(path string, servers []Server) error {
	for i, s := range servers {
		if err := validate(s); err != nil {
			return fmt.Errorf("statefile: %s: server %d (%q): %w", path, i+1, s.Addr, err)
		}
	}
	data := Format(servers)

	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("statefile: %w", err)
	}
	mu, _ := pathLocks.LoadOrStore(abs, new(sync.Mutex))
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()

	dir, base := filepath.Split(abs)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("statefile: %w", err)
	}
	removeStaleTemps(dir, base)
	if err := writeTemp(dir, base, abs, data); err != nil {
		return fmt.Errorf("statefile: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("statefile: %w", err)
	}
	return nil
}

// writeTemp writes data to a fresh temporary file and renames it to abs.
func writeTemp(dir, base, abs string, data []byte) (err error) {
	// The leading dot keeps the temp file out of globs such as
	// "include state/*.conf", should someone point one at this directory.
	f, err := os.CreateTemp(dir, "."+base+tempMarker+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	// CreateTemp makes 0600 files; Chmod is not subject to the umask.
	if err = f.Chmod(FileMode); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, abs)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeStaleTemps deletes temporary files a killed writer left behind.
// Without this, a crash loop would slowly fill the directory. Failures are
// ignored: a leftover temp file is untidy, never incorrect, since readers
// only open the target name.
func removeStaleTemps(dir, base string) {
	matches, err := filepath.Glob(filepath.Join(dir, "."+escapeGlob(base)+tempMarker+"*"))
	if err != nil {
		return
	}
	for _, m := range matches {
		os.Remove(m)
	}
}

// escapeGlob quotes glob metacharacters so a state file named, say,
// "a[1].conf" only matches its own temp files.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// validate rejects a server that Format would write but Read could not load
// back (or would load as something else). Checking before writing keeps a
// bad API request from leaving a state file that stops the next start.
func validate(s Server) error {
	if strings.ContainsFunc(s.Addr, needsQuoting) {
		return errors.New("address contains a space, control character, quote, \";\", \"{\", \"}\", \"#\" or \"\\\"")
	}
	if msg := checkAddr(s.Addr); msg != "" {
		return errors.New(msg)
	}
	switch {
	case s.Weight < 0:
		return errors.New("weight must be positive")
	case s.MaxFails < 0:
		return errors.New("max_fails must not be negative")
	case s.MaxConns < 0:
		return errors.New("max_conns must not be negative")
	case s.FailTimeout < 0:
		return errors.New("fail_timeout must not be negative")
	case s.SlowStart < 0:
		return errors.New("slow_start must not be negative")
	case int64(s.Weight) > maxCount, int64(s.MaxFails) > maxCount, int64(s.MaxConns) > maxCount:
		return errors.New("value too large")
	}
	return nil
}

// maxCount is the largest count parseCount accepts.
const maxCount = 1<<31 - 1

// needsQuoting reports bytes that would end or alter a bare nginx word.
// Writing such addresses bare would corrupt the file; quoting them is
// possible but no real server address needs it, so they are refused.
func needsQuoting(r rune) bool {
	return r <= ' ' || r == 0x7f || strings.ContainsRune(`"';{}#\`, r)
}

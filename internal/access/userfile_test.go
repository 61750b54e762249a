package access

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Expected hashes were produced outside this code: the $apr1$/$1$ ones with
// `openssl passwd -apr1|-1 -salt SALT PASS`, the {SHA}/{SSHA} ones with
// `openssl sha1 -binary | base64`; the myPassword vectors also appear in the
// Apache httpd "Password Formats" documentation.
func TestVerifyHash(t *testing.T) {
	bc, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	bc2a := string(bc)
	long := strings.Repeat("p", 72)
	bcLong, err := bcrypt.GenerateFromPassword([]byte(long), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name          string
		hash          string
		password      string
		want          bool
		wantSupported bool
	}{
		{"apr1 apache doc", "$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/", "myPassword", true, true},
		{"apr1 wrong", "$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/", "mypassword", false, true},
		{"apr1 8-byte salt", "$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0", "secret", true, true},
		{"apr1 short salt", "$apr1$ab$eIePjsejfBGR8ITtu2z0U1", "x", true, true},
		{"apr1 empty password", "$apr1$12345678$sHuPAw7VA9xjRbJz7zKV7/", "", true, true},
		{"apr1 long utf8 password", "$apr1$s0$cTgkNdgbPQZSirOUd/oGF.", "pässwörd-that-is-longer-than-sixteen-bytes", true, true},
		{"apr1 truncated hash", "$apr1$saltsalt$LrttParrLPdxvgutaSXWJ", "secret", false, true},
		{"md5crypt $1$", "$1$saltsalt$9xy1btjgzLYfb7hivXtC//", "secret", true, true},
		{"md5crypt $1$ wrong", "$1$saltsalt$9xy1btjgzLYfb7hivXtC//", "Secret", false, true},
		{"sha apache doc", "{SHA}VBPuJHI7uixaa6LQGWx4s+5GKNE=", "myPassword", true, true},
		{"sha other", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "secret", true, true},
		{"sha wrong", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "secret ", false, true},
		{"ssha", "{SSHA}3kid4g1+f6MYfzcXg79hRsKYJc9TQUxUWQ==", "secret", true, true},
		{"ssha wrong", "{SSHA}3kid4g1+f6MYfzcXg79hRsKYJc9TQUxUWQ==", "secreT", false, true},
		{"ssha garbage", "{SSHA}!!!", "secret", false, true},
		{"ssha too short", "{SSHA}AAAA", "", false, true},
		{"plain", "{PLAIN}hunter2", "hunter2", true, true},
		{"plain wrong", "{PLAIN}hunter2", "hunter", false, true},
		{"bcrypt 2a", bc2a, "s3cret", true, true},
		{"bcrypt 2a wrong", bc2a, "s3cret!", false, true},
		{"bcrypt 2y (htpasswd -B)", "$2y$" + bc2a[4:], "s3cret", true, true},
		{"bcrypt 2b", "$2b$" + bc2a[4:], "s3cret", true, true},
		{"bcrypt apache doc 2y", "$2y$05$c4WoMPo3SXsafkva.HHa6uXQZWr7oboPiC2bT/r7q1BB8I2s0BRqC", "myPassword", true, true},
		{"bcrypt over 72 bytes truncated like libxcrypt", string(bcLong), long + "ignored", true, true},
		{"bcrypt malformed", "$2y$99$short", "x", false, true},
		{"des crypt unsupported", "rqXexS6ZhobKA", "myPassword", false, false},
		{"sha512crypt unsupported", "$6$salt$abc", "x", false, false},
		{"empty hash unsupported", "", "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, supported := verifyHash(tt.hash, tt.password)
			if got != tt.want || supported != tt.wantSupported {
				t.Errorf("verifyHash(%q, %q) = %v,%v, want %v,%v", tt.hash, tt.password, got, supported, tt.want, tt.wantSupported)
			}
		})
	}
}

// md5Crypt must reproduce the whole string, not only verify, since the salt
// is recovered from the stored value.
func TestMD5CryptFormat(t *testing.T) {
	if got, want := md5Crypt("secret", "$apr1$saltsaltEXTRA", prefixAPR1), "$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0"; got != want {
		t.Errorf("salt truncated to 8: got %q, want %q", got, want)
	}
	if got, want := md5Crypt("x", "$apr1$ab", prefixAPR1), "$apr1$ab$eIePjsejfBGR8ITtu2z0U1"; got != want {
		t.Errorf("salt without trailing $: got %q, want %q", got, want)
	}
}

func TestParseUserFile(t *testing.T) {
	data := "# comment line\n" +
		"\n" +
		"alice:{PLAIN}a1\n" +
		"bob:{PLAIN}b1:Bob Example, room 4\n" +
		"carol:{PLAIN}c1\r\n" +
		"alice:{PLAIN}second\n" + // duplicate: first wins
		"no-colon-line\n" +
		":{PLAIN}nobody\n" +
		"\r\n" +
		" dave:{PLAIN}d1\n" + // leading space is part of the name
		"eve:\n" +
		"frank:{PLAIN}f1" // no final newline
	u := ParseUserFile("/etc/upstreamd/htpasswd", []byte(data))

	if got, want := u.Malformed(), []int{7, 8}; !reflect.DeepEqual(got, want) {
		t.Errorf("Malformed() = %v, want %v", got, want)
	}
	if u.Len() != 6 {
		t.Errorf("Len() = %d, want 6", u.Len())
	}

	tests := []struct {
		user, password string
		wantErr        error // nil = success
	}{
		{"alice", "a1", nil},
		{"alice", "second", ErrPasswordMismatch},
		{"bob", "b1", nil},
		{"bob", "b1:Bob Example, room 4", ErrPasswordMismatch},
		{"carol", "c1", nil},
		{"carol", "c1\r", ErrPasswordMismatch},
		{" dave", "d1", nil},
		{"dave", "d1", ErrUserNotFound},
		{"frank", "f1", nil},
		{"eve", "", ErrUnsupportedHash},
		{"# comment line", "", ErrUserNotFound},
		{"no-colon-line", "", ErrUserNotFound},
		{"", "nobody", ErrUserNotFound},
		{"mallory", "x", ErrUserNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.user+"/"+tt.password, func(t *testing.T) {
			err := u.Verify(tt.user, tt.password)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Verify(%q, %q) = %v, want %v", tt.user, tt.password, err, tt.wantErr)
			}
			if got := u.Check(tt.user, tt.password); got != (tt.wantErr == nil) {
				t.Errorf("Check = %v", got)
			}
		})
	}
}

func TestAuthErrorMessages(t *testing.T) {
	u := ParseUserFile("/etc/htpasswd", []byte("x:{PLAIN}pw\nd:rqXexS6ZhobKA\n"))
	tests := []struct{ user, password, want string }{
		{"nobody", "pw", `user "nobody" was not found in "/etc/htpasswd"`},
		{"x", "bad", `user "x": password mismatch`},
		{"d", "myPassword", `user "d": unsupported password hash format in "/etc/htpasswd" (DES crypt, $5$ and $6$ are not supported)`},
	}
	for _, tt := range tests {
		err := u.Verify(tt.user, tt.password)
		var ae *AuthError
		if !errors.As(err, &ae) || err.Error() != tt.want {
			t.Errorf("Verify(%q) error %q, want %q", tt.user, err, tt.want)
		}
	}
}

func TestLoadUserFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	if _, err := LoadUserFile(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	writeFile(t, path, "api:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n")
	u, err := LoadUserFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if u.Path() != path || !u.Check("api", "secret") {
		t.Errorf("loaded file does not authenticate api/secret")
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestUserFileSourceReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "htpasswd")
	src := NewUserFileSource(path)

	if _, err := src.Get(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Get on missing file: %v", err)
	}

	writeFile(t, path, "a:{PLAIN}one\n")
	u1, err := src.Get()
	if err != nil || !u1.Check("a", "one") {
		t.Fatalf("first load: %v", err)
	}
	if u2, _ := src.Get(); u2 != u1 {
		t.Error("unchanged file was re-parsed")
	}

	// Same size, different content: only the mtime tells. Set it
	// explicitly rather than sleeping past the filesystem's granularity.
	writeFile(t, path, "a:{PLAIN}two\n")
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	u3, err := src.Get()
	if err != nil || u3 == u1 || !u3.Check("a", "two") || u3.Check("a", "one") {
		t.Fatalf("mtime change not picked up: %v", err)
	}

	// Size change with the mtime forced back to the cached value.
	writeFile(t, path, "a:{PLAIN}three\n")
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	u4, err := src.Get()
	if err != nil || !u4.Check("a", "three") {
		t.Fatalf("size change not picked up: %v", err)
	}

	// Atomic replace (rename over) with identical size and mtime: the
	// inode differs.
	tmp := filepath.Join(dir, "htpasswd.new")
	writeFile(t, tmp, "a:{PLAIN}four!\n")
	if err := os.Chtimes(tmp, later, later); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	u5, err := src.Get()
	if err != nil || !u5.Check("a", "four!") {
		t.Fatalf("rename not picked up: %v", err)
	}

	// Removal is reported again, and recreation loads the new content.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Get(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Get after remove: %v", err)
	}
	writeFile(t, path, "b:{PLAIN}five\n")
	u6, err := src.Get()
	if err != nil || !u6.Check("b", "five") || u6.Check("a", "four!") {
		t.Fatalf("recreated file: %v", err)
	}
}

// Concurrent Get calls while the file changes must be race-free (go test -race).
func TestUserFileSourceConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, path, "a:{PLAIN}x\n")
	src := NewUserFileSource(path)
	done := make(chan struct{})
	for i := 0; i < 4; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := 0; j < 200; j++ {
				if u, err := src.Get(); err == nil {
					u.Check("a", "x")
				}
			}
		}()
	}
	for j := 0; j < 20; j++ {
		writeFile(t, path, "a:{PLAIN}x\n"+strings.Repeat("#\n", j))
	}
	for i := 0; i < 4; i++ {
		<-done
	}
}

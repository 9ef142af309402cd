package secrets

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestSealOpen(t *testing.T) {
	path := Path(t.TempDir())
	k, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Fatalf("key file = %v, %v; want 32 bytes, mode 0600", fi, err)
	}
	const pw = "P@ss:w/rd%40 ăî"
	a, err := k.Seal("gate", pw)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := k.Seal("gate", pw)
	if a == b {
		t.Error("two seals of one password are equal: the nonce is not random")
	}
	if !IsSealed(a) || strings.Contains(a, pw) {
		t.Errorf("sealed = %q", a)
	}
	again, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := again.Open("gate", a); err != nil || got != pw {
		t.Fatalf("open with the reloaded key = %q, %v", got, err)
	}
	// Moved to another camera.
	if _, err := k.Open("lobby", a); !errors.Is(err, ErrKeyDiffers) {
		t.Errorf("open for another camera: %v, want ErrKeyDiffers", err)
	}
	// Tampered: every byte of the ciphertext matters.
	raw, _ := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(a, prefix))
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 1
		if _, err := k.Open("gate", prefix+base64.RawStdEncoding.EncodeToString(bad)); err == nil {
			t.Fatalf("a ciphertext with byte %d flipped opened", i)
		}
	}
	for _, bad := range []string{"", "hunter2", "v1:", "v1:!!!", "v2:" + strings.TrimPrefix(a, prefix)} {
		if _, err := k.Open("gate", bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
	// Another key.
	other, err := LoadOrCreate(Path(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Open("gate", a); !errors.Is(err, ErrKeyDiffers) {
		t.Errorf("open with another key: %v, want ErrKeyDiffers", err)
	}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(Path(dir)); !errors.Is(err, ErrNoKey) {
		t.Errorf("missing key: %v, want ErrNoKey", err)
	}
	for _, tc := range []struct {
		name string
		size int
		mode os.FileMode
		want string
	}{
		{"short", 16, 0o600, "16 bytes, want 32"},
		{"long", 33, 0o600, "33 bytes, want 32"},
		{"group readable", 32, 0o640, "mode 0640"},
		{"world readable", 32, 0o604, "mode 0604"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), KeyFile)
			if err := os.WriteFile(path, make([]byte, tc.size), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			for _, load := range []func(string) (*Key, error){Load, LoadOrCreate} {
				if _, err := load(path); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
					t.Errorf("error = %v; want one naming %s and %q", err, path, tc.want)
				}
			}
			if b, _ := os.ReadFile(path); len(b) != tc.size {
				t.Error("a refused key file was replaced")
			}
		})
	}
}

// TestLoadOrCreateRace: processes or goroutines making the key at once share one key.
func TestLoadOrCreateRace(t *testing.T) {
	path := Path(t.TempDir())
	sealed := make([]string, 8)
	var wg sync.WaitGroup
	for i := range sealed {
		wg.Go(func() {
			k, err := LoadOrCreate(path)
			if err != nil {
				t.Error(err)
				return
			}
			sealed[i], _ = k.Seal("gate", "pw")
		})
	}
	wg.Wait()
	k, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sealed {
		if got, err := k.Open("gate", s); err != nil || got != "pw" {
			t.Fatalf("a key made in the race does not open what another sealed: %v", err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".secrets-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestBoxOpenDoesNotMakeAKey(t *testing.T) {
	path := Path(t.TempDir())
	b := NewBox(path)
	if _, err := b.Open("gate", "v1:AAAA"); !errors.Is(err, ErrNoKey) {
		t.Fatalf("open without a key: %v, want ErrNoKey", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("Open made a key file")
	}
	s, err := b.Seal("gate", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Open("gate", s); err != nil || got != "pw" {
		t.Fatalf("open = %q, %v", got, err)
	}
}

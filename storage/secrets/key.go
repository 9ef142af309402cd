// Package secrets encrypts camera passwords at rest. The key is a file of 32 random
// bytes in the data directory (KeyFile, mode 0600), made at first need and never
// uploaded: state database backups in the object store hold only ciphertext, so
// whoever reads the bucket does not read the passwords. Passwords are sealed with
// AES-256-GCM under a random nonce, with the camera ID as additional data, so a
// ciphertext copied to another camera does not open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/straja-nvr/straja/internal/durable"
)

// KeyFile is the key's file name in the data directory.
const KeyFile = "secrets.key"

// keySize is AES-256's.
const keySize = 32

// prefix marks the format of a sealed value: a later format gets a new prefix and old
// values keep opening.
const prefix = "v1:"

// ErrNoKey means the key file does not exist.
var ErrNoKey = errors.New("no secrets key")

// ErrKeyDiffers means a sealed value does not open with this key: it was sealed with
// another key (a backup restored on another machine), for another camera, or it was
// altered.
var ErrKeyDiffers = errors.New("secrets key differs")

// Path is the key file in dataDir.
func Path(dataDir string) string { return filepath.Join(dataDir, KeyFile) }

// Key seals and opens values. Safe for concurrent use.
type Key struct{ aead cipher.AEAD }

// Load reads the key file at path. A missing file is an error matching ErrNoKey; a
// file of the wrong size or readable by others is refused.
func Load(path string) (*Key, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("secrets key %s: %w", path, ErrNoKey)
	}
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secrets key %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secrets key %s: mode %04o lets others read it; want 0600 (chmod 600 %s)", path, perm, path)
	}
	if fi.Size() != keySize {
		return nil, fmt.Errorf("secrets key %s: %d bytes, want %d: the file is damaged or not a Straja secrets key; "+
			"restore it from its copy", path, fi.Size(), keySize)
	}
	b := make([]byte, keySize+1)
	n, err := f.ReadAt(b, 0)
	if n != keySize {
		return nil, fmt.Errorf("secrets key %s: read %d bytes, want %d: %v", path, n, keySize, err)
	}
	return newKey(b[:keySize])
}

// LoadOrCreate loads the key file at path, or makes it (32 random bytes, mode 0600)
// when there is none. Two processes making it at once end up with the same key.
func LoadOrCreate(path string) (*Key, error) {
	k, err := Load(path)
	if !errors.Is(err, ErrNoKey) {
		return k, err
	}
	b := make([]byte, keySize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".secrets-*.key")
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	// CreateTemp makes it 0600; say so rather than rely on it.
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("secrets key: write %s: %w", tmp, err)
	}
	// A link, unlike a rename, fails when the name exists: a key made meanwhile wins.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return Load(path)
		}
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	if err := durable.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	return newKey(b)
}

func newKey(b []byte) (*Key, error) {
	block, err := aes.NewCipher(b)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	return &Key{aead: aead}, nil
}

// Seal encrypts plaintext for the camera id: "v1:" then base64 of nonce and ciphertext.
func (k *Key) Seal(id, plaintext string) (string, error) {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	out := k.aead.Seal(nonce, nonce, []byte(plaintext), []byte(id))
	return prefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// Open decrypts what Seal made for the camera id. A value sealed with another key, for
// another camera, or altered, is an error matching ErrKeyDiffers.
func (k *Key) Open(id, sealed string) (string, error) {
	b64, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", errors.New("open: not a sealed value (unknown format)")
	}
	b, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(b) < k.aead.NonceSize()+k.aead.Overhead() {
		return "", errors.New("open: sealed value is damaged")
	}
	n := k.aead.NonceSize()
	pt, err := k.aead.Open(nil, b[:n], b[n:], []byte(id))
	if err != nil {
		return "", fmt.Errorf("open: %w", ErrKeyDiffers)
	}
	return string(pt), nil
}

// IsSealed reports whether s is in a format Open reads.
func IsSealed(s string) bool { return strings.HasPrefix(s, prefix) }

// Box is the key file at one path, loaded at first use and kept. Safe for concurrent use.
type Box struct {
	path string
	mu   sync.Mutex
	key  *Key
}

// NewBox returns the Box of the key file at path; nothing is read yet.
func NewBox(path string) *Box { return &Box{path: path} }

// Path is the key file.
func (b *Box) Path() string { return b.path }

// load returns the key, making the file when create is set and there is none.
func (b *Box) load(create bool) (*Key, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.key != nil {
		return b.key, nil
	}
	var k *Key
	var err error
	if create {
		k, err = LoadOrCreate(b.path)
	} else {
		k, err = Load(b.path)
	}
	if err != nil {
		return nil, err
	}
	b.key = k
	return k, nil
}

// Seal seals plaintext for the camera id, making the key file at first need.
func (b *Box) Seal(id, plaintext string) (string, error) {
	k, err := b.load(true)
	if err != nil {
		return "", err
	}
	return k.Seal(id, plaintext)
}

// Open opens a value sealed for the camera id. Without a key file it fails with an
// error matching ErrNoKey (it does not make one: no new key opens old values).
func (b *Box) Open(id, sealed string) (string, error) {
	k, err := b.load(false)
	if err != nil {
		return "", err
	}
	return k.Open(id, sealed)
}

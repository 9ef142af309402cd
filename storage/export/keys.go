// Package export makes clips that stand as evidence: one MP4 stitched from the
// recorded segments of a time range, after every segment's bytes are checked against
// the SHA-256 the catalog took when they were written, with a manifest (JSON) that
// names them and the clip's own SHA-256, signed with the service's Ed25519 key. The
// signature is a raw 64-byte Ed25519 signature over the exact bytes of manifest.json
// and the key is published as PEM (SubjectPublicKeyInfo), so anyone can check a clip
// with openssl and sha256sum, without Straja.
package export

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Files of the key directory: the private key, and one public key file per key ever
// used (current and retired), named by key id, so old exports still verify.
const (
	signingKeyFile = "signing.key"
	publicSuffix   = ".pem"
)

// KeyDir is where the signing keys live in a data directory.
func KeyDir(dataDir string) string { return filepath.Join(dataDir, "export-keys") }

// ErrUnknownKey is returned (wrapped) for a key id that is not among the keys.
var ErrUnknownKey = errors.New("unknown key")

// Keys is the service's signing key and the public halves of retired ones, in one
// directory. The private key is read at each use, so a rotation by `straja keys
// rotate` beside the running service takes effect at the next export. Safe for
// concurrent use within a process.
type Keys struct {
	dir string
	mu  sync.Mutex // one rotation at a time
}

// PublicKey is one signing key's public half.
type PublicKey struct {
	ID      string    `json:"id"`
	PEM     string    `json:"pem"`
	Current bool      `json:"current"`
	Created time.Time `json:"created"` // when its file was written
}

// OpenKeys opens the key directory dir, making it (0700) and a first signing key
// (0600) when there is none.
func OpenKeys(dir string) (*Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("export keys: %w", err)
	}
	k := &Keys{dir: dir}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := os.Stat(filepath.Join(dir, signingKeyFile)); errors.Is(err, fs.ErrNotExist) {
		if _, err := k.generate(); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("export keys: %w", err)
	}
	if _, _, err := k.Signer(); err != nil {
		return nil, err
	}
	return k, nil
}

// LoadKeys opens an existing key directory for reading only: it never makes a key
// (`straja verify` must not invent one).
func LoadKeys(dir string) *Keys { return &Keys{dir: dir} }

// KeyID is the first 16 hex digits of the SHA-256 of the key's SubjectPublicKeyInfo
// (DER), which standard tools reproduce:
// `openssl pkey -pubin -in key.pem -outform DER | sha256sum | cut -c1-16`.
func KeyID(pub ed25519.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic("export: marshal ed25519 public key: " + err.Error()) // cannot fail for a 32-byte key
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:8])
}

// PublicPEM encodes pub as a PEM "PUBLIC KEY" (SubjectPublicKeyInfo).
func PublicPEM(pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic("export: marshal ed25519 public key: " + err.Error())
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ParsePublicPEM reads an Ed25519 public key from PEM (SubjectPublicKeyInfo).
func ParsePublicPEM(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM PUBLIC KEY")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %T, want Ed25519", k)
	}
	return pub, nil
}

// Signer returns the current key's id and private key.
func (k *Keys) Signer() (string, ed25519.PrivateKey, error) {
	b, err := os.ReadFile(filepath.Join(k.dir, signingKeyFile))
	if err != nil {
		return "", nil, fmt.Errorf("export signing key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return "", nil, fmt.Errorf("export signing key %s: not a PEM PRIVATE KEY", filepath.Join(k.dir, signingKeyFile))
	}
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return "", nil, fmt.Errorf("export signing key: %w", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return "", nil, fmt.Errorf("export signing key is %T, want Ed25519", key)
	}
	return KeyID(priv.Public().(ed25519.PublicKey)), priv, nil
}

// Public returns the public key of id, current or retired.
func (k *Keys) Public(id string) (ed25519.PublicKey, error) {
	if !validKeyID(id) {
		return nil, fmt.Errorf("%w %q: not a key id (16 hex digits)", ErrUnknownKey, id)
	}
	b, err := os.ReadFile(filepath.Join(k.dir, id+publicSuffix))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w %s: not in %s", ErrUnknownKey, id, k.dir)
	}
	if err != nil {
		return nil, fmt.Errorf("export key %s: %w", id, err)
	}
	pub, err := ParsePublicPEM(b)
	if err != nil {
		return nil, fmt.Errorf("export key %s: %w", id, err)
	}
	if KeyID(pub) != id {
		return nil, fmt.Errorf("export key file %s holds key %s", id+publicSuffix, KeyID(pub))
	}
	return pub, nil
}

// List returns every public key, the current one first, then retired ones newest first.
func (k *Keys) List() ([]PublicKey, error) {
	cur, _, err := k.Signer()
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(k.dir)
	if err != nil {
		return nil, fmt.Errorf("export keys: %w", err)
	}
	var out []PublicKey
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), publicSuffix)
		if !ok || !validKeyID(id) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(k.dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("export keys: %w", err)
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("export keys: %w", err)
		}
		out = append(out, PublicKey{ID: id, PEM: string(b), Current: id == cur, Created: info.ModTime().UTC()})
	}
	slices.SortFunc(out, func(a, b PublicKey) int {
		switch {
		case a.Current != b.Current:
			if a.Current {
				return -1
			}
			return 1
		case !a.Created.Equal(b.Created):
			return b.Created.Compare(a.Created)
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Rotate makes a new signing key; the old one's public half stays, retired, so that
// exports signed with it still verify. It returns the new and the old key ids.
func (k *Keys) Rotate() (newID, oldID string, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if oldID, _, err = k.Signer(); err != nil {
		return "", "", err
	}
	if newID, err = k.generate(); err != nil {
		return "", "", err
	}
	return newID, oldID, nil
}

// generate makes a key: the public file first, then the private key replaces the
// current one atomically, so a crash leaves either key whole, and every key that
// ever signed has its public file.
func (k *Keys) generate() (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", fmt.Errorf("export keys: generate: %w", err)
	}
	id := KeyID(pub)
	if err := writeFileAtomic(filepath.Join(k.dir, id+publicSuffix), PublicPEM(pub), 0o644); err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", fmt.Errorf("export keys: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(k.dir, signingKeyFile),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", err
	}
	return id, nil
}

// writeFileAtomic writes b to path through a synced temporary file and a rename.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename, a no-op
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func validKeyID(id string) bool {
	if len(id) != 16 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

package export

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ManifestFormat names the manifest's layout; a change of meaning gets a new name.
const ManifestFormat = "straja-export-1"

// Manifest says what a clip is and where it came from. It is signed as the exact
// bytes it is written as (Marshal), never re-encoded.
type Manifest struct {
	Format    string        `json:"format"`
	ID        string        `json:"export_id,omitempty"`
	Camera    Named         `json:"camera"`
	Site      Named         `json:"site"`
	Requested TimeRange     `json:"requested"`
	Actual    TimeRange     `json:"actual"`
	Segments  []SourceEntry `json:"segments"`
	Clip      ClipEntry     `json:"clip"`
	Created   time.Time     `json:"created"`
	Reason    string        `json:"reason"`
	User      string        `json:"user"`
	Version   string        `json:"straja_version"`
	KeyID     string        `json:"key_id"`
}

// Named is an id with its display name.
type Named struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// TimeRange is [From, To) in UTC.
type TimeRange struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// SourceEntry is one recorded segment the clip was made from, with the SHA-256 the
// catalog took when it was written.
type SourceEntry struct {
	Key    string    `json:"key"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Size   int64     `json:"size"`
	SHA256 string    `json:"sha256"`
}

// ClipEntry is the clip file.
type ClipEntry struct {
	File   string `json:"file"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Marshal encodes m as the bytes to sign and to write: indented JSON and a newline.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// Sign returns the detached raw 64-byte Ed25519 signature of manifest.
func Sign(priv ed25519.PrivateKey, manifest []byte) []byte { return ed25519.Sign(priv, manifest) }

// What a verification failed on; VerifyError.What is one of them.
const (
	FailManifest  = "manifest"           // unreadable or not a Straja manifest
	FailKey       = "unknown key"        // the key id is not among the trusted keys
	FailSignature = "manifest signature" // the signature does not match the manifest's bytes
	FailClip      = "clip hash"          // the clip's SHA-256 or size differs from the manifest's
)

// VerifyError says which check a clip failed.
type VerifyError struct {
	What   string // FailManifest, FailKey, FailSignature or FailClip
	Detail string
}

func (e *VerifyError) Error() string { return e.What + ": " + e.Detail }

// KeyLookup returns the trusted public key of a key id (*Keys.Public, or one key
// given by the user); an unknown id returns an error matching ErrUnknownKey.
type KeyLookup func(id string) (ed25519.PublicKey, error)

// OneKey trusts pub alone.
func OneKey(pub ed25519.PublicKey) KeyLookup {
	id := KeyID(pub)
	return func(want string) (ed25519.PublicKey, error) {
		if want != id {
			return nil, fmt.Errorf("%w %s: the key given is %s", ErrUnknownKey, want, id)
		}
		return pub, nil
	}
}

// VerifyManifest checks sig over the manifest's exact bytes with the key its key_id
// names, and returns the manifest. Errors are *VerifyError.
func VerifyManifest(manifest, sig []byte, keys KeyLookup) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(manifest))
	if err := dec.Decode(&m); err != nil {
		return nil, &VerifyError{FailManifest, "not JSON: " + err.Error()}
	}
	if m.Format != ManifestFormat {
		return nil, &VerifyError{FailManifest, fmt.Sprintf("format %q, want %q", m.Format, ManifestFormat)}
	}
	pub, err := keys(m.KeyID)
	if err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return nil, &VerifyError{FailKey, fmt.Sprintf("the manifest was signed with key %s, which is not a "+
				"trusted key here: %v", m.KeyID, err)}
		}
		return nil, err
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, manifest, sig) {
		return nil, &VerifyError{FailSignature, fmt.Sprintf("the signature does not match the manifest's bytes "+
			"under key %s: the manifest or its signature was changed", m.KeyID)}
	}
	return &m, nil
}

// VerifyClip checks that clip (read to its end) has the size and SHA-256 the
// manifest says. Errors are *VerifyError or read errors.
func VerifyClip(m *Manifest, clip io.Reader) error {
	h := sha256.New()
	n, err := io.Copy(h, clip)
	if err != nil {
		return fmt.Errorf("read clip: %w", err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != m.Clip.SHA256 || n != m.Clip.Size {
		return &VerifyError{FailClip, fmt.Sprintf("the clip's SHA-256 is %s (%d bytes), the manifest says %s "+
			"(%d bytes): the clip was changed", got, n, m.Clip.SHA256, m.Clip.Size)}
	}
	return nil
}

// Files names the three files of a clip on disk.
type Files struct {
	Clip, Manifest, Signature string
}

// FilesFor finds the manifest and signature of clip: manifest "" means the one
// beside it, <name>.manifest.json (what `straja export` writes) or else
// manifest.json (as in a bundle); the signature is the manifest's path plus ".sig".
func FilesFor(clip, manifest string) Files {
	if manifest == "" {
		manifest = ManifestPathFor(clip)
		if _, err := os.Stat(manifest); err != nil {
			if alt := filepath.Join(filepath.Dir(clip), "manifest.json"); fileExists(alt) {
				manifest = alt
			}
		}
	}
	return Files{Clip: clip, Manifest: manifest, Signature: manifest + ".sig"}
}

// ManifestPathFor is where `straja export` writes the manifest of clip:
// incident.mp4 -> incident.manifest.json.
func ManifestPathFor(clip string) string {
	return strings.TrimSuffix(clip, filepath.Ext(clip)) + ".manifest.json"
}

// VerifyFiles checks a clip, its manifest and signature on disk; see VerifyManifest
// and VerifyClip.
func VerifyFiles(f Files, keys KeyLookup) (*Manifest, error) {
	manifest, err := os.ReadFile(f.Manifest)
	if err != nil {
		return nil, &VerifyError{FailManifest, err.Error()}
	}
	sig, err := os.ReadFile(f.Signature)
	if err != nil {
		return nil, &VerifyError{FailSignature, err.Error()}
	}
	m, err := VerifyManifest(manifest, sig, keys)
	if err != nil {
		return nil, err
	}
	clip, err := os.Open(f.Clip)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	defer clip.Close()
	if err := VerifyClip(m, clip); err != nil {
		return nil, err
	}
	return m, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

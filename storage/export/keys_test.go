package export

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The signing key is made once, private (0600), and kept across opens; a rotation
// retires it but keeps its public half, so what it signed still verifies.
func TestKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "export-keys")
	k, err := OpenKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, signingKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("signing key mode %v, want 0600", fi.Mode().Perm())
	}
	id, priv, err := k.Signer()
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 16 || id != KeyID(priv.Public().(ed25519.PublicKey)) {
		t.Errorf("key id %q", id)
	}
	again, err := OpenKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if id2, _, _ := again.Signer(); id2 != id {
		t.Errorf("reopening made a new key: %s, was %s", id2, id)
	}
	manifest := []byte(`{"format":"straja-export-1"}`)
	sig := Sign(priv, manifest)

	newID, oldID, err := k.Rotate()
	if err != nil || oldID != id || newID == id {
		t.Fatalf("rotate = %s, %s, %v", newID, oldID, err)
	}
	if cur, _, _ := again.Signer(); cur != newID {
		t.Errorf("another Keys on the same directory signs with %s after rotation, want %s", cur, newID)
	}
	list, err := k.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != newID || !list[0].Current || list[1].ID != id || list[1].Current {
		t.Errorf("list after rotation = %+v", list)
	}
	old, err := ParsePublicPEM([]byte(list[1].PEM))
	if err != nil {
		t.Fatal(err)
	}
	// Go's ed25519 directly, not through VerifyManifest.
	if !ed25519.Verify(old, manifest, sig) {
		t.Error("the retired key's PEM does not verify what it signed")
	}
	if _, err := k.Public("0123456789abcdef"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key id: %v, want ErrUnknownKey", err)
	}
	if _, err := k.Public("../../etc/passwd"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("a path as key id: %v, want ErrUnknownKey", err)
	}
}

// Each way a manifest can be wrong is named.
func TestVerifyManifest(t *testing.T) {
	k, err := OpenKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id, priv, _ := k.Signer()
	m := &Manifest{Format: ManifestFormat, Camera: Named{"gate", "Poarta"}, KeyID: id, Created: time.Now().UTC(),
		Clip: ClipEntry{File: "clip.mp4", Size: 5, SHA256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}}
	mb, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sig := Sign(priv, mb)
	if got, err := VerifyManifest(mb, sig, k.Public); err != nil || got.Camera.ID != "gate" {
		t.Fatalf("good manifest: %v", err)
	}
	if err := VerifyClip(m, strings.NewReader("hello")); err != nil {
		t.Errorf("good clip: %v", err)
	}
	what := func(err error) string {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return ve.What
		}
		return "other: " + errString(err)
	}
	if err := VerifyClip(m, strings.NewReader("hellO")); what(err) != FailClip {
		t.Errorf("changed clip: %v", err)
	}
	badSig := append([]byte(nil), sig...)
	badSig[10] ^= 1
	if _, err := VerifyManifest(mb, badSig, k.Public); what(err) != FailSignature {
		t.Errorf("changed signature: %v", err)
	}
	if _, err := VerifyManifest(mb[:len(mb)-1], sig, k.Public); what(err) != FailSignature {
		t.Errorf("manifest without its last byte: %v", err)
	}
	other, _ := OpenKeys(t.TempDir())
	if _, err := VerifyManifest(mb, sig, other.Public); what(err) != FailKey || !strings.Contains(err.Error(), id) {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := VerifyManifest([]byte("{"), sig, k.Public); what(err) != FailManifest {
		t.Errorf("not JSON: %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// FuzzVerifyManifest feeds VerifyManifest what a stranger may hand over: it never
// panics, and accepts only the exact bytes that were signed.
func FuzzVerifyManifest(f *testing.F) {
	k, err := OpenKeys(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	id, priv, _ := k.Signer()
	m := &Manifest{Format: ManifestFormat, KeyID: id, Clip: ClipEntry{File: "clip.mp4", Size: 1, SHA256: "00"}}
	signed, _ := m.Marshal()
	sig := Sign(priv, signed)
	f.Add(signed, sig)
	f.Add([]byte(`{"format":"straja-export-1","key_id":"`+id+`"}`), sig)
	f.Add([]byte(`{"format":"straja-export-1","key_id":"../../x"}`), []byte{1, 2})
	f.Add([]byte(`[]`), []byte{})
	f.Fuzz(func(t *testing.T, manifest, s []byte) {
		got, err := VerifyManifest(manifest, s, k.Public)
		if err == nil && (string(manifest) != string(signed) || string(s) != string(sig) || got.KeyID != id) {
			t.Errorf("accepted a manifest that was not signed: %q", manifest)
		}
	})
}

package state

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/straja-nvr/straja/storage/secrets"
)

// TestSealPasswordsFromPreviousVersion upgrades a database of the version before the
// passwords were sealed: no password is left in clear in the file, and each opens with
// the key made in the data directory, for its camera only.
func TestSealPasswordsFromPreviousVersion(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	createAt(t, path, beforeSealing(t))
	const pw1, pw2 = "Parola-Poarta-7319", `Zid"ăș/@:%40-4471`
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	for id, pw := range map[string]string{"gate": pw1, "yard": pw2} {
		spec, _ := json.Marshal(map[string]any{"name": id, "url": "rtsp://10.0.0.1/s", "username": "admin", "password": pw})
		if _, err := db.ExecContext(ctx, `INSERT INTO cameras (id, spec, created_ms, updated_ms) VALUES (?, ?, 1, 2)`,
			id, string(spec)); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(t, db, `INSERT INTO cameras (id, spec, created_ms, updated_ms) VALUES ('hall', '{"name":"Hol","url":"rtsp://h/s"}', 1, 2)`)
	db.Close()
	if b, _ := os.ReadFile(path); !bytes.Contains(b, []byte(pw1)) {
		t.Fatal("the fixture did not put the password in the file: the test below could not fail")
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{path, path + "-wal"} {
		b, _ := os.ReadFile(name)
		for _, pw := range []string{pw1, pw2} {
			if bytes.Contains(b, []byte(pw)) {
				t.Errorf("%s still holds a camera password in clear after the upgrade", filepath.Base(name))
			}
		}
	}
	fi, err := os.Stat(secrets.Path(dir))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secrets key = %v, %v; want it made in the data directory, mode 0600", fi, err)
	}
	key, err := secrets.Load(secrets.Path(dir))
	if err != nil {
		t.Fatal(err)
	}
	cams, err := s.Cameras(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"gate": pw1, "yard": pw2, "hall": ""}
	for _, c := range cams {
		if _, ours := want[c.ID]; !ours {
			continue // the fixtures'
		}
		var spec map[string]any
		if err := json.Unmarshal(c.Spec, &spec); err != nil {
			t.Fatal(err)
		}
		if _, ok := spec["password"]; ok {
			t.Errorf("camera %s keeps a password field: %s", c.ID, c.Spec)
		}
		if spec["name"] != c.ID && c.ID != "hall" {
			t.Errorf("camera %s lost its other settings: %s", c.ID, c.Spec)
		}
		sealed, _ := spec[PasswordSealedField].(string)
		if want[c.ID] == "" {
			if sealed != "" {
				t.Errorf("camera %s without a password got one sealed", c.ID)
			}
			continue
		}
		if got, err := key.Open(c.ID, sealed); err != nil || got != want[c.ID] {
			t.Errorf("camera %s: sealed password opens to %q, %v; want %q", c.ID, got, err, want[c.ID])
		}
		other := map[string]string{"gate": "yard", "yard": "gate"}[c.ID]
		if _, err := key.Open(other, sealed); err == nil {
			t.Errorf("camera %s's sealed password opens for camera %s", c.ID, other)
		}
	}
}

// TestSealPasswordsMakesNoKeyWithoutPasswords: the key is made at first need only.
func TestSealPasswordsMakesNoKeyWithoutPasswords(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	createAt(t, path, beforeSealing(t))
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(secrets.Path(dir)); err == nil {
		t.Error("a secrets key was made for a database without camera passwords")
	}
}

// beforeSealing is the schema version before the passwords were sealed.
func beforeSealing(t *testing.T) int {
	i := slices.IndexFunc(migrations, func(m migration) bool { return m.name == "seal camera passwords" })
	if i < 0 {
		t.Fatal("no migration seals the camera passwords")
	}
	return i
}

package state_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/storage/storetest"
)

// backends runs fn against the disk store and a real MinIO (when configured).
func backends(t *testing.T, fn func(t *testing.T, st storage.Store)) {
	t.Run("disk", func(t *testing.T) {
		st, err := storage.NewDisk(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		fn(t, st)
	})
	t.Run("s3", func(t *testing.T) {
		st, err := storage.NewS3(t.Context(), storetest.S3FromEnv(t))
		if err != nil {
			t.Fatal(err)
		}
		fn(t, st)
	})
}

func open(t *testing.T, path string) *state.State {
	t.Helper()
	s, err := state.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func cameraIDs(t *testing.T, s *state.State) []string {
	t.Helper()
	cams, err := s.Cameras(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cams {
		ids = append(ids, c.ID)
	}
	return ids
}

func putCameras(t *testing.T, s *state.State, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := s.PutCamera(t.Context(), id, json.RawMessage(fmt.Sprintf(`{"name":%q}`, id))); err != nil {
			t.Fatal(err)
		}
	}
}

// clock returns a Now that advances by a minute at each call.
func clock() func() time.Time {
	t := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Minute); return t }
}

// TestBackupRestore backs a database up, changes it, restores the backup and finds
// the contents as they were backed up, with the replaced database kept aside.
func TestBackupRestore(t *testing.T) {
	backends(t, func(t *testing.T, st storage.Store) {
		ctx := t.Context()
		path := filepath.Join(t.TempDir(), "state.db")
		s := open(t, path)
		putCameras(t, s, "roof-east", "gate-2")
		id, err := s.InstanceID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b := state.Backups{Store: st, Now: clock()}
		key, err := b.Save(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(key, storage.ReservedPrefix) {
			t.Errorf("backup key %s is outside the reserved prefix %s", key, storage.ReservedPrefix)
		}
		if _, err := st.Stat(ctx, key); err != nil {
			t.Fatalf("backup not in the store: %v", err)
		}
		// Changes after the backup, left in the WAL (the database stays open, as after
		// a crash), must not leak into the restored database.
		putCameras(t, s, "after-backup")
		if err := s.DeleteCamera(ctx, "gate-2"); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		crashed := filepath.Join(dir, "state.db")
		for _, suffix := range []string{"", "-wal"} {
			copyFile(t, path+suffix, crashed+suffix)
		}
		s.Close()

		latest, err := b.Latest(ctx)
		if err != nil || latest != key {
			t.Fatalf("Latest = %q, %v; want %s", latest, err, key)
		}
		kept, version, err := b.Restore(ctx, latest, crashed)
		if err != nil {
			t.Fatal(err)
		}
		if version != state.SchemaVersion() {
			t.Errorf("restored version = %d, want %d", version, state.SchemaVersion())
		}
		r := open(t, crashed)
		defer r.Close()
		if got := cameraIDs(t, r); !slices.Equal(got, []string{"gate-2", "roof-east"}) {
			t.Errorf("restored cameras = %q, want [gate-2 roof-east] as backed up", got)
		}
		if got, _ := r.InstanceID(ctx); got != id {
			t.Errorf("restored instance id = %q, want %q", got, id)
		}
		if !strings.HasPrefix(filepath.Base(kept), "state.db.bak-") {
			t.Fatalf("kept copy %q, want state.db.bak-<time>", kept)
		}
		k := open(t, kept)
		defer k.Close()
		if got := cameraIDs(t, k); !slices.Equal(got, []string{"after-backup", "roof-east"}) {
			t.Errorf("kept database's cameras = %q, want the replaced database's [after-backup roof-east]", got)
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBackupKeepsNewest checks that Save deletes all but the newest Keep backups and
// leaves everything else in the store alone.
func TestBackupKeepsNewest(t *testing.T) {
	backends(t, func(t *testing.T, st storage.Store) {
		ctx := t.Context()
		s := open(t, filepath.Join(t.TempDir(), "state.db"))
		defer s.Close()
		other := state.BackupPrefix + "notes.txt"
		if err := st.Put(ctx, other, strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
		b := state.Backups{Store: st, Keep: 3, Now: clock()}
		var saved []string
		for range 5 {
			key, err := b.Save(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			saved = append(saved, key)
		}
		got, err := b.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, saved[2:]) {
			t.Errorf("backups left = %q, want the newest 3 %q", got, saved[2:])
		}
		if _, err := st.Stat(ctx, other); err != nil {
			t.Errorf("pruning touched %s: %v", other, err)
		}
	})
}

// TestRestoreRefusesBadBackups checks that a backup that is not a sound state
// database, or is from a newer schema, is refused and the current database untouched.
func TestRestoreRefusesBadBackups(t *testing.T) {
	ctx := t.Context()
	st, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	s := open(t, path)
	putCameras(t, s, "gate")
	s.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	newer := filepath.Join(t.TempDir(), "newer.db")
	open(t, newer).Close()
	db, err := sql.Open("sqlite", newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, state.SchemaVersion()+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	newerBytes, err := os.ReadFile(newer)
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty.db")
	db, _ = sql.Open("sqlite", empty)
	if _, err := db.Exec(`CREATE TABLE t (a)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	emptyBytes, err := os.ReadFile(empty)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"garbage", []byte("this is not a database, just text long enough to look like a file"), "not a usable database"},
		{"truncated", before[:len(before)/2], "database"},
		{"newer", newerBytes, "newer"},
		{"not a state database", emptyBytes, "not a state database"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := state.BackupKey(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC))
			if err := st.Put(ctx, key, bytes.NewReader(tc.body), int64(len(tc.body))); err != nil {
				t.Fatal(err)
			}
			_, _, err := (state.Backups{Store: st}).Restore(ctx, key, path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Restore = %v; want an error saying %q", err, tc.want)
			}
			if tc.name == "newer" && !errors.Is(err, storage.ErrNewerSchema) {
				t.Errorf("error %v does not match ErrNewerSchema", err)
			}
			after, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(after, before) {
				t.Fatalf("state.db changed by a refused restore (%v)", err)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("files left in the data dir: %q, want only state.db", names)
			}
		})
	}
	if _, _, err := (state.Backups{Store: st}).Restore(ctx, "cam/2026/11/30/x.mp4", path); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Restore of a camera key = %v, want ErrInvalidKey", err)
	}
}

func TestBackupKey(t *testing.T) {
	at := time.Date(2026, 11, 30, 8, 15, 0, 0, time.FixedZone("EET", 2*3600))
	key := state.BackupKey(at)
	if key != "_straja/state/state-20261130t061500z.db" {
		t.Fatalf("BackupKey = %s", key)
	}
	if err := storage.ValidKey(key); err != nil {
		t.Fatalf("backup key is not a valid store key: %v", err)
	}
	if _, err := storage.ParseSegmentKey(key); err == nil {
		t.Fatal("a backup key parses as a segment key")
	}
	got, err := state.ParseBackupKey(key)
	if err != nil || !got.Equal(at) {
		t.Fatalf("ParseBackupKey = %v, %v; want %v", got, err, at)
	}
	for _, bad := range []string{"", "state-20261130t061500z.db", "_straja/state/state-20261130T061500Z.db",
		"_straja/state/state-20261130t061500z.db.tmp", "_straja/state/state-20261340t061500z.db"} {
		if _, err := state.ParseBackupKey(bad); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("ParseBackupKey(%q) = %v, want ErrInvalidKey", bad, err)
		}
	}
}

// TestOpenCreatesPrivateFile checks that the database, which will hold password
// hashes, and its WAL are readable by the service's user only.
func TestOpenCreatesPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path)
	defer s.Close()
	putCameras(t, s, "gate")
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for group and others", filepath.Base(p), fi.Mode().Perm())
		}
	}
}

package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/straja-nvr/straja/internal/durable"
	"github.com/straja-nvr/straja/storage"
)

// BackupPrefix is where backups live in the store, under storage.ReservedPrefix so
// that they never collide with camera keys.
const BackupPrefix = storage.ReservedPrefix + "state/"

// backupStamp is the time format in backup keys: lower case, as keys must be, and
// ordered as strings the way the times are.
const backupStamp = "20060102t150405z"

// DefaultKeep is how many backups Save keeps when Backups.Keep is zero.
const DefaultKeep = 14

// BackupKey is the store key of a backup taken at t (UTC, to the second).
func BackupKey(t time.Time) string {
	return BackupPrefix + "state-" + t.UTC().Format(backupStamp) + ".db"
}

// ParseBackupKey returns the time of the backup named key, or an error if key is not a
// name BackupKey makes.
func ParseBackupKey(key string) (time.Time, error) {
	name, ok := strings.CutPrefix(key, BackupPrefix+"state-")
	if ok {
		name, ok = strings.CutSuffix(name, ".db")
	}
	t, err := time.Parse(backupStamp, name)
	if !ok || err != nil || BackupKey(t) != key {
		return time.Time{}, fmt.Errorf("%w %q: not a state backup (want %sstate-YYYYMMDDtHHMMSSz.db)",
			storage.ErrInvalidKey, key, BackupPrefix)
	}
	return t, nil
}

// Backups saves state database backups to a store and brings them back.
type Backups struct {
	Store storage.Store
	// Keep is how many backups Save leaves in the store, the newest; 0 means DefaultKeep.
	Keep int
	// Now is the clock for backup names; nil means time.Now.
	Now func() time.Time
}

func (b Backups) now() time.Time {
	if b.Now != nil {
		return b.Now().UTC()
	}
	return time.Now().UTC()
}

// Save copies s consistently (SQLite VACUUM INTO, which readers and writers may
// share the database with) into a temporary file next to it, uploads that under
// BackupKey(now) and then deletes all but the newest Keep backups. It returns the key.
func (b Backups) Save(ctx context.Context, s *State) (string, error) {
	return b.save(ctx, s.db, filepath.Dir(s.path))
}

// SaveFile is Save for the state database at path, which need not be closed: another
// process (the service) may be writing it. It opens path read-only and does not
// upgrade its schema.
func (b Backups) SaveFile(ctx context.Context, path string) (string, error) {
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("state backup: %w", err)
	}
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: path}).String()+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return "", fmt.Errorf("state backup: %w", err)
	}
	defer db.Close()
	return b.save(ctx, db, filepath.Dir(path))
}

func (b Backups) save(ctx context.Context, db *sql.DB, dir string) (string, error) {
	key := BackupKey(b.now())
	f, err := os.CreateTemp(dir, ".state-backup-*.db")
	if err != nil {
		return "", fmt.Errorf("state backup: %w", err)
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)
	// VACUUM INTO writes into an empty existing file as into a new one.
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return "", fmt.Errorf("state backup: vacuum into %s: %w", tmp, err)
	}
	if _, err := CheckFile(ctx, tmp); err != nil {
		return "", fmt.Errorf("state backup: the copy does not check: %w", err)
	}
	f, err = os.Open(tmp)
	if err != nil {
		return "", fmt.Errorf("state backup: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("state backup: %w", err)
	}
	if err := b.Store.Put(ctx, key, f, fi.Size()); err != nil {
		return "", fmt.Errorf("state backup: %w", err)
	}
	if err := b.prune(ctx); err != nil {
		return key, fmt.Errorf("state backup %s stored, but: %w", key, err)
	}
	return key, nil
}

// prune deletes all but the newest Keep backups.
func (b Backups) prune(ctx context.Context) error {
	keys, err := b.List(ctx)
	if err != nil {
		return err
	}
	keep := b.Keep
	if keep <= 0 {
		keep = DefaultKeep
	}
	var errs []error
	for _, k := range keys[:max(0, len(keys)-keep)] {
		if err := b.Store.Delete(ctx, k); err != nil && !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, fmt.Errorf("delete old backup: %w", err))
		}
	}
	return errors.Join(errs...)
}

// List returns the keys of the stored backups, oldest first. Other objects under
// BackupPrefix are left out.
func (b Backups) List(ctx context.Context) ([]string, error) {
	var keys []string
	err := b.Store.List(ctx, BackupPrefix, func(o storage.ObjectInfo) error {
		if _, err := ParseBackupKey(o.Key); err == nil {
			keys = append(keys, o.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list state backups: %w", err)
	}
	return keys, nil // List is in key order, which is time order
}

// Latest returns the key of the newest backup, or an error matching storage.ErrNotFound
// when there is none.
func (b Backups) Latest(ctx context.Context) (string, error) {
	keys, err := b.List(ctx)
	if err != nil {
		return "", err
	}
	if len(keys) == 0 {
		return "", fmt.Errorf("no state backup under %s: %w", BackupPrefix, storage.ErrNotFound)
	}
	return keys[len(keys)-1], nil
}

// Restore replaces the state database at path with the backup key. The caller must
// make sure nothing has the database open (hold the data_dir lock). The backup is
// downloaded next to path and checked (it opens, passes SQLite's quick check, and its
// schema is not newer than this binary's) before anything is touched; the current
// database, if any, is kept as path.bak-<time> (with its WAL, if one was left), and the
// backup is renamed over path, so path always holds a whole database. A backup from an
// older schema is upgraded when the service next opens it. It returns the name of the
// kept copy ("" if there was no database) and the backup's schema version.
func (b Backups) Restore(ctx context.Context, key, path string) (kept string, version int, err error) {
	if _, err := ParseBackupKey(key); err != nil {
		return "", 0, fmt.Errorf("state restore: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := b.download(ctx, key, dir)
	if err != nil {
		return "", 0, fmt.Errorf("state restore %s: %w", key, err)
	}
	defer os.Remove(tmp) // after the rename below this removes nothing
	if version, err = CheckFile(ctx, tmp); err != nil {
		return "", version, fmt.Errorf("state restore %s: %w", key, err)
	}
	if _, err := os.Stat(path); err == nil {
		kept = path + ".bak-" + b.now().Format(backupStamp)
		// A hard link keeps the old database under both names until the rename
		// below, so there is never a moment without a state.db.
		if err := os.Link(path, kept); err != nil {
			return "", version, fmt.Errorf("state restore: keep the current database: %w", err)
		}
		// SQLite finds a WAL by the database's name: move it with the kept copy, or
		// it would be replayed into the restored database.
		for _, suffix := range []string{"-wal", "-journal", "-shm"} {
			if err := os.Rename(path+suffix, kept+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return kept, version, fmt.Errorf("state restore: keep the current database: %w", err)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", version, fmt.Errorf("state restore: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return kept, version, fmt.Errorf("state restore: %w", err)
	}
	if err := durable.SyncDir(dir); err != nil {
		return kept, version, fmt.Errorf("state restore: %w", err)
	}
	return kept, version, nil
}

// download copies the object key into a new file in dir, fsynced, and returns its name.
func (b Backups) download(ctx context.Context, key, dir string) (name string, err error) {
	rc, err := b.Store.Get(ctx, key, 0, -1)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	f, err := os.CreateTemp(dir, ".state-restore-*.db")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := io.Copy(f, rc); err != nil {
		return "", fmt.Errorf("download: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}

// CheckFile opens the state database file at path read-only, without changing it, and
// returns its schema version. It fails if the file is not a sound SQLite database, is
// not a state database, or is from a newer schema (an error matching
// storage.ErrNewerSchema).
func CheckFile(ctx context.Context, path string) (int, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, err
	}
	db, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&res); err != nil {
		return 0, fmt.Errorf("not a usable database: %w", err)
	}
	if res != "ok" {
		return 0, fmt.Errorf("database is damaged: %s", res)
	}
	v, err := userVersion(ctx, db)
	switch {
	case err != nil:
		return 0, err
	case v > len(migrations):
		return v, fmt.Errorf("%w: schema version %d, this straja knows up to %d", storage.ErrNewerSchema, v, len(migrations))
	case v == 0:
		return 0, errors.New("not a state database (schema version 0)")
	}
	return v, nil
}

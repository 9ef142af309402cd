// Package state keeps what cannot be rebuilt from storage (the instance's identity,
// cameras added at runtime, and next users, retention policies, holds, exports and the
// audit trail) in one SQLite database, data_dir/state.db. Its schema grows by numbered
// migrations recorded in PRAGMA user_version; a database from a newer Straja is
// refused rather than guessed at. Backups are whole-database copies kept in the
// object store under a reserved prefix.
package state

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/straja-nvr/straja/storage"
)

// ErrNotFound is returned (wrapped) when a row does not exist.
var ErrNotFound = errors.New("not found")

// State is the open state database. It is safe for concurrent use.
type State struct {
	db   *sql.DB
	path string
}

// Open opens the state database at path, creating it if needed, and brings its
// schema up to the current version, one migration per transaction. A database whose
// version is newer than this binary knows is refused with an error matching
// storage.ErrNewerSchema, before anything is written to it.
func Open(ctx context.Context, path string) (*State, error) {
	// Created private before SQLite sees it: SQLite would make it world-readable, and
	// it will hold password hashes. Its WAL files take the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open state database: %w", err)
	}
	f.Close()
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	before, err := userVersion(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	if err := migrateIn(ctx, db, len(migrations), filepath.Dir(path)); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	if before > 0 && before < len(migrations) {
		// Pages an upgrade rewrote (camera passwords in clear, for one) leave the WAL
		// now rather than at some later checkpoint. Another process may hold it: not fatal.
		_, _ = db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	return &State{db: db, path: path}, nil
}

// dsn builds the driver's URI for path: WAL so readers (and backups) do not block
// writers, full fsync on commit since this data exists nowhere else. A read-only DSN
// opens a file nobody else uses, such as a downloaded backup, without touching it.
func dsn(path string, readOnly bool) string {
	u := (&url.URL{Scheme: "file", Path: path}).String()
	if readOnly {
		return u + "?mode=ro&immutable=1"
	}
	// Transactions take the write lock at BEGIN (every one here writes): a deferred one
	// that reads first cannot wait for it later and fails at once with SQLITE_BUSY
	// when another writer (the gap ledger, the audit trail) got in between.
	return u + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)" +
		"&_txlock=immediate"
}

// Close closes the database.
func (s *State) Close() error { return s.db.Close() }

// Path is the database file.
func (s *State) Path() string { return s.path }

// Version returns the schema version of the open database.
func (s *State) Version(ctx context.Context) (int, error) {
	return userVersion(ctx, s.db)
}

// InstanceID identifies this Straja installation: it is made once, when the state
// database is created, and survives restarts and restores of a backup.
func (s *State) InstanceID(ctx context.Context) (string, error) {
	var id string
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'instance_id'`).Scan(&id); err != nil {
		return "", fmt.Errorf("state instance id: %w", err)
	}
	return id, nil
}

// Camera is a camera added at runtime. Spec is its JSON description, owned by the
// code that manages cameras; the state database only checks that it is a JSON object.
type Camera struct {
	ID      string
	Spec    json.RawMessage
	Created time.Time // UTC, millisecond precision
	Updated time.Time
}

// PutCamera adds the camera or replaces its spec, keeping its creation time.
func (s *State) PutCamera(ctx context.Context, id string, spec json.RawMessage) error {
	if err := storage.CheckCameraID(id); err != nil {
		return fmt.Errorf("state put camera: id %w", err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(spec, &obj); err != nil || obj == nil {
		return fmt.Errorf("state put camera %s: spec must be a JSON object", id)
	}
	now := time.Now().UnixMilli()
	_, err := s.db.ExecContext(ctx, `INSERT INTO cameras (id, spec, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?3)
		ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, updated_ms = excluded.updated_ms`, id, string(spec), now)
	if err != nil {
		return fmt.Errorf("state put camera %s: %w", id, err)
	}
	return nil
}

// Cameras returns the runtime cameras ordered by id.
func (s *State) Cameras(ctx context.Context) ([]Camera, error) {
	return queryAll(ctx, s.db, "cameras", func(row scanner) (Camera, error) {
		var c Camera
		var spec string
		var created, updated int64
		if err := row.Scan(&c.ID, &spec, &created, &updated); err != nil {
			return c, err
		}
		c.Spec = json.RawMessage(spec)
		c.Created, c.Updated = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
		return c, nil
	}, `SELECT id, spec, created_ms, updated_ms FROM cameras ORDER BY id`)
}

// DeleteCamera removes a runtime camera; a missing one returns ErrNotFound.
func (s *State) DeleteCamera(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM cameras WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("state delete camera %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("state delete camera %s: %w", id, ErrNotFound)
	}
	return nil
}

func newInstanceID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// scanner is a row to scan: *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// queryAll runs q and returns every row as scan reads it; what names the rows in
// errors ("state sites: ...").
func queryAll[T any](ctx context.Context, db *sql.DB, what string, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("state %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state %s: %w", what, err)
	}
	return out, nil
}

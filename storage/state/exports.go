package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// exportsSchema is the migration of clip exports: one row per export requested
// through the service, with its state. The files are in data_dir/exports/<id>.
const exportsSchema = `CREATE TABLE exports (
	id          TEXT PRIMARY KEY,
	camera      TEXT NOT NULL,
	from_ms     INTEGER NOT NULL,
	to_ms       INTEGER NOT NULL,
	reason      TEXT NOT NULL CHECK (reason <> ''),
	username    TEXT NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
	error       TEXT NOT NULL DEFAULT '',
	created_ms  INTEGER NOT NULL,
	updated_ms  INTEGER NOT NULL,
	clip_size   INTEGER NOT NULL DEFAULT 0,
	clip_sha256 TEXT NOT NULL DEFAULT '',
	key_id      TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX exports_created ON exports (created_ms);`

// Export states.
const (
	ExportQueued  = "queued"
	ExportRunning = "running"
	ExportDone    = "done"
	ExportFailed  = "failed"
)

// Export is one export's row.
type Export struct {
	ID         string
	Camera     string
	From, To   time.Time // UTC, millisecond precision
	Reason     string
	User       string
	State      string
	Error      string // why it failed
	Created    time.Time
	Updated    time.Time
	ClipSize   int64
	ClipSHA256 string
	KeyID      string
	// Deleted is when the export's files were deleted (zero: they are not), by whom
	// (a user, or "service" once export.keep passed) and why.
	Deleted      time.Time
	DeletedBy    string
	DeleteReason string
}

// AddExport stores a new export, queued.
func (s *State) AddExport(ctx context.Context, e Export) error {
	now := time.Now().UnixMilli()
	_, err := s.db.ExecContext(ctx, `INSERT INTO exports (id, camera, from_ms, to_ms, reason, username, state,
		created_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.ID, e.Camera, e.From.UnixMilli(), e.To.UnixMilli(),
		e.Reason, e.User, ExportQueued, now, now)
	if err != nil {
		return fmt.Errorf("state add export: %w", err)
	}
	return nil
}

// SetExportState moves an export to state (running, or failed with why).
func (s *State) SetExportState(ctx context.Context, id, state, why string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE exports SET state = ?, error = ?, updated_ms = ? WHERE id = ?`,
		state, why, time.Now().UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("state export %s: %w", id, err)
	}
	return nil
}

// FinishExport marks an export done with its clip's size and SHA-256 and the key
// that signed its manifest.
func (s *State) FinishExport(ctx context.Context, id string, size int64, sha256, keyID string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE exports SET state = 'done', error = '', updated_ms = ?, clip_size = ?,
		clip_sha256 = ?, key_id = ? WHERE id = ?`, time.Now().UnixMilli(), size, sha256, keyID, id)
	if err != nil {
		return fmt.Errorf("state export %s: %w", id, err)
	}
	return nil
}

// FailUnfinishedExports marks exports left queued or running by a previous run as
// failed with why, and returns how many.
func (s *State) FailUnfinishedExports(ctx context.Context, why string) (int64, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE exports SET state = 'failed', error = ?, updated_ms = ?
		WHERE state IN ('queued', 'running')`, why, time.Now().UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("state exports: %w", err)
	}
	return res.RowsAffected()
}

const exportColumns = `id, camera, from_ms, to_ms, reason, username, state, error, created_ms, updated_ms,
	clip_size, clip_sha256, key_id, deleted_ms, deleted_by, delete_reason`

func scanExport(row scanner) (Export, error) {
	var e Export
	var from, to, created, updated, deleted int64
	err := row.Scan(&e.ID, &e.Camera, &from, &to, &e.Reason, &e.User, &e.State, &e.Error, &created, &updated,
		&e.ClipSize, &e.ClipSHA256, &e.KeyID, &deleted, &e.DeletedBy, &e.DeleteReason)
	if deleted != 0 {
		e.Deleted = time.UnixMilli(deleted).UTC()
	}
	e.From, e.To = time.UnixMilli(from).UTC(), time.UnixMilli(to).UTC()
	e.Created, e.Updated = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return e, err
}

// Export returns one export; a missing one returns ErrNotFound.
func (s *State) Export(ctx context.Context, id string) (Export, error) {
	e, err := scanExport(s.db.QueryRowContext(ctx, `SELECT `+exportColumns+` FROM exports WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("export %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("state export %s: %w", id, err)
	}
	return e, nil
}

// Exports returns the newest exports of the given cameras (nil: every camera), at
// most limit.
func (s *State) Exports(ctx context.Context, cameras []string, limit int) ([]Export, error) {
	q := `SELECT ` + exportColumns + ` FROM exports`
	args := make([]any, 0, len(cameras)+1)
	if cameras != nil {
		if len(cameras) == 0 {
			return nil, nil
		}
		q += ` WHERE camera IN (?` + strings.Repeat(`, ?`, len(cameras)-1) + `)`
		for _, c := range cameras {
			args = append(args, c)
		}
	}
	q += ` ORDER BY created_ms DESC, id DESC LIMIT ?`
	args = append(args, limit)
	return s.queryExports(ctx, q, args...)
}

func (s *State) queryExports(ctx context.Context, q string, args ...any) ([]Export, error) {
	return queryAll(ctx, s.db, "exports", scanExport, q, args...)
}

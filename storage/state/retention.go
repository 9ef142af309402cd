package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

const retentionSchema = `CREATE TABLE retention_policies (
	name       TEXT PRIMARY KEY,
	spec       TEXT NOT NULL CHECK (json_valid(spec)),
	updated_ms INTEGER NOT NULL,
	updated_by TEXT NOT NULL
) STRICT;
CREATE TABLE retention_runs (
	id         INTEGER PRIMARY KEY,
	kind       TEXT NOT NULL, -- scheduled, manual, emergency
	policy     TEXT NOT NULL, -- the scheduled policy; empty for every camera
	forced     INTEGER NOT NULL,
	started_ms INTEGER NOT NULL,
	ended_ms   INTEGER,       -- NULL while running, or if the run was cut short
	result     TEXT CHECK (result IS NULL OR json_valid(result)),
	error      TEXT NOT NULL DEFAULT ''
) STRICT;`

// RetentionPolicy is a retention policy set through the API. Spec is its JSON, owned
// by the retention package.
type RetentionPolicy struct {
	Name    string
	Spec    json.RawMessage
	Updated time.Time
	By      string
}

// PutRetentionPolicy adds or replaces the policy name.
func (s *State) PutRetentionPolicy(ctx context.Context, name string, spec json.RawMessage, by string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO retention_policies (name, spec, updated_ms, updated_by) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_ms = excluded.updated_ms,
		updated_by = excluded.updated_by`, name, string(spec), time.Now().UnixMilli(), by)
	if err != nil {
		return fmt.Errorf("state put retention policy %s: %w", name, err)
	}
	return nil
}

// RetentionPolicies returns the policies set through the API, by name.
func (s *State) RetentionPolicies(ctx context.Context) ([]RetentionPolicy, error) {
	return queryAll(ctx, s.db, "retention policies", func(row scanner) (RetentionPolicy, error) {
		var p RetentionPolicy
		var spec string
		var ms int64
		if err := row.Scan(&p.Name, &spec, &ms, &p.By); err != nil {
			return p, err
		}
		p.Spec, p.Updated = json.RawMessage(spec), time.UnixMilli(ms).UTC()
		return p, nil
	}, `SELECT name, spec, updated_ms, updated_by FROM retention_policies ORDER BY name`)
}

// DeleteRetentionPolicy removes a policy set through the API; a missing one returns
// ErrNotFound.
func (s *State) DeleteRetentionPolicy(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM retention_policies WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("state delete retention policy %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("state delete retention policy %s: %w", name, ErrNotFound)
	}
	return nil
}

// RetentionRun is one retention run. A run without End was cut short (or is running).
type RetentionRun struct {
	ID      int64
	Kind    string
	Policy  string
	Forced  bool
	Started time.Time
	Ended   time.Time // zero: not finished
	Result  json.RawMessage
	Error   string
}

// StartRetentionRun records that a run started and returns its id.
func (s *State) StartRetentionRun(ctx context.Context, kind, policy string, forced bool, started time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO retention_runs (kind, policy, forced, started_ms) VALUES (?, ?, ?, ?)`,
		kind, policy, forced, started.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("state start retention run: %w", err)
	}
	return res.LastInsertId()
}

// FinishRetentionRun records the end of run id, what it did and its error ("" if none).
func (s *State) FinishRetentionRun(ctx context.Context, id int64, ended time.Time, result json.RawMessage, errText string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE retention_runs SET ended_ms = ?, result = ?, error = ? WHERE id = ?`,
		ended.UnixMilli(), string(result), errText, id)
	if err != nil {
		return fmt.Errorf("state finish retention run %d: %w", id, err)
	}
	return nil
}

// RetentionRuns returns up to limit runs, the newest first.
func (s *State) RetentionRuns(ctx context.Context, limit int) ([]RetentionRun, error) {
	return queryAll(ctx, s.db, "retention runs", func(row scanner) (RetentionRun, error) {
		var r RetentionRun
		var started int64
		var ended sql.NullInt64
		var result sql.NullString
		if err := row.Scan(&r.ID, &r.Kind, &r.Policy, &r.Forced, &started, &ended, &result, &r.Error); err != nil {
			return r, err
		}
		r.Started = time.UnixMilli(started).UTC()
		if ended.Valid {
			r.Ended = time.UnixMilli(ended.Int64).UTC()
		}
		if result.Valid {
			r.Result = json.RawMessage(result.String)
		}
		return r, nil
	}, `SELECT id, kind, policy, forced, started_ms, ended_ms, result, error
		FROM retention_runs ORDER BY id DESC LIMIT ?`, limit)
}

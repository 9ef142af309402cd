package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// healthSchema is migration 6: the gap ledger (every hole in a camera's recording,
// with its cause), the service heartbeat that lets a start after a crash say how long
// the service was down, alert rules made through the API, and the alerts' history.
const healthSchema = `CREATE TABLE gaps (
	id       INTEGER PRIMARY KEY,
	camera   TEXT NOT NULL,
	start_ms INTEGER NOT NULL,
	end_ms   INTEGER,
	cause    TEXT NOT NULL
) STRICT;
CREATE INDEX gaps_camera_start ON gaps (camera, start_ms);
CREATE INDEX gaps_open ON gaps (camera) WHERE end_ms IS NULL;
CREATE TABLE heartbeat (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	beat_ms INTEGER NOT NULL,
	clean   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE alert_rules (
	id         TEXT PRIMARY KEY,
	spec       TEXT NOT NULL CHECK (json_valid(spec)),
	updated_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE alerts (
	id          INTEGER PRIMARY KEY,
	rule        TEXT NOT NULL,
	camera      TEXT NOT NULL DEFAULT '',
	kind        TEXT NOT NULL,
	started_ms  INTEGER NOT NULL,
	resolved_ms INTEGER,
	detail      TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX alerts_started ON alerts (started_ms);`

// Gap is a hole in one camera's recording. End is zero while the hole lasts.
type Gap struct {
	ID     int64
	Camera string
	Start  time.Time // UTC, millisecond precision
	End    time.Time
	Cause  string
}

// OpenGap records that camera's recording stopped at start for cause, and returns the
// gap's ID for CloseGap.
func (s *State) OpenGap(ctx context.Context, camera, cause string, start time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO gaps (camera, start_ms, cause) VALUES (?, ?, ?)`,
		camera, start.UnixMilli(), cause)
	if err != nil {
		return 0, fmt.Errorf("state open gap of %s: %w", camera, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("state open gap of %s: %w", camera, err)
	}
	return id, nil
}

// CloseGap records when gap id ended; never before it started.
func (s *State) CloseGap(ctx context.Context, id int64, end time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE gaps SET end_ms = MAX(start_ms, ?) WHERE id = ? AND end_ms IS NULL`,
		end.UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("state close gap %d: %w", id, err)
	}
	return nil
}

// OpenGaps returns the gaps that have not ended, oldest first.
func (s *State) OpenGaps(ctx context.Context) ([]Gap, error) {
	return s.gaps(ctx, `SELECT id, camera, start_ms, end_ms, cause FROM gaps WHERE end_ms IS NULL ORDER BY start_ms, id`)
}

// Gaps returns camera's gaps overlapping [from, to), oldest first, at most limit of them.
func (s *State) Gaps(ctx context.Context, camera string, from, to time.Time, limit int) ([]Gap, error) {
	return s.gaps(ctx, `SELECT id, camera, start_ms, end_ms, cause FROM gaps
		WHERE camera = ? AND start_ms < ? AND (end_ms IS NULL OR end_ms > ?) ORDER BY start_ms, id LIMIT ?`,
		camera, to.UnixMilli(), from.UnixMilli(), limit)
}

func (s *State) gaps(ctx context.Context, query string, args ...any) ([]Gap, error) {
	return queryAll(ctx, s.db, "gaps", func(row scanner) (Gap, error) {
		var g Gap
		var start int64
		var end sql.NullInt64
		if err := row.Scan(&g.ID, &g.Camera, &start, &end, &g.Cause); err != nil {
			return g, err
		}
		g.Start = time.UnixMilli(start).UTC()
		if end.Valid {
			g.End = time.UnixMilli(end.Int64).UTC()
		}
		return g, nil
	}, query, args...)
}

// Heartbeat records that the service ran at t; clean says it is stopping in order.
func (s *State) Heartbeat(ctx context.Context, t time.Time, clean bool) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO heartbeat (id, beat_ms, clean) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET beat_ms = excluded.beat_ms, clean = excluded.clean`, t.UnixMilli(), clean)
	if err != nil {
		return fmt.Errorf("state heartbeat: %w", err)
	}
	return nil
}

// LastHeartbeat returns the last heartbeat and whether the service stopped in order
// after it; the zero time if the service never ran.
func (s *State) LastHeartbeat(ctx context.Context) (time.Time, bool, error) {
	var ms int64
	var clean bool
	err := s.db.QueryRowContext(ctx, `SELECT beat_ms, clean FROM heartbeat WHERE id = 1`).Scan(&ms, &clean)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("state last heartbeat: %w", err)
	}
	return time.UnixMilli(ms).UTC(), clean, nil
}

// AlertRule is an alert rule made through the API. Spec is its JSON description,
// owned by the alerting code.
type AlertRule struct {
	ID      string
	Spec    json.RawMessage
	Updated time.Time
}

// PutAlertRule adds or replaces a rule.
func (s *State) PutAlertRule(ctx context.Context, id string, spec json.RawMessage) error {
	if !json.Valid(spec) {
		return fmt.Errorf("state put alert rule %s: spec is not JSON", id)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO alert_rules (id, spec, updated_ms) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, updated_ms = excluded.updated_ms`,
		id, string(spec), time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("state put alert rule %s: %w", id, err)
	}
	return nil
}

// DeleteAlertRule deletes a rule; ErrNotFound if there is none.
func (s *State) DeleteAlertRule(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM alert_rules WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("state delete alert rule %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("alert rule %s: %w", id, ErrNotFound)
	}
	return nil
}

// AlertRules returns the rules made through the API, ordered by id.
func (s *State) AlertRules(ctx context.Context) ([]AlertRule, error) {
	return queryAll(ctx, s.db, "alert rules", func(row scanner) (AlertRule, error) {
		var r AlertRule
		var spec string
		var ms int64
		if err := row.Scan(&r.ID, &spec, &ms); err != nil {
			return r, err
		}
		r.Spec, r.Updated = json.RawMessage(spec), time.UnixMilli(ms).UTC()
		return r, nil
	}, `SELECT id, spec, updated_ms FROM alert_rules ORDER BY id`)
}

// Alert is one alert's life: it fired at Started and resolved at Resolved (zero while
// it fires).
type Alert struct {
	ID       int64
	Rule     string
	Camera   string // "" for service-wide alerts
	Kind     string
	Started  time.Time
	Resolved time.Time
	Detail   string
}

// AlertFired records a firing alert and returns its ID.
func (s *State) AlertFired(ctx context.Context, a Alert) (int64, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO alerts (rule, camera, kind, started_ms, detail) VALUES (?, ?, ?, ?, ?)`,
		a.Rule, a.Camera, a.Kind, a.Started.UnixMilli(), a.Detail)
	if err != nil {
		return 0, fmt.Errorf("state alert fired: %w", err)
	}
	return res.LastInsertId()
}

// AlertResolved records when alert id resolved.
func (s *State) AlertResolved(ctx context.Context, id int64, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE alerts SET resolved_ms = ? WHERE id = ? AND resolved_ms IS NULL`,
		at.UnixMilli(), id); err != nil {
		return fmt.Errorf("state alert %s resolved: %w", strconv.FormatInt(id, 10), err)
	}
	return nil
}

// Alerts returns the latest limit alerts, newest first.
func (s *State) Alerts(ctx context.Context, limit int) ([]Alert, error) {
	return queryAll(ctx, s.db, "alerts", func(row scanner) (Alert, error) {
		var a Alert
		var started int64
		var resolved sql.NullInt64
		if err := row.Scan(&a.ID, &a.Rule, &a.Camera, &a.Kind, &started, &resolved, &a.Detail); err != nil {
			return a, err
		}
		a.Started = time.UnixMilli(started).UTC()
		if resolved.Valid {
			a.Resolved = time.UnixMilli(resolved.Int64).UTC()
		}
		return a, nil
	}, `SELECT id, rule, camera, kind, started_ms, resolved_ms, detail FROM alerts
		ORDER BY started_ms DESC, id DESC LIMIT ?`, limit)
}

package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// holdsSchema is the migration of evidence holds. A hold is never deleted: releasing
// it records who and why, so the trail of what was protected stays. locks says how far
// the storage locks (S3 legal holds) of its footage are: see Locks.
const holdsSchema = `CREATE TABLE holds (
	id             TEXT PRIMARY KEY,
	cameras        TEXT NOT NULL CHECK (json_valid(cameras)),
	site           TEXT NOT NULL DEFAULT '',
	from_ms        INTEGER NOT NULL,
	to_ms          INTEGER NOT NULL CHECK (to_ms > from_ms),
	reason         TEXT NOT NULL CHECK (reason <> ''),
	expires_ms     INTEGER NOT NULL DEFAULT 0,
	created_ms     INTEGER NOT NULL,
	created_by     TEXT NOT NULL,
	released_ms    INTEGER NOT NULL DEFAULT 0,
	released_by    TEXT NOT NULL DEFAULT '',
	release_reason TEXT NOT NULL DEFAULT '',
	locks          INTEGER NOT NULL DEFAULT 0
) STRICT;`

// holdCameraSitesSchema keeps, with a hold, the site each of its cameras had when it
// was set: a camera deleted later is still known by its site to whoever may release
// the hold.
const holdCameraSitesSchema = `ALTER TABLE holds ADD COLUMN camera_sites TEXT NOT NULL DEFAULT '{}'
	CHECK (json_valid(camera_sites));`

// Hold is a stored evidence hold. Times are UTC with millisecond precision; a zero
// Expires means until released, a zero Released that it is not released.
type Hold struct {
	ID            string    `json:"id"`
	Cameras       []string  `json:"cameras"`
	Site          string    `json:"site,omitempty"`
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	Reason        string    `json:"reason"`
	Expires       time.Time `json:"expires,omitzero"`
	Created       time.Time `json:"created"`
	By            string    `json:"by"`
	Released      time.Time `json:"released,omitzero"`
	ReleasedBy    string    `json:"released_by,omitempty"`
	ReleaseReason string    `json:"release_reason,omitempty"`
	Locks         Locks     `json:"-"`
	// CameraSites is the site of each camera when the hold was set.
	CameraSites map[string]string `json:"camera_sites,omitempty"`
}

// Locks is how far the storage locks of a hold's footage are.
type Locks int

// Locks of a hold.
const (
	LocksPending Locks = iota // set, storage locks not yet (all) applied
	LocksOn                   // stored footage locked (or the store has no locks)
	LocksOff                  // released or expired, locks lifted
)

// AddHold stores a new hold; an ID already stored returns ErrExists.
func (s *State) AddHold(ctx context.Context, h Hold) error {
	cams := h.Cameras
	if cams == nil {
		cams = []string{}
	}
	cj, err := json.Marshal(cams)
	if err != nil {
		return fmt.Errorf("state add hold: %w", err)
	}
	sites := h.CameraSites
	if sites == nil {
		sites = map[string]string{}
	}
	sj, err := json.Marshal(sites)
	if err != nil {
		return fmt.Errorf("state add hold: %w", err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO holds (id, cameras, site, from_ms, to_ms, reason, expires_ms,
		created_ms, created_by, released_ms, released_by, release_reason, locks, camera_sites)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		h.ID, string(cj), h.Site, h.From.UnixMilli(), h.To.UnixMilli(), h.Reason, ms(h.Expires),
		h.Created.UnixMilli(), h.By, ms(h.Released), h.ReleasedBy, h.ReleaseReason, h.Locks, string(sj))
	if err != nil {
		return fmt.Errorf("state add hold %s: %w", h.ID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("state add hold %s: %w", h.ID, ErrExists)
	}
	return nil
}

// ReleaseHold marks an unreleased hold released by by for reason at when. A missing
// hold returns ErrNotFound; one already released returns ErrReleased.
func (s *State) ReleaseHold(ctx context.Context, id, by, reason string, when time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE holds SET released_ms = ?, released_by = ?, release_reason = ?
		WHERE id = ? AND released_ms = 0`, when.UnixMilli(), by, reason, id)
	if err != nil {
		return fmt.Errorf("state release hold %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		if _, err := s.Hold(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("state release hold %s: %w", id, ErrReleased)
	}
	return nil
}

// ErrReleased is returned (wrapped) when releasing a hold already released.
var ErrReleased = errors.New("hold already released")

// SetHoldLocks records how far the storage locks of hold id are.
func (s *State) SetHoldLocks(ctx context.Context, id string, l Locks) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE holds SET locks = ? WHERE id = ?`, l, id); err != nil {
		return fmt.Errorf("state hold %s locks: %w", id, err)
	}
	return nil
}

// Hold returns one hold; a missing one returns ErrNotFound.
func (s *State) Hold(ctx context.Context, id string) (Hold, error) {
	hs, err := s.queryHolds(ctx, `WHERE id = ?`, id)
	if err != nil {
		return Hold{}, err
	}
	if len(hs) == 0 {
		return Hold{}, fmt.Errorf("state hold %s: %w", id, ErrNotFound)
	}
	return hs[0], nil
}

// Holds returns every hold, newest first.
func (s *State) Holds(ctx context.Context) ([]Hold, error) {
	return s.queryHolds(ctx, `ORDER BY created_ms DESC, id`)
}

func (s *State) queryHolds(ctx context.Context, tail string, args ...any) ([]Hold, error) {
	return queryAll(ctx, s.db, "holds", func(row scanner) (Hold, error) {
		var h Hold
		var cams, sites string
		var from, to, expires, created, released int64
		if err := row.Scan(&h.ID, &cams, &h.Site, &from, &to, &h.Reason, &expires, &created, &h.By, &released,
			&h.ReleasedBy, &h.ReleaseReason, &h.Locks, &sites); err != nil {
			return h, err
		}
		if err := json.Unmarshal([]byte(cams), &h.Cameras); err != nil {
			return h, fmt.Errorf("hold %s cameras: %w", h.ID, err)
		}
		if err := json.Unmarshal([]byte(sites), &h.CameraSites); err != nil {
			return h, fmt.Errorf("hold %s camera sites: %w", h.ID, err)
		}
		if len(h.CameraSites) == 0 {
			h.CameraSites = nil
		}
		h.From, h.To, h.Created = time.UnixMilli(from).UTC(), time.UnixMilli(to).UTC(), time.UnixMilli(created).UTC()
		h.Expires, h.Released = fromMS(expires), fromMS(released)
		return h, nil
	}, `SELECT id, cameras, site, from_ms, to_ms, reason, expires_ms, created_ms,
		created_by, released_ms, released_by, release_reason, locks, camera_sites FROM holds `+tail, args...)
}

// ms is t in Unix milliseconds, 0 for the zero time.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

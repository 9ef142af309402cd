package state

import (
	"context"
	"fmt"
	"time"
)

// sitesSchema holds the sites added at runtime, beside those of the configuration file.
const sitesSchema = `CREATE TABLE sites (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	created_ms INTEGER NOT NULL,
	updated_ms INTEGER NOT NULL
) STRICT;`

// Site is a site added at runtime.
type Site struct {
	ID, Name string
	Created  time.Time // UTC, millisecond precision
	Updated  time.Time
}

// PutSite adds the site or renames it, keeping its creation time.
func (s *State) PutSite(ctx context.Context, id, name string) error {
	now := time.Now().UnixMilli()
	_, err := s.db.ExecContext(ctx, `INSERT INTO sites (id, name, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?3)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_ms = excluded.updated_ms`, id, name, now)
	if err != nil {
		return fmt.Errorf("state put site %s: %w", id, err)
	}
	return nil
}

// Sites returns the runtime sites ordered by id.
func (s *State) Sites(ctx context.Context) ([]Site, error) {
	return queryAll(ctx, s.db, "sites", func(row scanner) (Site, error) {
		var st Site
		var created, updated int64
		if err := row.Scan(&st.ID, &st.Name, &created, &updated); err != nil {
			return st, err
		}
		st.Created, st.Updated = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
		return st, nil
	}, `SELECT id, name, created_ms, updated_ms FROM sites ORDER BY id`)
}

// DeleteSite removes a runtime site; a missing one returns ErrNotFound.
func (s *State) DeleteSite(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sites WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("state delete site %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("state delete site %s: %w", id, ErrNotFound)
	}
	return nil
}

package storage

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"time"
)

// initsSchema keeps each distinct init section once: consecutive segments of a
// recording session share one.
const initsSchema = `
CREATE TABLE IF NOT EXISTS inits (
	id     INTEGER PRIMARY KEY,
	sha256 BLOB NOT NULL UNIQUE,
	data   BLOB NOT NULL
);
`

// upgradeCatalog adds what version 2 keeps per segment to a version 1 table. Rows
// already there get NULLs: playback reads their moofs, as before.
func upgradeCatalog(tx *sql.Tx) error {
	for _, col := range [][2]string{{"init_id", "INTEGER"}, {"samples", "BLOB"}} {
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM pragma_table_info('segments') WHERE name = ?`, col[0]).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := tx.Exec(`ALTER TABLE segments ADD COLUMN ` + col[0] + ` ` + col[1]); err != nil {
				return err
			}
		}
	}
	_, err := tx.Exec(initsCleanup)
	return err
}

// initsCleanup drops an init section with the last segment that uses it, whichever
// way rows are forgotten (retention, Delete, rebuild), inside SQLite: no round trip
// per row. The index makes "does another segment use it" one probe.
const initsCleanup = `
CREATE INDEX IF NOT EXISTS segments_init ON segments (init_id) WHERE init_id IS NOT NULL;
CREATE TRIGGER IF NOT EXISTS segments_forget_init AFTER DELETE ON segments
WHEN OLD.init_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM segments WHERE init_id = OLD.init_id)
BEGIN
	DELETE FROM inits WHERE id = OLD.init_id;
END;
`

// putInit records an init section once and returns its id, or nil for none.
func putInit(ctx context.Context, db execQuerier, init []byte) (any, error) {
	if len(init) == 0 {
		return nil, nil
	}
	sum := sha256.Sum256(init)
	var id int64
	err := db.QueryRowContext(ctx, `INSERT INTO inits (sha256, data) VALUES (?, ?)
		ON CONFLICT (sha256) DO UPDATE SET sha256 = excluded.sha256 RETURNING id`, sum[:], init).Scan(&id)
	if err != nil {
		return nil, fmt.Errorf("init section: %w", err)
	}
	return id, nil
}

// nullBlob stores an empty slice as NULL.
func nullBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// SegmentsWithTables is Segments with each segment's Init and Samples, for
// playback: nil for rows catalogued without them. Segments of one recording session
// share one Init slice; do not modify it.
func (c *Catalog) SegmentsWithTables(ctx context.Context, camera string, from, to time.Time) ([]Segment, error) {
	return c.segments(ctx, camera, from, to, true)
}

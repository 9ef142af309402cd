package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

// CameraFootage sums up one camera's catalogued footage.
type CameraFootage struct {
	Segments int
	Bytes    int64
	Oldest   time.Time // start of the oldest segment (zero: none)
	Latest   time.Time // end of the newest segment (zero: none)
}

// Cameras returns the cameras that have catalogued segments, sorted. It walks the
// camera index one camera at a time, so it costs cameras, not segments.
func (c *Catalog) Cameras(ctx context.Context) ([]string, error) {
	var cams []string
	last := ""
	for {
		var cam string
		err := c.db.QueryRowContext(ctx, `SELECT camera FROM segments WHERE camera > ? ORDER BY camera LIMIT 1`, last).Scan(&cam)
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return cams, nil
			}
			return nil, fmt.Errorf("catalog cameras: %w", err)
		}
		cams = append(cams, cam)
		last = cam
	}
}

// Footage sums up camera's segments: how many, their bytes, the oldest start and the
// newest end. It reads the covering index only.
func (c *Catalog) Footage(ctx context.Context, camera string) (CameraFootage, error) {
	var f CameraFootage
	var oldest, latest *int64
	err := c.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(start_ms), MAX(start_ms + duration_ms)
		FROM segments WHERE camera = ?`, camera).Scan(&f.Segments, &f.Bytes, &oldest, &latest)
	if err != nil {
		return f, fmt.Errorf("catalog footage %s: %w", camera, err)
	}
	if oldest != nil {
		f.Oldest = time.UnixMilli(*oldest).UTC()
	}
	if latest != nil {
		f.Latest = time.UnixMilli(*latest).UTC()
	}
	return f, nil
}

// DeleteMany forgets the segments with keys, in one transaction; keys not in the
// catalog are passed over (a run completing one that was cut short finds some gone).
func (c *Catalog) DeleteMany(ctx context.Context, keys []string) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("catalog delete: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `DELETE FROM segments WHERE key = ?`)
	if err != nil {
		return fmt.Errorf("catalog delete: %w", err)
	}
	defer stmt.Close()
	for _, k := range keys {
		if _, err := stmt.ExecContext(ctx, k); err != nil {
			return fmt.Errorf("catalog delete %s: %w", k, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("catalog delete: %w", err)
	}
	return nil
}

// walkPage is how many rows one query of Walk reads.
const walkPage = 10000

// Walk calls fn with each of camera's segments in (start, key) order, oldest first,
// without checksums or fragments, and stops at fn's first error. It reads keyset
// pages of the covering index, so memory stays one page at any catalog size.
func (c *Catalog) Walk(ctx context.Context, camera string, fn func(Segment) error) error {
	afterMS, afterKey := int64(math.MinInt64), ""
	for {
		rows, err := c.db.QueryContext(ctx, `SELECT key, start_ms, duration_ms, size FROM segments
			WHERE camera = ?1 AND start_ms >= ?2 AND (start_ms > ?2 OR key > ?3) ORDER BY start_ms, key LIMIT ?4`,
			camera, afterMS, afterKey, walkPage)
		if err != nil {
			return fmt.Errorf("catalog walk %s: %w", camera, err)
		}
		n := 0
		for rows.Next() {
			s := Segment{Camera: camera}
			var durMS int64
			if err := rows.Scan(&s.Key, &afterMS, &durMS, &s.Size); err != nil {
				rows.Close()
				return fmt.Errorf("catalog walk %s: %w", camera, err)
			}
			s.Start = time.UnixMilli(afterMS).UTC()
			s.Duration = time.Duration(durMS) * time.Millisecond
			afterKey = s.Key
			n++
			if err := checkRowKey(s); err != nil {
				rows.Close()
				return fmt.Errorf("catalog walk %s: %w", camera, err)
			}
			if err := fn(s); err != nil {
				rows.Close()
				return err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("catalog walk %s: %w", camera, err)
		}
		if n < walkPage {
			return nil
		}
	}
}

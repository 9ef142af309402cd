package storage

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"math"
	"net/url"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Segment is one catalog row: a durable segment object and its index.
type Segment struct {
	Camera    string
	Start     time.Time     // UTC, millisecond precision
	Duration  time.Duration // millisecond precision
	Key       string        // SegmentKey{Camera, Start, Duration}.String()
	Size      int64
	SHA256    [32]byte
	Fragments []Fragment
	// Init is the segment's init section (ftyp+moov) and Samples its sample table
	// (see SampleTableWriter), recorded so that playback need not read them from the
	// store. Both nil when unknown: a row catalogued before they were kept, or
	// footage they cannot describe. Catalog.Segments leaves them out;
	// SegmentsWithTables returns them.
	Init    []byte
	Samples []byte
}

// End returns the end of the segment.
func (s Segment) End() time.Time { return s.Start.Add(s.Duration) }

// Catalog indexes segments by camera and time in SQLite. It is safe for concurrent
// use; the store stays the source of truth, and Rebuild recreates the catalog from it.
type Catalog struct {
	db *sql.DB
}

const catalogSchema = `
CREATE TABLE IF NOT EXISTS segments (
	key         TEXT PRIMARY KEY,
	camera      TEXT NOT NULL,
	start_ms    INTEGER NOT NULL,
	duration_ms INTEGER NOT NULL,
	size        INTEGER NOT NULL,
	sha256      BLOB NOT NULL,
	fragments   BLOB NOT NULL, -- JSON [[offset, size, start_ns, duration_ns, key 0/1], ...]
	init_id     INTEGER,       -- inits.id of the segment's init section; NULL: not recorded
	samples     BLOB           -- sample table (SampleTableWriter); NULL: not recorded
);
-- Covers ListSegments (keyset pages in (start, key) order read the index only,
-- never the fragments blob) and the range scans of Segments.
CREATE INDEX IF NOT EXISTS segments_camera_start_key ON segments (camera, start_ms, key, duration_ms, size, sha256);
DROP INDEX IF EXISTS segments_camera_start;
-- Bounds how far before a range an overlapping segment can start, so range queries
-- stay index scans: see Segments.
CREATE INDEX IF NOT EXISTS segments_camera_duration ON segments (camera, duration_ms);
` + initsSchema

// catalogVersion is the catalog's schema version, kept in PRAGMA user_version. A
// catalog made before versioning (version 0 with a segments table) is version 1.
// Version 2 adds each segment's init section and sample table (upgradeCatalog; old
// rows keep working without them). Otherwise the catalog is a cache: a schema change
// may bump the version and have the catalog rebuilt from the store rather than
// migrated. Indexes are (re)made at every open by catalogSchema, so changing one
// needs no new version.
const catalogVersion = 2

// OpenCatalog opens or creates the catalog database at path, in WAL mode so that
// readers (playback) do not block the writer (recorder). A catalog written by a newer
// Straja is refused with an error matching ErrNewerSchema.
func OpenCatalog(path string) (*Catalog, error) {
	dsn := (&url.URL{Scheme: "file", Path: path}).String() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	if err := initCatalog(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return &Catalog{db: db}, nil
}

// initCatalog checks the schema version and creates what is missing, in one
// transaction.
func initCatalog(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > catalogVersion {
		return fmt.Errorf("%w: catalog schema version %d, this straja knows up to %d; "+
			"the catalog is a cache: run `straja catalog rebuild`", ErrNewerSchema, v, catalogVersion)
	}
	if _, err := tx.Exec(catalogSchema); err != nil {
		return err
	}
	if err := upgradeCatalog(tx); err != nil {
		return fmt.Errorf("upgrade catalog from version %d: %w", v, err)
	}
	if v < catalogVersion {
		if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, catalogVersion)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// RemoveCatalog deletes the catalog database at path with its WAL files, so that a
// rebuild can start over from a catalog this binary cannot open. A missing file is
// not an error.
func RemoveCatalog(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove catalog: %w", err)
		}
	}
	return nil
}

// Close closes the database.
func (c *Catalog) Close() error { return c.db.Close() }

// Add records seg, replacing any row with the same key. The key must be the one
// SegmentKey makes from seg's camera, start and duration, so that Rebuild, which
// only sees keys, recreates the same row.
func (c *Catalog) Add(ctx context.Context, seg Segment) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("catalog add %s: %w", seg.Key, err)
	}
	defer tx.Rollback()
	if err := addSegment(ctx, tx, seg); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("catalog add %s: %w", seg.Key, err)
	}
	return nil
}

// AddAll records every segment of segs, as Add does, in one transaction: all or
// none. It is for bulk loads (imports, tests of large catalogs).
func (c *Catalog) AddAll(ctx context.Context, segs iter.Seq[Segment]) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("catalog add: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, insertSegmentSQL)
	if err != nil {
		return fmt.Errorf("catalog add: %w", err)
	}
	defer stmt.Close()
	for seg := range segs {
		args, err := segmentArgs(ctx, tx, seg)
		if err != nil {
			return err
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("catalog add %s: %w", seg.Key, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("catalog add: %w", err)
	}
	return nil
}

const insertSegmentSQL = `INSERT OR REPLACE INTO segments
	(key, camera, start_ms, duration_ms, size, sha256, fragments, init_id, samples) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

// execQuerier is what adding a row needs of *sql.DB or *sql.Tx.
type execQuerier interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

func addSegment(ctx context.Context, db execQuerier, seg Segment) error {
	args, err := segmentArgs(ctx, db, seg)
	if err != nil {
		return err
	}
	if _, err = db.ExecContext(ctx, insertSegmentSQL, args...); err != nil {
		return fmt.Errorf("catalog add %s: %w", seg.Key, err)
	}
	return nil
}

// segmentArgs checks seg's key, records its init section, and returns the values of
// insertSegmentSQL.
func segmentArgs(ctx context.Context, db execQuerier, seg Segment) ([]any, error) {
	want := SegmentKey{Camera: seg.Camera, Start: seg.Start, Duration: seg.Duration}.String()
	if _, err := ParseSegmentKey(seg.Key); err != nil || seg.Key != want {
		return nil, fmt.Errorf("catalog add %s: %w: want %s for this camera, start and duration", seg.Key, ErrInvalidKey, want)
	}
	frags, err := encodeFragments(seg.Fragments)
	if err != nil {
		return nil, fmt.Errorf("catalog add %s: %w", seg.Key, err)
	}
	initID, err := putInit(ctx, db, seg.Init)
	if err != nil {
		return nil, fmt.Errorf("catalog add %s: %w", seg.Key, err)
	}
	return []any{seg.Key, seg.Camera, seg.Start.UnixMilli(), seg.Duration.Milliseconds(), seg.Size, seg.SHA256[:], frags,
		initID, nullBlob(seg.Samples)}, nil
}

// Segments returns the camera's segments that overlap [from, to), ordered by start,
// with their fragment lists (not their Init and Samples: see SegmentsWithTables).
func (c *Catalog) Segments(ctx context.Context, camera string, from, to time.Time) ([]Segment, error) {
	return c.segments(ctx, camera, from, to, false)
}

// segmentsSQL selects camera ?1's segments overlapping [?2, ?3); %s is the extra
// columns. start_ms >= from - longest duration lets SQLite scan only the index range
// around [from, to) instead of every older segment.
const segmentsSQL = `SELECT s.key, s.camera, s.start_ms, s.duration_ms, s.size, s.sha256, s.fragments%s
	FROM segments s%s
	WHERE s.camera = ?1 AND s.start_ms < ?3 AND s.start_ms + s.duration_ms > ?2
	  AND s.start_ms >= ?2 - (SELECT COALESCE(MAX(duration_ms), 0) FROM segments WHERE camera = ?1)
	ORDER BY s.start_ms, s.key`

var (
	segmentsQuery       = fmt.Sprintf(segmentsSQL, "", "")
	segmentsTablesQuery = fmt.Sprintf(segmentsSQL, ", s.samples, i.data", " LEFT JOIN inits i ON i.id = s.init_id")
)

func (c *Catalog) segments(ctx context.Context, camera string, from, to time.Time, tables bool) ([]Segment, error) {
	q := segmentsQuery
	if tables {
		q = segmentsTablesQuery
	}
	rows, err := c.db.QueryContext(ctx, q, camera, from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("catalog segments %s: %w", camera, err)
	}
	defer rows.Close()
	var segs []Segment
	var prevInit []byte
	for rows.Next() {
		var s Segment
		var startMS, durMS int64
		var sum, frags []byte
		dest := []any{&s.Key, &s.Camera, &startMS, &durMS, &s.Size, &sum, &frags}
		if tables {
			dest = append(dest, &s.Samples, &s.Init)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("catalog segments %s: %w", camera, err)
		}
		s.Start = time.UnixMilli(startMS).UTC()
		s.Duration = time.Duration(durMS) * time.Millisecond
		if err := checkRowKey(s); err != nil {
			return nil, fmt.Errorf("catalog segments %s: %w", camera, err)
		}
		copy(s.SHA256[:], sum)
		if s.Fragments, err = decodeFragments(frags); err != nil {
			return nil, fmt.Errorf("catalog segments %s: fragments of %s: %w", camera, s.Key, err)
		}
		if bytes.Equal(s.Init, prevInit) { // consecutive segments of a session share one
			s.Init = prevInit
		}
		prevInit = s.Init
		segs = append(segs, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog segments %s: %w", camera, err)
	}
	return segs, nil
}

// checkRowKey refuses a row whose key is not the key of its camera, start and
// duration (Add never writes one): an edited catalog must not make playback, export
// or retention read or delete another camera's footage, or other footage than the
// row says, through a key the store accepts.
func checkRowKey(s Segment) error {
	if !(SegmentKey{Camera: s.Camera, Start: s.Start, Duration: s.Duration}).Names(s.Key) {
		return fmt.Errorf("row %q does not name %s's segment at %s lasting %s (was the catalog edited?): %w",
			truncateKey(s.Key), s.Camera, s.Start.Format(time.RFC3339Nano), s.Duration, ErrInvalidKey)
	}
	return nil
}

func truncateKey(k string) string {
	if len(k) > 200 {
		return k[:200] + "…"
	}
	return k
}

// SegmentQuery selects one page of a camera's segments overlapping [From, To).
type SegmentQuery struct {
	Camera   string
	From, To time.Time
	// After is the key of the last segment of the previous page: the page starts
	// after it in (start, key) order. Empty for the first page.
	After string
	// Limit is the most segments in the page (at least 1).
	Limit int
}

// listSegmentsSQL selects a page (?6 rows) of camera ?1 overlapping [?2, ?3) after
// (?4 start, ?5 key). The lower bound on start_ms (the later of the cursor and ?2
// minus the camera's longest segment) makes it one range scan of the covering index.
const listSegmentsSQL = `SELECT key, start_ms, duration_ms, size, sha256
	FROM segments
	WHERE camera = ?1 AND start_ms < ?3 AND start_ms + duration_ms > ?2
	  AND start_ms >= max(?4, ?2 - (SELECT COALESCE(MAX(duration_ms), 0) FROM segments WHERE camera = ?1))
	  AND (start_ms > ?4 OR key > ?5)
	ORDER BY start_ms, key
	LIMIT ?6`

// ListSegments calls fn with each segment of q's page in (start, key) order, without
// fragment lists (Fragments is nil), and stops at the first error fn returns. It
// reads one index range and nothing else, so a page costs the same at any depth of
// any catalog, and rows are handed over as they are read, never collected.
func (c *Catalog) ListSegments(ctx context.Context, q SegmentQuery, fn func(Segment) error) error {
	if q.Limit < 1 {
		return fmt.Errorf("catalog list %s: limit %d: must be at least 1", q.Camera, q.Limit)
	}
	afterMS, afterKey := int64(math.MinInt64), ""
	if q.After != "" {
		k, err := ParseSegmentKey(q.After)
		if err != nil || k.Camera != q.Camera {
			return fmt.Errorf("catalog list %s: after %q: %w", q.Camera, q.After, ErrInvalidKey)
		}
		afterMS, afterKey = k.Start.UnixMilli(), q.After
	}
	rows, err := c.db.QueryContext(ctx, listSegmentsSQL,
		q.Camera, q.From.UnixMilli(), q.To.UnixMilli(), afterMS, afterKey, q.Limit)
	if err != nil {
		return fmt.Errorf("catalog list %s: %w", q.Camera, err)
	}
	defer rows.Close()
	var sum []byte
	for rows.Next() {
		s := Segment{Camera: q.Camera}
		var startMS, durMS int64
		if err := rows.Scan(&s.Key, &startMS, &durMS, &s.Size, &sum); err != nil {
			return fmt.Errorf("catalog list %s: %w", q.Camera, err)
		}
		s.Start = time.UnixMilli(startMS).UTC()
		s.Duration = time.Duration(durMS) * time.Millisecond
		copy(s.SHA256[:], sum)
		if err := fn(s); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("catalog list %s: %w", q.Camera, err)
	}
	return nil
}

// Keys returns every key in the catalog, sorted.
func (c *Catalog) Keys(ctx context.Context) ([]string, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT key FROM segments ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("catalog keys: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("catalog keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog keys: %w", err)
	}
	return keys, nil
}

// Delete forgets the segment with key; a missing key returns ErrNotFound.
func (c *Catalog) Delete(ctx context.Context, key string) error {
	res, err := c.db.ExecContext(ctx, `DELETE FROM segments WHERE key = ?`, key)
	if err != nil {
		return fmt.Errorf("catalog delete %s: %w", key, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("catalog delete %s: %w", key, ErrNotFound)
	}
	return nil
}

// rebuildBatch is how many rows Rebuild commits at a time, so the recorder's own
// Adds are not locked out for the whole rebuild.
const rebuildBatch = 200

// Rebuild clears the catalog and re-adds every segment in st: camera, start and
// duration come from the key, size, SHA-256 and fragments from scanning the object.
// Objects whose keys are not segment keys are ignored. An object that cannot be read
// or scanned is skipped and reported in the error, after the others are added.
// progress, if not nil, is called after each segment object. It returns the number
// of segments added.
func Rebuild(ctx context.Context, cat *Catalog, st Store, progress func(done, total int)) (int, error) {
	var keys []string
	err := st.List(ctx, "", func(o ObjectInfo) error {
		if strings.HasPrefix(o.Key, ReservedPrefix) {
			return nil
		}
		if _, err := ParseSegmentKey(o.Key); err == nil {
			keys = append(keys, o.Key)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("rebuild catalog: %w", err)
	}
	if _, err := cat.db.ExecContext(ctx, `DELETE FROM segments; DELETE FROM inits`); err != nil {
		return 0, fmt.Errorf("rebuild catalog: %w", err)
	}
	var (
		added   int
		skipped []error
		tx      *sql.Tx
	)
	defer func() {
		if tx != nil {
			tx.Rollback()
		}
	}()
	for i, key := range keys {
		if tx == nil {
			if tx, err = cat.db.BeginTx(ctx, nil); err != nil {
				return added, fmt.Errorf("rebuild catalog: %w", err)
			}
		}
		seg, err := scanObject(ctx, st, key)
		if ctx.Err() != nil {
			return added, fmt.Errorf("rebuild catalog: %w", ctx.Err())
		}
		if err != nil {
			skipped = append(skipped, err)
		} else {
			if err := addSegment(ctx, tx, seg); err != nil {
				return added, fmt.Errorf("rebuild catalog: %w", err)
			}
			added++
		}
		if (i+1)%rebuildBatch == 0 || i == len(keys)-1 {
			err := tx.Commit()
			tx = nil
			if err != nil {
				return added, fmt.Errorf("rebuild catalog: %w", err)
			}
		}
		if progress != nil {
			progress(i+1, len(keys))
		}
	}
	if len(skipped) > 0 {
		return added, fmt.Errorf("rebuild catalog: skipped %d of %d segments: %w",
			len(skipped), len(keys), errors.Join(skipped[:min(len(skipped), 5)]...))
	}
	return added, nil
}

// scanObject indexes one stored segment.
func scanObject(ctx context.Context, st Store, key string) (Segment, error) {
	k, err := ParseSegmentKey(key)
	if err != nil {
		return Segment{}, err
	}
	rc, err := st.Get(ctx, key, 0, -1)
	if err != nil {
		return Segment{}, err
	}
	defer rc.Close()
	idx, err := ScanSegment(rc)
	if err != nil {
		return Segment{}, fmt.Errorf("%s: %w", key, err)
	}
	return Segment{Camera: k.Camera, Start: k.Start, Duration: k.Duration, Key: key,
		Size: idx.Size, SHA256: idx.SHA256, Fragments: idx.Fragments, Init: idx.Init, Samples: idx.Samples}, nil
}

// encodeFragments packs fragments as rows of numbers: compact, and it keeps the
// storage format out of Fragment's JSON form.
func encodeFragments(fs []Fragment) ([]byte, error) {
	rows := make([][5]int64, len(fs))
	for i, f := range fs {
		rows[i] = [5]int64{f.Offset, f.Size, int64(f.Start), int64(f.Duration), 0}
		if f.Key {
			rows[i][4] = 1
		}
	}
	return json.Marshal(rows)
}

func decodeFragments(b []byte) ([]Fragment, error) {
	var rows [][5]int64
	if err := json.Unmarshal(b, &rows); err != nil || len(rows) == 0 {
		return nil, err
	}
	fs := make([]Fragment, len(rows))
	for i, r := range rows {
		fs[i] = Fragment{Offset: r[0], Size: r[1], Start: time.Duration(r[2]), Duration: time.Duration(r[3]), Key: r[4] == 1}
	}
	return fs, nil
}

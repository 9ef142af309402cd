package storage

import (
	"database/sql"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The listing reads one range of the covering index: no table rows (so no fragment
// blobs) and no sort, whatever the page's depth.
func TestListSegmentsQueryPlan(t *testing.T) {
	c, err := OpenCatalog(filepath.Join(t.TempDir(), "catalog.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rows, err := c.db.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+listSegmentsSQL, "gate", 0, 1, 0, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	got := strings.Join(plan, "\n")
	t.Logf("plan:\n%s", got)
	if !strings.Contains(got, "SEARCH segments USING COVERING INDEX segments_camera_start_key (camera=? AND start_ms>? AND start_ms<?)") ||
		strings.Contains(got, "TEMP B-TREE") {
		t.Errorf("listing is not one covering-index range scan without a sort:\n%s", got)
	}
}

// catalogV1 is the version 1 schema, as catalogs made before sample tables have it.
const catalogV1 = `
CREATE TABLE segments (key TEXT PRIMARY KEY, camera TEXT NOT NULL, start_ms INTEGER NOT NULL,
	duration_ms INTEGER NOT NULL, size INTEGER NOT NULL, sha256 BLOB NOT NULL, fragments BLOB NOT NULL);
CREATE INDEX segments_camera_start_key ON segments (camera, start_ms, key, duration_ms, size, sha256);
CREATE INDEX segments_camera_duration ON segments (camera, duration_ms);
PRAGMA user_version = 1;
INSERT INTO segments VALUES ('gate/2025/11/25/20251125t140000.000z_2000ms.mp4', 'gate', 1764079200000, 2000, 2000, x'00',
	'[[700,1300,0,2000000000,1]]');`

// A version 1 catalog is upgraded in place: its rows keep working without init
// sections or sample tables, and new rows have them.
func TestCatalogUpgradeFromVersion1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "catalog.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(catalogV1)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenCatalog(path)
	if err != nil {
		t.Fatalf("open a version 1 catalog: %v", err)
	}
	defer c.Close()
	var v int
	if err := c.db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != 2 {
		t.Fatalf("upgraded catalog has version %d (%v), want 2", v, err)
	}
	start := time.UnixMilli(1764079200000).UTC()
	k := SegmentKey{Camera: "gate", Start: start.Add(2 * time.Second), Duration: 2 * time.Second}
	init := []byte("ftyp and moov of the session")
	added := Segment{Camera: "gate", Start: k.Start, Duration: k.Duration, Key: k.String(), Size: 2000,
		Fragments: []Fragment{{Offset: 700, Size: 1300, Duration: 2 * time.Second, Key: true}},
		Init:      init, Samples: []byte{1, 1, 100, 1, 200, 1, 1, 0, 1, 0}}
	if err := c.Add(ctx, added); err != nil {
		t.Fatal(err)
	}
	segs, err := c.SegmentsWithTables(ctx, "gate", start, start.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 2 || segs[0].Init != nil || segs[0].Samples != nil || len(segs[0].Fragments) != 1 ||
		!reflect.DeepEqual(segs[1], added) {
		t.Fatalf("after the upgrade: %+v; want the old row without tables, then %+v", segs, added)
	}
	// Reopening changes nothing.
	c.Close()
	if c, err = OpenCatalog(path); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if again, err := c.SegmentsWithTables(ctx, "gate", start, start.Add(time.Minute)); err != nil || !reflect.DeepEqual(again, segs) {
		t.Fatalf("after reopening: %+v, %v", again, err)
	}
}

// Segments of one session store their init section once, and it goes with the last
// segment that uses it.
func TestCatalogInitsShared(t *testing.T) {
	ctx := t.Context()
	c, err := OpenCatalog(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inits := func() int {
		var n int
		if err := c.db.QueryRow(`SELECT COUNT(*) FROM inits`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	start := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var keys []string
	for i, init := range []string{"a", "a", "a", "b"} {
		k := SegmentKey{Camera: "gate", Start: start.Add(time.Duration(i) * time.Minute), Duration: time.Minute}
		seg := Segment{Camera: "gate", Start: k.Start, Duration: k.Duration, Key: k.String(), Size: 10,
			Fragments: []Fragment{{Offset: 1, Size: 9, Duration: time.Minute, Key: true}}, Init: []byte(init)}
		if err := c.Add(ctx, seg); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.String())
	}
	if n := inits(); n != 2 {
		t.Fatalf("%d init sections kept for 2 distinct ones", n)
	}
	segs, err := c.SegmentsWithTables(ctx, "gate", start, start.Add(time.Hour))
	if err != nil || len(segs) != 4 || string(segs[0].Init) != "a" || string(segs[2].Init) != "a" || string(segs[3].Init) != "b" {
		t.Fatalf("segments %+v, %v", segs, err)
	}
	if err := c.Delete(ctx, keys[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteMany(ctx, keys[1:2]); err != nil {
		t.Fatal(err)
	}
	if n := inits(); n != 2 {
		t.Fatalf("%d init sections kept while segments still use both", n)
	}
	if err := c.DeleteMany(ctx, keys[2:]); err != nil {
		t.Fatal(err)
	}
	if n := inits(); n != 0 {
		t.Fatalf("%d init sections kept after their segments were forgotten", n)
	}
	if err := c.Delete(ctx, keys[0]); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a forgotten key: %v, want ErrNotFound", err)
	}
}

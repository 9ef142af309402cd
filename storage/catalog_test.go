package storage_test

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage"
)

var t0 = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)

func seg(camera string, start time.Duration, dur time.Duration) storage.Segment {
	k := storage.SegmentKey{Camera: camera, Start: t0.Add(start), Duration: dur}
	return storage.Segment{
		Camera: camera, Start: k.Start, Duration: dur, Key: k.String(), Size: int64(dur / time.Millisecond),
		SHA256:    sha256.Sum256([]byte(k.String())),
		Fragments: []storage.Fragment{{Offset: 800, Size: 1000, Duration: dur, Key: true}},
	}
}

func openCatalog(t testing.TB, path string) *storage.Catalog {
	t.Helper()
	c, err := storage.OpenCatalog(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func starts(segs []storage.Segment) []time.Duration {
	var d []time.Duration
	for _, s := range segs {
		d = append(d, s.Start.Sub(t0))
	}
	return d
}

func TestCatalogSegments(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "catalog db?.sqlite")
	c := openCatalog(t, path)
	s := time.Second
	all := []storage.Segment{
		seg("gate", 4*s, 2*s), seg("gate", 0, 2*s), seg("gate", 2*s, 2*s), // added out of order
		seg("gate", -90*s, 85*s), // a long one, ending at -5 s
		seg("lobby", 1*s, 2*s),
	}
	for _, sg := range all {
		if err := c.Add(ctx, sg); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []struct {
		from, to time.Duration
		want     []time.Duration
	}{
		{1 * s, 3 * s, []time.Duration{0, 2 * s}},
		{2 * s, 4 * s, []time.Duration{2 * s}}, // [0,2) ends where the range starts
		{0, 1500 * time.Millisecond, []time.Duration{0}},
		{6 * s, 10 * s, nil},                                         // after the last segment
		{-6 * s, -5500 * time.Millisecond, []time.Duration{-90 * s}}, // inside the long one, near its end
		{-5 * s, 0, nil},                                             // the gap between the long segment and the next
		{-time.Hour, time.Hour, []time.Duration{-90 * s, 0, 2 * s, 4 * s}},
	} {
		got, err := c.Segments(ctx, "gate", t0.Add(q.from), t0.Add(q.to))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(starts(got), q.want) {
			t.Errorf("Segments(gate, %v, %v) starts = %v, want %v", q.from, q.to, starts(got), q.want)
		}
	}
	// The database is the named file, in WAL mode.
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("no write-ahead log next to the catalog: %v", err)
	}
	got, err := c.Segments(ctx, "lobby", t0, t0.Add(time.Minute))
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], all[4]) {
		t.Fatalf("Segments(lobby) = %+v, %v; want the row as added", got, err)
	}
	if got[0].End() != t0.Add(3*s) {
		t.Errorf("End() = %v, want %v", got[0].End(), t0.Add(3*s))
	}
}

func TestCatalogAddDelete(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "catalog.db")
	c := openCatalog(t, path)
	a := seg("gate", 0, 2*time.Second)
	if err := c.Add(ctx, a); err != nil {
		t.Fatal(err)
	}
	a.Size, a.Fragments = 4242, nil
	if err := c.Add(ctx, a); err != nil { // replaces, e.g. when an upload is retried
		t.Fatal(err)
	}
	got, err := c.Segments(ctx, "gate", t0, t0.Add(time.Hour))
	if err != nil || len(got) != 1 || got[0].Size != 4242 || got[0].Fragments != nil {
		t.Fatalf("after adding a key twice Segments = %+v, %v; want the second row only", got, err)
	}

	bad := seg("gate", 10*time.Second, 2*time.Second)
	bad.Duration = 3 * time.Second // key no longer describes the row
	if err := c.Add(ctx, bad); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Add with a key that does not match the row: err = %v, want ErrInvalidKey", err)
	}

	b := seg("lobby", 0, time.Second)
	if err := c.Add(ctx, b); err != nil {
		t.Fatal(err)
	}
	// The catalog survives a restart.
	c.Close()
	c = openCatalog(t, path)
	keys, err := c.Keys(ctx)
	if err != nil || !reflect.DeepEqual(keys, []string{a.Key, b.Key}) {
		t.Fatalf("Keys after reopen = %q, %v; want [%s %s]", keys, err, a.Key, b.Key)
	}
	if err := c.Delete(ctx, a.Key); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, a.Key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second Delete err = %v, want ErrNotFound", err)
	}
	if keys, _ := c.Keys(ctx); !reflect.DeepEqual(keys, []string{b.Key}) {
		t.Errorf("Keys after Delete = %q, want [%s]", keys, b.Key)
	}
}

// TestRebuild loses the catalog and recreates it from a disk store alone, the way an
// operator recovers from a lost or corrupt catalog.
func TestRebuild(t *testing.T) {
	ctx := t.Context()
	st, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	orig := openCatalog(t, filepath.Join(t.TempDir(), "orig.db"))
	body := mediacommonFMP4(t, 25)
	var want []storage.Segment
	for i, camera := range []string{"gate", "gate", "gate", "lobby"} {
		b := body
		if i == 2 {
			b = body[:len(body)-500] // a segment stored with a torn last fragment
		}
		idx, err := storage.ScanSegment(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		k := storage.SegmentKey{Camera: camera, Start: t0.Add(time.Duration(i) * 3 * time.Second), Duration: idx.Duration}
		sg := storage.Segment{Camera: camera, Start: k.Start, Duration: k.Duration, Key: k.String(),
			Size: idx.Size, SHA256: idx.SHA256, Fragments: idx.Fragments, Init: idx.Init, Samples: idx.Samples}
		if sg.Init == nil || sg.Samples == nil {
			t.Fatalf("segment %d indexed without its init section or sample table", i)
		}
		if err := st.Put(ctx, sg.Key, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
		if err := orig.Add(ctx, sg); err != nil {
			t.Fatal(err)
		}
		want = append(want, sg)
	}
	// Objects that are not segments, or not readable as one.
	if err := st.Put(ctx, "exports/clip-1.json", strings.NewReader("{}"), 2); err != nil {
		t.Fatal(err)
	}
	corrupt := storage.SegmentKey{Camera: "gate", Start: t0.Add(time.Minute), Duration: time.Second}.String()
	if err := st.Put(ctx, corrupt, strings.NewReader("not an mp4"), 10); err != nil {
		t.Fatal(err)
	}

	rebuilt := openCatalog(t, filepath.Join(t.TempDir(), "rebuilt.db"))
	stale := seg("ghost", 0, time.Second) // a row whose object is gone
	if err := rebuilt.Add(ctx, stale); err != nil {
		t.Fatal(err)
	}
	var done, total int
	n, err := storage.Rebuild(ctx, rebuilt, st, func(d, tt int) { done, total = d, tt })
	if n != 4 || err == nil || !strings.Contains(err.Error(), corrupt) {
		t.Fatalf("Rebuild = %d, %v; want 4 segments and an error naming %s", n, err, corrupt)
	}
	if done != 5 || total != 5 {
		t.Errorf("last progress = %d/%d, want 5/5", done, total)
	}
	// Rows as written and as rebuilt are the same, with and without the init
	// sections and sample tables.
	var wantNoTables []storage.Segment
	for _, s := range want {
		s.Init, s.Samples = nil, nil
		wantNoTables = append(wantNoTables, s)
	}
	for _, cat := range []*storage.Catalog{orig, rebuilt} {
		var got, gotTables []storage.Segment
		for _, camera := range []string{"gate", "lobby", "ghost"} {
			s, err := cat.Segments(ctx, camera, t0.Add(-time.Hour), t0.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, s...)
			if s, err = cat.SegmentsWithTables(ctx, camera, t0.Add(-time.Hour), t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			gotTables = append(gotTables, s...)
		}
		if !reflect.DeepEqual(got, wantNoTables) {
			t.Fatalf("catalog rows differ from the segments written:\n got %+v\nwant %+v", got, wantNoTables)
		}
		if !reflect.DeepEqual(gotTables, want) {
			t.Fatalf("catalog rows with tables differ from the segments written:\n got %+v\nwant %+v", gotTables, want)
		}
	}
	// The torn segment as the rebuilt catalog has it: the row keeps the object's size,
	// and its index only the whole fragments, one fewer than an intact segment's.
	gate, err := rebuilt.Segments(ctx, "gate", t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(gate) != 3 || gate[2].Key != want[2].Key {
		t.Fatalf("rebuilt catalog: gate segments %+v, want the torn one third", gate)
	}
	torn, intact := gate[2], gate[0]
	info, err := st.Stat(ctx, torn.Key)
	if err != nil {
		t.Fatal(err)
	}
	last := torn.Fragments[len(torn.Fragments)-1]
	if torn.Size != info.Size || last.Offset+last.Size >= info.Size || len(torn.Fragments) != len(intact.Fragments)-1 {
		t.Errorf("torn segment in the rebuilt catalog: size %d, %d fragments ending at %d; want the object's %d bytes and the %d whole fragments, ending before the torn tail",
			torn.Size, len(torn.Fragments), last.Offset+last.Size, info.Size, len(intact.Fragments)-1)
	}
}

// TestRebuildSkipsReservedPrefix checks that what Straja keeps under the reserved
// prefix (state backups) is neither catalogued nor reported as a bad segment.
func TestRebuildSkipsReservedPrefix(t *testing.T) {
	ctx := t.Context()
	st, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	body := mediacommonFMP4(t, 25)
	idx, err := storage.ScanSegment(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	key := storage.SegmentKey{Camera: "gate", Start: t0, Duration: idx.Duration}.String()
	for k, b := range map[string][]byte{
		key: body,
		storage.ReservedPrefix + "state/state-20261130t081500z.db": []byte("SQLite format 3\x00"),
		storage.ReservedPrefix + "state/readme.txt":                []byte("x"),
	} {
		if err := st.Put(ctx, k, bytes.NewReader(b), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	cat := openCatalog(t, filepath.Join(t.TempDir(), "catalog.db"))
	var total int
	n, err := storage.Rebuild(ctx, cat, st, func(_, tt int) { total = tt })
	if n != 1 || err != nil || total != 1 {
		t.Fatalf("Rebuild = %d, %v (progress total %d); want the one segment, no error", n, err, total)
	}
	keys, err := cat.Keys(ctx)
	if err != nil || len(keys) != 1 || keys[0] != key {
		t.Fatalf("catalog keys = %q, %v; want [%s]", keys, err, key)
	}
}

func catalogVersion(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCatalogSchemaVersion(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()

	// A catalog from before versioning: the same table, user_version 0.
	old := filepath.Join(dir, "old.db")
	db, err := sql.Open("sqlite", old)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`CREATE TABLE segments (key TEXT PRIMARY KEY, camera TEXT NOT NULL, start_ms INTEGER NOT NULL,
		duration_ms INTEGER NOT NULL, size INTEGER NOT NULL, sha256 BLOB NOT NULL, fragments BLOB NOT NULL);
		INSERT INTO segments VALUES ('gate/2026/11/25/20261125t140000.000z_2000ms.mp4', 'gate', 1764079200000, 2000, 2, x'00', '[]')`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	c, err := storage.OpenCatalog(old)
	if err != nil {
		t.Fatalf("open an unversioned catalog: %v", err)
	}
	keys, err := c.Keys(ctx)
	c.Close()
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys of the adopted catalog = %q, %v; want its one row", keys, err)
	}
	if v := catalogVersion(t, old); v != 2 {
		t.Errorf("adopted catalog has version %d, want 2", v)
	}
	openCatalog(t, filepath.Join(dir, "new.db")).Close()
	if v := catalogVersion(t, filepath.Join(dir, "new.db")); v != 2 {
		t.Errorf("new catalog has version %d, want 2", v)
	}

	// One from a newer Straja is refused and left alone.
	newer := filepath.Join(dir, "newer.db")
	db, err = sql.Open("sqlite", newer)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`PRAGMA user_version = 99`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := storage.OpenCatalog(newer); err == nil {
		c.Close()
		t.Fatal("opened a catalog from a newer version")
	} else if !errors.Is(err, storage.ErrNewerSchema) || !strings.Contains(err.Error(), "straja catalog rebuild") {
		t.Fatalf("error = %v; want ErrNewerSchema advising `straja catalog rebuild`", err)
	}
	if v := catalogVersion(t, newer); v != 99 {
		t.Errorf("refused catalog's version changed to %d", v)
	}
	if err := storage.RemoveCatalog(newer); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(newer); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("RemoveCatalog left %s: %v", newer, err)
	}
}

// Walking every page, whatever its size, lists exactly what Segments lists, in the same
// order, without fragment lists; segments with the same start are not skipped at a
// page boundary.
func TestListSegmentsPages(t *testing.T) {
	ctx := t.Context()
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.sqlite"))
	s := time.Second
	all := []storage.Segment{
		seg("gate", -90*s, 85*s), seg("gate", 0, 2*s), seg("gate", 0, 3*s), seg("gate", 0, 1*s), // same start
		seg("gate", 2*s, 2*s), seg("gate", 4*s, 2*s), seg("gate", 6*s, 2*s), seg("lobby", 1*s, 2*s),
	}
	for _, sg := range all {
		if err := c.Add(ctx, sg); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []struct{ from, to time.Duration }{{-time.Hour, time.Hour}, {-6 * s, 5 * s}, {1 * s, 3 * s}, {10 * s, 20 * s}} {
		from, to := t0.Add(r.from), t0.Add(r.to)
		want, err := c.Segments(ctx, "gate", from, to)
		if err != nil {
			t.Fatal(err)
		}
		var wantKeys []string
		for _, sg := range want {
			wantKeys = append(wantKeys, sg.Key)
		}
		for limit := 1; limit <= len(all)+1; limit++ {
			var got []string
			after := ""
			for page := 0; ; page++ {
				if page > len(all) {
					t.Fatalf("limit %d: pages never end", limit)
				}
				n := 0
				err := c.ListSegments(ctx, storage.SegmentQuery{Camera: "gate", From: from, To: to, After: after, Limit: limit},
					func(sg storage.Segment) error {
						if sg.Fragments != nil || sg.Size == 0 || sg.SHA256 == ([32]byte{}) || sg.Camera != "gate" {
							t.Errorf("listed segment %+v: want size, hash and camera, no fragments", sg)
						}
						if k := (storage.SegmentKey{Camera: sg.Camera, Start: sg.Start, Duration: sg.Duration}).String(); k != sg.Key {
							t.Errorf("listed key %s does not match its start and duration (%s)", sg.Key, k)
						}
						got = append(got, sg.Key)
						after = sg.Key
						n++
						return nil
					})
				if err != nil {
					t.Fatal(err)
				}
				if n < limit {
					break
				}
			}
			if !reflect.DeepEqual(got, wantKeys) {
				t.Errorf("[%v, %v) in pages of %d: %q, want %q", r.from, r.to, limit, got, wantKeys)
			}
		}
	}
	// A cursor of another camera or not a key at all is refused.
	for _, after := range []string{seg("lobby", 1*s, 2*s).Key, "nope"} {
		err := c.ListSegments(ctx, storage.SegmentQuery{Camera: "gate", From: t0, To: t0.Add(s), After: after, Limit: 1},
			func(storage.Segment) error { return nil })
		if !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("after %q: err %v, want ErrInvalidKey", after, err)
		}
	}
}

// AddAll adds a whole batch, or nothing of it when one segment is bad.
func TestCatalogAddAll(t *testing.T) {
	ctx := t.Context()
	c := openCatalog(t, filepath.Join(t.TempDir(), "catalog.sqlite"))
	s := time.Second
	good := []storage.Segment{seg("gate", 0, 2*s), seg("gate", 2*s, 2*s)}
	if err := c.AddAll(ctx, slices.Values(good)); err != nil {
		t.Fatal(err)
	}
	bad := seg("gate", 4*s, 2*s)
	bad.Key = seg("gate", 5*s, 2*s).Key
	if err := c.AddAll(ctx, slices.Values([]storage.Segment{seg("gate", 6*s, 2*s), bad})); !errors.Is(err, storage.ErrInvalidKey) {
		t.Fatalf("batch with a bad key: %v, want ErrInvalidKey", err)
	}
	keys, err := c.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{good[0].Key, good[1].Key}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys %q, want only the first batch %q", keys, want)
	}
}

// TestCatalogEditedRowKey: a row whose key was edited to name another camera's
// segment, another segment of the same camera or a path out of the store is refused
// by the reads that playback, export and retention use, naming the row.
func TestCatalogEditedRowKey(t *testing.T) {
	s := time.Second
	for _, tc := range []struct{ name, key string }{
		{"other camera", seg("lobby", 2*s, 2*s).Key},
		{"other segment", seg("gate", 60*s, 2*s).Key},
		{"out of the store", "gate/../../../etc/passwd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "catalog.db")
			c := openCatalog(t, path)
			for _, sg := range []storage.Segment{seg("gate", 0, 2*s), seg("gate", 2*s, 2*s), seg("lobby", 0, 2*s)} {
				if err := c.Add(ctx, sg); err != nil {
					t.Fatal(err)
				}
			}
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(ctx, `UPDATE segments SET key = ? WHERE key = ?`, tc.key,
				seg("gate", 2*s, 2*s).Key); err != nil {
				t.Fatal(err)
			}
			if segs, err := c.Segments(ctx, "gate", t0, t0.Add(10*s)); !errors.Is(err, storage.ErrInvalidKey) ||
				!strings.Contains(err.Error(), tc.key) {
				t.Errorf("Segments over the edited row: %d segments, %v; want ErrInvalidKey naming %s", len(segs), err, tc.key)
			}
			if err := c.Walk(ctx, "gate", func(storage.Segment) error { return nil }); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Walk over the edited row: %v; want ErrInvalidKey", err)
			}
			if segs, err := c.Segments(ctx, "gate", t0, t0.Add(time.Second)); err != nil || len(segs) != 1 {
				t.Errorf("Segments beside the edited row: %d, %v; want the one untouched", len(segs), err)
			}
		})
	}
}

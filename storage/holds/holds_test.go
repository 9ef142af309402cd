package holds

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/state"
)

var t0 = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

var testCameras = []Camera{{ID: "bastion-gate", Site: "bastion"}, {ID: "bastion-yard", Site: "bastion"},
	{ID: "palat-hall", Site: "palat"}}

// minuteKeys are n one-minute segments of camera from start.
func minuteKeys(camera string, start time.Time, n int) []string {
	var out []string
	for i := range n {
		out = append(out, storage.SegmentKey{Camera: camera, Start: start.Add(time.Duration(i) * time.Minute),
			Duration: time.Minute}.String())
	}
	return out
}

func putAll(t *testing.T, st storage.Store, keys []string) {
	t.Helper()
	for _, k := range keys {
		body := bytes.Repeat([]byte{'v'}, 1000)
		// As the spool stores segments: with their SHA-256.
		if err := storage.PutHashed(t.Context(), st, k, bytes.NewReader(body), int64(len(body)), sha256.Sum256(body)); err != nil {
			t.Fatal(err)
		}
	}
}

func openState(t *testing.T, dir string) *state.State {
	t.Helper()
	st, err := state.Open(t.Context(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func openRegistry(t *testing.T, db *state.State, store storage.Store, now func() time.Time, reg prometheus.Registerer) *Registry {
	t.Helper()
	r, err := Open(t.Context(), Options{State: db, Store: store, Cameras: func() []Camera { return testCameras },
		Now: now, Registerer: reg}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// TestDiskHolds: on the disk backend a held segment cannot be deleted through the
// store until the hold is released; holds outlive the state database.
func TestDiskHolds(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	store, err := storage.NewDisk(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	gate := minuteKeys("bastion-gate", t0, 10)
	yard := minuteKeys("bastion-yard", t0, 10)
	hall := minuteKeys("palat-hall", t0, 10)
	for _, ks := range [][]string{gate, yard, hall} {
		putAll(t, store, ks)
	}
	now := t0.Add(time.Hour)
	reg := prometheus.NewRegistry()
	r := openRegistry(t, openState(t, dir), store, func() time.Time { return now }, reg)

	// Minutes 3 and 4 of the gate (segments 2..4 overlap [2:30, 5:00)).
	h, err := r.Create(ctx, state.Hold{Cameras: []string{"bastion-gate"}, From: t0.Add(150 * time.Second),
		To: t0.Add(5 * time.Minute), Reason: "Dosar 123/P/2026", By: "ana"})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	site, err := r.Create(ctx, state.Hold{Site: "palat", From: t0, To: t0.Add(time.Minute), Reason: "incident hol",
		Expires: now.Add(time.Hour), By: "ana"})
	if err != nil {
		t.Fatal(err)
	}
	wantHeld := append(slices.Clone(gate[2:5]), hall[0])
	for _, k := range append(append(slices.Clone(gate), yard...), hall...) {
		err := store.Delete(ctx, k)
		held := slices.Contains(wantHeld, k)
		if held != errors.Is(err, storage.ErrHeld) || !held && err != nil {
			t.Errorf("delete %s: %v; held %v", k, err, held)
		}
	}
	if got := gauge(r.heldSegments.WithLabelValues("bastion-gate")); got != 3 {
		t.Errorf("held segments of bastion-gate = %v, want 3", got)
	}
	if got := gauge(r.heldBytes.WithLabelValues("palat-hall")); got != 1000 {
		t.Errorf("held bytes of palat-hall = %v, want 1000", got)
	}
	in, _ := r.Holds(ctx)
	if len(in) != 2 {
		t.Fatalf("holds in force = %+v, want 2", in)
	}

	// The site hold expires: its footage is no longer held.
	now = now.Add(2 * time.Hour)
	if err := r.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, hall[0]); err != nil {
		t.Errorf("delete after the hold expired: %v", err)
	}
	if _, err := r.Release(ctx, h.ID, "ion", ""); err == nil {
		t.Error("released without a reason")
	}
	rel, err := r.Release(ctx, h.ID, "ion", "dosar clasat")
	if err != nil {
		t.Fatal(err)
	}
	if rel.ReleasedBy != "ion" || rel.ReleaseReason != "dosar clasat" || rel.Released.IsZero() {
		t.Errorf("released hold = %+v", rel)
	}
	if _, err := r.Release(ctx, h.ID, "ion", "again"); !errors.Is(err, ErrReleased) {
		t.Errorf("second release: %v, want ErrReleased", err)
	}
	if err := store.Delete(ctx, gate[2]); err != nil {
		t.Errorf("delete after release: %v", err)
	}
	if got := gauge(r.heldSegments.WithLabelValues("bastion-gate")); got != 0 {
		t.Errorf("held segments after release = %v, want 0", got)
	}

	// A lost state database: a new one imports both holds from the store, the
	// release with its who and why included.
	r.Close()
	fresh := openState(t, t.TempDir())
	r2 := openRegistry(t, fresh, store, func() time.Time { return now }, nil)
	all, err := r2.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != site.ID || all[1].ID != h.ID || all[1].ReleaseReason != "dosar clasat" ||
		all[1].ReleasedBy != "ion" || all[0].Site != "palat" || !all[0].Expires.Equal(site.Expires) ||
		!all[1].From.Equal(h.From) || all[1].Reason != "Dosar 123/P/2026" || all[1].By != "ana" {
		t.Errorf("holds after a lost database = %+v", all)
	}
	if n, err := Import(ctx, fresh, store); err != nil || n != 0 {
		t.Errorf("a second import = %d, %v; want nothing to do", n, err)
	}
}

// TestImportRelease: a restored older database that still has a hold the store knows
// was released takes the release.
func TestImportRelease(t *testing.T) {
	ctx := t.Context()
	store, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	putAll(t, store, minuteKeys("bastion-gate", t0, 2))
	db := openState(t, t.TempDir())
	r := openRegistry(t, db, store, time.Now, nil)
	h, err := r.Create(ctx, state.Hold{Cameras: []string{"bastion-gate"}, From: t0, To: t0.Add(time.Minute),
		Reason: "furt", By: "ana"})
	if err != nil {
		t.Fatal(err)
	}
	old := openState(t, t.TempDir())
	if err := old.AddHold(ctx, h); err != nil { // the backup, made before the release
		t.Fatal(err)
	}
	if _, err := r.Release(ctx, h.ID, "ion", "clasat"); err != nil {
		t.Fatal(err)
	}
	r.Close()
	r2 := openRegistry(t, old, store, time.Now, nil)
	got, err := r2.Get(ctx, h.ID)
	if err != nil || got.Released.IsZero() || got.ReleaseReason != "clasat" {
		t.Errorf("hold in the restored database = %+v, %v; want released", got, err)
	}
	if r2.Held(minuteKeys("bastion-gate", t0, 1)[0]) {
		t.Error("footage of a released hold still held after import")
	}
}

func TestCreateRefuses(t *testing.T) {
	store, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := openRegistry(t, openState(t, t.TempDir()), store, time.Now, nil)
	for _, h := range []state.Hold{
		{Cameras: []string{"bastion-gate"}, From: t0, To: t0, Reason: "x"},
		{From: t0, To: t0.Add(time.Minute), Reason: "x"},
		{Cameras: []string{"bastion-gate"}, From: t0, To: t0.Add(time.Minute), Reason: " "},
	} {
		if _, err := r.Create(context.Background(), h); err == nil {
			t.Errorf("created %+v", h)
		}
	}
}

func gauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}

// The held metrics count from the catalog when there is one: a site hold over 1,500
// one-second segments (more than a page) of one camera.
func TestHeldMetricsFromCatalog(t *testing.T) {
	ctx := t.Context()
	cat, err := storage.OpenCatalog(filepath.Join(t.TempDir(), "catalog.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	segs := func(yield func(storage.Segment) bool) {
		for i := range 2000 {
			k := storage.SegmentKey{Camera: "palat-hall", Start: t0.Add(time.Duration(i) * time.Second), Duration: time.Second}
			if !yield(storage.Segment{Camera: k.Camera, Start: k.Start, Duration: k.Duration, Key: k.String(), Size: 10,
				Fragments: []storage.Fragment{{Offset: 0, Size: 10, Duration: time.Second, Key: true}}}) {
				return
			}
		}
	}
	if err := cat.AddAll(ctx, segs); err != nil {
		t.Fatal(err)
	}
	store, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, Options{State: openState(t, t.TempDir()), Store: store, Segments: cat,
		Cameras: func() []Camera { return testCameras }, Now: func() time.Time { return t0.Add(time.Hour) }},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Create(ctx, state.Hold{Site: "palat", From: t0.Add(100 * time.Second), To: t0.Add(1600 * time.Second),
		Reason: "incident", By: "ana"}); err != nil {
		t.Fatal(err)
	}
	if n, b := gauge(r.heldSegments.WithLabelValues("palat-hall")), gauge(r.heldBytes.WithLabelValues("palat-hall")); n != 1500 || b != 15000 {
		t.Errorf("held palat-hall: %v segments, %v bytes; want 1500 and 15000", n, b)
	}
}

// downStore is a store whose server is down while down is set.
type downStore struct {
	storage.Store
	down bool
}

var errDown = errors.New("store unreachable")

func (d *downStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if d.down {
		return errDown
	}
	return d.Store.Put(ctx, key, r, size)
}

func (d *downStore) List(ctx context.Context, prefix string, fn func(storage.ObjectInfo) error) error {
	if d.down {
		return errDown
	}
	return d.Store.List(ctx, prefix, fn)
}

// With the store down, a hold still takes effect at once, the service still starts,
// and the next sweep completes the copy beside the footage.
func TestStoreDown(t *testing.T) {
	ctx := t.Context()
	disk, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := &downStore{Store: disk, down: true}
	r := openRegistry(t, openState(t, t.TempDir()), store, time.Now, nil)
	h, err := r.Create(ctx, state.Hold{Cameras: []string{"bastion-gate"}, From: t0, To: t0.Add(time.Minute),
		Reason: "furt", By: "ana"})
	if err != nil {
		t.Fatalf("create with the store down: %v", err)
	}
	if !r.Held(minuteKeys("bastion-gate", t0, 1)[0]) {
		t.Error("the hold is not in force while the store is down")
	}
	if _, err := disk.Stat(ctx, Prefix+h.ID+".json"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("copy with the store down: %v", err)
	}
	if err := r.Sweep(ctx); err == nil {
		t.Error("a sweep with the store down reported nothing")
	}
	store.down = false
	if err := r.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := readHold(ctx, disk, Prefix+h.ID+".json"); err != nil || got.Reason != "furt" {
		t.Errorf("copy after the store came back: %+v, %v", got, err)
	}
}

package retention_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	itest "github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/retention"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/storage/storetest"
)

var (
	cams  = []retention.Camera{{ID: "bastion-gate", Site: "bastion"}, {ID: "palat-hall", Site: "palat"}}
	known = retention.Known{Cameras: map[string]string{"bastion-gate": "bastion", "palat-hall": "palat"},
		Sites: map[string]bool{"bastion": true, "palat": true}}
)

// rig is a store, a catalog and a state database with footage in them.
type rig struct {
	st    storage.Store
	cat   *storage.Catalog
	state *state.State
	reg   *prometheus.Registry
}

func newRig(t *testing.T, st storage.Store) *rig {
	t.Helper()
	dir := t.TempDir()
	if st == nil {
		var err error
		if st, err = storage.NewDisk(filepath.Join(dir, "segments")); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := storage.OpenCatalog(filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	sdb, err := state.Open(t.Context(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	return &rig{st: st, cat: cat, state: sdb, reg: prometheus.NewRegistry()}
}

// record stores n one-minute segments of camera ending at end, object then row, as
// the recorder does.
func (g *rig) record(t *testing.T, camera string, n int, end time.Time) []string {
	t.Helper()
	var keys []string
	for i := range n {
		start := end.Add(-time.Duration(n-i) * time.Minute).Truncate(time.Millisecond)
		key := storage.SegmentKey{Camera: camera, Start: start, Duration: time.Minute}.String()
		data := bytes.Repeat([]byte{byte(i)}, 1000)
		if err := g.st.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		if err := g.cat.Add(t.Context(), storage.Segment{Camera: camera, Start: start, Duration: time.Minute, Key: key,
			Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	return keys
}

func (g *rig) runner(t *testing.T, o retention.RunnerOptions) *retention.Runner {
	t.Helper()
	if o.Catalog == nil {
		o.Catalog = retention.CatalogDeleter{CatalogSource: retention.CatalogSource{Catalog: g.cat}}
	}
	if o.Store == nil {
		o.Store = g.st
	}
	o.State = g.state
	o.Cameras = func() []retention.Camera { return cams }
	o.Known = func() retention.Known { return known }
	r, err := retention.NewRunner(t.Context(), o, g.reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// consistent checks that storage and catalog hold the same keys, and returns them.
func (g *rig) consistent(t *testing.T) []string {
	t.Helper()
	var stored []string
	if err := g.st.List(t.Context(), "", func(o storage.ObjectInfo) error {
		stored = append(stored, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cat, err := g.cat.Keys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stored, cat) {
		t.Fatalf("storage and catalog differ:\nstorage %q\ncatalog %q", stored, cat)
	}
	return cat
}

var runNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func clock() func() time.Time { return func() time.Time { return runNow } }

func TestRunDeletesExpired(t *testing.T) {
	testRunDeletesExpired(t, newRig(t, nil))
}

// TestRunDeletesExpiredS3 is the same run against a real MinIO.
func TestRunDeletesExpiredS3(t *testing.T) {
	o := storetest.S3FromEnv(t)
	st, err := storage.NewS3(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	testRunDeletesExpired(t, newRig(t, st))
}

func testRunDeletesExpired(t *testing.T, g *rig) {
	old := g.record(t, "bastion-gate", 30, runNow.Add(-20*time.Minute))
	recent := g.record(t, "bastion-gate", 10, runNow)
	hall := g.record(t, "palat-hall", 10, runNow)
	var audited []retention.Run
	r := g.runner(t, retention.RunnerOptions{Now: clock(), BatchSize: 7,
		FilePolicies: []retention.Policy{{Name: "gate", Cameras: []string{"bastion-gate"}, MaxAge: 15 * time.Minute,
			Source: retention.SourceFile}},
		OnRun: func(_ context.Context, run retention.Run) { audited = append(audited, run) }})
	run, err := r.Run(t.Context(), retention.KindManual, "", false)
	if err != nil {
		t.Fatal(err)
	}
	left := g.consistent(t)
	want := append(slices.Clone(recent), hall...)
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("after the run: %d segments left, want the %d recent ones (%d old gone)", len(left), len(want), len(old))
	}
	if len(run.Cameras) != 1 || run.Cameras[0].Deleted != 30 || run.Cameras[0].DeletedBytes != 30000 ||
		run.Cameras[0].Policy != "gate" || run.Ended.IsZero() {
		t.Errorf("run = %+v, want 30 segments of bastion-gate deleted under policy gate", run)
	}
	runs, err := r.Runs(t.Context(), 10)
	if err != nil || len(runs) != 1 || runs[0].ID != run.ID || runs[0].Cameras[0].Deleted != 30 || runs[0].Kind != "manual" {
		t.Errorf("runs = %+v, %v; want the run recorded", runs, err)
	}
	if len(audited) != 1 || audited[0].ID != run.ID {
		t.Errorf("OnRun saw %+v, want the run", audited)
	}
	if n := testutil.ToFloat64(mustCounter(t, g.reg, "straja_retention_deleted_segments_total", "manual")); n != 30 {
		t.Errorf("deleted segments metric = %v, want 30", n)
	}
}

// mustCounter finds a metric's value with the given first label value.
func mustCounter(t *testing.T, reg *prometheus.Registry, name, label string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label {
				v := m.GetCounter().GetValue()
				return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return v })
			}
		}
	}
	t.Fatalf("metric %s{%s} not found", name, label)
	return nil
}

// failingCatalog forgets nothing the first time: a run killed between deleting the
// objects and removing their rows.
type failingCatalog struct {
	retention.CatalogDeleter
	fails atomic.Int32
}

func (c *failingCatalog) DeleteMany(ctx context.Context, keys []string) error {
	if c.fails.Add(-1) >= 0 {
		return errors.New("killed")
	}
	return c.CatalogDeleter.DeleteMany(ctx, keys)
}

func TestRunCutShortIsCompletedByTheNext(t *testing.T) {
	g := newRig(t, nil)
	g.record(t, "bastion-gate", 30, runNow.Add(-31*24*time.Hour))
	recent := g.record(t, "bastion-gate", 10, runNow)
	fc := &failingCatalog{CatalogDeleter: retention.CatalogDeleter{CatalogSource: retention.CatalogSource{Catalog: g.cat}}}
	fc.fails.Store(1)
	r := g.runner(t, retention.RunnerOptions{Now: clock(), Catalog: fc, BatchSize: 20})
	first, err := r.Run(t.Context(), retention.KindManual, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if first.Cameras[0].Errors == 0 {
		t.Fatalf("first run = %+v, want an error for the cut-short batch", first)
	}
	stored, _ := g.cat.Keys(t.Context())
	if len(stored) != 40 {
		t.Fatalf("catalog after the cut-short run has %d rows, want all 40 (rows go after objects)", len(stored))
	}
	if _, err := r.Run(t.Context(), retention.KindManual, "", false); err != nil {
		t.Fatal(err)
	}
	if left := g.consistent(t); !slices.Equal(left, recent) {
		t.Errorf("after the second run: %q, want the 10 recent segments", left)
	}
}

func TestRunSafetyStopAndForce(t *testing.T) {
	g := newRig(t, nil)
	g.record(t, "bastion-gate", 60, runNow)
	jumped := func() time.Time { return runNow.Add(365 * 24 * time.Hour) }
	r := g.runner(t, retention.RunnerOptions{Now: jumped})
	run, err := r.Run(t.Context(), retention.KindScheduled, "default", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Cameras) != 1 || run.Cameras[0].SafetyStop == "" || run.Cameras[0].Deleted != 0 {
		t.Fatalf("run after a clock jump = %+v, want a safety stop and nothing deleted", run)
	}
	if n := len(g.consistent(t)); n != 60 {
		t.Errorf("%d segments left, want 60", n)
	}
	if v := testutil.ToFloat64(mustCounter(t, g.reg, "straja_retention_safety_stops_total", "bastion-gate")); v != 1 {
		t.Errorf("safety stops metric = %v, want 1", v)
	}
	if _, err := r.Run(t.Context(), retention.KindManual, "", true); err != nil {
		t.Fatal(err)
	}
	if n := len(g.consistent(t)); n != 0 {
		t.Errorf("%d segments left after a forced run, want 0", n)
	}
}

func TestRunKeepsHeld(t *testing.T) {
	g := newRig(t, nil)
	keys := g.record(t, "bastion-gate", 30, runNow.Add(-31*24*time.Hour))
	g.record(t, "palat-hall", 5, runNow) // recording now: no clock jump
	hold := retention.Hold{Cameras: []string{"bastion-gate"}, From: runNow.Add(-31*24*time.Hour - 10*time.Minute),
		To: runNow.Add(-31*24*time.Hour - 5*time.Minute)}
	r := g.runner(t, retention.RunnerOptions{Now: clock(), Holds: retention.StaticHolds{hold}})
	if _, err := r.Run(t.Context(), retention.KindManual, "", false); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, k := range g.consistent(t) {
		if k < "palat" {
			left = append(left, k)
		}
	}
	if !slices.Equal(left, keys[20:25]) {
		t.Errorf("left %q, want the 5 held segments %q", left, keys[20:25])
	}
}

// blockingStore holds DeleteMany until released, so a run lasts past its next time.
type blockingStore struct {
	storage.Store
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingStore) DeleteMany(ctx context.Context, keys []string) (map[string]error, error) {
	b.once.Do(func() {
		close(b.entered)
		<-b.release
	})
	return b.Store.DeleteMany(ctx, keys)
}

func TestScheduleFiresAndSkipsOverlap(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for two schedule ticks")
	}
	g := newRig(t, nil)
	g.record(t, "bastion-gate", 10, time.Now().Add(-time.Hour))
	g.record(t, "palat-hall", 10, time.Now())
	bs := &blockingStore{Store: g.st, entered: make(chan struct{}), release: make(chan struct{})}
	r := g.runner(t, retention.RunnerOptions{Store: bs, FilePolicies: []retention.Policy{
		{Name: "gate", Cameras: []string{"bastion-gate"}, MaxAge: 30 * time.Minute, Schedule: "@every 2s",
			Source: retention.SourceFile}}})
	r.Start(t.Context())
	select { // the schedule fired
	case <-bs.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no scheduled run within 30s of an @every 2s schedule")
	}
	itest.WaitFor(t, 30*time.Second, "the overlapping run to be skipped", func() bool {
		return testutil.ToFloat64(skipped(t, g.reg)) >= 1
	})
	close(bs.release)
	itest.WaitFor(t, 30*time.Second, "the run to finish", func() bool {
		runs, _ := r.Runs(t.Context(), 10)
		return len(runs) > 0 && !runs[len(runs)-1].Ended.IsZero()
	})
	runs, _ := r.Runs(t.Context(), 10)
	first := runs[len(runs)-1]
	if first.Kind != "scheduled" || first.Policy != "gate" || len(first.Cameras) != 1 || first.Cameras[0].Deleted != 10 {
		t.Errorf("first scheduled run = %+v, want 10 segments of bastion-gate deleted", first)
	}
}

func skipped(t *testing.T, reg *prometheus.Registry) prometheus.Collector {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "straja_retention_runs_skipped_total" {
			v := mf.GetMetric()[0].GetCounter().GetValue()
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return v })
		}
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return 0 })
}

func TestPolicyChanges(t *testing.T) {
	g := newRig(t, nil)
	file := retention.Policy{Name: "palat", Sites: []string{"palat"}, MaxAge: time.Hour, Source: retention.SourceFile}
	r := g.runner(t, retention.RunnerOptions{Now: clock(), FilePolicies: []retention.Policy{file}})
	ctx := t.Context()
	if _, err := r.PutPolicy(ctx, retention.Policy{Name: "palat", Sites: []string{"palat"}, MaxAge: time.Hour}, "it.ana"); !errors.Is(err, retention.ErrReadOnly) {
		t.Errorf("changing a file policy: %v, want ErrReadOnly", err)
	}
	var pe retention.PolicyErrors
	_, err := r.PutPolicy(ctx, retention.Policy{Name: "gate", Cameras: []string{"no-such"}, MaxAge: -time.Hour,
		Schedule: "nope"}, "it.ana")
	if !errors.As(err, &pe) || len(pe) != 3 {
		t.Fatalf("bad policy: %v, want three field errors", err)
	}
	p, err := r.PutPolicy(ctx, retention.Policy{Name: "gate", Cameras: []string{"bastion-gate"}, MaxAge: 10 * time.Minute,
		Schedule: "@every 10m"}, "it.ana")
	if err != nil || p.Source != "api" || p.UpdatedBy != "it.ana" {
		t.Fatalf("put: %+v, %v", p, err)
	}
	if got := r.Resolve("bastion-gate", "bastion").Name; got != "gate" {
		t.Errorf("bastion-gate resolves to %q, want gate", got)
	}
	// Persisted: a new runner on the same state database has it.
	r2, err := retention.NewRunner(ctx, retention.RunnerOptions{State: g.state, FilePolicies: []retention.Policy{file},
		Known: func() retention.Known { return known }}, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(tlog{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got := r2.Resolve("bastion-gate", "bastion"); got.Name != "gate" || got.MaxAge != 10*time.Minute || got.UpdatedBy != "it.ana" {
		t.Errorf("after restart bastion-gate resolves to %+v, want gate", got)
	}
	if err := r.DeletePolicy(ctx, "gate", "it.ana"); err != nil {
		t.Fatal(err)
	}
	if got := r.Resolve("bastion-gate", "bastion").Name; got != "default" {
		t.Errorf("after delete bastion-gate resolves to %q, want default", got)
	}
	if err := r.DeletePolicy(ctx, "gate", "it.ana"); !errors.Is(err, retention.ErrNoPolicy) {
		t.Errorf("deleting a missing policy: %v, want ErrNoPolicy", err)
	}
}

func TestEmergencyDeletesOldestUnheld(t *testing.T) {
	g := newRig(t, nil)
	gate := g.record(t, "bastion-gate", 10, runNow.Add(-time.Hour))
	hall := g.record(t, "palat-hall", 10, runNow.Add(-30*time.Minute))
	hold := retention.Hold{Cameras: []string{"bastion-gate"}, From: runNow.Add(-70 * time.Minute), To: runNow.Add(-67 * time.Minute)}
	// A 25000-byte disk: 20000 used, min_free 12000 means 7000 must go.
	space := func(string) (int64, int64, error) {
		keys, _ := g.cat.Keys(context.Background())
		return 25000 - int64(len(keys))*1000, 25000, nil
	}
	r := g.runner(t, retention.RunnerOptions{Now: clock(), Holds: retention.StaticHolds{hold},
		Guard: retention.Guard{Path: "/unused", MinFreeBytes: 12000, Space: space}})
	run, err := r.Emergency(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	left := g.consistent(t)
	// The hold covers bastion-gate's first three; its other seven are the oldest
	// unheld footage.
	var want []string
	want = append(want, gate[0:3]...)
	want = append(want, hall...)
	if !slices.Equal(left, want) {
		t.Errorf("left %q\nwant %q", left, want)
	}
	if run.Kind != "emergency" || len(run.Cameras) != 1 || run.Cameras[0].Deleted != 7 {
		t.Errorf("run = %+v, want an emergency run deleting 7", run)
	}
	// Within limits now: nothing happens, nothing is recorded.
	if run, err := r.Emergency(t.Context()); err != nil || run.ID != 0 {
		t.Errorf("second emergency = %+v, %v; want none", run, err)
	}
}

// TestEmergencyAllHeld: short of space with only held footage left, one emergency run
// says so, and the next checks record nothing for a while.

func TestEmergencyAllHeld(t *testing.T) {
	g := newRig(t, nil)
	g.record(t, "bastion-gate", 5, runNow.Add(-time.Hour))
	hold := retention.Hold{Cameras: []string{"bastion-gate"}, From: runNow.Add(-2 * time.Hour), To: runNow}
	r := g.runner(t, retention.RunnerOptions{Now: clock(), Holds: retention.StaticHolds{hold},
		Guard: retention.Guard{Path: "/unused", MinFreeBytes: 1 << 30,
			Space: func(string) (int64, int64, error) { return 0, 1 << 40, nil }}})
	run, err := r.Emergency(t.Context())
	if err == nil || run.ID == 0 || !strings.Contains(run.Error, "held") {
		t.Fatalf("emergency with all footage held = %+v, %v; want a recorded run saying so", run, err)
	}
	if n := len(g.consistent(t)); n != 5 {
		t.Errorf("%d segments left, want the 5 held", n)
	}
	if again, err := r.Emergency(t.Context()); err != nil || again.ID != 0 {
		t.Errorf("the next check = %+v, %v; want no new run right after a futile one", again, err)
	}
}

// tlog writes log lines to the test's log.
type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) { w.t.Log(string(bytes.TrimSpace(p))); return len(p), nil }

package export_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/export"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
	"github.com/straja-nvr/straja/storage/state"
)

// The exporter runs a queued export to done, with the bundle's five files; its
// workers stop with the context; an export left running by a stopped service is
// failed at the next start, saying so.
func TestExporter(t *testing.T) {
	st, cat, db, keys, dir := exporterFixture(t)
	opts := export.Options{Dir: filepath.Join(dir, "exports"), DB: db, Workers: 1, Queue: 1, MaxRange: time.Hour,
		Footage: cat, Builder: &export.Builder{Store: st, Catalog: cat, Keys: keys}}
	var heard struct {
		sync.Mutex
		states []string
		last   float64
	}
	opts.OnProgress = func(req export.Request, st string, p float64) {
		heard.Lock()
		defer heard.Unlock()
		if n := len(heard.states); n == 0 || heard.states[n-1] != st {
			heard.states = append(heard.states, st)
		}
		heard.last = p
	}
	ex, err := export.NewExporter(t.Context(), opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { ex.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	s, err := ex.Submit(t.Context(), export.Request{Camera: "gate", From: t0.Add(time.Second), To: t0.Add(10 * time.Second),
		Reason: "test", User: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "the export done", func() bool {
		s, err = ex.Get(t.Context(), s.ID)
		return err == nil && (s.State == state.ExportDone || s.State == state.ExportFailed)
	})
	if s.State != state.ExportDone || s.Progress != 1 || s.ClipSize == 0 || len(s.ClipSHA256) != 64 {
		t.Fatalf("export = %+v", s)
	}
	// Its progress was announced as it ran, then its end (the live event stream's feed).
	testutil.WaitFor(t, 10*time.Second, "the end announced", func() bool {
		heard.Lock()
		defer heard.Unlock()
		return len(heard.states) > 0 && heard.states[len(heard.states)-1] == state.ExportDone
	})
	heard.Lock()
	if strings.Join(heard.states, ",") != "running,done" || heard.last != 1 {
		t.Errorf("progress heard: %v ending at %v; want running, then done at 1", heard.states, heard.last)
	}
	heard.Unlock()
	opts.OnProgress = nil
	var zb bytes.Buffer
	if err := ex.WriteBundle(t.Context(), &zb, s.ID); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(zb.Bytes()), int64(zb.Len()))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		rc, _ := f.Open()
		var b bytes.Buffer
		_, _ = b.ReadFrom(rc)
		rc.Close()
		if err := os.WriteFile(filepath.Join(out, f.Name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(names, ",") != "clip.mp4,manifest.json,manifest.json.sig,key.pem,README.txt" {
		t.Errorf("bundle = %v", names)
	}
	files := export.FilesFor(filepath.Join(out, "clip.mp4"), "")
	pemBytes, _ := os.ReadFile(filepath.Join(out, "key.pem"))
	pub, err := export.ParsePublicPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := export.VerifyFiles(files, export.OneKey(pub)); err != nil {
		t.Errorf("the bundle does not verify: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(opts.Dir, s.ID)); len(entries) != 3 {
		t.Errorf("the export's directory holds %d entries, want the clip, manifest and signature (no segment copies left)", len(entries))
	}

	// A row left running, as by a crash: the next start fails it.
	if err := db.AddExport(t.Context(), state.Export{ID: "00000000000000aa", Camera: "gate", From: t0, To: t0.Add(time.Second),
		Reason: "r", User: "admin"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetExportState(t.Context(), "00000000000000aa", state.ExportRunning, ""); err != nil {
		t.Fatal(err)
	}
	again, err := export.NewExporter(t.Context(), opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := again.Get(t.Context(), "00000000000000aa"); err != nil || r.State != state.ExportFailed ||
		!strings.Contains(r.Error, "stopped") {
		t.Errorf("an export left running after a restart: %+v, %v", r, err)
	}
}

// An export that would leave less than MinFree on its disk is refused before it
// writes anything.
func TestBuildChecksSpace(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	playbacktest.Record(t, st, cat, "gate", t0, 2, 2*time.Second)
	keys, err := export.OpenKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	b := &export.Builder{Store: st, Catalog: cat, Keys: keys, MinFree: 1 << 60}
	_, err = b.Build(t.Context(), export.Request{Camera: "gate", From: t0, To: t0.Add(4 * time.Second), Reason: "r"},
		export.Files{Clip: filepath.Join(out, "c.mp4"), Manifest: filepath.Join(out, "m.json"), Signature: filepath.Join(out, "m.json.sig")}, nil)
	if !errors.Is(err, export.ErrNoSpace) {
		t.Fatalf("Build on a disk too small: %v, want ErrNoSpace", err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("a refused export left %d files", len(entries))
	}
}

// Delete removes a finished export's files and keeps its row, saying who deleted it and
// why; it refuses no reason, an unknown export and one in progress. Expire deletes, as
// the service, what is older than Keep, and sweeps what a cut-short deletion left.
func TestExporterDeleteAndExpire(t *testing.T) {
	st, cat, db, keys, dir := exporterFixture(t)
	exportsDir := filepath.Join(dir, "exports")
	ex, err := export.NewExporter(t.Context(), export.Options{Dir: exportsDir, DB: db, Workers: 1, Queue: 4,
		MaxRange: time.Hour, Keep: time.Hour, Footage: cat, Builder: &export.Builder{Store: st, Catalog: cat, Keys: keys}},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { ex.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	var ids []string
	for range 2 {
		s, err := ex.Submit(t.Context(), export.Request{Camera: "gate", From: t0.Add(time.Second),
			To: t0.Add(5 * time.Second), Reason: "dosar 7/2026", User: "admin.ana"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	for _, id := range ids {
		testutil.WaitFor(t, 30*time.Second, "export "+id+" done", func() bool {
			s, err := ex.Get(t.Context(), id)
			return err == nil && s.State == state.ExportDone
		})
	}
	if err := db.AddExport(t.Context(), state.Export{ID: "00000000000000aa", Camera: "gate", From: t0, To: t0.Add(time.Second),
		Reason: "r", User: "admin.ana"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetExportState(t.Context(), "00000000000000aa", state.ExportRunning, ""); err != nil {
		t.Fatal(err)
	}

	var ie *export.InputError
	if _, err := ex.Delete(t.Context(), ids[0], "admin.dan", "  "); !errors.As(err, &ie) || ie.Field != "reason" {
		t.Errorf("delete without a reason: %v, want an InputError naming reason", err)
	}
	if _, err := ex.Delete(t.Context(), "ffffffffffffffff", "admin.dan", "x"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("delete an unknown export: %v, want ErrNotFound", err)
	}
	if _, err := ex.Delete(t.Context(), "00000000000000aa", "admin.dan", "x"); !errors.Is(err, state.ErrExportBusy) {
		t.Errorf("delete a running export: %v, want ErrExportBusy", err)
	}
	if _, err := os.Stat(filepath.Join(exportsDir, ids[0], export.ClipFile)); err != nil {
		t.Fatalf("a refused delete removed files, or there were none: %v", err)
	}
	s, err := ex.Delete(t.Context(), ids[0], "admin.dan", "dosar clasat")
	if err != nil || s.Deleted.IsZero() || s.DeletedBy != "admin.dan" || s.DeleteReason != "dosar clasat" || s.User != "admin.ana" {
		t.Fatalf("delete = %+v, %v", s, err)
	}
	if _, err := os.Stat(filepath.Join(exportsDir, ids[0])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the deleted export's directory is still there: %v", err)
	}
	if _, err := ex.File(t.Context(), ids[0], export.ClipFile); !errors.Is(err, state.ErrExportDeleted) {
		t.Errorf("file of a deleted export: %v, want ErrExportDeleted", err)
	}
	if err := ex.WriteBundle(t.Context(), &bytes.Buffer{}, ids[0]); !errors.Is(err, state.ErrExportDeleted) {
		t.Errorf("bundle of a deleted export: %v, want ErrExportDeleted", err)
	}

	// Not yet an hour old: Expire keeps it.
	if got, err := ex.Expire(t.Context(), time.Now()); err != nil || len(got) != 0 {
		t.Fatalf("expire now = %+v, %v; want nothing", got, err)
	}
	if _, err := os.Stat(filepath.Join(exportsDir, ids[1], export.ClipFile)); err != nil {
		t.Fatal(err)
	}
	// A deletion cut short left its files: the next Expire sweeps them.
	if err := os.MkdirAll(filepath.Join(exportsDir, ids[0]), 0o750); err != nil {
		t.Fatal(err)
	}
	got, err := ex.Expire(t.Context(), time.Now().Add(61*time.Minute))
	if err != nil || len(got) != 1 || got[0].ID != ids[1] || got[0].DeletedBy != export.ServiceUser ||
		!strings.Contains(got[0].DeleteReason, "export.keep (1h)") {
		t.Fatalf("expire an hour later = %+v, %v; want %s deleted by the service", got, err, ids[1])
	}
	for _, id := range ids {
		if _, err := os.Stat(filepath.Join(exportsDir, id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("export %s's directory is still there after expiry: %v", id, err)
		}
	}
	if s, err := ex.Get(t.Context(), "00000000000000aa"); err != nil || !s.Deleted.IsZero() {
		t.Errorf("a running export was expired: %+v, %v", s, err)
	}
}

// One user cannot take every place in the queue: past two thirds of them their next
// export is refused (ErrBusy) while another user's is queued.
func TestExporterUserShare(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	playbacktest.Record(t, st, cat, "gate", t0, 2, 4*time.Second)
	dir := t.TempDir()
	db, err := state.Open(t.Context(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	opts := export.Options{Dir: filepath.Join(dir, "exports"), DB: db, Workers: 1, Queue: 3, MaxRange: time.Hour,
		Footage: cat, Builder: &export.Builder{Store: st, Catalog: cat}}
	ex, err := export.NewExporter(t.Context(), opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// Not run: every export stays queued.
	submit := func(user string) error {
		_, err := ex.Submit(t.Context(), export.Request{Camera: "gate", From: t0.Add(time.Second), To: t0.Add(5 * time.Second),
			Reason: "test", User: user})
		return err
	}
	for i := range 3 {
		if err := submit("admin"); err != nil {
			t.Fatalf("admin's export %d of 4 places: %v", i+1, err)
		}
	}
	if err := submit("admin"); !errors.Is(err, export.ErrBusy) {
		t.Errorf("admin's fourth export of 4 places: %v; want ErrBusy", err)
	}
	if err := submit("admin2"); err != nil {
		t.Errorf("another user's export while admin holds 3 of 4 places: %v", err)
	}
}

// A row of an edited state database whose ID is a path ("../victim") names no files:
// downloading, deleting and expiring it touch nothing outside the exports directory.
func TestExporterEditedRowID(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	dir := t.TempDir()
	db, err := state.Open(t.Context(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	victim := filepath.Join(dir, "victim")
	if err := os.MkdirAll(victim, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(victim, export.ClipFile), []byte("footage"), 0o600); err != nil {
		t.Fatal(err)
	}
	const id = "../victim"
	if err := db.AddExport(t.Context(), state.Export{ID: id, Camera: "gate", From: t0, To: t0.Add(time.Second),
		Reason: "r", User: "admin"}); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishExport(t.Context(), id, 7, "00", "k"); err != nil {
		t.Fatal(err)
	}
	opts := export.Options{Dir: filepath.Join(dir, "exports"), DB: db, Workers: 1, MaxRange: time.Hour, Keep: time.Hour,
		Footage: cat, Builder: &export.Builder{Store: st, Catalog: cat}}
	ex, err := export.NewExporter(t.Context(), opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := ex.File(t.Context(), id, export.ClipFile); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("File of %q: %q, %v; want ErrNotFound", id, p, err)
	}
	if _, err := ex.Delete(t.Context(), id, "admin", "cleanup"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Delete of %q: %v; want ErrNotFound", id, err)
	}
	if _, err := ex.Expire(t.Context(), time.Now().Add(24*time.Hour)); err == nil {
		t.Errorf("Expire over a row with ID %q: no error", id)
	}
	if _, err := os.Stat(filepath.Join(victim, export.ClipFile)); err != nil {
		t.Errorf("the file outside the exports directory: %v; want it kept", err)
	}
}

// exporterFixture records three 4-second segments of camera gate on disk and opens a
// state database and signing keys in a temporary directory, returned for the exports.
func exporterFixture(t *testing.T) (*storage.Disk, *storage.Catalog, *state.State, *export.Keys, string) {
	t.Helper()
	st, cat := playbacktest.NewDisk(t)
	playbacktest.Record(t, st, cat, "gate", t0, 3, 4*time.Second)
	dir := t.TempDir()
	db, err := state.Open(t.Context(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys, err := export.OpenKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	return st, cat, db, keys, dir
}

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
	"github.com/straja-nvr/straja/storage/export"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
	"github.com/straja-nvr/straja/storage/state"
)

// The exporter runs a queued export to done, with the bundle's five files; its
// workers stop with the context; an export left running by a stopped service is
// failed at the next start, saying so.
func TestExporter(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	playbacktest.Record(t, st, cat, "gate", t0, 3, 4*time.Second)
	dir := t.TempDir()
	db, err := state.Open(t.Context(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := export.OpenKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
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

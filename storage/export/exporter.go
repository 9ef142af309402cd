package export

import (
	"archive/zip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/straja-nvr/straja/storage/state"
)

// The files of a finished export, in its directory and under /api/v1/exports/{id}/.
const (
	ClipFile      = "clip.mp4"
	ManifestFile  = "manifest.json"
	SignatureFile = "manifest.json.sig"
	BundleFile    = "bundle.zip" // made when downloaded, from the three and the key
	KeyFile       = "key.pem"    // in the bundle: the signing key's public half
	ReadmeFile    = "README.txt" // in the bundle: how to check it with standard tools
)

// ErrBusy is returned (wrapped) by Submit when the queue is full.
var ErrBusy = errors.New("too many exports in progress")

// ErrNotReady is returned (wrapped) for a file of an export that is not done.
var ErrNotReady = errors.New("export not finished")

// Status is an export's row and, while it runs, its progress (0..1).
type Status struct {
	state.Export
	Progress float64
}

// Options configure an Exporter.
type Options struct {
	Dir      string // data_dir/exports: one directory per export
	Builder  *Builder
	DB       *state.State
	Workers  int           // exports running at once (at least 1)
	Queue    int           // exports waiting beyond them
	MaxRange time.Duration // the longest range one export covers
	// Keep is how long a finished export's files stay before Expire deletes them;
	// 0 keeps them forever.
	Keep time.Duration
	// Footage, when set, lets Submit refuse a range with nothing recorded at once
	// rather than queue an export bound to fail.
	Footage SegmentSource
	// OnProgress, if set, hears an export's progress as it runs (each whole percent),
	// and its end: state done or failed. It must not block.
	OnProgress func(req Request, state string, progress float64)
}

// Exporter runs the service's exports: a bounded queue, a few workers, state in the
// state database and files under Dir. Safe for concurrent use; Run runs the workers.
type Exporter struct {
	o     Options
	log   *slog.Logger
	queue chan Request
	slots chan struct{} // one per export queued or running: full means busy

	mu       sync.Mutex
	progress map[string]float64
	byUser   map[string]int // exports queued or running per user
}

// userShare is how many of the places one user may take: two thirds, rounded up (6
// of the default 9), so that one user's exports cannot keep everyone else's out.
func (e *Exporter) userShare() int { return (2*cap(e.slots) + 2) / 3 }

// NewExporter makes Dir and marks exports a previous run left unfinished as failed.
func NewExporter(ctx context.Context, o Options, log *slog.Logger) (*Exporter, error) {
	if o.Workers < 1 {
		o.Workers = 1
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("exports: %w", err)
	}
	n, err := o.DB.FailUnfinishedExports(ctx, "the service stopped before the export finished; request it again")
	if err != nil {
		return nil, err
	}
	if n > 0 {
		log.Warn("exports left unfinished by the last run are marked failed", "count", n)
	}
	cap := o.Workers + o.Queue
	return &Exporter{o: o, log: log, queue: make(chan Request, cap), slots: make(chan struct{}, cap),
		progress: make(map[string]float64), byUser: make(map[string]int)}, nil
}

// Run runs the workers until ctx is done, then waits for them; an export running
// then fails ("the service stopped").
func (e *Exporter) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range e.o.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case req := <-e.queue:
					e.run(ctx, req)
				}
			}
		})
	}
	wg.Wait()
}

// Check reports what Submit would refuse req for: *InputError naming the field
// (reason, a bad range, a range with no stored footage).
func (e *Exporter) Check(ctx context.Context, req Request) error {
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		return &InputError{"reason", "is required: say why the footage leaves the system"}
	}
	if len(reason) > 1000 {
		return &InputError{"reason", "is longer than 1000 bytes"}
	}
	if err := CheckRange(req.From, req.To, e.o.MaxRange); err != nil {
		return err
	}
	if e.o.Footage != nil {
		segs, err := e.o.Footage.Segments(ctx, req.Camera, req.From, req.To)
		if err != nil {
			return err
		}
		if len(segs) == 0 {
			return &InputError{"from", fmt.Sprintf("camera %s has no stored footage from %s to %s",
				req.Camera, req.From.UTC().Format(time.RFC3339), req.To.UTC().Format(time.RFC3339))}
		}
	}
	return nil
}

// Submit checks (Check) and queues an export; req.ID is set here. Errors:
// *InputError for a bad field, ErrBusy when the queue is full.
func (e *Exporter) Submit(ctx context.Context, req Request) (Status, error) {
	if err := e.Check(ctx, req); err != nil {
		return Status{}, err
	}
	req.Reason = strings.TrimSpace(req.Reason)
	e.mu.Lock()
	n := e.byUser[req.User]
	if n < e.userShare() {
		e.byUser[req.User] = n + 1
	}
	e.mu.Unlock()
	if n >= e.userShare() {
		return Status{}, fmt.Errorf("%w: you have %d exports running or queued; try again when one has finished",
			ErrBusy, n)
	}
	select {
	case e.slots <- struct{}{}:
	default:
		e.userDone(req.User)
		return Status{}, fmt.Errorf("%w: %d running or queued; try again when one has finished", ErrBusy, cap(e.slots))
	}
	req.ID = newID()
	row := state.Export{ID: req.ID, Camera: req.Camera, From: req.From.UTC().Truncate(time.Millisecond),
		To: req.To.UTC().Truncate(time.Millisecond), Reason: req.Reason, User: req.User}
	if err := e.o.DB.AddExport(ctx, row); err != nil {
		<-e.slots
		e.userDone(req.User)
		return Status{}, err
	}
	e.queue <- req // never blocks: the queue holds as many as there are slots
	return e.Get(ctx, req.ID)
}

// Get returns one export's state; an unknown id returns an error matching
// state.ErrNotFound.
func (e *Exporter) Get(ctx context.Context, id string) (Status, error) {
	row, err := e.o.DB.Export(ctx, id)
	if err != nil {
		return Status{}, err
	}
	return e.status(row), nil
}

// List returns the newest exports (at most limit) of cameras (nil: all).
func (e *Exporter) List(ctx context.Context, cameras []string, limit int) ([]Status, error) {
	rows, err := e.o.DB.Exports(ctx, cameras, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Status, len(rows))
	for i, r := range rows {
		out[i] = e.status(r)
	}
	return out, nil
}

func (e *Exporter) status(row state.Export) Status {
	st := Status{Export: row}
	switch row.State {
	case state.ExportDone:
		st.Progress = 1
	case state.ExportRunning:
		e.mu.Lock()
		st.Progress = e.progress[row.ID]
		e.mu.Unlock()
	}
	return st
}

// Keys returns the signing keys' public halves.
func (e *Exporter) Keys() ([]PublicKey, error) { return e.o.Builder.Keys.List() }

// File returns the path of one file of a finished export: ClipFile, ManifestFile or
// SignatureFile.
func (e *Exporter) File(ctx context.Context, id, name string) (string, error) {
	switch name {
	case ClipFile, ManifestFile, SignatureFile:
	default:
		return "", fmt.Errorf("export file %q: %w", name, state.ErrNotFound)
	}
	row, err := e.o.DB.Export(ctx, id)
	if err != nil {
		return "", err
	}
	if err := ready(row); err != nil {
		return "", err
	}
	dir, err := e.dir(row.ID)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

// WriteBundle writes the zip of a finished export: the clip, the manifest, its
// signature, the public key and a README saying how to check them with standard
// tools. Entries are stored, not compressed: video does not compress, and so the zip
// costs a copy, not CPU.
func (e *Exporter) WriteBundle(ctx context.Context, w io.Writer, id string) error {
	row, err := e.o.DB.Export(ctx, id)
	if err != nil {
		return err
	}
	if err := ready(row); err != nil {
		return err
	}
	pub, err := e.o.Builder.Keys.Public(row.KeyID)
	if err != nil {
		return err
	}
	dir, err := e.dir(row.ID)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(w)
	add := func(name string, modified time.Time, r io.Reader) error {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store, Modified: modified})
		if err != nil {
			return err
		}
		_, err = io.Copy(fw, r)
		return err
	}
	for _, name := range []string{ClipFile, ManifestFile, SignatureFile} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("export %s: %w", id, err)
		}
		err = add(name, row.Updated, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("export %s bundle: %w", id, err)
		}
	}
	if err := add(KeyFile, row.Updated, strings.NewReader(string(PublicPEM(pub)))); err != nil {
		return err
	}
	if err := add(ReadmeFile, row.Updated, strings.NewReader(Readme(row.KeyID))); err != nil {
		return err
	}
	return zw.Close()
}

// ready says why row's files cannot be read, if they cannot.
func ready(row state.Export) error {
	if !row.Deleted.IsZero() {
		return fmt.Errorf("export %s was deleted %s by %s: %w", row.ID, row.Deleted.Format(time.RFC3339), row.DeletedBy,
			state.ErrExportDeleted)
	}
	if row.State != state.ExportDone {
		return fmt.Errorf("export %s is %s: %w", row.ID, row.State, ErrNotReady)
	}
	return nil
}

// ServiceUser is who deletes the exports whose Keep has passed.
const ServiceUser = "service"

// Delete deletes a finished export's files and marks its row deleted by by, for
// reason (required: *InputError). The row stays, so the list still says who made it
// and who deleted it. Errors match state.ErrNotFound, state.ErrExportBusy (queued or
// running) or state.ErrExportDeleted.
func (e *Exporter) Delete(ctx context.Context, id, by, reason string) (Status, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return Status{}, &InputError{"reason", "is required: say why the export is deleted"}
	}
	if len(reason) > 1000 {
		return Status{}, &InputError{"reason", "is longer than 1000 bytes"}
	}
	dir, err := e.dir(id)
	if err != nil {
		return Status{}, err
	}
	row, err := e.o.DB.DeleteExport(ctx, id, by, reason)
	if err != nil {
		return Status{}, err
	}
	// Marked first: files a failed removal leaves are swept by the next Expire.
	if err := os.RemoveAll(dir); err != nil {
		return e.status(row), fmt.Errorf("export %s deleted, but its files stay: %w", row.ID, err)
	}
	e.log.Info("export deleted", "export", row.ID, "camera", row.Camera, "by", by)
	return e.status(row), nil
}

// Expire deletes, as ServiceUser, the files of the finished exports made more than
// Keep before now, and returns them; with Keep 0 it deletes nothing. It also removes
// what a deletion cut short left on disk.
func (e *Exporter) Expire(ctx context.Context, now time.Time) ([]Status, error) {
	if e.o.Keep <= 0 {
		return nil, nil
	}
	rows, err := e.o.DB.ExpiredExports(ctx, now.Add(-e.o.Keep))
	if err != nil {
		return nil, err
	}
	var out []Status
	var errs []error
	reason := fmt.Sprintf("kept for export.keep (%s)", shortDuration(e.o.Keep))
	for _, row := range rows {
		st, err := e.Delete(ctx, row.ID, ServiceUser, reason)
		if err != nil && st.ID == "" {
			if !errors.Is(err, state.ErrExportDeleted) { // deleted meanwhile by a user
				errs = append(errs, err)
			}
			continue
		}
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, st)
	}
	errs = append(errs, e.sweep(ctx))
	return out, errors.Join(errs...)
}

// shortDuration writes d as the configuration does: 30d, 1h, 90m.
func shortDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// sweep removes the directories of deleted exports.
func (e *Exporter) sweep(ctx context.Context) error {
	ents, err := os.ReadDir(e.o.Dir)
	if err != nil {
		return fmt.Errorf("exports: %w", err)
	}
	var errs []error
	for _, ent := range ents {
		if !ent.IsDir() {
			continue
		}
		dir, err := e.dir(ent.Name())
		if err != nil {
			continue // not an export's
		}
		row, err := e.o.DB.Export(ctx, ent.Name())
		if err != nil || row.Deleted.IsZero() {
			continue // in use, or not ours to judge
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("export %s: %w", row.ID, err))
		}
	}
	return errors.Join(errs...)
}

// Readme is the bundle's README.txt.
func Readme(keyID string) string {
	return `Straja video export: how to check that this clip was not altered
=================================================================

Files:
  clip.mp4            the video
  manifest.json       what the clip is: camera, time range, the recorded segments it
                      was made from with their SHA-256 from recording time, the
                      clip's SHA-256 and size, who exported it and why
  manifest.json.sig   Ed25519 signature (raw 64 bytes) over the exact bytes of
                      manifest.json
  key.pem             the public key of the Straja installation (key id ` + keyID + `)

1. The manifest is signed by this key (OpenSSL 3):

     openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in manifest.json -sigfile manifest.json.sig

   prints "Signature Verified Successfully". Check key.pem itself against the key
   the installation publishes (GET /api/v1/export-keys, or "straja keys show" on the
   server): a key shipped in the same zip proves nothing alone. Its key id is

     openssl pkey -pubin -in key.pem -outform DER | sha256sum | cut -c1-16

2. The clip is the one the manifest describes:

     sha256sum clip.mp4

   prints the value of "sha256" under "clip" in manifest.json.

With Straja: straja verify clip.mp4 --manifest manifest.json --key key.pem
`
}

// userDone gives back a place user held.
func (e *Exporter) userDone(user string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.byUser[user]--; e.byUser[user] <= 0 {
		delete(e.byUser, user)
	}
}

// run makes one export and records how it ended.
func (e *Exporter) run(ctx context.Context, req Request) {
	defer func() { e.userDone(req.User); <-e.slots }()
	log := e.log.With("export", req.ID, "camera", req.Camera)
	if err := e.o.DB.SetExportState(ctx, req.ID, state.ExportRunning, ""); err != nil {
		log.Error("export not started", "err", err)
		e.fail(req.ID, err)
		return
	}
	e.setProgress(req, 0)
	defer func() {
		e.mu.Lock()
		delete(e.progress, req.ID)
		e.mu.Unlock()
	}()
	dir := filepath.Join(e.o.Dir, req.ID)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		e.fail(req.ID, err)
		return
	}
	start := time.Now()
	m, err := e.o.Builder.Build(ctx, req, Files{Clip: filepath.Join(dir, ClipFile),
		Manifest: filepath.Join(dir, ManifestFile), Signature: filepath.Join(dir, SignatureFile)},
		func(done, total int64) {
			if total > 0 {
				e.setProgress(req, float64(done)/float64(total))
			}
		})
	if err != nil {
		os.RemoveAll(dir)
		if ctx.Err() != nil {
			err = errors.New("the service stopped during the export; request it again")
		}
		log.Warn("export failed", "err", err)
		e.fail(req.ID, err)
		e.announce(req, state.ExportFailed, 0)
		return
	}
	if err := e.o.DB.FinishExport(context.WithoutCancel(ctx), req.ID, m.Clip.Size, m.Clip.SHA256, m.KeyID); err != nil {
		log.Error("export done but not recorded", "err", err)
		return
	}
	e.announce(req, state.ExportDone, 1)
	log.Info("export done", "bytes", m.Clip.Size, "segments", len(m.Segments), "seconds", time.Since(start).Seconds())
}

func (e *Exporter) fail(id string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.o.DB.SetExportState(ctx, id, state.ExportFailed, err.Error()); err != nil {
		e.log.Error("export failure not recorded", "export", id, "err", err)
	}
}

func (e *Exporter) setProgress(req Request, p float64) {
	e.mu.Lock()
	was, ok := e.progress[req.ID]
	e.progress[req.ID] = p
	e.mu.Unlock()
	if !ok || int(p*100) != int(was*100) {
		e.announce(req, state.ExportRunning, p)
	}
}

// announce tells Options.OnProgress.
func (e *Exporter) announce(req Request, st string, p float64) {
	if e.o.OnProgress != nil {
		e.o.OnProgress(req, st, p)
	}
}

// newID is a random export id: 16 hex digits, safe in paths.
// ValidID reports whether id is an export ID as Submit makes them: 16 lower-case hex
// digits.
func ValidID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// dir is the directory of export id's files. Only a valid ID names one: a row of an
// edited state database naming "../segments/cam" must not make a download read, or a
// deletion or expiry remove, what is outside the exports directory (it removed a
// camera's footage before this check).
func (e *Exporter) dir(id string) (string, error) {
	if !ValidID(id) {
		return "", fmt.Errorf("export %q: not an export ID: %w", truncateID(id), state.ErrNotFound)
	}
	return filepath.Join(e.o.Dir, id), nil
}

func truncateID(id string) string {
	if len(id) > 64 {
		return id[:64] + "…"
	}
	return id
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

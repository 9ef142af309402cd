package recorder

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/recorder/ingest"
	"github.com/straja-nvr/straja/recorder/internal/metrics"
	"github.com/straja-nvr/straja/recorder/spool"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/streaming"
)

// CameraStatus is one wanted camera as the recorder runs it: its settings without
// credentials, the ingest status of the stream it records, and that of the stream live
// view reads (the live_url substream when configured, else the same). Errors in it are
// redacted.
type CameraStatus struct {
	ID, Name, Site, SiteName string
	Record                   bool
	Stream                   ingest.Status // State is connecting until the camera starts
	Live                     ingest.Status
	LiveSubstream            bool // Live is the live_url substream's
	// Lag is how long the camera's last recorded fragment took from capture to being
	// durable in the spool; LagKnown is false while nothing is being recorded.
	Lag      time.Duration
	LagKnown bool
}

// Event is something that happened to a camera, as it happens: its ingest state
// changed (State set), its recording stopped being written or was written again
// (Recording set), or it was removed (Removed).
type Event struct {
	Camera string
	Site   string // "" for Recording events
	// Record says whether the camera records; false for live-only cameras.
	Record bool
	At     time.Time
	// State and Reason are the camera's new ingest state and why; LastFrame is when
	// its last frame arrived (zero if none has).
	State     ingest.State
	Reason    ingest.Reason
	LastFrame time.Time
	// Recording is the cause a camera's recording stopped being written
	// ("spool_full", "write_error"), or RecordingResumed.
	Recording string
	Removed   bool
}

// RecordingResumed is Event.Recording when a camera's recording is written again.
const RecordingResumed = "resumed"

// Recorder owns every camera's ingest, fan-out stream and segmenter, the spool, the
// uploader and the catalog; it uploads to the store it is given.
type Recorder struct {
	redact  func(string) string
	log     *slog.Logger
	metrics *metrics.Metrics
	store   storage.Store
	catalog *storage.Catalog
	spool   *spool.Spool
	unlock  func()
	sup     *supervisor
	// spoolDir and spoolMax are the spool's, for Service.
	spoolDir string
	spoolMax int64

	probe storeProbe

	mu       sync.Mutex
	uploader *spool.Uploader
}

// Options are what a Recorder is built from. The service wires them from its
// configuration; nothing below it reads the configuration.
type Options struct {
	// DataDir holds the catalog and the lock that keeps a second process out.
	DataDir string
	// Store is where segments are uploaded.
	Store storage.Store
	Spool spool.Options
	// Cameras are the wanted cameras until Apply changes them; Run starts them.
	Cameras []CameraConfig
	// Redact removes credentials from text shown to operators (camera errors, health);
	// nil shows text as it is.
	Redact func(string) string
	// Events, if set, hears every Event. It is called from the recorder's goroutines
	// and must not block or call the Recorder.
	Events func(Event)
}

// New opens the catalog and the spool and lists opts.Cameras. It starts nothing.
func New(ctx context.Context, opts Options, reg prometheus.Registerer, log *slog.Logger) (r *Recorder, err error) {
	unlock, err := LockDataDir(opts.DataDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	cat, err := storage.OpenCatalog(CatalogPath(opts.DataDir))
	if err != nil {
		return nil, err
	}
	m := metrics.New(reg)
	if opts.Events != nil {
		opts.Spool.OnRecording = func(camera, cause string, at time.Time) {
			if cause == "" {
				cause = RecordingResumed
			}
			opts.Events(Event{Camera: camera, Record: true, At: at, Recording: cause})
		}
	}
	sp, err := spool.Open(opts.Spool, m, log)
	if err != nil {
		cat.Close()
		return nil, err
	}
	redact := opts.Redact
	if redact == nil {
		redact = func(s string) string { return s }
	}
	r = &Recorder{redact: redact, log: log, metrics: m, store: opts.Store, catalog: cat, spool: sp, unlock: unlock,
		sup: newSupervisor(sp, m, log), spoolDir: opts.Spool.Dir, spoolMax: opts.Spool.MaxBytes}
	r.sup.footageEnd = r.footageEnd
	r.sup.events = opts.Events
	// Listed from now on; Run starts them.
	if err = r.sup.apply(ctx, opts.Cameras); err != nil {
		cat.Close()
		return nil, err
	}
	return r, nil
}

// footageEnd returns when camera's footage, stored or waiting in the spool, ends if
// that is after now; otherwise the zero time.
func (r *Recorder) footageEnd(camera string) time.Time {
	now := time.Now()
	end := r.spool.FootageEnd(camera)
	segs, err := r.catalog.Segments(context.Background(), camera, now, now.AddDate(100, 0, 0))
	if err != nil {
		r.log.Warn("cannot read where the camera's footage ends", "camera", camera, "err", err)
	}
	for _, s := range segs {
		if e := s.Start.Add(s.Duration); e.After(end) {
			end = e
		}
	}
	if !end.After(now) {
		return time.Time{}
	}
	return end
}

// Run recovers the spool, then starts the wanted cameras (the configuration's, or the
// last Apply's) and uploads segments until ctx is done; Apply changes the cameras
// meanwhile. On the way out it stops every camera, finalising open segments, and gives
// the uploader up to drainTimeout to store them; what is left stays spooled for the
// next start. It returns after every goroutine it started has stopped. Call it once.
func (r *Recorder) Run(ctx context.Context) error {
	defer r.sup.stop() // also when it fails early: later Applies are refused
	if err := r.spool.Recover(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while recovering: what is left is recovered at the next start
		}
		return fmt.Errorf("recover spool: %w", err)
	}
	upCtx, stopUploads := context.WithCancel(context.WithoutCancel(ctx))
	defer stopUploads()
	up := spool.NewUploader(r.spool, r.store, r.catalog, r.metrics, r.log)
	r.mu.Lock()
	r.uploader = up
	r.mu.Unlock()
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		_ = up.Run(upCtx)
	}()

	probeCtx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		r.probeStore(probeCtx)
	}()
	defer func() {
		stopProbe()
		<-probeDone
	}()

	if err := r.sup.run(); err != nil {
		stopUploads()
		<-upDone
		return err
	}
	<-ctx.Done()
	r.sup.stop()

	deadline := time.NewTimer(drainTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for n, _ := up.Pending(); n > 0; n, _ = up.Pending() {
		select {
		case <-deadline.C:
			r.log.Warn("segments left in the spool for the next start", "segments", n)
			stopUploads()
		case <-upDone:
			return nil
		case <-tick.C:
		}
	}
	stopUploads()
	<-upDone
	return nil
}

// drainTimeout bounds how long shutdown waits for spooled segments to upload.
const drainTimeout = 5 * time.Second

// recorderQueue holds ~10 s of 25 fps video, so only a stuck disk overflows it.
const recorderQueue = 256

// Close releases the catalog and the data_dir lock. Call it after Run has returned.
func (r *Recorder) Close() error {
	err := r.catalog.Close()
	r.unlock()
	return err
}

// Catalog returns the recorder's catalog.
func (r *Recorder) Catalog() *storage.Catalog { return r.catalog }

// Store returns the recorder's store.
func (r *Recorder) Store() storage.Store { return r.store }

// Spool returns the spool: footage not yet uploaded, for near-live playback.
func (r *Recorder) Spool() *spool.Spool { return r.spool }

// Apply makes the recorder run exactly cams, reconciling by ID: new cameras start,
// removed ones stop (their open segment is closed into the spool and uploaded, their
// metrics deleted, their live viewers disconnected), cameras whose ingest settings
// changed restart, and the others keep running untouched. A change of name or site
// only updates what the API shows. A restarted camera keeps its streams, so live
// viewers stay connected as through a reconnect, and its status counts one reconnect.
//
// Apply checks the whole set first and changes nothing if any entry is wrong; errors
// name the entry as cameras[i].field. It returns when every change is done; ctx bounds
// only the wait for a concurrent Apply. Before Run it records the set for Run to start;
// after Run has returned it fails with ErrStopped. Safe for concurrent use with Run and
// every other method.
func (r *Recorder) Apply(ctx context.Context, cams []CameraConfig) error {
	return r.sup.apply(ctx, cams)
}

// Stream returns a camera's live stream.
func (r *Recorder) Stream(id string) (*streaming.Stream, bool) {
	cr, ok := r.sup.get(id)
	if !ok {
		return nil, false
	}
	return cr.stream, true
}

// LiveStream returns the stream live view shows: the live_url substream when the camera
// has one, else the recorded stream.
func (r *Recorder) LiveStream(id string) (*streaming.Stream, bool) {
	cr, ok := r.sup.get(id)
	if !ok {
		return nil, false
	}
	if cr.liveStream != nil {
		return cr.liveStream, true
	}
	return cr.stream, true
}

// Segments lists one camera's catalogued segments overlapping [from, to).
func (r *Recorder) Segments(ctx context.Context, camera string, from, to time.Time) ([]storage.Segment, error) {
	return r.catalog.Segments(ctx, camera, from, to)
}

// ListSegments pages through one camera's catalogued segments without their fragment
// lists (see storage.Catalog.ListSegments).
func (r *Recorder) ListSegments(ctx context.Context, q storage.SegmentQuery, fn func(storage.Segment) error) error {
	return r.catalog.ListSegments(ctx, q, fn)
}

// Cameras lists every wanted camera, ordered by site then ID.
func (r *Recorder) Cameras() []CameraStatus {
	r.sup.mu.Lock()
	out := make([]CameraStatus, 0, len(r.sup.cams))
	for _, cr := range r.sup.cams {
		out = append(out, r.status(cr))
	}
	r.sup.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Site != out[j].Site {
			return out[i].Site < out[j].Site
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Camera returns one camera's status.
func (r *Recorder) Camera(id string) (CameraStatus, bool) {
	r.sup.mu.Lock()
	defer r.sup.mu.Unlock()
	cr, ok := r.sup.cams[id]
	if !ok {
		return CameraStatus{}, false
	}
	return r.status(cr), true
}

// status needs r.sup.mu held.
func (r *Recorder) status(cr *cameraRun) CameraStatus {
	cs := CameraStatus{ID: cr.cfg.ID, Name: cr.cfg.Name, Site: cr.cfg.Site, SiteName: cr.cfg.SiteName,
		Record: cr.cfg.Record}
	ingestStatus := func(id string, cam *ingest.Camera) ingest.Status {
		if cam == nil {
			return ingest.Status{ID: id, State: ingest.StateConnecting}
		}
		st := cam.Status()
		st.LastError = r.redact(st.LastError)
		return st
	}
	cs.Stream = ingestStatus(cr.cfg.ID, cr.cam)
	if cr.cfg.Held != "" {
		cs.Stream = ingest.Status{ID: cr.cfg.ID, State: ingest.StateOffline, Reason: ingest.ReasonNoCredentials,
			LastError: cr.cfg.Held}
	}
	cs.Lag, cs.LagKnown = r.spool.Lag(cr.cfg.ID)
	cs.Live = cs.Stream
	if cr.liveStream != nil {
		cs.Live, cs.LiveSubstream = ingestStatus(cr.cfg.ID+liveSuffix, cr.liveCam), true
	}
	return cs
}

// CatalogPath is where the catalog lives in dataDir.
func CatalogPath(dataDir string) string { return filepath.Join(dataDir, "catalog.db") }

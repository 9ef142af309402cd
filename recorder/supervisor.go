package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/straja-nvr/straja/recorder/ingest"
	"github.com/straja-nvr/straja/recorder/internal/metrics"
	"github.com/straja-nvr/straja/recorder/spool"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/streaming"
)

// CameraConfig is one camera as the recorder runs it: the camera-level settings that
// Apply reconciles. CameraConfigs builds them from the configuration file; cameras
// managed at runtime are built from their own records.
type CameraConfig struct {
	// ID names the camera in object keys, paths, metrics and the API; see
	// storage.CheckCameraID.
	ID string
	// Name, Site and SiteName are shown to operators. Changing only them restarts nothing.
	Name, Site, SiteName string
	// URL is the rtsp:// or rtsps:// address with its password applied. LiveURL is the
	// same for the optional live-view substream, "" when there is none. Neither is ever
	// logged or reported.
	URL, LiveURL string
	// Transport is how RTP travels; "" is TransportAuto.
	Transport ingest.Transport
	// ReadTimeout is how long the camera may send no video before its session is
	// restarted. Zero means 10 s.
	ReadTimeout time.Duration
	// Record says whether segments are written; false means live view only.
	Record bool
	// Held, when set, says why the camera cannot be started (its password cannot be
	// read): it is listed offline with reason ingest.ReasonNoCredentials and this text,
	// and never connected, rather than tried with wrong credentials.
	Held string
}

// sameIngest reports whether a and b run the camera the same way, so that a camera
// going from a to b keeps its sessions and its recording.
func sameIngest(a, b CameraConfig) bool {
	a.Name, a.Site, a.SiteName = "", "", ""
	b.Name, b.Site, b.SiteName = "", "", ""
	return a == b
}

// checkCameraConfigs returns what is wrong with a wanted camera set, naming each
// field as cameras[i].field and never quoting a URL.
func checkCameraConfigs(cams []CameraConfig) error {
	var errs []error
	bad := func(i int, field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("cameras[%d].%s: %s", i, field, fmt.Sprintf(format, args...)))
	}
	seen := make(map[string]int, len(cams))
	for i, c := range cams {
		if err := storage.CheckCameraID(c.ID); err != nil {
			bad(i, "id", "%v", err)
		} else if j, dup := seen[c.ID]; dup {
			bad(i, "id", "%q is also cameras[%d]", c.ID, j)
		} else {
			seen[c.ID] = i
		}
		if why := checkDialURL(c.URL); why != "" {
			bad(i, "url", "%s", why)
		}
		if c.LiveURL != "" {
			if why := checkDialURL(c.LiveURL); why != "" {
				bad(i, "live_url", "%s", why)
			}
		}
		switch c.Transport {
		case "", ingest.TransportAuto, ingest.TransportTCP, ingest.TransportUDP:
		default:
			bad(i, "transport", "%q is not auto, tcp or udp", c.Transport)
		}
		if c.ReadTimeout < 0 {
			bad(i, "read_timeout", "negative")
		}
	}
	return errors.Join(errs...)
}

// checkDialURL says what is wrong with a camera URL without quoting it: it may hold a
// password.
func checkDialURL(raw string) string {
	if raw == "" {
		return "required"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "cannot be parsed"
	case u.Scheme != "rtsp" && u.Scheme != "rtsps":
		return "scheme must be rtsp or rtsps"
	case u.Hostname() == "":
		return "host is required"
	}
	return ""
}

// ErrStopped is returned by Apply once Run has returned.
var ErrStopped = errors.New("recorder stopped")

// supervisor owns the cameras by ID and reconciles them with a wanted set, in the way
// of Prometheus' scrape.sync: removed and changed cameras stop concurrently, new ones
// start, and Apply returns once every change is done. Each running camera has its own
// context and goroutine, stopped by cancel(); <-done.
type supervisor struct {
	spool *spool.Spool
	m     *metrics.Metrics
	log   *slog.Logger
	// footageEnd returns when a camera's stored footage ends, if that is later than
	// now (it ran ahead of the local clock, or the clock went back while the service was
	// down); a camera starting fresh continues from there. May be nil.
	footageEnd func(camera string) time.Time
	// events hears camera events (Options.Events); may be nil.
	events func(Event)

	// turn is held by whoever changes which cameras run (apply, run, stop), one at a
	// time; a channel rather than a mutex so that Apply can give up when its ctx ends.
	turn    chan struct{}
	started bool // run was called; guarded by turn
	stopped bool // stop was called; guarded by turn

	mu   sync.Mutex
	cams map[string]*cameraRun
}

// cameraRun is one wanted camera and, while it runs, what runs for it.
type cameraRun struct {
	// cfg is written under both supervisor.turn and supervisor.mu, so either lets it be read.
	cfg    CameraConfig
	stream *streaming.Stream
	// liveStream carries the live_url substream, when configured: a second session,
	// for live view only.
	liveStream *streaming.Stream
	// cam and liveCam are set under supervisor.mu when the camera starts.
	cam, liveCam *ingest.Camera
	// cancel and done are owned by the holder of supervisor.turn; nil until started.
	cancel context.CancelFunc
	done   chan struct{}
}

func newSupervisor(sp *spool.Spool, m *metrics.Metrics, log *slog.Logger) *supervisor {
	return &supervisor{spool: sp, m: m, log: log, turn: make(chan struct{}, 1), cams: map[string]*cameraRun{}}
}

// lock takes the turn, or gives up when ctx ends.
func (s *supervisor) lock(ctx context.Context) error {
	select {
	case s.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *supervisor) unlock() { <-s.turn }

// apply makes the wanted set cams. Before run it only records them; once stopped it
// refuses.
func (s *supervisor) apply(ctx context.Context, cams []CameraConfig) error {
	if err := checkCameraConfigs(cams); err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("apply cameras: %w", err)
	}
	defer s.unlock()
	if s.stopped {
		return ErrStopped
	}
	wanted := make(map[string]bool, len(cams))
	for _, c := range cams {
		wanted[c.ID] = true
	}
	var removed, added []*cameraRun
	type restart struct{ old, cur *cameraRun }
	var restarts []restart
	// The map changes at once, so lookups never find a removed camera, and a changed
	// one shows as connecting until it is back.
	s.mu.Lock()
	for id, cr := range s.cams {
		if !wanted[id] {
			delete(s.cams, id)
			removed = append(removed, cr)
		}
	}
	for _, c := range cams {
		old, ok := s.cams[c.ID]
		switch {
		case !ok:
			cr := newCameraRun(c, nil)
			s.cams[c.ID] = cr
			added = append(added, cr)
		case sameIngest(old.cfg, c):
			old.cfg = c
		default:
			cr := newCameraRun(c, old)
			s.cams[c.ID] = cr
			restarts = append(restarts, restart{old, cr})
		}
	}
	s.mu.Unlock()

	running := s.started
	var wg sync.WaitGroup
	for _, cr := range removed {
		wg.Go(func() {
			if running {
				s.stopCamera(cr, "removed")
			}
			cr.stream.Close() // ends live viewers
			if cr.liveStream != nil {
				cr.liveStream.Close()
			}
			s.m.ForgetCamera(cr.cfg.ID, cr.cfg.ID+liveSuffix)
			if running && s.events != nil {
				s.events(Event{Camera: cr.cfg.ID, Site: cr.cfg.Site, Record: cr.cfg.Record, At: time.Now(), Removed: true})
			}
		})
	}
	for _, r := range restarts {
		wg.Go(func() {
			if running {
				s.stopCamera(r.old, "changed")
			}
			if r.old.liveStream != nil && r.old.liveStream != r.cur.liveStream {
				r.old.liveStream.Close()
			}
			if running {
				s.startCamera(r.cur, r.old.cam)
			}
		})
	}
	if running {
		for _, cr := range added {
			s.startCamera(cr, nil)
		}
	}
	wg.Wait()
	return nil
}

// newCameraRun prepares c. A camera restarted from old keeps its streams, so live
// viewers stay connected through the restart as through a reconnect; only a live_url
// substream that is added gets a new stream.
func newCameraRun(c CameraConfig, old *cameraRun) *cameraRun {
	cr := &cameraRun{cfg: c}
	if old != nil {
		cr.stream = old.stream
		if c.LiveURL != "" {
			cr.liveStream = old.liveStream
		}
	} else {
		cr.stream = streaming.New()
	}
	if c.LiveURL != "" && cr.liveStream == nil {
		cr.liveStream = streaming.New()
	}
	return cr
}

// run starts every wanted camera; later applies start and stop them as they come.
func (s *supervisor) run() error {
	if err := s.lock(context.Background()); err != nil {
		return err
	}
	defer s.unlock()
	if s.started || s.stopped {
		return errors.New("recorder already ran")
	}
	s.started = true
	s.mu.Lock()
	cams := make([]*cameraRun, 0, len(s.cams))
	for _, cr := range s.cams {
		cams = append(cams, cr)
	}
	s.mu.Unlock()
	for _, cr := range cams {
		s.startCamera(cr, nil)
	}
	return nil
}

// stop stops every camera concurrently and waits; they stay listed, offline. Open
// segments are finalised into the spool.
func (s *supervisor) stop() {
	_ = s.lock(context.Background())
	defer s.unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	if !s.started {
		return
	}
	s.mu.Lock()
	var wg sync.WaitGroup
	for _, cr := range s.cams {
		wg.Go(func() { s.stopCamera(cr, "") })
	}
	s.mu.Unlock()
	wg.Wait()
}

// startCamera starts cr's ingest sessions and its recording. A camera restarted
// after a change continues from prev, which has stopped: its restart counts as a
// reconnect (the session's timestamps start over, which the live page answers by
// starting its own session over), and its footage never overlaps prev's. The turn is
// held.
func (s *supervisor) startCamera(cr *cameraRun, prev *ingest.Camera) {
	c := cr.cfg
	log := s.log.With("camera", c.ID)
	if c.Held != "" {
		log.Warn("camera not started", "because", c.Held)
		// Its recording has a hole from now: the gap ledger, alerts and pages hear so.
		if s.events != nil {
			s.events(Event{Camera: c.ID, Site: c.Site, Record: c.Record, At: time.Now(), State: ingest.StateOffline,
				Reason: ingest.ReasonNoCredentials})
		}
		return
	}
	spec := ingest.Spec{ID: c.ID, URL: c.URL, Transport: c.Transport, ReadTimeout: c.ReadTimeout}
	if s.events != nil {
		spec.OnState = func(st ingest.Status) {
			s.events(Event{Camera: c.ID, Site: c.Site, Record: c.Record, At: st.Since, State: st.State,
				Reason: st.Reason, LastFrame: st.LastFrame})
		}
	}
	cam := ingest.NewCamera(spec, cr.stream, s.m, log)
	if prev != nil {
		cam.ContinueFrom(prev)
	} else if s.footageEnd != nil {
		cam.ContinueAfter(s.footageEnd(c.ID))
	}
	var liveCam *ingest.Camera
	if cr.liveStream != nil {
		// The substream's ID is not a valid camera ID, so its metrics cannot clash.
		liveCam = ingest.NewCamera(ingest.Spec{ID: c.ID + liveSuffix, URL: c.LiveURL, Transport: c.Transport,
			ReadTimeout: c.ReadTimeout}, cr.liveStream, s.m, log.With("stream", "live"))
	}
	s.m.KeepCamera(c.ID)
	s.mu.Lock()
	cr.cam, cr.liveCam = cam, liveCam
	s.mu.Unlock()

	// Subscribe before the session starts, so recording begins at its first keyframe.
	var rd *streaming.Reader
	if c.Record {
		rd = cr.stream.Subscribe(recorderQueue, false)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cr.cancel, cr.done = cancel, make(chan struct{})
	go func() {
		defer close(cr.done)
		var sessions, rec sync.WaitGroup
		sessions.Go(func() { cam.Run(ctx) })
		if liveCam != nil {
			sessions.Go(func() { liveCam.Run(ctx) })
		}
		if rd != nil {
			rec.Go(func() {
				defer rd.Close()
				// Not ctx: recording ends when rd is closed, after what the camera
				// delivered has been written and the open segment closed.
				if err := s.spool.RecordCamera(context.Background(), c.ID, rd); err != nil {
					log.Error("recording stopped", "err", err)
				}
			})
		}
		sessions.Wait()
		if rd != nil {
			rd.Close()
		}
		rec.Wait()
	}()
	log.Info("camera started", "record", c.Record, "live_substream", c.LiveURL != "")
}

// stopCamera stops cr and waits until its open segment is in the spool, queued for
// upload. The turn is held.
func (s *supervisor) stopCamera(cr *cameraRun, why string) {
	if cr.cancel == nil {
		return
	}
	cr.cancel()
	<-cr.done
	cr.cancel = nil
	if why != "" {
		s.log.Info("camera stopped", "camera", cr.cfg.ID, "because", why)
	}
}

// get returns the wanted camera id.
func (s *supervisor) get(id string) (*cameraRun, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cr, ok := s.cams[id]
	return cr, ok
}

// liveSuffix marks a camera's live substream in metrics and logs.
const liveSuffix = "/live"

// Package web is Straja's one HTTP layer: the JSON API, WHEP live view, metrics and
// the embedded browser UI, over the recorder, the catalog and the WebRTC server.
//
// Every route is an entry of one table (routes.go), reached through one middleware
// chain (middleware.go: request ID, access log, Host check, authentication slot,
// limits), and every error becomes a status and the same JSON body in one place
// (errors.go).
package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/webrtc"
	"github.com/straja-nvr/straja/web/auth"
	"github.com/straja-nvr/straja/web/events"
)

// Cameras is what the API needs from the recorder.
type Cameras interface {
	Cameras() []recorder.CameraStatus
	Camera(id string) (recorder.CameraStatus, bool)
}

// SegmentLister pages through catalogued segments (storage.Catalog.ListSegments):
// it calls fn for each segment of the page as it reads it, and stops at fn's first
// error.
type SegmentLister interface {
	ListSegments(ctx context.Context, q storage.SegmentQuery, fn func(storage.Segment) error) error
}

// Health reports whether the service can do its job; nil means healthy.
type Health interface {
	Health() error
}

// LiveServer is the WebRTC side of live view (*webrtc.Server): WHEP requests call it.
type LiveServer interface {
	Offer(ctx context.Context, req webrtc.OfferRequest) (answer []byte, sessionID string, err error)
	Delete(sessionID string) error
	Patch(sessionID string, fragment []byte) error
}

// Options wire a Server.
type Options struct {
	Cameras  Cameras
	Segments SegmentLister
	Health   Health
	Gatherer prometheus.Gatherer
	// Streams and Live serve WHEP; without both, live view answers 503.
	Streams LiveStreams
	Live    LiveServer
	// Listen is the address the server listens on; its host is an allowed Host
	// header, besides localhost, 127.0.0.1, ::1 and PublicHosts.
	Listen      string
	PublicHosts []string
	// Auditor records live views and listings; required (New panics without one).
	Auditor Auditor
	// Users and Sessions sign users in; required (New panics without them).
	Users    *auth.Users
	Sessions *auth.Sessions
	// Limiter counts failed sign-ins (nil: auth.NewLimiter()).
	Limiter *auth.Limiter
	// MetricsToken is the bearer token /metrics requires ("" refuses every scrape
	// here; metrics.listen serves them on loopback instead).
	MetricsToken string
	// CameraManager changes cameras and sites at runtime; without it those routes
	// answer 503.
	CameraManager CameraManager
	// HeldCameras, when set, makes deleting a camera with held footage need keep_holds.
	HeldCameras HeldCameras
	// MaxInFlight caps non-streaming requests in progress (0: DefaultMaxInFlight).
	MaxInFlight int
	// Health view: the gap ledger, the recorder's service figures and the last runs
	// of periodic jobs; each may be nil.
	Gaps    GapLister
	Service ServiceReporter
	Runs    *RunLog
	// Player serves playback (timeline, video, stills); without it they answer 503.
	Player Player
	// TimelineGaps explains the timeline's gaps (nil: every gap is "no_recording").
	TimelineGaps playback.GapSource
	// Exports runs clip exports; nil answers 503 to new ones.
	Exports Exports
	// Retention serves the retention API and each camera's effective policy; nil:
	// those routes answer 503.
	Retention Retention
	// Events feeds GET /api/v1/events; nil answers 404.
	Events *events.Bus
	// Alerts serves the alert rules and alerts; nil answers 404.
	Alerts AlertBoard
	// Holds keeps evidence holds (nil: the hold routes answer 503).
	Holds HoldKeeper
}

// DefaultMaxInFlight is Options.MaxInFlight when unset: far above what the live pages
// and API clients of one site need, far below what exhausts memory or descriptors.
const DefaultMaxInFlight = 128

// Server is Straja's HTTP front end. Safe for concurrent use.
type Server struct {
	cams     Cameras
	mgr      CameraManager
	held     HeldCameras
	probes   *probeLimits
	segments SegmentLister
	health   Health
	metrics  http.Handler
	live     LiveServer
	audit    Auditor
	users    *auth.Users
	sessions *auth.Sessions
	limiter  *auth.Limiter
	exports  Exports
	// retention is nil without retention (tests of other parts).
	retention Retention
	holds     HoldKeeper
	// liveOwners maps a live session ID to the username that opened it.
	liveOwners   sync.Map
	metricsToken string
	lookup       func(cameraID string) (*streaming.Stream, error) // nil without Streams
	ui           *uiHandler
	hosts        map[string]bool
	inFlight     shares // non-streaming requests in progress
	streams      shares // streaming requests in progress
	log          *slog.Logger
	gaps         GapLister
	service      ServiceReporter
	runs         *RunLog
	player       Player
	timelineGaps playback.GapSource
	playbackSeen seenSet // audit once per movie a user plays
	bus          *events.Bus
	alerts       AlertBoard

	routes  []Route
	mux     *http.ServeMux
	handler http.Handler // the whole chain
}

// New builds the server from its route table.
func New(opts Options, log *slog.Logger) *Server {
	if opts.Auditor == nil {
		panic("web: Options.Auditor is required: every look at footage is recorded")
	}
	if opts.Users == nil || opts.Sessions == nil {
		panic("web: Options.Users and Options.Sessions are required: every route but sign-in needs a user")
	}
	if opts.Limiter == nil {
		opts.Limiter = auth.NewLimiter()
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	gatherer := opts.Gatherer
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	s := &Server{cams: opts.Cameras, mgr: opts.CameraManager, held: opts.HeldCameras, probes: newProbeLimits(), segments: opts.Segments, health: opts.Health, live: opts.Live, audit: opts.Auditor,
		users: opts.Users, sessions: opts.Sessions, limiter: opts.Limiter, holds: opts.Holds, metricsToken: opts.MetricsToken,
		metrics: promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}), ui: newUI(),
		hosts: allowedHosts(opts.Listen, opts.PublicHosts), log: log,
		gaps: opts.Gaps, service: opts.Service, runs: opts.Runs, player: opts.Player, timelineGaps: opts.TimelineGaps,
		exports: opts.Exports, retention: opts.Retention, bus: opts.Events, alerts: opts.Alerts}
	s.inFlight = shares{max: opts.MaxInFlight, perCaller: maxInFlightPerCaller, tooMany: func() error {
		return errorf(errCallerShare, "you have %d requests in progress; wait for one to finish", maxInFlightPerCaller)
	}}
	s.streams = shares{max: maxStreams, perCaller: maxStreamsPerCaller, tooMany: func() error {
		return errorf(errCallerShare, "you have %d videos, downloads or event streams open; close one and try again",
			maxStreamsPerCaller)
	}}
	if opts.Streams != nil {
		s.lookup = liveLookup(opts.Streams)
	}
	s.routes = s.routeTable()
	s.mux = s.register(s.routes)
	s.handler = withRequestID(s.accessLog(securityHeaders(s.checkHost(s.crossOrigin(s.authenticate(
		http.HandlerFunc(s.dispatch)))))))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Routes returns the route table.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// NewHTTPServer returns an http.Server for h with the limits every connection gets:
// header size, header and body read times, idle time. It sets no WriteTimeout:
// each non-streaming route sets its own write deadline, so streaming routes (video)
// can run long.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 32 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) { s.metrics.ServeHTTP(w, r) }

func (s *Server) handleUI(w http.ResponseWriter, r *http.Request) error {
	if !s.ui.serve(w, r) {
		s.writeError(w, r, errorf(errNotFound, "no such page: %s", truncate(r.URL.Path, 200)))
	}
	return nil
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if s.health != nil {
		if err := s.health.Health(); err != nil {
			// Only the cause: the error names paths and hosts, which the recorder logs.
			cause := "unknown"
			if he := (*recorder.HealthError)(nil); errors.As(err, &he) {
				cause = string(he.Cause)
			} else {
				s.log.Warn("unhealthy", "err", err)
			}
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "degraded", "cause": cause})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleCameras lists the cameras the caller may see: granted ones, or all for itc.
func (s *Server) handleCameras(w http.ResponseWriter, r *http.Request) {
	u := principal(r)
	out := []CameraInfo{}
	sources := s.cameraSources(r.Context())
	for _, c := range s.cams.Cameras() {
		if u.May(auth.RightView, c.ID, c.Site) {
			ci := s.cameraInfo(c)
			ci.Source = sources[c.ID]
			out = append(out, ci)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// cameraSources maps camera IDs to where they come from; empty without a manager.
func (s *Server) cameraSources(ctx context.Context) map[string]string {
	out := map[string]string{}
	if s.mgr == nil {
		return out
	}
	all, err := s.mgr.CameraSettings(ctx)
	if err != nil {
		s.log.Warn("camera settings", "err", err)
	}
	for _, c := range all {
		out[c.ID] = c.Source
	}
	return out
}

func (s *Server) handleCamera(w http.ResponseWriter, r *http.Request) error {
	c, ok := s.cams.Camera(r.PathValue("id"))
	if !ok {
		return errorf(errNotFound, "camera %q not found", r.PathValue("id"))
	}
	ci := s.cameraInfo(c)
	ci.Source = s.cameraSources(r.Context())[c.ID]
	writeJSON(w, http.StatusOK, ci)
	return nil
}

// cameraInfo is cameraInfo with the camera's effective retention policy.
func (s *Server) cameraInfo(c recorder.CameraStatus) CameraInfo {
	ci := cameraInfo(c)
	if s.retention != nil {
		ci.RetentionPolicy = s.retention.Resolve(c.ID, c.Site).Name
	}
	return ci
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

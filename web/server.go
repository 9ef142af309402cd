// Package web serves Straja's HTTP API, metrics and embedded browser UI over the
// recorder and the catalog.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/storage"
)

// Cameras is what the API needs from the recorder.
type Cameras interface {
	Cameras() []recorder.CameraInfo
	Camera(id string) (recorder.CameraInfo, bool)
}

// SegmentLister lists catalogued segments overlapping [from, to).
type SegmentLister interface {
	Segments(ctx context.Context, camera string, from, to time.Time) ([]storage.Segment, error)
}

// Health reports whether the service can do its job; nil means healthy.
type Health interface {
	Health() error
}

// Server is Straja's HTTP front end.
type Server struct {
	cams     Cameras
	segments SegmentLister
	health   Health
	gatherer prometheus.Gatherer
	log      *slog.Logger
	mux      *http.ServeMux
}

// Options wires a Server. Extra mounts additional handlers (live view) by pattern.
type Options struct {
	Cameras  Cameras
	Segments SegmentLister
	Health   Health
	Gatherer prometheus.Gatherer
	Extra    map[string]http.Handler
}

// New builds the server's routes.
func New(opts Options, log *slog.Logger) *Server {
	s := &Server{cams: opts.Cameras, segments: opts.Segments, health: opts.Health,
		gatherer: opts.Gatherer, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /api/v1/cameras", s.handleCameras)
	s.mux.HandleFunc("GET /api/v1/cameras/{id}", s.handleCamera)
	s.mux.HandleFunc("GET /api/v1/cameras/{id}/segments", s.handleSegments)
	for pattern, h := range opts.Extra {
		s.mux.Handle(pattern, h)
	}
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Errors the API maps to HTTP statuses in writeError.
var (
	errBadRequest = errors.New("bad request")
	errNotFound   = errors.New("not found")
)

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if s.health != nil {
		if err := s.health.Health(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "degraded", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleCameras(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.cams.Cameras())
}

func (s *Server) handleCamera(w http.ResponseWriter, r *http.Request) {
	c, ok := s.cams.Camera(r.PathValue("id"))
	if !ok {
		s.writeError(w, fmt.Errorf("camera %q: %w", r.PathValue("id"), errNotFound))
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// segmentJSON is one catalogued segment as the API shows it.
type segmentJSON struct {
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Duration  float64   `json:"duration_s"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	Fragments int       `json:"fragments"`
}

// maxSegmentRange bounds one listing so a single request cannot scan years of footage.
const maxSegmentRange = 31 * 24 * time.Hour

func (s *Server) handleSegments(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.cams.Camera(id); !ok {
		s.writeError(w, fmt.Errorf("camera %q: %w", id, errNotFound))
		return
	}
	from, to, err := parseRange(r, time.Now())
	if err != nil {
		s.writeError(w, err)
		return
	}
	segs, err := s.segments.Segments(r.Context(), id, from, to)
	if err != nil {
		s.writeError(w, err)
		return
	}
	out := make([]segmentJSON, 0, len(segs))
	for _, sg := range segs {
		out = append(out, segmentJSON{Start: sg.Start.UTC(), End: sg.End().UTC(), Duration: sg.Duration.Seconds(),
			Size: sg.Size, SHA256: fmt.Sprintf("%x", sg.SHA256), Fragments: len(sg.Fragments)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"camera": id, "from": from, "to": to, "segments": out})
}

// parseRange reads from/to (RFC 3339); to defaults to now, from to one hour before to.
func parseRange(r *http.Request, now time.Time) (from, to time.Time, err error) {
	q := r.URL.Query()
	to = now.UTC()
	if v := q.Get("to"); v != "" {
		if to, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return from, to, fmt.Errorf("to: want an RFC 3339 time such as 2026-11-25T14:05:00Z, got %q: %w", v, errBadRequest)
		}
	}
	from = to.Add(-time.Hour)
	if v := q.Get("from"); v != "" {
		if from, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return from, to, fmt.Errorf("from: want an RFC 3339 time such as 2026-11-25T14:00:00Z, got %q: %w", v, errBadRequest)
		}
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("from must be before to: %w", errBadRequest)
	}
	if to.Sub(from) > maxSegmentRange {
		return from, to, fmt.Errorf("range longer than %v: %w", maxSegmentRange, errBadRequest)
	}
	return from.UTC(), to.UTC(), nil
}

// writeError is the one place errors become HTTP statuses.
func (s *Server) writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, errBadRequest):
		status = http.StatusBadRequest
	case errors.Is(err, errNotFound), errors.Is(err, storage.ErrNotFound):
		status = http.StatusNotFound
	}
	msg := err.Error()
	if status == http.StatusInternalServerError {
		s.log.Error("request failed", "err", err)
		msg = "internal error"
	}
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

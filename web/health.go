package web

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/recorder/gaps"
	"github.com/straja-nvr/straja/recorder/ingest"
)

// GapLister answers a camera's gaps overlapping [from, to) (*gaps.Ledger).
type GapLister interface {
	Gaps(ctx context.Context, camera string, from, to time.Time) ([]gaps.Gap, error)
}

// ServiceReporter gives the service-wide figures of the recorder (*recorder.Recorder).
type ServiceReporter interface {
	Service() recorder.ServiceStatus
}

// RunInfo is how a periodic job (a retention run, a state backup) last ended.
type RunInfo struct {
	At     time.Time `json:"at"`
	OK     bool      `json:"ok"`
	Detail string    `json:"detail,omitempty"` // what it did, or why it failed; safe to show itc
}

// Kinds of run a RunLog keeps.
const (
	RunRetention   = "retention"
	RunStateBackup = "state_backup"
)

// RunLog keeps the last run of each periodic job for GET /api/v1/health. The jobs
// call Record; safe for concurrent use. A nil *RunLog records nothing.
type RunLog struct {
	mu   sync.Mutex
	last map[string]RunInfo
}

// Record notes a run of kind.
func (l *RunLog) Record(kind string, ri RunInfo) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]RunInfo{}
	}
	ri.At = ri.At.UTC()
	l.last[kind] = ri
}

// Last returns the last run of kind, nil if none was recorded.
func (l *RunLog) Last(kind string) *RunInfo {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ri, ok := l.last[kind]
	if !ok {
		return nil
	}
	return &ri
}

// CameraHealth is one camera's figures as GET /api/v1/health and
// /api/v1/cameras/{id}/health show them.
type CameraHealth struct {
	ID     string        `json:"id"`
	Name   string        `json:"name"`
	Site   string        `json:"site"`
	Record bool          `json:"record"`
	State  ingest.State  `json:"state"`
	Reason ingest.Reason `json:"reason,omitempty"`
	// Since is when the camera entered State.
	Since        *time.Time `json:"since,omitempty"`
	BitrateBps   float64    `json:"bitrate_bps"`
	FPS          float64    `json:"fps"`
	GOP          int        `json:"gop,omitempty"`
	LastFrame    *time.Time `json:"last_frame,omitempty"`
	LastKeyframe *time.Time `json:"last_keyframe,omitempty"`
	Reconnects   uint64     `json:"reconnects"`
	Dropped      uint64     `json:"dropped_frames"`
	RTPLost      uint64     `json:"rtp_packets_lost"`
	Undecodable  uint64     `json:"undecodable"`
	// LagS is capture to durable for the last recorded fragment; nil while nothing
	// is recorded.
	LagS *float64 `json:"recording_lag_s,omitempty"`
	// ClockOffsetS is how far the camera's clock is ahead of ours (from its RTCP
	// sender reports); nil when the camera sends none.
	ClockOffsetS *float64 `json:"clock_offset_s,omitempty"`
	LastError    string   `json:"last_error,omitempty"`
}

func cameraHealth(cs recorder.CameraStatus) CameraHealth {
	st := cs.Stream
	h := CameraHealth{ID: cs.ID, Name: cs.Name, Site: cs.Site, Record: cs.Record, State: st.State, Reason: st.Reason,
		BitrateBps: st.BitrateBps, FPS: st.FPS, GOP: st.GOP, Reconnects: st.Reconnects, Dropped: st.Dropped,
		RTPLost: st.RTPLost, Undecodable: st.Undecodable, LastError: st.LastError,
		Since: timePtr(st.Since), LastFrame: timePtr(st.LastFrame), LastKeyframe: timePtr(st.LastKeyframe)}
	if cs.LagKnown {
		v := cs.Lag.Seconds()
		h.LagS = &v
	}
	if st.ClockKnown {
		v := st.ClockOffset.Seconds()
		h.ClockOffsetS = &v
	}
	return h
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// ServiceHealth is GET /api/v1/health.
type ServiceHealth struct {
	Status string `json:"status"`          // ok or degraded
	Cause  string `json:"cause,omitempty"` // why degraded, as /healthz says it
	// CamerasByState counts cameras in each state.
	CamerasByState map[ingest.State]int `json:"cameras_by_state"`
	SpoolBytes     int64                `json:"spool_bytes"`
	SpoolMaxBytes  int64                `json:"spool_max_bytes"`
	SpoolFull      bool                 `json:"spool_full"`
	DiskFreeBytes  *uint64              `json:"disk_free_bytes,omitempty"`
	StoreReachable bool                 `json:"store_reachable"`
	LastRetention  *RunInfo             `json:"last_retention"`
	LastBackup     *RunInfo             `json:"last_state_backup"`
	AlertsFiring   int                  `json:"alerts_firing"`
	Cameras        []CameraHealth       `json:"cameras"`
}

// handleServiceHealth answers the service summary and every camera's figures (itc).
func (s *Server) handleServiceHealth(w http.ResponseWriter, r *http.Request) {
	out := ServiceHealth{Status: "ok", CamerasByState: map[ingest.State]int{}, Cameras: []CameraHealth{}}
	for _, st := range []ingest.State{ingest.StateOnline, ingest.StateConnecting, ingest.StateStalled, ingest.StateOffline} {
		out.CamerasByState[st] = 0
	}
	for _, c := range s.cams.Cameras() {
		out.CamerasByState[c.Stream.State]++
		out.Cameras = append(out.Cameras, cameraHealth(c))
	}
	if s.service != nil {
		sv := s.service.Service()
		out.SpoolBytes, out.SpoolMaxBytes, out.SpoolFull = sv.SpoolBytes, sv.SpoolMaxBytes, sv.SpoolFull
		out.StoreReachable = sv.StoreReachable
		if sv.DiskKnown {
			out.DiskFreeBytes = &sv.DiskFreeBytes
		}
		if sv.Cause != "" {
			out.Status, out.Cause = "degraded", string(sv.Cause)
		}
	}
	out.LastRetention = s.runs.Last(RunRetention)
	out.LastBackup = s.runs.Last(RunStateBackup)
	if s.alerts != nil {
		out.AlertsFiring = len(s.alerts.Active())
	}
	writeJSON(w, http.StatusOK, out)
}

// handleCameraHealth answers one camera's figures.
func (s *Server) handleCameraHealth(w http.ResponseWriter, r *http.Request) error {
	c, ok := s.cams.Camera(r.PathValue("id"))
	if !ok {
		return errorf(errNotFound, "camera %q not found", r.PathValue("id"))
	}
	writeJSON(w, http.StatusOK, cameraHealth(c))
	return nil
}

// gapJSON is one gap as the API shows it; End is null while it lasts.
type gapJSON struct {
	Start time.Time  `json:"start"`
	End   *time.Time `json:"end"`
	Cause gaps.Cause `json:"cause"`
}

// maxGapRange bounds one gaps query, as for segments.
const maxGapRange = 31 * 24 * time.Hour

// handleGaps answers a camera's recording gaps overlapping [from, to) (default: the
// last 24 hours): {"camera":…, "from":…, "to":…, "gaps":[{start, end, cause}]}.
func (s *Server) handleGaps(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !s.cameraKnown(r.Context(), id) {
		return errorf(errNotFound, "camera %q not found", id)
	}
	if s.gaps == nil {
		return errorf(errNotFound, "the gap ledger is not running")
	}
	from, to, err := parseRange(r, time.Now(), 24*time.Hour, maxGapRange)
	if err != nil {
		return err
	}
	list, err := s.gaps.Gaps(r.Context(), id, from, to)
	if err != nil {
		return err
	}
	out := struct {
		Camera string    `json:"camera"`
		From   time.Time `json:"from"`
		To     time.Time `json:"to"`
		Gaps   []gapJSON `json:"gaps"`
	}{id, from, to, make([]gapJSON, 0, len(list))}
	for _, g := range list {
		out.Gaps = append(out.Gaps, gapJSON{Start: g.Start.UTC(), End: timePtr(g.End), Cause: g.Cause})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// parseRange reads ?from= and ?to= (RFC 3339; to defaults to now, from to span
// before to), no longer apart than max.
func parseRange(r *http.Request, now time.Time, span, max time.Duration) (from, to time.Time, err error) {
	v := r.URL.Query()
	if to, err = parseTime(v.Get("to"), "to", now.UTC()); err != nil {
		return from, to, err
	}
	if from, err = parseTime(v.Get("from"), "from", to.Add(-span)); err != nil {
		return from, to, err
	}
	if !from.Before(to) {
		return from, to, &FieldError{"from", "must be before to"}
	}
	if to.Sub(from) > max {
		return from, to, &FieldError{"to", fmt.Sprintf("range longer than %v: ask for less at a time", max)}
	}
	return from.UTC(), to.UTC(), nil
}

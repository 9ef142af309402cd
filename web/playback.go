package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/web/audit"
)

// Player makes playable footage (*playback.Player).
type Player interface {
	Movie(ctx context.Context, camera string, from, to time.Time) (*playback.Movie, error)
	Still(ctx context.Context, camera string, at time.Time) (*playback.Movie, error)
	Timeline(ctx context.Context, camera string, from, to time.Time, buckets int, gaps playback.GapSource) (*playback.Timeline, error)
}

var errPlaybackOff = errors.New("playback is not available")

// Timeline defaults.
const (
	defaultTimelineRange   = 24 * time.Hour
	defaultTimelineBuckets = 1000
)

type spanJSON struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

type timelineGapJSON struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Cause string    `json:"cause"`
}

type timelineJSON struct {
	Camera   string            `json:"camera"`
	From     time.Time         `json:"from"`
	To       time.Time         `json:"to"`
	Recorded []spanJSON        `json:"recorded"`
	Gaps     []timelineGapJSON `json:"gaps"`
	// Activity holds one value per step from From: 0..1 relative to the range's
	// busiest step, or -1 where nothing is recorded.
	Activity []float64 `json:"activity"`
	Step     float64   `json:"step_s"`
	Detail   bool      `json:"activity_detail"`
}

// playbackCamera is the path's camera when it has footage to play and playback runs.
func (s *Server) playbackCamera(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !s.cameraKnown(r.Context(), id) {
		return "", errorf(errNotFound, "camera %q not found", id)
	}
	if s.player == nil {
		return "", errorf(errPlaybackOff, "playback is not running on this server")
	}
	return id, nil
}

// handleTimeline answers a camera's recorded stretches, gaps (with causes) and
// activity over [from, to) (default: the last 24 hours), in ?buckets= steps.
func (s *Server) handleTimeline(w http.ResponseWriter, r *http.Request) error {
	id, err := s.playbackCamera(r)
	if err != nil {
		return err
	}
	now := time.Now()
	v := r.URL.Query()
	to, err := parseTime(v.Get("to"), "to", now)
	if err != nil {
		return err
	}
	from, err := parseTime(v.Get("from"), "from", to.Add(-defaultTimelineRange))
	if err != nil {
		return err
	}
	buckets := defaultTimelineBuckets
	if b := v.Get("buckets"); b != "" {
		if buckets, err = strconv.Atoi(b); err != nil || buckets < 1 || buckets > playback.MaxBuckets {
			return &FieldError{"buckets", fmt.Sprintf("must be a whole number from 1 to %d", playback.MaxBuckets)}
		}
	}
	// A guard sees the timeline from the oldest footage they may play.
	if earliest := principal(r).EarliestPlayback(now); from.Before(earliest) {
		if !to.After(earliest) {
			return lookbackError("to", earliest)
		}
		from = earliest
	}
	tl, err := s.player.Timeline(r.Context(), id, from, to, buckets, s.timelineGaps)
	if err != nil {
		return playbackError(err)
	}
	if s.playbackSeen.first(principal(r).Username, "timeline", id, from.Truncate(time.Minute).String(), to.Truncate(time.Minute).String()) {
		if err := s.note(r, audit.Event{Action: audit.ActionPlaybackTimeline, Camera: id,
			Detail: map[string]any{"from": from, "to": to}}); err != nil {
			return err
		}
	}
	out := timelineJSON{Camera: id, From: tl.From.UTC(), To: tl.To.UTC(), Recorded: []spanJSON{}, Gaps: []timelineGapJSON{},
		Activity: tl.Activity, Step: tl.Step.Seconds(), Detail: tl.Detail}
	for _, sp := range tl.Recorded {
		out.Recorded = append(out.Recorded, spanJSON{sp.Start.UTC(), sp.End.UTC()})
	}
	for _, g := range tl.Gaps {
		out.Gaps = append(out.Gaps, timelineGapJSON{g.Start.UTC(), g.End.UTC(), g.Cause})
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleVideo serves the MP4 of a camera's footage over [from, to) (at most an
// hour), with Range requests and an ETag so a <video> element seeks in it.
func (s *Server) handleVideo(w http.ResponseWriter, r *http.Request) error {
	id, err := s.playbackCamera(r)
	if err != nil {
		return err
	}
	now := time.Now()
	v := r.URL.Query()
	from, err := parseTime(v.Get("from"), "from", time.Time{})
	if err != nil {
		return err
	}
	to, err := parseTime(v.Get("to"), "to", time.Time{})
	if err != nil {
		return err
	}
	if earliest := principal(r).EarliestPlayback(now); !from.IsZero() && from.Before(earliest) {
		return lookbackError("from", earliest)
	}
	m, err := s.player.Movie(r.Context(), id, from, to)
	if err != nil {
		return playbackError(err)
	}
	// One entry per movie a user plays, not per Range request of it. A HEAD request
	// (the page warming the next window) shows no footage.
	if r.Method != http.MethodHead && s.playbackSeen.first(principal(r).Username, "video", m.ETag()) {
		if err := s.note(r, audit.Event{Action: audit.ActionPlayback, Camera: id,
			Detail: map[string]any{"from": m.Start().UTC(), "to": m.End().UTC()}}); err != nil {
			return err
		}
	}
	s.serveMovie(w, r, m, "private, no-cache")
	return nil
}

// handleStill serves the keyframe at or before ?at= as a one-picture MP4, for the
// previews the page draws while hovering over the timeline.
func (s *Server) handleStill(w http.ResponseWriter, r *http.Request) error {
	id, err := s.playbackCamera(r)
	if err != nil {
		return err
	}
	now := time.Now()
	at, err := parseTime(r.URL.Query().Get("at"), "at", time.Time{})
	if err != nil {
		return err
	}
	if earliest := principal(r).EarliestPlayback(now); at.Before(earliest) {
		return lookbackError("at", earliest)
	}
	m, err := s.player.Still(r.Context(), id, at)
	if err != nil {
		return playbackError(err)
	}
	if earliest := principal(r).EarliestPlayback(now); m.Start().Before(earliest) {
		return lookbackError("at", earliest)
	}
	// Hovering asks for many pictures: one entry per user and camera a few minutes.
	if s.playbackSeen.first(principal(r).Username, "still", id) {
		if err := s.note(r, audit.Event{Action: audit.ActionPlaybackPreview, Camera: id,
			Detail: map[string]any{"at": m.Start().UTC()}}); err != nil {
			return err
		}
	}
	s.serveMovie(w, r, m, "private, max-age=3600")
	return nil
}

func (s *Server) serveMovie(w http.ResponseWriter, r *http.Request, m *playback.Movie, cache string) {
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("ETag", m.ETag())
	h.Set("Cache-Control", cache)
	rd := m.NewReader(r.Context())
	defer rd.Close()
	http.ServeContent(w, r, "", time.Time{}, rd)
}

// parseTime reads the RFC 3339 time of a parameter or body field, in UTC; empty
// gives def, or an error naming the field when def is zero (required). Every time the
// API reads goes through it.
func parseTime(v, field string, def time.Time) (time.Time, error) {
	if v == "" {
		if def.IsZero() {
			return def, &FieldError{field, "is required: an RFC 3339 time such as 2026-11-25T14:05:00Z"}
		}
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, &FieldError{field, fmt.Sprintf("want an RFC 3339 time such as 2026-11-25T14:05:00Z, got %q", truncate(v, 64))}
	}
	// 0001-01-01T00:00:00Z is the zero time, which callers read as "not given".
	if t.Before(time.Unix(0, 0)) {
		return t, &FieldError{field, fmt.Sprintf("%s is before 1970: no footage is that old", truncate(v, 64))}
	}
	return t.UTC(), nil
}

func lookbackError(field string, earliest time.Time) error {
	return &FieldError{field, fmt.Sprintf("before %s: this account may play footage of the last %s only",
		earliest.UTC().Format(time.RFC3339), time.Since(earliest).Round(time.Minute))}
}

// playbackError turns the player's range errors into field errors.
func playbackError(err error) error {
	var re *playback.RangeError
	if errors.As(err, &re) {
		return &FieldError{re.Field, re.Msg}
	}
	return err
}

// seenWindow is how long one user's look at the same footage counts as one audit
// entry: a player's many Range requests, a page's repeated timeline loads.
const (
	seenWindow = 5 * time.Minute
	maxSeen    = 10000
)

// seenSet remembers recent looks for seenWindow, within bounded memory.
type seenSet struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// first reports whether key parts were not seen in the last seenWindow, and marks
// them seen.
func (ss *seenSet) first(parts ...string) bool {
	key := fmt.Sprintf("%q", parts)
	now := time.Now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if t, ok := ss.seen[key]; ok && now.Sub(t) < seenWindow {
		return false
	}
	if ss.seen == nil || len(ss.seen) >= maxSeen {
		old := ss.seen
		ss.seen = make(map[string]time.Time)
		for k, t := range old {
			if now.Sub(t) < seenWindow && len(ss.seen) < maxSeen/2 {
				ss.seen[k] = t
			}
		}
	}
	ss.seen[key] = now
	return true
}

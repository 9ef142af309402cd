package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/straja-nvr/straja/recorder/ingest"
	"github.com/straja-nvr/straja/web/audit"
)

// Limits of the probe: it makes the server connect where a user says, so it must not
// become a port scanner or a way to tie up the server.
const (
	// probeTimeout bounds one probe, connection to last packet.
	probeTimeout = 8 * time.Second
	// probeObserve is how long a probe watches the video for keyframes.
	probeObserve = 5 * time.Second
	// maxProbes is how many probes run at once on the whole server.
	maxProbes = 4
	// probeBurst and probeEvery are each user's allowance: probeBurst at once, then
	// one more every probeEvery.
	probeBurst = 5
	probeEvery = 6 * time.Second
)

// probeLimits bounds probes: a token bucket per user and a cap on concurrent ones.
type probeLimits struct {
	running chan struct{}
	now     func() time.Time

	mu      sync.Mutex
	buckets map[string]*probeBucket
}

type probeBucket struct {
	tokens float64
	at     time.Time
}

func newProbeLimits() *probeLimits {
	return &probeLimits{running: make(chan struct{}, maxProbes), now: time.Now, buckets: map[string]*probeBucket{}}
}

// allow takes one probe from user's allowance, or says how long until the next.
func (l *probeLimits) allow(user string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[user]
	if !ok {
		b = &probeBucket{tokens: probeBurst, at: now}
		l.buckets[user] = b
	}
	b.tokens = min(probeBurst, b.tokens+float64(now.Sub(b.at))/float64(probeEvery))
	b.at = now
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) * float64(probeEvery))
	}
	b.tokens--
	return true, 0
}

// errProbeLimit is a user probing faster than their allowance, or a server probing
// as much as it may at once.
var errProbeLimit = errors.New("too many probes")

type probeRequest struct {
	URL      string `json:"url"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// probeResponse is a probe's answer: the stream, or why there is none. A failed probe
// is a 200 too: the request was fine, the camera was not.
type probeResponse struct {
	OK     bool                `json:"ok"`
	Result *ingest.ProbeResult `json:"result,omitempty"`
	Reason ingest.ProbeReason  `json:"reason,omitempty"`
	Error  string              `json:"error,omitempty"`
}

func (s *Server) handleProbe(w http.ResponseWriter, r *http.Request) {
	var req probeRequest
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	dial, err := probeURL(req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ok, wait := s.probes.allow(principal(r).Username); !ok {
		s.writeError(w, r, errorf(errProbeLimit, "too many probes: try again in %d s", int(wait.Seconds())+1))
		return
	}
	select {
	case s.probes.running <- struct{}{}:
		defer func() { <-s.probes.running }()
	default:
		s.writeError(w, r, errorf(errProbeLimit, "%d probes are running on this server: try again in a few seconds", maxProbes))
		return
	}
	u, _ := url.Parse(dial)
	if err := s.note(r, audit.Event{Action: audit.ActionCameraProbe, Detail: map[string]any{"host": u.Host}}); err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
	defer cancel()
	res, err := ingest.Probe(ctx, dial, probeObserve)
	var pe *ingest.ProbeError
	switch {
	case errors.As(err, &pe):
		writeJSON(w, http.StatusOK, probeResponse{Reason: pe.Reason, Error: pe.Msg})
	case err != nil:
		s.writeError(w, r, err)
	default:
		writeJSON(w, http.StatusOK, probeResponse{OK: true, Result: &res})
	}
}

// probeURL checks the request and returns the URL to dial, with the credentials.
func probeURL(req probeRequest) (string, error) {
	if strings.TrimSpace(req.URL) == "" {
		return "", &FieldError{Field: "url", Msg: "is required"}
	}
	u, err := url.Parse(req.URL)
	switch {
	case err != nil:
		return "", &FieldError{Field: "url", Msg: "cannot be parsed (percent-encode special characters)"}
	case u.Scheme != "rtsp" && u.Scheme != "rtsps":
		return "", &FieldError{Field: "url", Msg: "scheme must be rtsp or rtsps"}
	case u.Opaque != "" || u.Hostname() == "":
		return "", &FieldError{Field: "url", Msg: "host is required (rtsp://host[:port]/path)"}
	}
	if req.Username != "" {
		u.User = url.UserPassword(req.Username, req.Password)
	} else if req.Password != "" {
		return "", &FieldError{Field: "username", Msg: "is required with a password"}
	}
	return u.String(), nil
}

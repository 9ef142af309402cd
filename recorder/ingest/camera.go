package ingest

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/internal/redact"
	"github.com/straja-nvr/straja/recorder/internal/metrics"
	"github.com/straja-nvr/straja/streaming"
)

// Spec says how to reach one camera.
type Spec struct {
	// ID names the camera in logs, metrics and status.
	ID string
	// URL is the rtsp:// or rtsps:// address, with credentials. It is never logged or
	// reported; errors mentioning it are redacted.
	URL string
	// Transport is how RTP travels; "" is TransportAuto.
	Transport Transport
	// ReadTimeout is how long the camera may send no video before the session is
	// considered stalled and restarted. Zero means 10 s.
	ReadTimeout time.Duration
}

// Transport is how RTP travels from a camera.
type Transport string

// RTSP transports. TransportAuto tries UDP and falls back to TCP.
const (
	TransportAuto Transport = "auto"
	TransportTCP  Transport = "tcp"
	TransportUDP  Transport = "udp"
)

// State is a camera's ingest state as shown to operators.
type State string

// Camera states.
const (
	StateConnecting State = "connecting" // first connection, no video yet
	StateOnline     State = "online"     // video flowing
	StateStalled    State = "stalled"    // session up but no video for ReadTimeout; reconnecting
	StateOffline    State = "offline"    // connect failed or session lost; retrying
)

var states = []State{StateConnecting, StateOnline, StateStalled, StateOffline}

// Status is a snapshot of one camera's ingest health.
type Status struct {
	ID         string
	State      State
	LastFrame  time.Time // wall clock of the last access unit delivered
	BitrateBps float64   // over the last ~2 s
	FPS        float64   // over the last ~2 s
	Reconnects uint64
	LastError  string          // credentials removed
	Codec      streaming.Codec // once known
	Width      int
	Height     int
	Since      time.Time // when State was entered
	// BFrames: the camera reorders frames (PTS != DTS seen this session). Recording
	// keeps them; browsers' WebRTC decoders mostly do not.
	BFrames bool
	// Audio lists the codecs of the audio tracks the camera offers this session. They
	// are never set up: Straja records video only.
	Audio []string
}

const (
	cameraDefaultReadTimeout = 10 * time.Second
	cameraRateWindow         = 2 * time.Second
)

// Camera ingests one camera over RTSP into a streaming.Stream, reconnecting forever.
// Status is safe for concurrent use; Run must be called once.
type Camera struct {
	spec     Spec
	out      *streaming.Stream
	m        *metrics.Metrics
	log      *slog.Logger
	secrets  []string // password forms to scrub from error text
	timeout  time.Duration
	backoffs *backoff

	// params is the last published parameter set, kept across sessions so a camera
	// that comes back unchanged does not look like a parameter change. Owned by Run.
	params    *streaming.Params
	loggedErr string // last session error logged at warn level; owned by Run
	// timelineEnd is the wall-clock end of the last unit delivered, in any session, and
	// timelineStep the last frame interval: a new time base never starts before it, so
	// segments never overlap. Owned by Run.
	timelineEnd  time.Time
	timelineStep time.Duration

	mu        sync.Mutex
	status    Status
	rate      []rateSample // units delivered within the last cameraRateWindow
	rateStart time.Time    // first unit since the camera went online
}

type rateSample struct {
	at    time.Time
	bytes int
}

// NewCamera returns a camera that writes to out. log should already carry the camera
// ID; m may be shared by every camera.
func NewCamera(spec Spec, out *streaming.Stream, m *metrics.Metrics, log *slog.Logger) *Camera {
	if m == nil {
		m = metrics.New(prometheus.NewRegistry())
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Camera{
		spec:     spec,
		out:      out,
		m:        m,
		log:      log,
		secrets:  redact.Passwords(spec.URL),
		timeout:  spec.ReadTimeout,
		backoffs: newBackoff(cameraBackoffMin, cameraBackoffMax),
		// The segmenter's duration for a lone sample (25 fps), until a frame interval
		// is seen.
		timelineStep: time.Second / 25,
	}
	if c.timeout <= 0 {
		c.timeout = cameraDefaultReadTimeout
	}
	c.status = Status{ID: spec.ID}
	c.setState(StateConnecting)
	return c
}

// ContinueFrom carries over what a restarted camera keeps from prev, which has
// stopped: its reconnect count (one more) and where its recorded timeline ends. Call
// it before Run.
func (c *Camera) ContinueFrom(prev *Camera) {
	reconnects := prev.Status().Reconnects + 1
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status.Reconnects = reconnects
	c.timelineEnd, c.timelineStep = prev.timelineEnd, prev.timelineStep // neither runs: no lock needed for them
}

// ContinueAfter makes a camera starting fresh begin its timeline no earlier than end,
// where its stored footage ends. Call it before Run.
func (c *Camera) ContinueAfter(end time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timelineEnd = end // not running: the lock is for form's sake
}

// Run connects to the camera and keeps it connected until ctx is done: any failure
// (refused connection, bad credentials, stall, lost session) is followed by a
// reconnect after a jittered exponential backoff. It returns once the RTSP client and
// all its goroutines have stopped.
func (c *Camera) Run(ctx context.Context) {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			c.m.Reconnects.WithLabelValues(c.spec.ID).Inc()
			c.mu.Lock()
			c.status.Reconnects++
			c.mu.Unlock()
		}
		// Retries keep the offline/stalled state, so Since says when video was lost.
		res := c.runSession(ctx)
		if ctx.Err() != nil {
			c.setState(StateOffline)
			return
		}
		c.fail(res)
		if res.online >= cameraBackoffReset {
			c.backoffs.Reset()
		}
		limit := cameraBackoffMax
		if res.unavailable {
			limit = cameraBackoffDial
		}
		t := time.NewTimer(c.backoffs.Next(limit))
		select {
		case <-ctx.Done():
			t.Stop()
			c.setState(StateOffline)
			return
		case <-t.C:
		}
	}
}

// fail records why a session ended.
func (c *Camera) fail(res result) {
	msg := redact.String(res.err.Error(), c.secrets)
	state := StateOffline
	if res.stalled {
		state = StateStalled
	}
	c.setFailure(state, msg)
	// A dead camera fails every second or so: say so once, not every attempt.
	lvl := slog.LevelDebug
	if res.delivered || msg != c.loggedErr {
		lvl = slog.LevelWarn
	}
	c.loggedErr = msg
	c.log.Log(context.Background(), lvl, "camera session ended", "state", state, "err", msg,
		"online_for", res.online.Round(time.Millisecond))
}

// setFailure enters state with the (already redacted) error msg.
func (c *Camera) setFailure(state State, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status.LastError = msg
	c.setStateLocked(state)
}

// Status returns a snapshot of the camera's health.
func (c *Camera) Status() Status {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.status
	c.trimRate(now)
	if n := len(c.rate); n > 0 && st.State == StateOnline {
		var bytes int
		for _, s := range c.rate {
			bytes += s.bytes
		}
		first, last := c.rate[0], c.rate[n-1]
		switch span := last.at.Sub(first.at); {
		case now.Sub(c.rateStart) >= cameraRateWindow:
			st.FPS = float64(n) / cameraRateWindow.Seconds()
			st.BitrateBps = float64(bytes) * 8 / cameraRateWindow.Seconds()
		case n >= 2 && span > 0:
			// Window not full yet: measure between the first and last unit instead.
			st.FPS = float64(n-1) / span.Seconds()
			st.BitrateBps = float64(bytes-first.bytes) * 8 / span.Seconds()
		}
	}
	return st
}

func (c *Camera) trimRate(now time.Time) {
	i := 0
	for i < len(c.rate) && now.Sub(c.rate[i].at) > cameraRateWindow {
		i++
	}
	c.rate = append(c.rate[:0], c.rate[i:]...)
}

// delivered accounts one access unit of n payload bytes written to the stream.
func (c *Camera) delivered(now time.Time, n int, p *streaming.Params, reordered bool) {
	c.m.Frames.WithLabelValues(c.spec.ID).Inc()
	c.m.Bytes.WithLabelValues(c.spec.ID).Add(float64(n))
	c.mu.Lock()
	wasOnline := c.status.State == StateOnline
	c.setStateLocked(StateOnline)
	c.status.LastFrame = now
	c.status.Codec, c.status.Width, c.status.Height = p.Codec, p.Width, p.Height
	c.status.BFrames = c.status.BFrames || reordered
	c.trimRate(now)
	c.rate = append(c.rate, rateSample{at: now, bytes: n})
	c.mu.Unlock()
	if !wasOnline {
		c.log.Info("camera online", "codec", p.Codec, "width", p.Width, "height", p.Height)
	}
}

func (c *Camera) setState(s State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setStateLocked(s)
}

// setStateLocked needs c.mu held.
func (c *Camera) setStateLocked(s State) {
	if c.status.State == s {
		return
	}
	c.status.State = s
	c.status.Since = time.Now()
	c.rate = c.rate[:0]
	c.rateStart = c.status.Since
	for _, x := range states {
		v := 0.0
		if x == s {
			v = 1
		}
		c.m.CameraState.WithLabelValues(c.spec.ID, string(x)).Set(v)
	}
}

// errStalled reports a session that stopped delivering video.
var errStalled = errors.New("no video received")

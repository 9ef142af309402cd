package ingest

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
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
	// OnState, if set, hears every change of State with the status after it. It is
	// called from the camera's goroutines and must not block or call the camera.
	OnState func(Status)
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

// Reason says why a camera is not online, in words safe to show anyone.
type Reason string

// Reasons for a camera's state.
const (
	ReasonAuthFailed  Reason = "auth_failed"  // the camera refused the credentials
	ReasonUnreachable Reason = "unreachable"  // no connection, or the stream path is not served
	ReasonNoVideo     Reason = "no_video"     // the camera offers no H.264 or H.265 video
	ReasonStalled     Reason = "stalled"      // the session is up but no decodable video arrives
	ReasonSessionLost Reason = "session_lost" // the session failed or the camera closed it
	ReasonStopped     Reason = "stopped"      // the service stopped the camera
	// ReasonNoCredentials: the camera's stored password cannot be read (the secrets
	// key differs or is missing); it is not started until the password is entered again.
	ReasonNoCredentials Reason = "no_credentials"
)

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
	// Reason says why the camera is not online; "" while online or connecting.
	Reason Reason
	// GOP is the number of frames from one keyframe to the next, as last seen; 0
	// before two keyframes.
	GOP int
	// LastKeyframe is the wall clock of the last keyframe delivered.
	LastKeyframe time.Time
	// RTPLost counts RTP packets lost (sequence number gaps), Undecodable the data the
	// depacketiser rejected, Dropped the frames dropped after a timestamp discontinuity
	// until the next keyframe. All count over the camera's life.
	RTPLost, Undecodable, Dropped uint64
	// ClockOffset is how far the camera's clock, as its RTCP sender reports give it, is
	// ahead of the local clock (negative: behind), network delay included. ClockKnown
	// is false while the camera has sent no sender report.
	ClockOffset time.Duration
	ClockKnown  bool
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
	sinceKey  int          // frames delivered since the last keyframe; -1 before the first
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
	c.sinceKey = -1
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
			c.setFailure(StateOffline, ReasonStopped, "")
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
			c.setFailure(StateOffline, ReasonStopped, "")
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
	c.setFailure(state, reasonOf(res), msg)
	// A dead camera fails every second or so: say so once, not every attempt.
	lvl := slog.LevelDebug
	if res.delivered || msg != c.loggedErr {
		lvl = slog.LevelWarn
	}
	c.loggedErr = msg
	c.log.Log(context.Background(), lvl, "camera session ended", "state", state, "err", msg,
		"online_for", res.online.Round(time.Millisecond))
}

// reasonOf says why a session ended, for operators.
func reasonOf(res result) Reason {
	var bad liberrors.ErrClientBadStatusCode
	switch {
	case res.stalled:
		return ReasonStalled
	case errors.As(res.err, &bad) && bad.Code == base.StatusUnauthorized:
		return ReasonAuthFailed
	case res.unavailable:
		return ReasonUnreachable
	case errors.Is(res.err, errNoVideo):
		return ReasonNoVideo
	}
	return ReasonSessionLost
}

// setFailure enters state for reason with the (already redacted) error msg; an empty
// msg keeps the last error.
func (c *Camera) setFailure(state State, reason Reason, msg string) {
	c.mu.Lock()
	if msg != "" {
		c.status.LastError = msg
	}
	c.status.Reason = reason
	changed := c.setStateLocked(state)
	st := c.status
	c.mu.Unlock()
	if changed {
		c.notify(st)
	}
}

// notify tells Spec.OnState about a state change; st is the status after it.
func (c *Camera) notify(st Status) {
	if c.spec.OnState != nil {
		c.spec.OnState(st)
	}
}

// packetsLost counts RTP packets the camera sent that never arrived.
func (c *Camera) packetsLost(n uint64) {
	c.m.RTPLost.WithLabelValues(c.spec.ID).Add(float64(n))
	c.mu.Lock()
	c.status.RTPLost += n
	c.mu.Unlock()
}

// undecodable counts data the depacketiser rejected.
func (c *Camera) undecodable() {
	c.m.Undecodable.WithLabelValues(c.spec.ID).Inc()
	c.mu.Lock()
	c.status.Undecodable++
	c.mu.Unlock()
}

// dropped counts a frame dropped while waiting for a keyframe.
func (c *Camera) dropped() {
	c.mu.Lock()
	c.status.Dropped++
	c.mu.Unlock()
}

// clockInterval is how often the camera's clock offset is measured.
const clockInterval = time.Second

// clock records the camera's clock offset measured from a packet's NTP time.
func (c *Camera) clock(now, ntp time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status.ClockOffset, c.status.ClockKnown = ntp.Sub(now), true
	c.m.ClockOffset.WithLabelValues(c.spec.ID).Set(c.status.ClockOffset.Seconds())
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
func (c *Camera) delivered(now time.Time, n int, p *streaming.Params, reordered, key bool) {
	c.m.Frames.WithLabelValues(c.spec.ID).Inc()
	c.m.Bytes.WithLabelValues(c.spec.ID).Add(float64(n))
	c.mu.Lock()
	wasOnline := c.status.State == StateOnline
	c.status.Reason = ""
	c.setStateLocked(StateOnline)
	c.status.LastFrame = now
	switch {
	case key && c.sinceKey > 0:
		c.status.GOP, c.sinceKey = c.sinceKey, 1
	case key:
		c.sinceKey = 1
	case c.sinceKey >= 0:
		c.sinceKey++
	}
	if key {
		c.status.LastKeyframe = now
	}
	c.status.Codec, c.status.Width, c.status.Height = p.Codec, p.Width, p.Height
	c.status.BFrames = c.status.BFrames || reordered
	c.trimRate(now)
	c.rate = append(c.rate, rateSample{at: now, bytes: n})
	st := c.status
	c.mu.Unlock()
	if !wasOnline {
		c.notify(st)
		c.log.Info("camera online", "codec", p.Codec, "width", p.Width, "height", p.Height)
	}
}

func (c *Camera) setState(s State) {
	c.mu.Lock()
	changed := c.setStateLocked(s)
	st := c.status
	c.mu.Unlock()
	if changed {
		c.notify(st)
	}
}

// setStateLocked needs c.mu held; it reports whether the state changed.
func (c *Camera) setStateLocked(s State) bool {
	if c.status.State == s {
		return false
	}
	c.status.State = s
	c.status.Since = time.Now()
	c.sinceKey = -1 // a GOP is counted between keyframes of one run of video
	c.rate = c.rate[:0]
	c.rateStart = c.status.Since
	for _, x := range states {
		v := 0.0
		if x == s {
			v = 1
		}
		c.m.CameraState.WithLabelValues(c.spec.ID, string(x)).Set(v)
	}
	return true
}

// errStalled reports a session that stopped delivering video.
var errStalled = errors.New("no video received")

package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"github.com/straja-nvr/straja/internal/redact"
	"github.com/straja-nvr/straja/recorder/internal/metrics"
	"github.com/straja-nvr/straja/streaming"
)

const (
	// maxDrift is how far a unit's wall-clock time may drift from the local clock
	// before the session is re-anchored in a new epoch (camera clock jump, slow drift).
	maxDrift = 2 * time.Second
	// maxStep is the largest forward DTS step between consecutive units still
	// considered continuous; anything larger (or backwards) is a discontinuity.
	maxStep = 2 * streaming.ClockRate
	// lateFor is how long units must keep arriving more than maxDrift
	// behind their timeline before it is re-anchored: a backlog read in a burst after a
	// stall is late only briefly, and its timestamps are right.
	lateFor = 2 * time.Second
)

// errNoVideo is returned when a camera offers no H.264 or H.265 video.
var errNoVideo = errors.New("no h264 or h265 video track")

// epochs numbers epochs process-wide, so a camera restarted on the same stream
// (for example after a configuration change) can never repeat an earlier epoch.
var epochs atomic.Uint64

// result is how one RTSP session ended.
type result struct {
	err         error
	stalled     bool
	unavailable bool          // the camera or its stream is not there (yet): retry soon
	delivered   bool          // the session delivered video
	online      time.Duration // from the first to the last unit delivered
}

// runSession runs one RTSP session until it fails, stalls or ctx is done. The client
// and every goroutine it started have stopped when it returns.
func (c *Camera) runSession(ctx context.Context) result {
	c.mu.Lock()
	c.status.BFrames, c.status.Audio = false, nil // a camera may be reconfigured between sessions
	c.mu.Unlock()
	u, err := base.ParseURL(c.spec.URL)
	if err != nil {
		return result{err: fmt.Errorf("parse camera url: %w", err)}
	}
	var transport *gortsplib.Transport
	switch c.spec.Transport {
	case "", TransportAuto:
		// nil: UDP first, then TCP if no packet arrives.
	case TransportTCP:
		t := gortsplib.TransportTCP
		transport = &t
	case TransportUDP:
		t := gortsplib.TransportUDP
		transport = &t
	default:
		return result{err: fmt.Errorf("unknown transport %q", c.spec.Transport)}
	}
	client := &gortsplib.Client{
		Scheme:    u.Scheme,
		Host:      u.Host,
		Transport: transport,
		// Interleaved RTP arrives in bursts: read them in few syscalls.
		DialContext: dialBuffered,
		// Our stall check must fire first and report the stall: the client's own check
		// stamps packets in whole seconds, so it can fire up to 1 s early. It stays as
		// a backstop, and bounds every RTSP request.
		ReadTimeout: c.timeout + 2*time.Second,
		OnTransportSwitch: func(err error) {
			c.log.Info("camera transport switched", "err", redact.String(err.Error(), c.secrets))
		},
		OnPacketsLost: func(n uint64) {
			c.packetsLost(n)
			c.log.Debug("rtp packets lost", "count", n)
		},
		OnDecodeError: func(err error) {
			c.undecodable()
			c.log.Debug("rtp decode error", "err", redact.String(err.Error(), c.secrets))
		},
	}
	if err := client.Start2(); err != nil {
		return result{err: fmt.Errorf("start rtsp client: %w", err)}
	}

	s := newSession(c)
	sessCtx, cancel := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		s.watch(sessCtx, client)
	}()
	err = s.play(client, u)
	cancel()
	<-watchDone
	client.Close()

	delivered, online := s.delivery()
	res := result{err: err, delivered: delivered, online: online, unavailable: unavailable(err)}
	if s.stalled.Load() || (s.playing() && s.idle() >= c.timeout) {
		res.stalled = true
		res.err = s.stallError()
	}
	return res
}

// session is the state of one RTSP session: depacketising, parameter sets,
// timestamps. Its fields behind mu are touched only by the client's RTP callback.
type session struct {
	cam     *Camera
	start   time.Time    // monotonic base for lastAU
	lastAU  atomic.Int64 // ns since start of the last unit delivered (or PLAY); -1 before PLAY
	stalled atomic.Bool
	// clockDue is when (ns since start) the camera's clock offset is next measured.
	clockDue atomic.Int64

	mu            sync.Mutex // gortsplib may switch transport, and so reader goroutine
	codec         streaming.Codec
	dec           depacketiser
	vps, sps, pps []byte // latest seen: from the SDP, then in-band
	dts           dtsDeriver
	held          []accessUnit      // units waiting for their decode time (the epoch's first)
	ready         []accessUnit      // reused by release
	units         []*streaming.Unit // reused by onAU
	minReorder    int               // frames of reordering seen to exceed what the stream declared
	synced        bool              // a key unit started the current run of continuous timestamps
	newEpoch      bool              // the next delivered unit starts an epoch
	reanchor      bool              // drift seen: start a new epoch at the next key unit
	epochs        int               // epochs started this session
	gapCounted    bool              // the hole before the next epoch is already a counted gap
	epoch         uint64            // of the units being delivered
	anchorTime    time.Time         // wall clock (no monotonic reading) of anchorPTS
	anchorPTS     int64
	lastDTS       int64         // of the last unit delivered this epoch
	lateSince     time.Time     // arrival of the first of the units running late; zero when on time
	ahead         time.Duration // how far ahead of the local clock the timeline may run
	firstUnit     time.Time
	lastUnit      time.Time
	problem       string // why data received since the last delivered unit was dropped
}

// depacketiser is rtph264.Decoder or rtph265.Decoder.
type depacketiser interface {
	Decode(*rtp.Packet) ([][]byte, error)
}

// accessUnit is an access unit on its way to becoming a streaming.Unit.
type accessUnit struct {
	nalus    [][]byte
	pts, dts int64
	key      bool
	params   *streaming.Params
	size     int       // bytes received
	now      time.Time // arrival
}

func newSession(c *Camera) *session {
	s := &session{cam: c, start: time.Now()}
	s.lastAU.Store(-1)
	return s
}

// play describes, sets up the first H.264/H.265 video media only, plays and waits
// until the session ends.
func (s *session) play(client *gortsplib.Client, u *base.URL) error {
	desc, _, err := client.Describe(u)
	if err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	medi, forma := findVideo(desc)
	if medi == nil {
		return fmt.Errorf("describe: %w (offered: %s)", errNoVideo, codecList(desc))
	}
	if err := s.init(forma); err != nil {
		return err
	}
	if audio := audioCodecs(desc); len(audio) > 0 {
		s.cam.mu.Lock()
		s.cam.status.Audio = audio
		s.cam.mu.Unlock()
		s.cam.log.Info("camera offers audio, which is not recorded: Straja records video only", "audio", strings.Join(audio, ", "))
	}
	if _, err := client.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	client.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		pts, ok := client.PacketPTS2(medi, pkt)
		if !ok {
			return
		}
		// Once a second, on a frame's last packet (not on every packet): the camera's
		// clock against ours, from its RTCP sender reports.
		if pkt.Marker {
			if now := time.Now(); int64(now.Sub(s.start)) >= s.clockDue.Load() {
				if ntp, ok := client.PacketNTP(medi, pkt); ok {
					s.clockDue.Store(int64(now.Sub(s.start) + clockInterval))
					s.cam.clock(now, ntp)
				}
			}
		}
		s.onPacket(pkt, pts)
	})
	s.lastAU.Store(int64(time.Since(s.start)))
	if _, err := client.Play(nil); err != nil {
		return fmt.Errorf("play: %w", err)
	}
	if err := client.Wait(); errors.Is(err, io.EOF) {
		return fmt.Errorf("session: camera closed the connection: %w", err)
	} else if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	return errors.New("session ended")
}

// watch closes the client when ctx is done or when no access unit has arrived for
// the camera's read timeout.
func (s *session) watch(ctx context.Context, client *gortsplib.Client) {
	t := time.NewTicker(max(s.cam.timeout/10, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			client.Close()
			return
		case <-t.C:
			if s.playing() && s.idle() >= s.cam.timeout {
				s.stalled.Store(true)
				s.cam.setFailure(StateStalled, ReasonStalled, s.stallError().Error())
				client.Close()
				return
			}
		}
	}
}

func (s *session) stallError() error {
	s.mu.Lock()
	problem := s.problem
	s.mu.Unlock()
	if problem != "" {
		// Data arrived, but nothing decodable: say why, or the camera looks merely silent.
		return fmt.Errorf("%w for %s (camera sends data, but %s)", errStalled, s.cam.timeout, problem)
	}
	return fmt.Errorf("%w for %s", errStalled, s.cam.timeout)
}

func (s *session) playing() bool { return s.lastAU.Load() >= 0 }

// idle is how long since the last access unit (or PLAY).
func (s *session) idle() time.Duration {
	return time.Since(s.start) - time.Duration(s.lastAU.Load())
}

// delivery says whether the session delivered any unit, and for how long.
func (s *session) delivery() (bool, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstUnit.IsZero() {
		return false, 0
	}
	return true, s.lastUnit.Sub(s.firstUnit)
}

// findVideo returns the first H.264 or H.265 video format offered. Audio and
// other medias are left alone: they are never set up, so they cannot disturb ingest.
func findVideo(desc *description.Session) (*description.Media, format.Format) {
	for _, m := range desc.Medias {
		if m.IsBackChannel {
			continue
		}
		for _, f := range m.Formats {
			switch f.(type) {
			case *format.H264, *format.H265:
				return m, f
			}
		}
	}
	return nil, nil
}

// audioCodecs lists the codecs of the audio medias desc offers.
func audioCodecs(desc *description.Session) []string {
	var out []string
	for _, m := range desc.Medias {
		if m.Type != description.MediaTypeAudio || m.IsBackChannel {
			continue
		}
		for _, f := range m.Formats {
			out = append(out, f.Codec())
		}
	}
	return out
}

func codecList(desc *description.Session) string {
	var names []string
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			names = append(names, f.Codec())
		}
	}
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, ", ")
}

// init prepares depacketising for forma and takes the parameter sets from the SDP.
func (s *session) init(forma format.Format) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch f := forma.(type) {
	case *format.H264:
		dec, err := f.CreateDecoder()
		if err != nil {
			return fmt.Errorf("h264 depacketiser: %w", err)
		}
		s.codec, s.dec = streaming.H264, dec
		sps, pps := f.SafeParams()
		s.sps, s.pps = bytes.Clone(sps), bytes.Clone(pps)
	case *format.H265:
		dec, err := f.CreateDecoder()
		if err != nil {
			return fmt.Errorf("h265 depacketiser: %w", err)
		}
		s.codec, s.dec = streaming.H265, dec
		vps, sps, pps := f.SafeParams()
		s.vps, s.sps, s.pps = bytes.Clone(vps), bytes.Clone(sps), bytes.Clone(pps)
	default:
		return fmt.Errorf("unsupported format %s", forma.Codec())
	}
	return nil
}

func (s *session) onPacket(pkt *rtp.Packet, pts int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	au, err := s.dec.Decode(pkt)
	if err != nil {
		if !errors.Is(err, rtph264.ErrMorePacketsNeeded) && !errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) &&
			!errors.Is(err, rtph265.ErrMorePacketsNeeded) && !errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious) {
			s.cam.log.Debug("depacketise", "err", err)
			s.problem = "depacketise: " + err.Error()
			s.cam.undecodable()
		}
		return
	}
	for _, u := range s.onAU(au, pts, time.Now()) {
		s.cam.out.Write(u)
	}
}

// onAU turns one depacketised access unit into Units: none while waiting for a key
// unit or while the epoch's first units wait for their decode times, then those that
// are ready. The slice is valid until the next call. Needs s.mu held.
func (s *session) onAU(au [][]byte, pts int64, now time.Time) []*streaming.Unit {
	size := 0
	for _, n := range au {
		size += len(n)
	}
	body := s.takeParams(au)
	if len(body) == 0 {
		return nil
	}
	random := s.isRandomAccess(body)
	if random {
		s.publishParams()
	}
	p := s.cam.params
	key := random && p != nil && p.Codec == s.codec
	if random && !key && s.problem == "" {
		s.problem = "keyframes come without usable parameter sets"
	}
	nalus := body
	if key {
		nalus = make([][]byte, 0, len(body)+3)
		if p.Codec == streaming.H265 {
			nalus = append(nalus, p.VPS)
		}
		nalus = append(nalus, p.SPS, p.PPS)
		nalus = append(nalus, body...)
	}
	out := s.units[:0]
	for _, a := range s.timestamps(accessUnit{nalus: nalus, pts: pts, key: key, params: p, size: size, now: now}) {
		out = append(out, s.deliver(a))
	}
	s.units = out
	return out
}

// deliver turns a unit with its decode time into a streaming.Unit. Needs s.mu held.
func (s *session) deliver(a accessUnit) *streaming.Unit {
	wall := a.now.Round(0) // wall clock only, so a local clock step shows up as drift
	if !s.newEpoch {
		s.drift(a, wall)
		if step := a.dts - s.lastDTS; step > 0 {
			s.cam.timelineStep = ticksToDuration(step)
		}
	}
	if s.newEpoch || (a.key && s.reanchor) {
		s.startEpoch(a, wall)
	}
	s.lastDTS = a.dts
	// Only delivered video keeps the session alive: a camera sending nothing decodable
	// must show as stalled and be reconnected, not stay "online" forever.
	s.lastAU.Store(int64(a.now.Sub(s.start)))
	s.problem = ""
	if s.firstUnit.IsZero() {
		s.firstUnit = a.now
	}
	s.lastUnit = a.now
	u := &streaming.Unit{
		Epoch:  s.epoch,
		PTS:    a.pts,
		DTS:    a.dts,
		Time:   s.anchorTime.Add(ticksToDuration(a.pts - s.anchorPTS)),
		Key:    a.key,
		NALUs:  a.nalus,
		Params: a.params,
	}
	// A decode delay means reordering, as streaming/webrtc judges it too.
	s.cam.delivered(a.now, a.size, a.params, a.pts != a.dts, a.key)
	if end := u.Time.Add(s.cam.timelineStep); end.After(s.cam.timelineEnd) {
		s.cam.timelineEnd = end
	}
	return u
}

// drift compares the timeline with the local clock at unit a's arrival. Units that
// keep arriving late (the camera clock runs slow, the local clock stepped forward)
// re-anchor the timeline forward at the next key unit. A timeline running ahead (its
// anchor arrived late, in a burst after a stall; the camera clock runs fast; the local
// clock stepped back) is kept: moving it back would make new segments overlap those
// already recorded.
func (s *session) drift(a accessUnit, wall time.Time) {
	dev := s.anchorTime.Add(ticksToDuration(a.dts - s.anchorPTS)).Sub(wall)
	switch {
	case dev < -maxDrift:
		if s.lateSince.IsZero() {
			s.lateSince = a.now
		}
		if !s.reanchor && a.now.Sub(s.lateSince) >= lateFor {
			s.cam.log.Info("camera timestamps fell behind the local clock, re-anchoring at next keyframe", "behind", -dev)
			s.reanchor = true
		}
	case dev > s.ahead+maxDrift:
		s.cam.log.Info("camera timestamps run ahead of the local clock; kept, so that segments never overlap", "ahead", dev)
		s.ahead = dev
		s.lateSince = time.Time{}
	default:
		s.lateSince = time.Time{}
	}
}

// startEpoch starts a new epoch at unit a, which arrived at wall. The epoch starts
// where the camera's previous footage ended if it would otherwise start earlier, so
// segments never overlap, whatever the arrival times; a hole after the previous
// footage is a counted gap.
func (s *session) startEpoch(a accessUnit, wall time.Time) {
	start := wall.UTC()
	if end := s.cam.timelineEnd; !end.IsZero() {
		switch hole := start.Sub(end); {
		case hole < 0:
			s.cam.log.Info("new time base would start before the previous footage ends; starting it there", "by", -hole)
			start = end
		case hole > s.cam.timelineStep && !s.gapCounted:
			cause := metrics.GapDiscontinuity
			if s.epochs == 0 {
				cause = metrics.GapReconnect
			}
			s.cam.m.Gaps.WithLabelValues(s.cam.spec.ID, cause).Inc()
		}
	}
	s.epoch = epochs.Add(1)
	s.epochs++
	s.anchorTime, s.anchorPTS = start, a.pts
	s.ahead = start.Sub(wall)
	s.newEpoch, s.reanchor, s.gapCounted, s.lateSince = false, false, false, time.Time{}
}

// timestamps gives units their decode times and returns those that are ready (see
// dtsDeriver), oldest first. After a discontinuity (a timestamp jump, repeated or
// backwards, or deeper reordering than declared) it drops units until the next key
// unit, which starts a new epoch; the dropped units are a counted gap.
func (s *session) timestamps(a accessUnit) []accessUnit {
	if s.synced {
		s.held = append(s.held, a)
		dts, err := s.dts.add(a.pts)
		if err == nil {
			return s.release(dts)
		}
		if errors.Is(err, errDTSReorder) {
			s.minReorder = min(max(s.minReorder, s.dts.reorder+1), dtsLearnFrames-2)
		}
		clear(s.held)
		s.synced, s.held = false, s.held[:0]
		if a.key {
			s.cam.log.Info("timestamp discontinuity, new epoch at this keyframe", "err", err)
		} else {
			s.cam.m.Gaps.WithLabelValues(s.cam.spec.ID, metrics.GapDiscontinuity).Inc()
			s.gapCounted = true
			s.cam.log.Warn("timestamp discontinuity, dropping video until the next keyframe", "err", err)
		}
	}
	if !a.key {
		if s.epochs > 0 { // not the wait for a session's first keyframe
			s.cam.dropped()
		}
		return nil
	}
	reorder, known := dtsReorder(s.codec, a.params.SPS)
	if s.minReorder > reorder {
		reorder, known = s.minReorder, false // the SPS understated it: learn again
	}
	s.dts.reset(reorder, known)
	s.held = append(s.held[:0], a)
	dts, err := s.dts.add(a.pts)
	if err != nil {
		s.problem = "keyframe timestamps: " + err.Error()
		s.held = s.held[:0]
		return nil
	}
	s.synced, s.newEpoch = true, true
	return s.release(dts)
}

// release pairs the oldest held units with their decode times and returns them.
func (s *session) release(dts []int64) []accessUnit {
	if len(dts) == 0 {
		return nil
	}
	out := append(s.ready[:0], s.held[:len(dts)]...)
	for i := range out {
		out[i].dts = dts[i]
	}
	n := copy(s.held, s.held[len(dts):])
	clear(s.held[n:]) // let go of the NALUs
	s.held, s.ready = s.held[:n], out
	return out
}

// takeParams records in-band parameter sets and returns au without them and without
// access unit delimiters: key units get the current set prepended instead, once.
func (s *session) takeParams(au [][]byte) [][]byte {
	body := make([][]byte, 0, len(au))
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		if s.codec == streaming.H265 {
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				s.vps = keepBytes(s.vps, n)
				continue
			case h265.NALUType_SPS_NUT:
				s.sps = s.keepSPS(n)
				continue
			case h265.NALUType_PPS_NUT:
				s.pps = keepBytes(s.pps, n)
				continue
			case h265.NALUType_AUD_NUT:
				continue
			}
		} else {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				s.sps = s.keepSPS(n)
				continue
			case h264.NALUTypePPS:
				s.pps = keepBytes(s.pps, n)
				continue
			case h264.NALUTypeAccessUnitDelimiter:
				continue
			}
		}
		body = append(body, n)
	}
	return body
}

// keepSPS returns n if it parses, else the current SPS: one corrupt in-band SPS must
// not replace a good one (from the SDP or earlier) and black out the camera.
func (s *session) keepSPS(n []byte) []byte {
	if bytes.Equal(s.sps, n) {
		return s.sps
	}
	if _, _, err := spsSize(s.codec, n); err != nil {
		s.cam.log.Debug("ignoring corrupt in-band sps", "err", err)
		s.problem = err.Error()
		return s.sps
	}
	return bytes.Clone(n)
}

// spsSize returns the picture size an SPS of codec describes, or an error if
// it does not parse or describes no picture.
func spsSize(codec streaming.Codec, b []byte) (int, int, error) {
	var w, h int
	if codec == streaming.H265 {
		var sps h265.SPS
		if err := sps.Unmarshal(b); err != nil {
			return 0, 0, fmt.Errorf("cannot parse h265 sps: %w", err)
		}
		w, h = sps.Width(), sps.Height()
	} else {
		var sps h264.SPS
		if err := sps.Unmarshal(b); err != nil {
			return 0, 0, fmt.Errorf("cannot parse h264 sps: %w", err)
		}
		w, h = sps.Width(), sps.Height()
	}
	if w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("%s sps describes a %dx%d picture", codec, w, h)
	}
	return w, h, nil
}

func keepBytes(old, n []byte) []byte {
	if bytes.Equal(old, n) {
		return old
	}
	return bytes.Clone(n)
}

func (s *session) isRandomAccess(au [][]byte) bool {
	if s.codec == streaming.H265 {
		return h265.IsRandomAccess(au)
	}
	return h264.IsRandomAccess(au)
}

// publishParams makes the latest complete parameter set the camera's Params. It is
// called at random access units only, where a new set takes effect; an unchanged set
// keeps the same *Params so consumers see no change.
func (s *session) publishParams() {
	if len(s.sps) == 0 || len(s.pps) == 0 || (s.codec == streaming.H265 && len(s.vps) == 0) {
		return
	}
	old := s.cam.params
	if old != nil && old.Codec == s.codec && bytes.Equal(old.VPS, s.vps) &&
		bytes.Equal(old.SPS, s.sps) && bytes.Equal(old.PPS, s.pps) {
		return
	}
	// Only the SDP's SPS can be corrupt here: keep the last good set, or none, since
	// no consumer can decode (or even describe) video with it.
	w, h, err := spsSize(s.codec, s.sps)
	if err != nil {
		s.problem = err.Error()
		return
	}
	p := &streaming.Params{Codec: s.codec, VPS: s.vps, SPS: s.sps, PPS: s.pps, Width: w, Height: h}
	if old != nil {
		s.cam.log.Info("camera parameters changed", "codec", p.Codec, "width", p.Width, "height", p.Height)
	}
	s.cam.params = p
}

// ticksToDuration converts ClockRate ticks to a duration without overflowing on sessions
// that run for months.
func ticksToDuration(t int64) time.Duration {
	return time.Duration(t/streaming.ClockRate)*time.Second +
		time.Duration(t%streaming.ClockRate)*time.Second/streaming.ClockRate
}

// unavailable reports a failure that a returning camera ends by itself: no TCP
// connection, or the stream path not (yet) served. Credentials and protocol errors are
// not: retrying them fast only floods the camera and the logs.
func unavailable(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) {
		return bad.Code == base.StatusNotFound || bad.Code == base.StatusServiceUnavailable
	}
	return false
}

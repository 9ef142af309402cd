package webrtc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/straja-nvr/straja/streaming"
)

var errEmptyUnit = errors.New("access unit has no nal units")

// burstStep is the RTP timestamp spacing given to the frames of a GOP burst (1 ms). The
// burst arrives at once; with its real timestamps (up to a GOP old) the browser's
// jitter buffer would schedule the live frames that follow a GOP late. Squeezed
// together and ending at the newest frame's time, the burst is decoded at once and the
// picture is live from the first live frame.
const burstStep = 90

// viewer is one session's sending side: a queue fed by the camera worker and drained
// by the writer goroutine into the session's own track.
type viewer struct {
	queue chan item
	track *webrtc.TrackLocalStaticRTP

	// guarded by camera.mu
	removed bool
	gate    streaming.KeyGate
}

// offer queues it without blocking. A full queue drops the unit and everything up to
// the next keyframe, so the viewer resumes with a decodable picture.
func (v *viewer) offer(it item, key bool, drops prometheus.Counter) {
	if !v.gate.Admit(key) {
		drops.Add(float64(len(it.units)))
		return
	}
	select {
	case v.queue <- it:
	default:
		drops.Add(float64(len(it.units)))
		v.gate.WaitKey()
	}
}

// session is one WHEP viewer.
type session struct {
	id      string
	cam     *camera
	pc      *webrtc.PeerConnection
	v       *viewer
	client  string
	created time.Time

	stopOnce sync.Once
	stop     chan struct{} // closed to end the session
	connOnce sync.Once
	conn     chan struct{} // closed when the peer connection is up
	done     chan struct{} // closed when everything is released
}

func (s *session) end() { s.stopOnce.Do(func() { close(s.stop) }) }

// negotiate creates the peer connection for a viewer of cam and answers offer.
func (s *Server) negotiate(ctx context.Context, cam *camera, offer []byte, client string) (*session, []byte, error) {
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{ICEServers: s.iceServers})
	if err != nil {
		return nil, nil, fmt.Errorf("new peer connection: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = pc.Close()
		}
	}()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	profile := "42e01f"
	if p := cam.profile.Load(); p != nil {
		profile = *p
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{
		MimeType:    webrtc.MimeTypeH264,
		ClockRate:   90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profile,
	}, "video", "straja-"+cam.id)
	if err != nil {
		return nil, nil, fmt.Errorf("new track: %w", err)
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: add track: %v", ErrNoH264, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: create answer: %v", ErrBadOffer, err)
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		return nil, nil, fmt.Errorf("%w: set local description: %v", ErrBadOffer, err)
	}
	timer := time.NewTimer(s.opts.GatherTimeout)
	defer timer.Stop()
	select {
	case <-gathered:
	case <-timer.C: // answer with the candidates found so far
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("gather ice candidates: %w", ctx.Err())
	}

	sess := &session{
		id:      newSessionID(),
		cam:     cam,
		pc:      pc,
		v:       &viewer{queue: make(chan item, viewerQueue), track: track},
		client:  client,
		created: time.Now(),
		stop:    make(chan struct{}),
		conn:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	answerSDP, err := rtcpMuxCandidates(pc.LocalDescription().SDP)
	if err != nil {
		return nil, nil, fmt.Errorf("rewrite answer: %w", err)
	}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			sess.connOnce.Do(func() { close(sess.conn) })
		case webrtc.PeerConnectionStateDisconnected, webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			sess.end()
		}
	})

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil, ErrClosed
	}
	s.sessions[sess.id] = sess
	s.wg.Add(1)
	s.mu.Unlock()
	ok = true
	go s.runSession(sess, sender)
	return sess, answerSDP, nil
}

// rtcpMuxCandidates drops the component-2 (RTCP) candidates pion lists next to every
// component-1 one. WebRTC requires rtcp-mux, so RTCP shares component 1 and browsers
// never use the copies; they only made every candidate appear twice.
func rtcpMuxCandidates(answer string) ([]byte, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(answer); err != nil {
		return nil, err
	}
	for _, md := range sd.MediaDescriptions {
		if _, mux := md.Attribute(sdp.AttrKeyRTCPMux); !mux {
			continue // without rtcp-mux component 2 carries RTCP: keep it
		}
		kept := md.Attributes[:0]
		for _, a := range md.Attributes {
			if a.Key == sdp.AttrKeyCandidate {
				if f := strings.Fields(a.Value); len(f) > 1 && f[1] != "1" {
					continue
				}
			}
			kept = append(kept, a)
		}
		md.Attributes = kept
	}
	return sd.Marshal()
}

// runSession owns a session's goroutines and tears everything down when it ends.
func (s *Server) runSession(sess *session, sender *webrtc.RTPSender) {
	defer s.wg.Done()
	defer close(sess.done)
	log := s.log.With("camera", sess.cam.id, "session", sess.id[:8])

	// RTCP must be read for the NACK responder and sender reports to work.
	rtcpDone := make(chan struct{})
	go func() {
		defer close(rtcpDone)
		for {
			// PLIs are ignored: the camera cannot be asked for a keyframe; NACK repairs loss.
			if _, _, err := sender.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	writerQuit := make(chan struct{})
	writerDone := make(chan struct{})
	writerStarted := false

	timeout := time.NewTimer(s.opts.ConnectTimeout)
	var lifetime <-chan time.Time
	if d := s.opts.MaxSessionDuration; d > 0 {
		t := time.NewTimer(d - time.Since(sess.created))
		defer t.Stop()
		lifetime = t.C
	}
	conn := sess.conn
	var connected time.Time
	reason := "stopped"
	func() {
		defer timeout.Stop()
		for {
			select {
			case <-sess.stop:
				return
			case <-sess.cam.ended:
				log.Info("camera stream ended", "err", sess.cam.err())
				reason = "camera ended"
				return
			case <-timeout.C:
				log.Info("viewer did not connect in time", "timeout", s.opts.ConnectTimeout)
				reason = "connect timeout"
				return
			case <-lifetime:
				log.Info("live session reached its maximum duration", "max", s.opts.MaxSessionDuration)
				reason = "max duration"
				return
			case <-conn:
				if !writerStarted {
					writerStarted = true
					connected = time.Now()
					timeout.Stop()
					go func() {
						defer close(writerDone)
						s.write(sess, writerQuit)
					}()
					if !sess.cam.add(sess.v) {
						return
					}
					log.Debug("viewer connected")
				}
				conn = nil // connected: wait for the end only
			}
		}
	}()

	s.mu.Lock()
	delete(s.sessions, sess.id)
	s.releaseSlotLocked(sess.client)
	s.mu.Unlock()
	sess.cam.remove(sess.v)
	close(writerQuit)
	if err := sess.pc.Close(); err != nil {
		log.Debug("close peer connection", "err", err)
	}
	if writerStarted {
		<-writerDone
	}
	<-rtcpDone
	s.releaseCamera(sess.cam)
	log.Debug("viewer left")
	if s.opts.OnSessionEnd != nil {
		end := SessionEnd{Session: sess.id[:8], Camera: sess.cam.id, Client: sess.client, Reason: reason}
		if !connected.IsZero() {
			end.Watched = time.Since(connected)
		}
		s.opts.OnSessionEnd(end)
	}
}

// write drains the viewer's queue into its track, giving the viewer its own continuous
// sequence numbers (drops and bursts leave no holes) and squeezing burst timestamps.
func (s *Server) write(sess *session, quit <-chan struct{}) {
	cam := sess.cam
	var seq uint16
	first := true
	for {
		var it item
		select {
		case <-quit:
			return
		case it = <-sess.v.queue:
		}
		n := len(it.units)
		for i, u := range it.units {
			ts := u.ts
			if it.burst {
				ts = it.units[n-1].ts - uint32(n-1-i)*burstStep
			}
			for _, p := range u.pkts {
				out := rtp.Packet{Header: p.Header, Payload: p.Payload}
				out.SequenceNumber = seq
				out.Timestamp = ts
				seq++
				if err := sess.v.track.WriteRTP(&out); err != nil {
					continue // the connection is going away; runSession cleans up
				}
				cam.packets.Inc()
				cam.bytes.Add(float64(out.MarshalSize()))
			}
			if first && u.key {
				first = false
				cam.firstFrame.Observe(time.Since(sess.created).Seconds())
			}
			select {
			case <-quit:
				return
			default:
			}
		}
	}
}

// Package webrtc serves live view of cameras to browsers over WebRTC. Its Go API
// (Offer, Patch, Delete) is what the web package's WHEP routes (RFC 9725) call; it
// has no HTTP of its own.
//
// Each camera's streaming.Stream is read once and packetised once into H.264 RTP
// packets; every viewer of that camera is fed those same packets. All sessions share one
// UDP port (ICE UDP mux) and one TCP port (ICE-TCP fallback), so a firewall needs two
// holes, not a port range.
package webrtc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/streaming"
)

// Errors returned by Server; the web package maps them to HTTP statuses.
var (
	// ErrBadOffer means the offer is not a usable SDP offer.
	ErrBadOffer = errors.New("malformed sdp offer")
	// ErrNoH264 means the offer has no H.264 video the server can send (packetization-mode=1).
	ErrNoH264 = errors.New("offer has no h264 video with packetization-mode=1")
	// ErrCodecNotSupported means the camera's codec cannot be played by browsers (H.265):
	// live view needs an H.264 substream (live_url).
	ErrCodecNotSupported = errors.New("camera codec cannot be shown live in a browser")
	// ErrUnknownCamera is what a lookup function should wrap for a camera that does not exist.
	ErrUnknownCamera = errors.New("unknown camera")
	// ErrSessionNotFound means no live session has that ID (it ended or never existed).
	ErrSessionNotFound = errors.New("live session not found")
	// ErrUnavailable means the camera's stream has ended (camera offline or restarting).
	ErrUnavailable = errors.New("camera stream unavailable")
	// ErrClosed means the server is shutting down.
	ErrClosed = errors.New("live server closed")
	// ErrTooManySessions means Options.MaxSessions sessions are already open.
	ErrTooManySessions = errors.New("too many live sessions")
	// ErrTooManyClientSessions means the offer's client already has
	// Options.MaxSessionsPerClient sessions open.
	ErrTooManyClientSessions = errors.New("too many live sessions from this client")
	// ErrLiveUnavailable means the camera is online but its video cannot be shown live
	// (it sends B-frames, for example). Errors matching it are *LiveUnavailableError
	// and carry the reason for the user.
	ErrLiveUnavailable = errors.New("camera cannot be shown live")
)

// LiveUnavailableError says why an online camera cannot be shown live; it matches
// ErrLiveUnavailable. A lookup returns it for a camera the recorder already knows to be
// unplayable; the server returns it when it finds out from the stream itself.
type LiveUnavailableError struct {
	// Reason is a sentence for the user, saying what to change.
	Reason string
}

func (e *LiveUnavailableError) Error() string { return "camera cannot be shown live: " + e.Reason }

// Is makes errors.Is(err, ErrLiveUnavailable) true.
func (e *LiveUnavailableError) Is(target error) bool { return target == ErrLiveUnavailable }

// ReasonBFrames is the LiveUnavailableError reason for a camera that sends B-frames.
const ReasonBFrames = "this camera sends B-frames, which browsers cannot play live smoothly; " +
	"turn B-frames off in the camera's encoder or configure an H.264 live_url substream without them"

// Defaults for unset Options.
const (
	// DefaultMaxSessions bounds open sessions.
	DefaultMaxSessions = 256
	// DefaultMaxSessionsPerClient lets one machine open a full 16-camera grid, plus a
	// second page, while one misbehaving client cannot take every slot.
	DefaultMaxSessionsPerClient = 32
	// DefaultConnectTimeout frees the slot of a session whose viewer never connects:
	// browsers connect within a second on a LAN, a bogus offer never does.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultMaxPendingTCP bounds ICE-TCP connections not yet matched to a session.
	DefaultMaxPendingTCP = 64
	// DefaultFirstSTUNTimeout closes an ICE-TCP connection that sends no STUN binding
	// request in time, and one whose STUN names no session.
	DefaultFirstSTUNTimeout = 5 * time.Second
)

// Options configure a Server.
type Options struct {
	// UDPPort is the single UDP port for all media (0: a random port per interface).
	UDPPort int
	// TCPPort is the single ICE-TCP port used when UDP is blocked (0: random; <0: disabled).
	TCPPort int
	// BindAddress, when set, is the only local IP media sockets listen on and announce
	// (the HTTP listen address's, when the service is not open to other machines);
	// empty: every interface.
	BindAddress net.IP
	// HostAddresses, when set, replace the addresses advertised in host candidates
	// (NAT 1:1, or a server with several interfaces of which only one is reachable).
	HostAddresses []string
	// STUNServers, e.g. "stun:stun.example.org:3478"; none are needed on a LAN.
	STUNServers []string
	// IncludeLoopback also offers 127.0.0.1 candidates (tests, same-host browsers).
	IncludeLoopback bool
	// GatherTimeout bounds the wait for ICE gathering before answering (default 2 s).
	GatherTimeout time.Duration
	// ConnectTimeout ends a session that has not connected in time and frees its slot
	// (default DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// MaxSessions bounds open sessions, negotiating ones included (default
	// DefaultMaxSessions): each costs a peer connection, goroutines and SRTP per
	// packet, so offers beyond it get ErrTooManySessions.
	MaxSessions int
	// MaxSessionsPerClient bounds the sessions of one client address (default
	// DefaultMaxSessionsPerClient); offers beyond it get ErrTooManyClientSessions.
	MaxSessionsPerClient int
	// MaxSessionDuration ends a session that has lasted this long (0: no limit); a
	// browser page then reconnects, so no viewer holds a slot forever.
	MaxSessionDuration time.Duration
	// MaxPendingTCP bounds ICE-TCP connections not yet matched to a session (default
	// DefaultMaxPendingTCP); beyond it the oldest is closed.
	MaxPendingTCP int
	// FirstSTUNTimeout closes an ICE-TCP connection that sends no STUN binding request
	// for a session in time (default DefaultFirstSTUNTimeout).
	FirstSTUNTimeout time.Duration
	// OnSessionEnd, when set, is called once for every session that ends, after its
	// resources are released (the audit trail's live view stop).
	OnSessionEnd func(SessionEnd)
}

// SessionEnd describes a live session that ended.
type SessionEnd struct {
	Session string // the first 8 characters of the session ID, as logged
	Camera  string
	Client  string        // the client key sessions are counted by
	Watched time.Duration // from connection to end; 0 if it never connected
	Reason  string        // stopped, camera ended, connect timeout, max duration
}

// Server holds the WebRTC API, the shared ICE ports, the per-camera packetisers and
// the viewer sessions. Safe for concurrent use.
type Server struct {
	api        *webrtc.API
	udpMux     ice.UDPMux
	tcpMux     ice.TCPMux
	tcpLn      *pendingListener // nil without ICE-TCP
	iceServers []webrtc.ICEServer
	opts       Options
	log        *slog.Logger
	m          *metrics

	mu       sync.Mutex
	closed   bool
	cameras  map[cameraKey]*camera
	sessions map[string]*session
	slots    int            // sessions open or negotiating, at most opts.MaxSessions
	clients  map[string]int // slots by client address
	wg       sync.WaitGroup // session goroutines
}

type cameraKey struct {
	id string
	st *streaming.Stream
}

// h264Profiles are the profile-level-ids offered to browsers, all with
// packetization-mode=1. Browsers match on the first two bytes (profile_idc, iop), so
// each distinct pair a browser may offer is listed once.
var h264Profiles = []string{"42e01f", "42001f", "4d001f", "f4001f", "64001f", "640c1f"}

// New starts a Server listening on the configured ICE ports. reg may be nil.
func New(opts Options, reg prometheus.Registerer, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.GatherTimeout <= 0 {
		opts.GatherTimeout = 2 * time.Second
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.MaxSessionsPerClient <= 0 {
		opts.MaxSessionsPerClient = DefaultMaxSessionsPerClient
	}
	if opts.MaxPendingTCP <= 0 {
		opts.MaxPendingTCP = DefaultMaxPendingTCP
	}
	if opts.FirstSTUNTimeout <= 0 {
		opts.FirstSTUNTimeout = DefaultFirstSTUNTimeout
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}

	me := &webrtc.MediaEngine{}
	for i, p := range h264Profiles {
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType:    webrtc.MimeTypeH264,
				ClockRate:   streaming.ClockRate,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + p,
			},
			PayloadType: webrtc.PayloadType(102 + 2*i),
		}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, fmt.Errorf("register h264 %s: %w", p, err)
		}
	}
	ir := &interceptor.Registry{}
	// NACK responder: re-send lost packets on Wi-Fi; 512 packets is ~1 s at 4 Mbit/s.
	if err := webrtc.ConfigureNackWithOptions(me, ir, nil, nack.ResponderSize(512)); err != nil {
		return nil, fmt.Errorf("configure nack: %w", err)
	}
	// Sender reports let the browser map RTP time to wall time.
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, fmt.Errorf("configure rtcp reports: %w", err)
	}

	bind := opts.BindAddress
	if bind != nil && bind.IsLoopback() {
		opts.IncludeLoopback = true
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(opts.IncludeLoopback)
	if len(opts.HostAddresses) > 0 {
		se.SetNAT1To1IPs(opts.HostAddresses, webrtc.ICECandidateTypeHost)
	}
	muxOpts := []ice.UDPMuxFromPortOption{}
	if opts.IncludeLoopback {
		muxOpts = append(muxOpts, ice.UDPMuxFromPortWithLoopback())
	}
	if bind != nil {
		// Announce and listen on the bound address only: candidates elsewhere would
		// point at sockets that do not exist.
		only := func(ip net.IP) bool { return ip.Equal(bind) }
		se.SetIPFilter(only)
		muxOpts = append(muxOpts, ice.UDPMuxFromPortWithIPFilter(only))
	}
	udpMux, err := ice.NewMultiUDPMuxFromPort(opts.UDPPort, muxOpts...)
	if err != nil {
		return nil, fmt.Errorf("listen ice udp port %d: %w", opts.UDPPort, err)
	}
	if len(udpMux.GetListenAddresses()) == 0 {
		_ = udpMux.Close()
		return nil, fmt.Errorf("listen ice udp port %d: no usable address (bind address %v)", opts.UDPPort, bind)
	}
	se.SetICEUDPMux(udpMux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	var tcpMux ice.TCPMux
	var tcpLn *pendingListener
	if opts.TCPPort >= 0 {
		ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: bind, Port: opts.TCPPort})
		if err != nil {
			_ = udpMux.Close()
			return nil, fmt.Errorf("listen ice tcp port %d: %w", opts.TCPPort, err)
		}
		// Every accepted connection costs a file descriptor until it is matched to a
		// session or closed: bound both the count and the time.
		tcpLn = newPendingListener(ln, opts.MaxPendingTCP, 2*opts.MaxSessions+opts.MaxPendingTCP, m.tcpClosed)
		tcpMux = ice.NewTCPMuxDefault(ice.TCPMuxParams{
			Listener:                     tcpLn,
			ReadBufferSize:               32,
			WriteBufferSize:              4 << 20, // what pion recommends; filled only by a slow viewer
			FirstStunBindTimeout:         opts.FirstSTUNTimeout,
			AliveDurationForConnFromStun: opts.FirstSTUNTimeout,
		})
		se.SetICETCPMux(tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)

	var iceServers []webrtc.ICEServer
	if len(opts.STUNServers) > 0 {
		iceServers = []webrtc.ICEServer{{URLs: opts.STUNServers}}
	}
	return &Server{
		api:        webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)),
		udpMux:     udpMux,
		tcpMux:     tcpMux,
		tcpLn:      tcpLn,
		iceServers: iceServers,
		opts:       opts,
		log:        log,
		m:          m,
		cameras:    map[cameraKey]*camera{},
		sessions:   map[string]*session{},
		clients:    map[string]int{},
	}, nil
}

// UDPAddrs returns the addresses the UDP mux listens on (useful with port 0).
func (s *Server) UDPAddrs() []net.Addr { return s.udpMux.GetListenAddresses() }

// TCPAddr returns the ICE-TCP listen address, or nil when ICE-TCP is disabled.
func (s *Server) TCPAddr() net.Addr {
	if s.tcpLn == nil {
		return nil
	}
	return s.tcpLn.Addr()
}

// OfferRequest is a viewer's request to watch a camera.
type OfferRequest struct {
	CameraID string
	Stream   *streaming.Stream
	// SDP is the viewer's offer.
	SDP []byte
	// Client identifies the viewer's machine, its IP address, for
	// Options.MaxSessionsPerClient; empty: counted only against MaxSessions.
	Client string
}

// Offer negotiates a new viewer of req.CameraID on req.Stream: it answers the SDP offer
// with an SDP answer that already holds the server's ICE candidates (no trickle
// needed) and returns the new session's ID. ctx bounds the negotiation only, not the
// session. Errors match the package's Err values: ErrBadOffer and ErrNoH264 for the
// offer, ErrTooManySessions and ErrTooManyClientSessions when full,
// ErrCodecNotSupported, ErrLiveUnavailable and ErrUnavailable for the camera.
func (s *Server) Offer(ctx context.Context, req OfferRequest) ([]byte, string, error) {
	if err := checkOffer(req.SDP); err != nil {
		return nil, "", err
	}
	req.Client = clientKey(req.Client)
	if err := s.takeSlot(req.Client); err != nil {
		return nil, "", err
	}
	cam, err := s.acquireCamera(req.CameraID, req.Stream)
	if err != nil {
		s.releaseSlot(req.Client)
		return nil, "", err
	}
	sess, answer, err := s.negotiate(ctx, cam, req.SDP, req.Client)
	if err != nil {
		s.releaseCamera(cam)
		s.releaseSlot(req.Client)
		return nil, "", err
	}
	return answer, sess.id, nil
}

// clientKey is what MaxSessionsPerClient counts by: the IP address, or for IPv6 its
// /64, which one machine can fill with addresses at will.
func clientKey(client string) string {
	ip, err := netip.ParseAddr(client)
	if err != nil {
		return client
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.WithZone("").Prefix(64)
	return p.String()
}

// takeSlot reserves room for one session of client; releaseSlot gives it back when
// the session ends or fails to start.
func (s *Server) takeSlot(client string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.slots >= s.opts.MaxSessions {
		return fmt.Errorf("%w: %d open", ErrTooManySessions, s.slots)
	}
	if client != "" && s.clients[client] >= s.opts.MaxSessionsPerClient {
		return fmt.Errorf("%w: %d open from %s", ErrTooManyClientSessions, s.clients[client], client)
	}
	s.slots++
	if client != "" {
		s.clients[client]++
	}
	return nil
}

func (s *Server) releaseSlot(client string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseSlotLocked(client)
}

func (s *Server) releaseSlotLocked(client string) {
	s.slots--
	if client == "" {
		return
	}
	if s.clients[client]--; s.clients[client] <= 0 {
		delete(s.clients, client)
	}
}

// checkOffer rejects offers pion would choke on or that cannot carry our video, with
// errors a browser developer can act on.
func checkOffer(offer []byte) error {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(offer)); err != nil {
		return fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	if len(sd.MediaDescriptions) == 0 {
		return fmt.Errorf("%w: no media sections", ErrBadOffer)
	}
	video := false
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "video" {
			continue
		}
		video = true
		codecs := map[string]bool{} // payload type -> is H.264
		for _, a := range md.Attributes {
			if a.Key == "rtpmap" {
				pt, enc, _ := strings.Cut(a.Value, " ")
				codecs[pt] = strings.HasPrefix(strings.ToUpper(enc), "H264/")
			}
		}
		for _, a := range md.Attributes {
			if a.Key != "fmtp" {
				continue
			}
			pt, params, _ := strings.Cut(a.Value, " ")
			if codecs[pt] && h264ParamsUsable(params) {
				return nil
			}
		}
	}
	if !video {
		return fmt.Errorf("%w: no video media section", ErrNoH264)
	}
	return ErrNoH264
}

// h264ParamsUsable reports whether an H.264 fmtp line matches one of h264Profiles.
func h264ParamsUsable(params string) bool {
	mode, profile := "", "42001f" // RFC 6184 defaults: mode 0, baseline
	for _, kv := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		switch strings.ToLower(k) {
		case "packetization-mode":
			mode = v
		case "profile-level-id":
			profile = strings.ToLower(v)
		}
	}
	if mode != "1" || len(profile) != 6 {
		return false
	}
	for _, p := range h264Profiles {
		if p[:4] == profile[:4] {
			return true
		}
	}
	return false
}

// acquireCamera returns the running camera worker for (id, st), starting it for the
// first viewer, and counts a reference that releaseCamera drops.
func (s *Server) acquireCamera(id string, st *streaming.Stream) (*camera, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	key := cameraKey{id, st}
	cam := s.cameras[key]
	if cam == nil {
		cam = startCamera(id, st, s.m, s.log.With("camera", id))
		s.cameras[key] = cam
	}
	cam.refs++
	s.mu.Unlock()

	// Wait until the worker has the stream's latest GOP, so the codec is known.
	select {
	case <-cam.ready:
	case <-cam.ended:
	}
	if err := cam.err(); err != nil {
		s.releaseCamera(cam)
		return nil, fmt.Errorf("camera %s: %w", id, err)
	}
	return cam, nil
}

// releaseCamera drops a reference; the last one stops the worker and waits for it.
func (s *Server) releaseCamera(cam *camera) {
	s.mu.Lock()
	cam.refs--
	last := cam.refs == 0
	if last {
		key := cameraKey{cam.id, cam.st}
		if s.cameras[key] == cam {
			delete(s.cameras, key)
		}
	}
	s.mu.Unlock()
	if last {
		cam.stop()
	}
}

// Delete ends a session and waits until its resources are released.
func (s *Server) Delete(sessionID string) error {
	s.mu.Lock()
	sess := s.sessions[sessionID]
	s.mu.Unlock()
	if sess == nil {
		return ErrSessionNotFound
	}
	sess.end()
	<-sess.done
	return nil
}

// Patch applies a trickle-ICE SDP fragment (RFC 8840) from the viewer: its
// a=candidate lines are added as remote candidates. ICE restarts are not supported.
func (s *Server) Patch(sessionID string, fragment []byte) error {
	s.mu.Lock()
	sess := s.sessions[sessionID]
	s.mu.Unlock()
	if sess == nil {
		return ErrSessionNotFound
	}
	for _, line := range strings.Split(string(fragment), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "a=candidate:") {
			continue
		}
		if err := sess.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: strings.TrimPrefix(line, "a=")}); err != nil {
			return fmt.Errorf("%w: candidate %q: %v", ErrBadOffer, line, err)
		}
	}
	return nil
}

// Sessions returns how many sessions are open.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Close ends every session, stops every camera worker, closes the ICE ports and waits.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, sess := range s.sessions {
		sess.end()
	}
	s.mu.Unlock()
	s.wg.Wait()
	err := s.udpMux.Close()
	if s.tcpMux != nil {
		err = errors.Join(err, s.tcpMux.Close())
	}
	return err
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

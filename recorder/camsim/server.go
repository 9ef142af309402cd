// Package camsim simulates RTSP cameras: one RTSP server serves N cameras at
// rtsp://ADDR/cam1 … /camN, each looping a real encoded clip at real-time pace.
// Tests, the load tool and the demo use it as the camera; cameras can be
// stopped and restarted to drill reconnects and gaps.
//
// Nothing is re-encoded: resolution, bitrate and GOP come from the clip.
// The embedded clips (package streaming/clip) are 640x360 25 fps with a
// keyframe every 2 s; use Options.Clip (or camsim -clip) with a file made by
// MakeClip for others.
//
// What a client sees, as from a real camera: SPS/PPS (and VPS) in the SDP and
// before every keyframe; RTP timestamps (90 kHz) that advance with real time
// and stay monotonic across loops and restarts; RTCP sender reports mapping
// them to wall-clock time.
package camsim

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"

	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/clip"
)

// Options configure a Server.
type Options struct {
	// Listen is the RTSP (TCP) address. "127.0.0.1:0" picks a free port;
	// Addr reports it. Default "127.0.0.1:8554".
	Listen string
	// Cameras is the number of cameras, served as cam1 … camN.
	Cameras int
	// Codec is the codec of every camera not in Codecs. Default: the codec of Clip
	// if set, else H.264.
	Codec streaming.Codec
	// Codecs overrides Codec per camera number (1-based), e.g. {4: streaming.H265}.
	Codecs map[int]streaming.Codec
	// Clip is an optional MP4 file that replaces the embedded clip of its
	// codec; its resolution, bitrate and GOP are what those cameras send.
	Clip string
	// Username and Password, if set, are required from clients (basic or
	// digest authentication).
	Username string
	Password string
	// UDP also offers the UDP transport; TCP is always offered.
	UDP bool
	// UDPPort is the RTP port for UDP (even; RTCP uses the next one).
	// 0 picks a free pair.
	UDPPort int
}

// Server is a set of simulated cameras behind one RTSP server.
// Its methods are safe for concurrent use.
type Server struct {
	opts   Options
	log    *slog.Logger
	cams   []*camera
	byPath map[string]*camera
	skips  atomic.Uint64

	mu    sync.RWMutex
	state int // stateNew, stateStarted or stateClosed
	rtsp  *gortsplib.Server
	addr  string
}

const (
	stateNew = iota
	stateStarted
	stateClosed
)

// New validates opts and loads the clips; Start begins serving.
// A nil log discards messages.
func New(opts Options, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:8554"
	}
	if opts.Cameras < 1 {
		return nil, fmt.Errorf("cameras: %d, want at least 1", opts.Cameras)
	}
	if (opts.Username == "") != (opts.Password == "") {
		return nil, errors.New("username and password must be set together")
	}
	if opts.UDPPort%2 != 0 || opts.UDPPort < 0 || opts.UDPPort > 65534 {
		return nil, fmt.Errorf("udp port %d: want an even port (RTCP uses the next)", opts.UDPPort)
	}

	var custom *clip.Clip
	if opts.Clip != "" {
		var err error
		if custom, err = clip.Load(opts.Clip); err != nil {
			return nil, err
		}
		if opts.Codec == "" {
			opts.Codec = custom.Codec()
		}
	}
	if opts.Codec == "" {
		opts.Codec = streaming.H264
	}
	clipFor := func(codec streaming.Codec) (*clip.Clip, error) {
		if custom != nil && custom.Codec() == codec {
			return custom, nil
		}
		return clip.Embedded(codec)
	}
	if _, err := clipFor(opts.Codec); err != nil {
		return nil, err
	}
	for i, codec := range opts.Codecs {
		if i < 1 || i > opts.Cameras {
			return nil, fmt.Errorf("codecs: camera %d does not exist (cameras 1-%d)", i, opts.Cameras)
		}
		if _, err := clipFor(codec); err != nil {
			return nil, fmt.Errorf("codecs: camera %d: %w", i, err)
		}
	}

	s := &Server{opts: opts, log: log, byPath: make(map[string]*camera)}
	for i := 1; i <= opts.Cameras; i++ {
		codec := opts.Codec
		if c, ok := opts.Codecs[i]; ok {
			codec = c
		}
		cl, _ := clipFor(codec) // checked above
		c := newCamera(i, cl, &s.skips, log)
		s.cams = append(s.cams, c)
		s.byPath[c.path] = c
	}
	return s, nil
}

// Start listens and starts every camera; clients can connect when it returns.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock() // requests wait here until every stream exists
	if s.state != stateNew {
		return errors.New("server already started")
	}

	var lnAddr net.Addr
	rs := &gortsplib.Server{
		Handler:     handler{s},
		RTSPAddress: s.opts.Listen,
		// A 1080p keyframe can exceed the default 256 packets.
		WriteQueueSize: 1024,
		// gortsplib does not report the port it bound; this hook does.
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			if err == nil {
				lnAddr = l.Addr()
			}
			return l, err
		},
	}
	if s.opts.UDP {
		host, _, err := net.SplitHostPort(s.opts.Listen)
		if err != nil {
			return fmt.Errorf("listen address %q: %w", s.opts.Listen, err)
		}
		port := s.opts.UDPPort
		if port == 0 {
			if port, err = freeUDPPair(host); err != nil {
				return err
			}
		}
		rs.UDPRTPAddress = net.JoinHostPort(host, strconv.Itoa(port))
		rs.UDPRTCPAddress = net.JoinHostPort(host, strconv.Itoa(port+1))
	}
	if err := rs.Start(); err != nil {
		return fmt.Errorf("start rtsp server on %s: %w", s.opts.Listen, err)
	}
	s.rtsp = rs
	s.addr = dialable(lnAddr)
	s.state = stateStarted

	now := time.Now()
	for _, c := range s.cams {
		// Cameras start at different points of the clip, so that their
		// keyframes do not all arrive at once.
		c.epoch = now.Add(-time.Duration(c.index-1) * 370 * time.Millisecond % c.clip.Duration())
		if err := c.start(rs); err != nil {
			for _, c := range s.cams {
				c.stop()
			}
			s.state = stateClosed
			rs.Close()
			return fmt.Errorf("start camera %d: %w", c.index, err)
		}
	}
	s.log.Info("camera simulator listening", "addr", s.addr, "cameras", len(s.cams), "udp", rs.UDPRTPAddress)
	return nil
}

// Addr returns the address clients dial (host:port), or "" before Start.
// An unspecified listen host (":8554") is reported as 127.0.0.1.
func (s *Server) Addr() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.addr
}

// URL returns rtsp://ADDR/camI, without credentials.
func (s *Server) URL(i int) string {
	return "rtsp://" + s.Addr() + "/cam" + strconv.Itoa(i)
}

// Cameras returns the number of cameras.
func (s *Server) Cameras() int { return len(s.cams) }

// Skips counts the times a camera fell more than a second behind real time (the
// machine was too busy) and skipped ahead to a keyframe, as a real camera would drop
// frames: what a recorder receives then is short of the clip's frame rate.
func (s *Server) Skips() uint64 { return s.skips.Load() }

// Clip returns the clip camera i loops, or nil if there is no camera i.
func (s *Server) Clip(i int) *clip.Clip {
	if i < 1 || i > len(s.cams) {
		return nil
	}
	return s.cams[i-1].clip
}

// StopCamera takes camera i off the air, as if it lost power: its clients
// are disconnected and DESCRIBE answers 404 until StartCamera.
// Stopping a stopped camera does nothing.
func (s *Server) StopCamera(i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.camera(i)
	if err != nil {
		return err
	}
	if c.running() {
		c.stop()
		c.log.Info("camera stopped")
	}
	return nil
}

// StartCamera brings camera i back. Its RTP timestamps continue as if it had
// kept running, with a new SSRC and sequence, and it restarts at a keyframe
// (within one key interval of the clip). Starting a running camera does nothing.
func (s *Server) StartCamera(i int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.camera(i)
	if err != nil {
		return err
	}
	if c.running() {
		return nil
	}
	if err := c.start(s.rtsp); err != nil {
		return fmt.Errorf("start camera %d: %w", i, err)
	}
	c.log.Info("camera started")
	return nil
}

// SetClip makes camera i send cl from now on, as a camera whose picture changes
// (a lens covered: a far lower bitrate). A running camera restarts on the new clip,
// which drops its clients; they reconnect as after StartCamera.
func (s *Server) SetClip(i int, cl *clip.Clip) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.camera(i)
	if err != nil {
		return err
	}
	was := c.running()
	c.stop()
	c.clip = cl
	if was {
		if err := c.start(s.rtsp); err != nil {
			return fmt.Errorf("start camera %d: %w", i, err)
		}
	}
	c.log.Info("camera clip changed")
	return nil
}

// camera returns camera i of a started server; s.mu must be held.
func (s *Server) camera(i int) (*camera, error) {
	if s.state != stateStarted {
		return nil, errors.New("server not running")
	}
	if i < 1 || i > len(s.cams) {
		return nil, fmt.Errorf("camera %d does not exist (cameras 1-%d)", i, len(s.cams))
	}
	return s.cams[i-1], nil
}

// Close stops every camera and the RTSP server, disconnecting all clients,
// and waits for all goroutines. It may be called more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return
	}
	s.state = stateClosed
	for _, c := range s.cams {
		c.stop()
	}
	rs := s.rtsp
	s.mu.Unlock()
	if rs != nil {
		rs.Close() // outside the lock: its connections call handler methods
	}
}

// stream returns the stream behind an RTSP path after checking credentials.
func (s *Server) stream(conn *gortsplib.ServerConn, req *base.Request, path string) (
	*base.Response, *gortsplib.ServerStream, error,
) {
	if s.opts.Username != "" && !conn.VerifyCredentials(req, s.opts.Username, s.opts.Password) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.byPath[strings.Trim(path, "/")]
	if c == nil || c.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

// handler answers RTSP requests; a separate type keeps the gortsplib
// callbacks out of Server's API.
type handler struct{ s *Server }

// OnConnClose implements gortsplib.ServerHandlerOnConnClose.
func (h handler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	h.s.log.Debug("rtsp connection closed", "remote", ctx.Conn.NetConn().RemoteAddr().String(), "err", ctx.Error)
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (h handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return h.s.stream(ctx.Conn, ctx.Request, ctx.Path)
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (h handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return h.s.stream(ctx.Conn, ctx.Request, ctx.Path)
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (h handler) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// dialable turns a listener address into one a local client can dial.
func dialable(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if ta.IP == nil || ta.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(ta.Port))
	}
	return ta.String()
}

// freeUDPPair finds an even UDP port whose successor is also free.
// Another process may take them before gortsplib binds; Start then fails.
func freeUDPPair(host string) (int, error) {
	for range 50 {
		a, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, fmt.Errorf("find udp ports: %w", err)
		}
		port := a.LocalAddr().(*net.UDPAddr).Port &^ 1
		a.Close()
		if port == 0 || port >= 65534 {
			continue
		}
		rtp, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		rtcp, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port+1)))
		rtp.Close()
		if err != nil {
			continue
		}
		rtcp.Close()
		return port, nil
	}
	return 0, errors.New("find udp ports: no free even/odd pair")
}

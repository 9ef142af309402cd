package ingest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/streaming"
	streamclip "github.com/straja-nvr/straja/streaming/clip"
)

// testClip is a test clip demuxed into access units, as a camera would send them.
type testClip struct {
	codec         streaming.Codec
	vps, sps, pps []byte
	aus           []testClipAU
	duration      int64 // ClockRate ticks
}

type testClipAU struct {
	pts int64 // ClockRate ticks from the clip start
	au  [][]byte
}

// loadTestClip returns the embedded clip of codec (no B-frames), its key frames
// without in-band parameter sets: the camera sends them in the SDP unless inband.
func loadTestClip(t *testing.T, codec streaming.Codec) *testClip {
	t.Helper()
	c, err := streamclip.Embedded(codec)
	if err != nil {
		t.Fatal(err)
	}
	clip := &testClip{codec: codec, duration: int64(c.Duration()) * streaming.ClockRate / int64(time.Second)}
	clip.vps, clip.sps, clip.pps = c.Params()
	isParam := func(n []byte) bool { return n[0]&0x1f == 7 || n[0]&0x1f == 8 }
	if codec == streaming.H265 {
		isParam = func(n []byte) bool { return (n[0]>>1)&0x3f >= 32 && (n[0]>>1)&0x3f <= 34 }
	}
	for _, f := range c.Frames() {
		clip.aus = append(clip.aus, testClipAU{pts: f.PTS, au: slices.DeleteFunc(slices.Clone(f.NALUs), isParam)})
	}
	return clip
}

// testCam is a real RTSP camera for tests: an in-process gortsplib server that
// plays a clip in real time, in a loop. It can be stopped and started again on the
// same port (a camera reboot) and paused while keeping the session (a stall).
type testCam struct {
	t          *testing.T
	clip       *testClip
	user, pass string
	inband     bool // SDP without parameter sets; they are sent before each keyframe
	withAudio  bool // an audio media before the video one, which ingest must ignore
	udp        bool

	addr            string // fixed after the first start
	udpRTP, udpRTCP string

	paused atomic.Bool
	// held queues frames instead of sending them, until it is cleared: then the backlog
	// goes out at once, as after a stall of the camera or the network.
	held  atomic.Bool
	heldN atomic.Int64 // frames queued while held
	plays atomic.Int64
	// transports holds the transport of each session that started playing.
	transports struct {
		sync.Mutex
		of []gortsplib.Transport
	}
	keyAt atomic.Int64 // unix ns after which the next frame is a keyframe; 0: none pending
	// skipEvery, when above 0, leaves out every skipEvery-th RTP packet: its sequence
	// number is never sent, as when the network loses it.
	skipEvery atomic.Int64
	// clockOffset is how far the camera's clock, as its RTCP sender reports give it,
	// is off the real one.
	clockOffset time.Duration

	mu     sync.RWMutex
	srv    *gortsplib.Server
	stream *gortsplib.ServerStream
	cancel context.CancelFunc
	done   chan struct{}
}

type camOpt func(*testCam)

func withAuth(user, pass string) camOpt {
	return func(c *testCam) { c.user, c.pass = user, pass }
}
func withInbandParams() camOpt { return func(c *testCam) { c.inband = true } }
func withAudio() camOpt        { return func(c *testCam) { c.withAudio = true } }
func withUDP() camOpt          { return func(c *testCam) { c.udp = true } }
func withClockOffset(d time.Duration) camOpt {
	return func(c *testCam) { c.clockOffset = d }
}

// newTestCam starts a camera; it is closed when the test ends.
func newTestCam(t *testing.T, codec streaming.Codec, opts ...camOpt) *testCam {
	t.Helper()
	c := &testCam{t: t, clip: loadTestClip(t, codec), addr: "127.0.0.1:0"}
	for _, o := range opts {
		o(c)
	}
	if c.udp {
		c.udpRTP, c.udpRTCP = testutil.FreeUDPPair(t)
	}
	c.Start()
	t.Cleanup(c.Stop)
	return c
}

// URL is the camera's address with its credentials, if any.
func (c *testCam) URL() string {
	userinfo := ""
	if c.user != "" {
		userinfo = c.user + ":" + c.pass + "@"
	}
	return "rtsp://" + userinfo + c.addr + "/stream"
}

// Start powers the camera on; it streams from the clip's beginning, like a reboot.
func (c *testCam) Start() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv != nil {
		return
	}
	srv := &gortsplib.Server{
		Handler:        c,
		RTSPAddress:    c.addr,
		WriteQueueSize: 4096, // room for a held backlog sent at once
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			if err == nil {
				c.addr = l.Addr().String()
			}
			return l, err
		},
	}
	if c.udp {
		srv.UDPRTPAddress, srv.UDPRTCPAddress = c.udpRTP, c.udpRTCP
	}
	if err := srv.Start(); err != nil {
		c.t.Fatalf("start test camera: %v", err)
	}
	vf := c.videoFormat()
	desc := &description.Session{}
	if c.withAudio {
		desc.Medias = append(desc.Medias, &description.Media{Type: description.MediaTypeAudio,
			Formats: []format.Format{&format.G711{PayloadTyp: 8, SampleRate: 8000, ChannelCount: 1}}})
	}
	video := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{vf}}
	desc.Medias = append(desc.Medias, video)
	stream := &gortsplib.ServerStream{Server: srv, Desc: desc}
	if err := stream.Initialize(); err != nil {
		srv.Close()
		c.t.Fatalf("test camera stream: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.srv, c.stream, c.cancel, c.done = srv, stream, cancel, make(chan struct{})
	go func() {
		defer close(c.done)
		c.feed(ctx, stream, video, vf)
	}()
}

// PlayTransports returns the transport of each session that started playing, in order.
func (c *testCam) PlayTransports() []gortsplib.Transport {
	c.transports.Lock()
	defer c.transports.Unlock()
	return slices.Clone(c.transports.of)
}

// Stop powers the camera off: the port closes and every session drops.
func (c *testCam) Stop() {
	c.mu.Lock()
	srv, stream, cancel, done := c.srv, c.stream, c.cancel, c.done
	c.srv, c.stream = nil, nil
	c.mu.Unlock() // handlers take c.mu, and srv.Close waits for them
	if srv == nil {
		return
	}
	cancel()
	<-done
	stream.Close()
	srv.Close()
}

func (c *testCam) videoFormat() format.Format {
	if c.clip.codec == streaming.H265 {
		f := &format.H265{PayloadTyp: 96}
		if !c.inband {
			f.VPS, f.SPS, f.PPS = c.clip.vps, c.clip.sps, c.clip.pps
		}
		return f
	}
	f := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	if !c.inband {
		f.SPS, f.PPS = c.clip.sps, c.clip.pps
	}
	return f
}

// feed writes the clip's access units at their real-time pace, in a loop, until ctx
// is done.
func (c *testCam) feed(ctx context.Context, stream *gortsplib.ServerStream, medi *description.Media, vf format.Format) {
	var encode func([][]byte) ([]*rtp.Packet, error)
	var isKey func([][]byte) bool
	switch f := vf.(type) {
	case *format.H264:
		enc, err := f.CreateEncoder()
		if err != nil {
			panic(err)
		}
		encode, isKey = enc.Encode, h264.IsRandomAccess
	case *format.H265:
		enc, err := f.CreateEncoder()
		if err != nil {
			panic(err)
		}
		encode = enc.Encode
		isKey = func(au [][]byte) bool { return h265Key(au) }
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	base := binary.BigEndian.Uint32(b[:])
	aus := c.clip.aus
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var ticks int64 // output timeline: continuous across clip loops and key jumps
	var backlog []*rtp.Packet
	var sent int64
	for i := 0; ; {
		timer.Reset(time.Until(start.Add(ticksToDuration(ticks))))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if at := c.keyAt.Load(); at != 0 && time.Now().UnixNano() >= at {
			// Like most IP cameras, answer a new PLAY with a keyframe right away.
			c.keyAt.Store(0)
			for !isKey(aus[i].au) {
				i = (i + 1) % len(aus)
			}
		}
		a := aus[i]
		step := c.clip.duration - a.pts + aus[0].pts
		if i+1 < len(aus) {
			step = aus[i+1].pts - a.pts
		}
		i = (i + 1) % len(aus)
		pts := ticks
		ticks += step
		if c.paused.Load() {
			continue
		}
		au := a.au
		if c.inband && isKey(au) {
			ps := [][]byte{c.clip.sps, c.clip.pps}
			if c.clip.codec == streaming.H265 {
				ps = append([][]byte{c.clip.vps}, ps...)
			}
			au = append(ps, au...)
		}
		pkts, err := encode(au)
		if err != nil {
			panic(err)
		}
		for _, p := range pkts {
			p.Timestamp = base + uint32(pts)
		}
		if c.held.Load() {
			backlog = append(backlog, pkts...)
			c.heldN.Add(1)
			continue
		}
		for _, p := range append(backlog, pkts...) {
			sent++
			if n := c.skipEvery.Load(); n > 0 && sent%n == 0 {
				continue
			}
			_ = stream.WritePacketRTPWithNTP(medi, p, time.Now().Add(c.clockOffset))
		}
		backlog = backlog[:0]
	}
}

func h265Key(au [][]byte) bool {
	for _, n := range au {
		if typ := (n[0] >> 1) & 0x3f; typ >= 16 && typ <= 21 {
			return true
		}
	}
	return false
}

func (c *testCam) auth(ctx *gortsplib.ServerConn, req *base.Request) bool {
	return c.user == "" || ctx.VerifyCredentials(req, c.user, c.pass)
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (c *testCam) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !c.auth(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (c *testCam) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !c.auth(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (c *testCam) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	c.plays.Add(1)
	if tr := ctx.Session.SetuppedTransport(); tr != nil {
		c.transports.Lock()
		c.transports.of = append(c.transports.of, *tr)
		c.transports.Unlock()
	}
	// The session starts receiving only once this returns: key a little later.
	c.keyAt.Store(time.Now().Add(100 * time.Millisecond).UnixNano())
	return &base.Response{StatusCode: base.StatusOK}, nil
}

package webrtc

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/clip"
)

// testClip is the test camera's content: the embedded H.264 clip as the ingest
// delivers it (parameter sets in band on keyframes).
type testClip struct {
	units []*streaming.Unit // one loop, DTS from 0
	frame int64             // duration of one frame in 90 kHz ticks
}

func loadClip(tb testing.TB) *testClip {
	tb.Helper()
	c, err := clip.Embedded(streaming.H264)
	if err != nil {
		tb.Fatal(err)
	}
	units := c.Units(1, 1, time.Now())
	return &testClip{units: units, frame: units[1].DTS - units[0].DTS}
}

// unit returns the i-th access unit of an endless loop of the clip.
func (c *testClip) unit(i int) *streaming.Unit {
	u := *c.units[i%len(c.units)]
	u.PTS = int64(i) * c.frame
	u.DTS, u.Time = u.PTS, time.Now()
	return &u
}

// feed writes the clip to st at real-time pace until ctx ends; wait for the returned
// channel to be closed.
func feed(ctx context.Context, tb testing.TB, st *streaming.Stream) <-chan struct{} {
	c := loadClip(tb)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Duration(c.frame) * time.Second / streaming.ClockRate)
		defer t.Stop()
		for i := 0; ; i++ {
			st.Write(c.unit(i))
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return done
}

func newTestServer(tb testing.TB) *Server {
	tb.Helper()
	return newTestServerOpts(tb, Options{IncludeLoopback: true, TCPPort: 0})
}

func newTestServerOpts(tb testing.TB, opts Options) *Server {
	tb.Helper()
	srv, err := New(opts, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	return srv
}

// env is a server with camera "cam1" fed with the clip.
type env struct {
	srv    *Server
	stream *streaming.Stream
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	return newEnvOpts(tb, Options{IncludeLoopback: true, TCPPort: 0})
}

func newEnvOpts(tb testing.TB, opts Options) *env {
	tb.Helper()
	srv := newTestServerOpts(tb, opts)
	st := streaming.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := feed(ctx, tb, st)
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	return &env{srv: srv, stream: st}
}

// testViewer is a pion client: it negotiates with Offer and hands RTP packets to onRTP.
type testViewer struct {
	pc      *webrtc.PeerConnection
	session string
	done    chan struct{}
}

// newClientPC builds a recvonly pion client with the given codecs (nil: pion's
// defaults) that uses UDP.
func newClientPC(tb testing.TB, register func(*webrtc.MediaEngine) error) *webrtc.PeerConnection {
	tb.Helper()
	return newClientPCNet(tb, register, webrtc.NetworkTypeUDP4)
}

// newClientPCNet is newClientPC over the given network (TCP4: ICE-TCP, active).
func newClientPCNet(tb testing.TB, register func(*webrtc.MediaEngine) error, network webrtc.NetworkType) *webrtc.PeerConnection {
	tb.Helper()
	me := &webrtc.MediaEngine{}
	if register == nil {
		register = (*webrtc.MediaEngine).RegisterDefaultCodecs
	}
	if err := register(me); err != nil {
		tb.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{network})
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		tb.Fatal(err)
	}
	return pc
}

func makeOffer(tb testing.TB, pc *webrtc.PeerConnection) string {
	tb.Helper()
	gathered := webrtc.GatheringCompletePromise(pc)
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		tb.Fatal("client ice gathering timed out")
	}
	return pc.LocalDescription().SDP
}

// connect starts a viewer of camera that calls onRTP for every packet from its own
// goroutine, which ends when the connection closes.
func (e *env) connect(tb testing.TB, camera string, onRTP func(*rtp.Packet)) *testViewer {
	tb.Helper()
	return e.connectPC(tb, newClientPC(tb, nil), camera, onRTP)
}

// connectPC is connect with a given client.
func (e *env) connectPC(tb testing.TB, pc *webrtc.PeerConnection, camera string, onRTP func(*rtp.Packet)) *testViewer {
	tb.Helper()
	v := &testViewer{pc: pc, done: make(chan struct{})}
	var once sync.Once
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		once.Do(func() {
			defer close(v.done)
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				onRTP(p)
			}
		})
	})
	offer := makeOffer(tb, pc)
	answer, sid, err := e.srv.Offer(context.Background(), OfferRequest{CameraID: camera, Stream: e.stream,
		SDP: []byte(offer), Client: "127.0.0.1"})
	if err != nil {
		tb.Fatalf("offer: %v", err)
	}
	v.session = sid
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		tb.Fatal(err)
	}
	return v
}

// close deletes the session, as a WHEP DELETE does, and closes the client.
func (v *testViewer) close(tb testing.TB, e *env) {
	tb.Helper()
	if err := e.srv.Delete(v.session); err != nil {
		tb.Errorf("delete session: %v", err)
	}
	if err := v.pc.Close(); err != nil {
		tb.Error(err)
	}
}

// frameWatcher reassembles access units and checks sequence continuity.
type frameWatcher struct {
	mu        sync.Mutex
	dec       *rtph264.Decoder
	start     time.Time
	firstKey  time.Duration // time of the first complete IDR with SPS and PPS
	frames    int           // complete access units since the first keyframe
	packets   int
	lastSeq   uint16
	holes     int
	holeAfter int // packets received before the first hole
}

func newFrameWatcher() *frameWatcher {
	d := &rtph264.Decoder{}
	if err := d.Init(); err != nil {
		panic(err)
	}
	return &frameWatcher{dec: d, start: time.Now(), firstKey: -1}
}

func (w *frameWatcher) onRTP(p *rtp.Packet) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.packets > 0 && p.SequenceNumber != w.lastSeq+1 {
		if w.holes == 0 {
			w.holeAfter = w.packets
		}
		w.holes++
	}
	w.lastSeq = p.SequenceNumber
	w.packets++
	au, err := w.dec.Decode(p)
	if err != nil {
		return
	}
	if w.firstKey < 0 {
		var sps, pps, idr bool
		for _, n := range au {
			switch n[0] & 0x1f {
			case 7:
				sps = true
			case 8:
				pps = true
			case 5:
				idr = true
			}
		}
		if !(sps && pps && idr) {
			return
		}
		w.firstKey = time.Since(w.start)
	}
	w.frames++
}

type watchState struct {
	firstKey time.Duration
	frames   int
	packets  int
	holes    int
}

func (w *frameWatcher) state() watchState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return watchState{w.firstKey, w.frames, w.packets, w.holes}
}

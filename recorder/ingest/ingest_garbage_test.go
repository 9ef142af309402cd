package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder/internal/metrics"
	"github.com/straja-nvr/straja/streaming"
	streamclip "github.com/straja-nvr/straja/streaming/clip"
)

// garbageCam is a real RTSP camera whose SDP announces forma and whose RTP is
// whatever feed sends: a broken or hostile camera.
type garbageCam struct {
	addr   string
	srv    *gortsplib.Server
	stream *gortsplib.ServerStream
	plays  atomic.Int64
}

// garbageSender writes hand-made RTP packets to every client of the camera.
type garbageSender struct {
	stream *gortsplib.ServerStream
	medi   *description.Media
	pt     uint8
	seq    uint16
}

// send numbers pkt and writes it; the caller chooses timestamp, marker and payload.
func (s *garbageSender) send(pkt *rtp.Packet) {
	pkt.Version, pkt.PayloadType, pkt.SSRC = 2, s.pt, 0x5354524a
	pkt.SequenceNumber = s.seq
	s.seq++
	_ = s.stream.WritePacketRTP(s.medi, pkt)
}

// newGarbageCam starts the camera; feed runs until the test ends, paced by
// itself (see garbageTick).
func newGarbageCam(t *testing.T, forma format.Format, feed func(ctx context.Context, s *garbageSender)) *garbageCam {
	t.Helper()
	c := &garbageCam{}
	c.srv = &gortsplib.Server{
		Handler:     c,
		RTSPAddress: "127.0.0.1:0",
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			if err == nil {
				c.addr = l.Addr().String()
			}
			return l, err
		},
	}
	if err := c.srv.Start(); err != nil {
		t.Fatalf("start garbage camera: %v", err)
	}
	medi := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	c.stream = &gortsplib.ServerStream{Server: c.srv, Desc: &description.Session{Medias: []*description.Media{medi}}}
	if err := c.stream.Initialize(); err != nil {
		c.srv.Close()
		t.Fatalf("garbage camera stream: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		feed(ctx, &garbageSender{stream: c.stream, medi: medi, pt: forma.PayloadType()})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		c.stream.Close()
		c.srv.Close()
	})
	return c
}

func (c *garbageCam) URL() string { return "rtsp://" + c.addr + "/stream" }

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (c *garbageCam) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (c *garbageCam) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (c *garbageCam) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	c.plays.Add(1)
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// garbageTick waits d, or returns false once ctx is done.
func garbageTick(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// garbageFormat is the SDP video format of a camera sending clip; with params
// it carries the parameter sets, otherwise they come in-band (or never).
func garbageFormat(clip *testClip, params bool) format.Format {
	if clip.codec == streaming.H265 {
		f := &format.H265{PayloadTyp: 96}
		if params {
			f.VPS, f.SPS, f.PPS = clip.vps, clip.sps, clip.pps
		}
		return f
	}
	f := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	if params {
		f.SPS, f.PPS = clip.sps, clip.pps
	}
	return f
}

// garbageEncoder packetises access units as forma's camera would.
func garbageEncoder(t *testing.T, forma format.Format) func([][]byte) []*rtp.Packet {
	t.Helper()
	var encode func([][]byte) ([]*rtp.Packet, error)
	switch f := forma.(type) {
	case *format.H264:
		enc, err := f.CreateEncoder()
		if err != nil {
			t.Fatal(err)
		}
		encode = enc.Encode
	case *format.H265:
		enc, err := f.CreateEncoder()
		if err != nil {
			t.Fatal(err)
		}
		encode = enc.Encode
	}
	return func(au [][]byte) []*rtp.Packet {
		pkts, err := encode(au)
		if err != nil {
			panic(err) // the clip's units always packetise
		}
		return pkts
	}
}

// drain returns every unit queued on r without waiting.
func drain(t *testing.T, r *streaming.Reader) []*streaming.Unit {
	t.Helper()
	var units []*streaming.Unit
	for {
		select {
		case d := <-r.C():
			if d.Lost != 0 {
				t.Fatalf("test reader lost %d units", d.Lost)
			}
			units = append(units, d.Unit)
		default:
			return units
		}
	}
}

// checkPublished checks what any consumer relies on, whatever the camera sent:
// a key unit always carries decodable parameters first, every epoch starts with a key
// unit, and DTS strictly increases within an epoch.
func checkPublished(t *testing.T, units []*streaming.Unit, codec streaming.Codec) {
	t.Helper()
	var prev *streaming.Unit
	for i, u := range units {
		p := u.Params
		if p == nil || p.Codec != codec {
			t.Fatalf("unit %d (key %v) published with params %+v", i, u.Key, p)
		}
		if u.Key {
			if p.Width <= 0 || p.Height <= 0 {
				t.Fatalf("key unit %d published with undecodable params (%dx%d)", i, p.Width, p.Height)
			}
			want := [][]byte{p.SPS, p.PPS}
			if codec == streaming.H265 {
				want = [][]byte{p.VPS, p.SPS, p.PPS}
			}
			for j, w := range want {
				if j >= len(u.NALUs) || !bytes.Equal(u.NALUs[j], w) {
					t.Fatalf("key unit %d does not start with its parameter sets", i)
				}
			}
		}
		if prev == nil || u.Epoch != prev.Epoch {
			if !u.Key {
				t.Fatalf("unit %d starts epoch %d without a key unit", i, u.Epoch)
			}
		} else if u.DTS <= prev.DTS {
			t.Fatalf("unit %d DTS %d after %d within epoch %d", i, u.DTS, prev.DTS, u.Epoch)
		}
		if u.PTS < u.DTS {
			t.Fatalf("unit %d PTS %d before DTS %d", i, u.PTS, u.DTS)
		}
		prev = u
	}
}

// healthy follows a healthy camera that runs beside the garbage ones.
type healthy struct {
	r    *cameraRun
	prev *streaming.Unit
}

// check fails unless the healthy camera delivered every unit since the last check,
// continuously, and is still delivering now.
func (h *healthy) check(t *testing.T) {
	t.Helper()
	units := append(drain(t, h.r.reader), h.r.next(t, time.Second))
	for _, u := range units {
		if h.prev != nil && (u.Epoch != h.prev.Epoch || u.DTS-h.prev.DTS > streaming.ClockRate/10 || u.DTS <= h.prev.DTS) {
			t.Fatalf("healthy camera interrupted: epoch %d->%d, DTS step %d", h.prev.Epoch, u.Epoch, u.DTS-h.prev.DTS)
		}
		h.prev = u
	}
	if st := h.r.cam.Status(); st.State != StateOnline || st.Reconnects != 0 || st.LastError != "" {
		t.Fatalf("healthy camera status %+v", st)
	}
}

// garbageRun ingests a garbage camera.
func garbageRun(t *testing.T, id, url string, m *metrics.Metrics, timeout time.Duration) *cameraRun {
	t.Helper()
	r := startCamera(t, Spec{ID: id, URL: url, Transport: "tcp", ReadTimeout: timeout}, m)
	// Drop the reader startCamera made: it skips units until a key unit, and
	// every unit written must be checked.
	r.reader.Close()
	r.reader = r.stream.Subscribe(4096, false)
	return r
}

// expectNoVideo waits until the camera, having delivered nothing, is reported
// stalled with an error saying no video arrives, and has been reconnected.
func expectNoVideo(t *testing.T, r *cameraRun, cam *garbageCam) Status {
	t.Helper()
	st := waitState(t, r.cam, StateStalled, 5*time.Second)
	testutil.WaitFor(t, 5*time.Second, "a second PLAY, replacing the session that sends no video", func() bool {
		return cam.plays.Load() >= 2
	})
	if !strings.Contains(st.LastError, "no video received") {
		t.Errorf("LastError %q does not say that no video arrives", st.LastError)
	}
	if n := r.stream.Written(); n != 0 || !st.LastFrame.IsZero() {
		t.Errorf("%d units delivered from garbage, last frame %v", n, st.LastFrame)
	}
	return r.cam.Status()
}

func TestIngestGarbageCameras(t *testing.T) {
	if testing.Short() {
		t.Skip("streams real video for ~15 s")
	}
	m := metrics.New(prometheus.NewRegistry()) // shared, as in the service
	good := newTestCam(t, streaming.H264)
	healthy := &healthy{r: startCamera(t, Spec{ID: "healthy", URL: good.URL(), Transport: "tcp"}, m)}
	healthy.check(t)

	// (a) Random payloads behind valid RTP headers, at ~25 frames a second.
	for _, codec := range []streaming.Codec{streaming.H264, streaming.H265} {
		t.Run("random-payload-"+string(codec), func(t *testing.T) {
			clip := loadTestClip(t, codec)
			cam := newGarbageCam(t, garbageFormat(clip, true), func(ctx context.Context, s *garbageSender) {
				rng := rand.New(rand.NewPCG(1, uint64(len(codec))))
				var ts uint32
				for garbageTick(ctx, 10*time.Millisecond) {
					payload := make([]byte, 1+rng.IntN(1400))
					for i := range payload {
						payload[i] = byte(rng.Uint32())
					}
					marker := rng.IntN(4) == 0
					s.send(&rtp.Packet{Header: rtp.Header{Marker: marker, Timestamp: ts}, Payload: payload})
					if marker {
						ts += 3600
					}
				}
			})
			r := garbageRun(t, "random-"+string(codec), cam.URL(), m, time.Second)
			// Random bytes are sometimes well-formed NAL units (a parseable SPS, an
			// "IDR" whose slice data nobody checks without decoding), so some units may
			// pass. Whatever passes must be usable; the rest must not count as video.
			deadline := time.Now().Add(3 * time.Second)
			var units []*streaming.Unit
			for time.Now().Before(deadline) {
				units = append(units, drain(t, r.reader)...)
				if st := r.cam.Status(); st.State == StateStalled && r.stream.Written() == 0 {
					break
				}
				time.Sleep(20 * time.Millisecond) // polling interval
			}
			units = append(units, drain(t, r.reader)...)
			checkPublished(t, units, codec)
			st := r.cam.Status()
			t.Logf("%d units published; status %+v", r.stream.Written(), st)
			if r.stream.Written() == 0 {
				st = expectNoVideo(t, r, cam)
				if !strings.Contains(st.LastError, "camera sends data, but") {
					t.Errorf("LastError %q does not say the data is unusable", st.LastError)
				}
			}
			healthy.check(t)
		})
	}

	// (b) FU-A fragments of real keyframes that never end: cut off, restarted, or
	// missing a packet.
	t.Run("unfinished-fu-a", func(t *testing.T) {
		clip := loadTestClip(t, streaming.H264)
		forma := garbageFormat(clip, true)
		encode := garbageEncoder(t, forma)
		var frags [][]*rtp.Packet // FU-A packets of each frame, without the end fragment
		for _, a := range clip.aus {
			var fu []*rtp.Packet
			for _, p := range encode(a.au) {
				if p.Payload[0]&0x1f == 28 && p.Payload[1]&0x40 == 0 {
					fu = append(fu, p)
				}
			}
			if len(fu) >= 2 {
				frags = append(frags, fu)
			}
		}
		if len(frags) == 0 {
			t.Fatal("clip has no fragmented frame")
		}
		cam := newGarbageCam(t, forma, func(ctx context.Context, s *garbageSender) {
			rng := rand.New(rand.NewPCG(2, 2))
			var ts uint32
			for i := 0; garbageTick(ctx, 40*time.Millisecond); i++ {
				fu := frags[i%len(frags)]
				n := 1 + rng.IntN(len(fu)) // how far the frame gets
				for j, p := range fu[:n] {
					q := *p
					q.Timestamp = ts
					q.Marker = j == n-1 && rng.IntN(2) == 0 // a lying marker on a middle fragment
					switch rng.IntN(4) {
					case 0:
						s.seq++ // a packet lost on the way
					case 1:
						s.send(&rtp.Packet{Header: rtp.Header{Timestamp: ts}, Payload: fu[0].Payload}) // restart
					}
					s.send(&q)
				}
				ts += 3600
			}
		})
		r := garbageRun(t, "fu-a", cam.URL(), m, time.Second)
		expectNoVideo(t, r, cam)
		healthy.check(t)
	})

	// (c) Parameter sets only in-band, and the SPS is corrupt: nothing is decodable.
	for _, codec := range []streaming.Codec{streaming.H264, streaming.H265} {
		t.Run("corrupt-sps-"+string(codec), func(t *testing.T) {
			clip := loadTestClip(t, codec)
			forma := garbageFormat(clip, false)
			cam := newGarbageCam(t, forma, feedClip(t, clip, forma, corruptSPS(clip), nil))
			r := garbageRun(t, "bad-sps-"+string(codec), cam.URL(), m, time.Second)
			st := expectNoVideo(t, r, cam)
			if !strings.Contains(st.LastError, "sps") {
				t.Errorf("LastError %q does not name the parameter set problem", st.LastError)
			}
			healthy.check(t)
		})
	}

	// (c') Good parameter sets in the SDP, corrupt ones in-band before every keyframe:
	// the corrupt ones must not replace the good ones.
	t.Run("corrupt-inband-sps", func(t *testing.T) {
		clip := loadTestClip(t, streaming.H264)
		forma := garbageFormat(clip, true)
		cam := newGarbageCam(t, forma, feedClip(t, clip, forma, corruptSPS(clip), nil))
		r := garbageRun(t, "bad-inband-sps", cam.URL(), m, time.Second)
		// The clip has a keyframe every 2 s, each with a corrupt SPS: wait for two.
		var units []*streaming.Unit
		deadline := time.Now().Add(8 * time.Second)
		keys := 0
		for keys < 2 && time.Now().Before(deadline) {
			select {
			case d := <-r.reader.C():
				units = append(units, d.Unit)
				if d.Unit.Key {
					keys++
				}
			case <-time.After(100 * time.Millisecond):
			}
		}
		units = append(units, drain(t, r.reader)...)
		if keys < 2 {
			t.Fatalf("%d key units in %d units: a corrupt in-band SPS stopped the video; status %+v", keys, len(units), r.cam.Status())
		}
		checkPublished(t, units, streaming.H264)
		if st := r.cam.Status(); st.State != StateOnline || st.Width != 640 || st.Height != 360 {
			t.Fatalf("status %+v, want online 640x360", st)
		}
		healthy.check(t)
	})

	// (d) Real video whose RTP timestamps jump back and forth at random.
	for _, codec := range []streaming.Codec{streaming.H264, streaming.H265} {
		t.Run("timestamp-jumps-"+string(codec), func(t *testing.T) {
			clip := loadTestClip(t, codec)
			forma := garbageFormat(clip, true)
			rng := rand.New(rand.NewPCG(4, uint64(len(codec))))
			var offset int64
			jump := func() int64 {
				switch rng.IntN(8) {
				case 0:
					offset += rng.Int64N(10*streaming.ClockRate) - 5*streaming.ClockRate
				case 1:
					offset -= 3600 // one frame back
				case 2:
					offset -= 3600 / 2
				}
				return offset
			}
			short := *clip // a keyframe every 10 frames: many chances for a new epoch
			short.aus = clip.aus[:10]
			cam := newGarbageCam(t, forma, feedClip(t, &short, forma, nil, jump))
			r := garbageRun(t, "jumps-"+string(codec), cam.URL(), m, time.Second)
			deadline := time.Now().Add(3 * time.Second)
			var units []*streaming.Unit
			for time.Now().Before(deadline) {
				select {
				case d := <-r.reader.C():
					if d.Lost != 0 {
						t.Fatalf("test reader lost %d units", d.Lost)
					}
					units = append(units, d.Unit)
				case <-time.After(100 * time.Millisecond):
				}
			}
			units = append(units, drain(t, r.reader)...)
			checkPublished(t, units, codec)
			epochs := map[uint64]bool{}
			for _, u := range units {
				epochs[u.Epoch] = true
			}
			if len(units) == 0 || len(epochs) < 2 {
				t.Fatalf("%d units in %d epochs: jumps not survived or not detected", len(units), len(epochs))
			}
			if n := metricValue(m.Gaps.WithLabelValues("jumps-"+string(codec), metrics.GapDiscontinuity)); n == 0 {
				t.Error("no discontinuity gap counted")
			}
			t.Logf("%d units in %d epochs", len(units), len(epochs))
			healthy.check(t)
		})
	}

	// (e) Video, but in a codec ingest cannot record.
	for _, forma := range []format.Format{&format.VP8{PayloadTyp: 96}, &format.MJPEG{}} {
		t.Run("unsupported-"+forma.Codec(), func(t *testing.T) {
			cam := newGarbageCam(t, forma, func(ctx context.Context, s *garbageSender) {
				for garbageTick(ctx, 40*time.Millisecond) {
					s.send(&rtp.Packet{Header: rtp.Header{Marker: true}, Payload: []byte{0x10, 0, 0, 0}})
				}
			})
			r := garbageRun(t, "unsupported", cam.URL(), m, time.Second)
			st := waitState(t, r.cam, StateOffline, 5*time.Second)
			if !strings.Contains(st.LastError, "no h264 or h265 video") || !strings.Contains(st.LastError, forma.Codec()) {
				t.Errorf("LastError %q does not say the camera offers %s, not H.264/H.265", st.LastError, forma.Codec())
			}
			if n := r.stream.Written(); n != 0 || cam.plays.Load() != 0 {
				t.Errorf("%d units written, %d PLAY requests for an unsupported codec", n, cam.plays.Load())
			}
			healthy.check(t)
		})
	}
}

// corruptSPS returns the clip's SPS cut short, so that no parser accepts it.
func corruptSPS(clip *testClip) []byte {
	n := 4
	if clip.codec == streaming.H265 {
		n = 6
	}
	return bytes.Clone(clip.sps[:n])
}

// feedClip plays clip at 25 fps; with sps, parameter sets go in-band before each
// keyframe, sps replacing the clip's; jump, if set, offsets each frame's timestamp.
func feedClip(t *testing.T, clip *testClip, forma format.Format, sps []byte, jump func() int64) func(context.Context, *garbageSender) {
	encode := garbageEncoder(t, forma)
	return func(ctx context.Context, s *garbageSender) {
		var ticks int64
		for i := 0; garbageTick(ctx, 40*time.Millisecond); i++ {
			a := clip.aus[i%len(clip.aus)]
			au := a.au
			if sps != nil && isKeyAU(clip.codec, au) {
				ps := [][]byte{sps, clip.pps}
				if clip.codec == streaming.H265 {
					ps = append([][]byte{clip.vps}, ps...)
				}
				au = append(ps, au...)
			}
			pts := ticks
			if jump != nil {
				pts += jump()
			}
			ticks += 3600
			for _, p := range encode(au) {
				p.Timestamp = uint32(pts)
				s.send(p)
			}
		}
	}
}

// FuzzIngestAccessUnit feeds arbitrary access units, as the depacketiser would hand
// them over, to a session: it must never panic nor publish a unit a consumer cannot use.
//
// Input: byte 0 picks the codec (bit 0) and whether the SDP had parameter sets (bit 1);
// then per access unit a signed PTS step in frames and a NALU count, each NALU as a
// 2-byte length and its bytes.
func FuzzIngestAccessUnit(f *testing.F) {
	for _, codec := range []streaming.Codec{streaming.H264, streaming.H265} {
		clip := fuzzClip(f, codec)
		var in []byte
		for _, a := range clip.aus[:6] { // keyframe first, with its parameter sets
			in = fuzzAppend(in, 1, a.au)
		}
		mode := byte(0)
		if codec == streaming.H265 {
			mode = 1
		}
		f.Add(append([]byte{mode}, in...))
		f.Add(append([]byte{mode | 2}, in...))
		f.Add(append([]byte{mode | 2}, fuzzAppend(in, -3, clip.aus[0].au)...))
		bad := fuzzAppend(nil, 1, [][]byte{corruptSPS(clip), clip.pps, clip.aus[0].au[0]})
		f.Add(append([]byte{mode | 2}, append(bad, in...)...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		codec := streaming.H264
		if data[0]&1 != 0 {
			codec = streaming.H265
		}
		sdp := data[0]&2 != 0
		clip := fuzzClip(t, codec)
		cam := NewCamera(Spec{ID: "fuzz"}, streaming.New(), fuzzMetrics, nil)
		s := newSession(cam)
		if err := s.init(garbageFormat(clip, sdp)); err != nil {
			t.Fatal(err)
		}
		var units []*streaming.Unit
		var pts int64
		now := time.Now()
		for rest := data[1:]; len(rest) >= 2; {
			pts += int64(int8(rest[0])) * 3600
			count := int(rest[1] % 8)
			rest = rest[2:]
			var au [][]byte
			for range count {
				if len(rest) < 2 {
					break
				}
				n := min(int(binary.BigEndian.Uint16(rest)), len(rest)-2)
				au = append(au, rest[2:2+n])
				rest = rest[2+n:]
			}
			now = now.Add(40 * time.Millisecond)
			s.mu.Lock()
			units = append(units, s.onAU(au, pts, now)...)
			s.mu.Unlock()
		}
		checkPublished(t, units, codec)
	})
}

// fuzzMetrics is shared by every fuzz input: a registry per input would
// dominate the fuzzer's time.
var fuzzMetrics = metrics.New(prometheus.NewRegistry())

// fuzzClip returns the embedded clip (loaded once per process) with its frames
// as stored: keyframes carry their parameter sets in-band.
func fuzzClip(tb testing.TB, codec streaming.Codec) *testClip {
	tb.Helper()
	c, err := streamclip.Embedded(codec)
	if err != nil {
		tb.Fatal(err)
	}
	clip := &testClip{codec: codec}
	clip.vps, clip.sps, clip.pps = c.Params()
	for _, f := range c.Frames()[:8] {
		clip.aus = append(clip.aus, testClipAU{pts: f.PTS, au: f.NALUs})
	}
	return clip
}

// fuzzAppend encodes one access unit in FuzzIngestAccessUnit's input format,
// each NALU cut to 300 bytes: the slice header is all ingest reads.
func fuzzAppend(in []byte, step int8, au [][]byte) []byte {
	in = append(in, byte(step), byte(len(au)))
	for _, n := range au {
		n = n[:min(len(n), 300)]
		in = binary.BigEndian.AppendUint16(in, uint16(len(n)))
		in = append(in, n...)
	}
	return in
}

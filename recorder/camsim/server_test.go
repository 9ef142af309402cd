package camsim

import (
	"encoding/json"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
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
	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/streaming"
)

func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.Listen = "127.0.0.1:0"
	s, err := New(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// au is an access unit as a client decoded it.
type au struct {
	ts     uint32
	key    bool
	params bool // carries an in-band SPS
	at     time.Time
}

// player is an RTSP client that decodes what it receives.
type player struct {
	c       *gortsplib.Client
	codec   streaming.Codec
	started time.Time // when PLAY returned

	mu        sync.Mutex
	aus       []au
	badMarker int // packets of a new timestamp that followed a packet without marker
	decodeErr error

	done      chan struct{}
	waitErr   error
	closeOnce sync.Once
}

func describe(rawURL string) (*description.Session, error) {
	u, err := base.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
	if err := c.Start2(); err != nil {
		return nil, err
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	return desc, err
}

func play(t *testing.T, rawURL string) (*player, error) {
	t.Helper()
	u, err := base.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	tcp := gortsplib.TransportTCP
	p := &player{c: &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &tcp}, done: make(chan struct{})}
	if err := p.c.Start2(); err != nil {
		return nil, err
	}
	desc, _, err := p.c.Describe(u)
	if err != nil {
		p.c.Close()
		return nil, err
	}
	if len(desc.Medias) != 1 || len(desc.Medias[0].Formats) != 1 {
		p.c.Close()
		return nil, errors.New("want one media with one format")
	}
	medi, forma := desc.Medias[0], desc.Medias[0].Formats[0]
	var decode func(*rtp.Packet) ([][]byte, error)
	var isKey func([][]byte) bool
	var sps func([]byte) bool
	switch f := forma.(type) {
	case *format.H264:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		p.codec, decode, isKey = streaming.H264, d.Decode, h264.IsRandomAccess
		sps = func(n []byte) bool { return h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS }
	case *format.H265:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		p.codec, decode, isKey = streaming.H265, d.Decode, h265.IsRandomAccess
		sps = func(n []byte) bool { return h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_SPS_NUT }
	default:
		p.c.Close()
		return nil, errors.New("unexpected format " + forma.Codec())
	}
	if err := p.c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		p.c.Close()
		return nil, err
	}

	var last *rtp.Packet
	p.c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if last != nil && pkt.Timestamp != last.Timestamp && !last.Marker {
			p.badMarker++
		}
		last = pkt
		nalus, err := decode(pkt)
		switch {
		case err == nil:
			p.aus = append(p.aus, au{ts: pkt.Timestamp, key: isKey(nalus), params: slices.ContainsFunc(nalus, sps), at: time.Now()})
		case errors.Is(err, rtph264.ErrMorePacketsNeeded), errors.Is(err, rtph265.ErrMorePacketsNeeded),
			errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious), errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious):
		default:
			if p.decodeErr == nil {
				p.decodeErr = err
			}
		}
	})
	if _, err := p.c.Play(nil); err != nil {
		p.c.Close()
		return nil, err
	}
	p.started = time.Now()
	go func() {
		defer close(p.done)
		p.waitErr = p.c.Wait()
	}()
	t.Cleanup(p.close)
	return p, nil
}

func (p *player) close() {
	p.closeOnce.Do(func() {
		p.c.Close()
		<-p.done
	})
}

func (p *player) units() []au {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.aus)
}

// firstKey returns the index of the first keyframe, or -1.
func firstKey(aus []au) int {
	return slices.IndexFunc(aus, func(a au) bool { return a.key })
}

// checkStream checks what a decoder needs from the units after the first
// keyframe: parameter sets in every keyframe, markers, and timestamps one
// frame apart (the clips have no B-frames).
func (p *player) checkStream(t *testing.T, frame uint32) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.decodeErr != nil {
		t.Errorf("decode: %v", p.decodeErr)
	}
	if p.badMarker > 0 {
		t.Errorf("%d access units did not end with a marker bit", p.badMarker)
	}
	k := firstKey(p.aus)
	if k < 0 {
		t.Fatal("no keyframe received")
	}
	for i := k; i < len(p.aus); i++ {
		a := p.aus[i]
		if a.key && !a.params {
			t.Errorf("keyframe at ts %d has no in-band SPS", a.ts)
		}
		if i > k && a.ts-p.aus[i-1].ts != frame {
			t.Fatalf("timestamp step %d→%d is %d, want %d", p.aus[i-1].ts, a.ts, int32(a.ts-p.aus[i-1].ts), frame)
		}
	}
}

func TestCamerasDescribeTheirCodec(t *testing.T) {
	s := startServer(t, Options{Cameras: 3, Codecs: map[int]streaming.Codec{2: streaming.H265}})
	for i, want := range map[int]string{1: "H264", 2: "H265", 3: "H264"} {
		desc, err := describe(s.URL(i))
		if err != nil {
			t.Fatalf("describe cam%d: %v", i, err)
		}
		if got := desc.Medias[0].Formats[0].Codec(); got != want {
			t.Errorf("cam%d: codec %s, want %s", i, got, want)
		}
		switch f := desc.Medias[0].Formats[0].(type) {
		case *format.H264:
			if f.SPS == nil || f.PPS == nil {
				t.Errorf("cam%d: SDP lacks SPS/PPS", i)
			}
		case *format.H265:
			if f.VPS == nil || f.SPS == nil || f.PPS == nil {
				t.Errorf("cam%d: SDP lacks VPS/SPS/PPS", i)
			}
		}
	}
	_, err := describe(strings.Replace(s.URL(1), "cam1", "cam4", 1))
	var bad liberrors.ErrClientBadStatusCode
	if !errors.As(err, &bad) || bad.Code != base.StatusNotFound {
		t.Errorf("describe cam4 (no such camera): %v, want 404", err)
	}
}

func TestCameraStreamsDecodableVideo(t *testing.T) {
	if testing.Short() {
		t.Skip("streams for several seconds")
	}
	s := startServer(t, Options{Cameras: 2, Codec: streaming.H265, Codecs: map[int]streaming.Codec{1: streaming.H264}})
	for i, codec := range []streaming.Codec{streaming.H264, streaming.H265} {
		t.Run(string(codec), func(t *testing.T) {
			t.Parallel()
			p, err := play(t, s.URL(i+1))
			if err != nil {
				t.Fatal(err)
			}
			if p.codec != codec {
				t.Fatalf("codec %s, want %s", p.codec, codec)
			}
			// A client joins at a random point of the GOP: the first
			// picture it can decode comes within one key interval.
			limit := s.Clip(i+1).KeyInterval() + 500*time.Millisecond
			testutil.WaitFor(t, limit, "a keyframe", func() bool { return firstKey(p.units()) >= 0 })
			aus := p.units()
			k := aus[firstKey(aus)]
			t.Logf("first keyframe %v after PLAY", k.at.Sub(p.started))

			// Real-time pace: one more second brings about 25 frames.
			testutil.WaitFor(t, 3*time.Second, "a second of frames after the keyframe", func() bool {
				return p.units()[len(p.units())-1].at.Sub(k.at) >= time.Second
			})
			aus = p.units()
			n := 0
			for _, a := range aus {
				if d := a.at.Sub(k.at); d > 0 && d <= time.Second {
					n++
				}
			}
			if n < 20 || n > 30 {
				t.Errorf("%d frames in the second after the first keyframe, want about 25", n)
			}
			p.checkStream(t, 3600)
		})
	}
}

func TestTimestampsContinueAcrossLoops(t *testing.T) {
	if testing.Short() {
		t.Skip("streams for several seconds")
	}
	// A 1 s clip loops twice within the test.
	clip := makeClip(t, ClipSpec{Codec: streaming.H264, Duration: time.Second, GOP: 12, Width: 320, Height: 180})
	s := startServer(t, Options{Cameras: 1, Clip: clip})
	p, err := play(t, s.URL(1))
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "2.2 loops after the first keyframe", func() bool {
		aus := p.units()
		k := firstKey(aus)
		return k >= 0 && len(aus)-k > 55
	})
	p.checkStream(t, 3600)
}

func TestBFrameClipKeepsPresentationOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("streams for several seconds")
	}
	clip := makeClip(t, ClipSpec{Codec: streaming.H265, Duration: time.Second, GOP: 25, BFrames: 3, Width: 320, Height: 180})
	s := startServer(t, Options{Cameras: 1, Clip: clip})
	p, err := play(t, s.URL(1))
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "2.2 loops after the first keyframe", func() bool {
		aus := p.units()
		k := firstKey(aus)
		return k >= 0 && len(aus)-k > 55
	})
	aus := p.units()
	aus = aus[firstKey(aus):]
	reordered := false
	var ts []uint32
	for i, a := range aus {
		if i > 0 && int32(a.ts-aus[i-1].ts) < 0 {
			reordered = true
		}
		ts = append(ts, a.ts-aus[0].ts)
	}
	if !reordered {
		t.Error("timestamps never go back: B-frames were sent in presentation order or offsets were lost")
	}
	// In presentation order, frames are exactly one frame apart across
	// loops; the last few may still wait for their B-frames.
	slices.Sort(ts)
	for i := 1; i < len(ts)-5; i++ {
		if ts[i]-ts[i-1] != 3600 {
			t.Fatalf("presentation step %d→%d, want 3600 (sorted %v)", ts[i-1], ts[i], ts[max(0, i-3):i+3])
		}
	}
}

func TestStopAndStartCamera(t *testing.T) {
	if testing.Short() {
		t.Skip("streams for several seconds")
	}
	s := startServer(t, Options{Cameras: 2})
	p, err := play(t, s.URL(1))
	if err != nil {
		t.Fatal(err)
	}
	other, err := play(t, s.URL(2))
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 3*time.Second, "frames before stop", func() bool { return len(p.units()) > 0 })

	if err := s.StopCamera(1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		if p.waitErr == nil {
			t.Error("client Wait returned nil after the camera stopped")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("client still connected 3 s after StopCamera")
	}
	aus := p.units()
	before := aus[len(aus)-1]

	_, err = describe(s.URL(1))
	var bad liberrors.ErrClientBadStatusCode
	if !errors.As(err, &bad) || bad.Code != base.StatusNotFound {
		t.Errorf("describe a stopped camera: %v, want 404", err)
	}
	n := len(other.units())
	testutil.WaitFor(t, time.Second, "cam2 to go on while cam1 is stopped", func() bool { return len(other.units()) > n+5 })

	if err := s.StartCamera(1); err != nil {
		t.Fatal(err)
	}
	q, err := play(t, s.URL(1))
	if err != nil {
		t.Fatalf("play after StartCamera: %v", err)
	}
	testutil.WaitFor(t, s.Clip(1).KeyInterval()+time.Second, "a keyframe after restart", func() bool {
		return firstKey(q.units()) >= 0
	})
	after := q.units()[firstKey(q.units())]
	// Timestamps advanced with real time while the camera was off.
	media := time.Duration(after.ts-before.ts) * time.Second / 90000
	wall := after.at.Sub(before.at)
	if d := media - wall; d < -300*time.Millisecond || d > 300*time.Millisecond {
		t.Errorf("timestamps advanced %v across a %v outage", media, wall)
	}
	q.checkStream(t, 3600)

	if err := s.StopCamera(3); err == nil {
		t.Error("StopCamera(3) of 2 cameras succeeded")
	}
}

func TestAuthentication(t *testing.T) {
	s := startServer(t, Options{Cameras: 1, Username: "admin", Password: "s3cret"})
	withCreds := func(user, pass string) string {
		return strings.Replace(s.URL(1), "rtsp://", "rtsp://"+user+":"+pass+"@", 1)
	}
	for name, u := range map[string]string{
		"none":           s.URL(1),
		"wrong password": withCreds("admin", "guess"),
		"wrong user":     withCreds("root", "s3cret"),
	} {
		if _, err := describe(u); err == nil {
			t.Errorf("%s: DESCRIBE succeeded", name)
		}
	}
	if _, err := describe(withCreds("admin", "s3cret")); err != nil {
		t.Errorf("right credentials: %v", err)
	}
}

func TestFFprobeReadsCameras(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffprobe")
	}
	testutil.NeedTool(t, "ffprobe") // the independent RTSP client to check against
	s := startServer(t, Options{Cameras: 2, Codecs: map[int]streaming.Codec{2: streaming.H265}, UDP: true, Username: "u", Password: "p"})
	for _, tc := range []struct {
		cam       int
		transport string
		codec     string
	}{{1, "tcp", "h264"}, {2, "tcp", "hevc"}, {1, "udp", "h264"}} {
		u := strings.Replace(s.URL(tc.cam), "rtsp://", "rtsp://u:p@", 1)
		out, err := exec.Command("ffprobe", "-v", "error", "-rtsp_transport", tc.transport,
			"-show_entries", "stream=codec_name,width,height", "-of", "json", u).Output()
		if err != nil {
			t.Errorf("ffprobe cam%d over %s: %v", tc.cam, tc.transport, err)
			continue
		}
		var probe struct {
			Streams []struct {
				CodecName string `json:"codec_name"`
				Width     int
				Height    int
			}
		}
		if err := json.Unmarshal(out, &probe); err != nil {
			t.Fatalf("ffprobe output %s: %v", out, err)
		}
		if len(probe.Streams) != 1 || probe.Streams[0].CodecName != tc.codec ||
			probe.Streams[0].Width != 640 || probe.Streams[0].Height != 360 {
			t.Errorf("ffprobe cam%d over %s: %s, want one %s 640x360 stream", tc.cam, tc.transport, out, tc.codec)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, opts := range map[string]Options{
		"no cameras":          {},
		"unknown codec":       {Cameras: 1, Codec: "vp8"},
		"camera out of range": {Cameras: 2, Codecs: map[int]streaming.Codec{3: streaming.H265}},
		"codec override":      {Cameras: 2, Codecs: map[int]streaming.Codec{1: "mjpeg"}},
		"user without pass":   {Cameras: 1, Username: "u"},
		"odd udp port":        {Cameras: 1, UDP: true, UDPPort: 8001},
		"missing clip":        {Cameras: 1, Clip: "/nonexistent/clip.mp4"},
	} {
		if _, err := New(opts, nil); err == nil {
			t.Errorf("%s: New accepted %+v", name, opts)
		}
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	checkGoroutines := testutil.CheckGoroutines(t)
	s, err := New(Options{Listen: "127.0.0.1:0", Cameras: 3, UDP: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	p, err := play(t, s.URL(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StopCamera(3); err != nil {
		t.Fatal(err)
	}
	if err := s.StartCamera(3); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close() // idempotent
	p.close()
	checkGoroutines()
	if err := s.StartCamera(1); err == nil {
		t.Error("StartCamera after Close succeeded")
	}
}

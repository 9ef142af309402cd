package webrtc

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/streaming"
)

// A viewer gets a decodable keyframe (IDR with SPS/PPS) within 1 s, then 5 s of RTP
// with no sequence hole and the clip's frame rate.
func TestViewerGetsKeyframeThenContinuousVideo(t *testing.T) {
	e := newEnv(t)
	// Let the camera run mid-GOP so fast start, not luck, gives the keyframe.
	testutil.WaitFor(t, 5*time.Second, "camera running", func() bool { return e.stream.Written() > 30 })

	w := newFrameWatcher()
	v := e.connect(t, "cam1", w.onRTP)
	defer v.close(t, e)
	testutil.WaitFor(t, time.Second, "first complete keyframe", func() bool { return w.state().firstKey >= 0 })
	t.Logf("first keyframe after %v", w.state().firstKey)

	start := w.state()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if s := w.state(); s.holes > 0 {
			t.Fatalf("sequence hole after %d packets", s.packets)
		}
		time.Sleep(50 * time.Millisecond)
	}
	end := w.state()
	if end.holes > 0 {
		t.Fatalf("%d sequence holes", end.holes)
	}
	// 5 s at 25 fps = 125 frames; allow for scheduling on a busy 2-core machine.
	if got := end.frames - start.frames; got < 115 {
		t.Fatalf("got %d frames in 5 s, want about 125", got)
	}
	if n := e.srv.Sessions(); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
}

// Bad offers are refused with errors saying what is wrong, and never reach pion in a
// state that panics; an unknown session is ErrSessionNotFound.
func TestOfferBadInput(t *testing.T) {
	e := newEnv(t)
	good := makeOffer(t, newClientPC(t, nil))
	vp8 := makeOffer(t, newClientPC(t, func(me *webrtc.MediaEngine) error {
		return me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
			PayloadType:        96,
		}, webrtc.RTPCodecTypeVideo)
	}))
	cases := []struct {
		name string
		sdp  string
		want error
	}{
		{"malformed sdp", "hello, not sdp", ErrBadOffer},
		{"truncated sdp", good[:len(good)/3], ErrBadOffer},
		{"empty", "", ErrBadOffer},
		{"vp8 only", vp8, ErrNoH264},
		{"h264 mode 0 only", strings.ReplaceAll(good, "packetization-mode=1", "packetization-mode=0"), ErrNoH264},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := e.srv.Offer(context.Background(), OfferRequest{CameraID: "cam1", Stream: e.stream, SDP: []byte(c.sdp)})
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if err := e.srv.Delete("deadbeef"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("Delete of an unknown session: %v", err)
	}
	if err := e.srv.Patch("deadbeef", []byte("a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n")); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("Patch of an unknown session: %v", err)
	}
	if n := e.srv.Sessions(); n != 0 {
		t.Fatalf("%d sessions left by failed offers", n)
	}
}

// An H.265 camera is refused with the codec error even when the lookup did not know.
func TestH265StreamRefused(t *testing.T) {
	srv := newTestServer(t)
	st := streaming.New()
	st.Write(&streaming.Unit{Key: true, NALUs: [][]byte{{0x26, 0x01}}, Params: &streaming.Params{Codec: streaming.H265}})
	_, _, err := srv.Offer(context.Background(), OfferRequest{CameraID: "cam", Stream: st, SDP: []byte(makeOffer(t, newClientPC(t, nil)))})
	if !errors.Is(err, ErrCodecNotSupported) {
		t.Fatalf("got %v, want ErrCodecNotSupported", err)
	}
	if n := srv.Sessions(); n != 0 {
		t.Fatalf("%d sessions", n)
	}
}

// A viewer whose queue is full drops until the next keyframe, then resumes: the
// camera worker never waits for it.
func TestSlowViewerDropsAndResyncsAtKeyframe(t *testing.T) {
	m, _ := newMetrics(nil)
	drops := m.drops.WithLabelValues("x")
	v := &viewer{queue: make(chan item, 2)}
	key := &unit{key: true}
	p := &unit{}
	v.offer(item{units: []*unit{key}}, true, drops)
	v.offer(item{units: []*unit{p}}, false, drops)
	v.offer(item{units: []*unit{p}}, false, drops) // full: dropped, now waiting for a key
	if !v.gate.Waiting() {
		t.Fatal("viewer not waiting for keyframe after overflow")
	}
	<-v.queue
	<-v.queue
	v.offer(item{units: []*unit{p}}, false, drops) // room, but not decodable: dropped
	if len(v.queue) != 0 {
		t.Fatal("delta frame queued while waiting for a keyframe")
	}
	v.offer(item{units: []*unit{key}}, true, drops)
	if len(v.queue) != 1 || v.gate.Waiting() {
		t.Fatal("keyframe did not resume the viewer")
	}
}

// A viewer that stops reading for 10 s does not disturb another viewer or the recording.
func TestStalledViewerDoesNotAffectOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s stall")
	}
	e := newEnv(t)
	rec := e.stream.Subscribe(256, false) // the recorder's reader
	defer rec.Close()
	recDone := make(chan struct{})
	go func() {
		defer close(recDone)
		for range rec.C() {
		}
	}()

	stall := make(chan struct{})
	stalled := e.connect(t, "cam1", func(*rtp.Packet) { <-stall })
	w := newFrameWatcher()
	good := e.connect(t, "cam1", w.onRTP)
	// Start-up time is TestFirstKeyframe's subject; here a loaded CI machine gets slack.
	testutil.WaitFor(t, 5*time.Second, "first keyframe", func() bool { return w.state().firstKey >= 0 })
	start := w.state()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	close(stall)
	end := w.state()
	if end.holes > 0 {
		t.Fatalf("healthy viewer saw %d sequence holes", end.holes)
	}
	// 250 are sent; a busy 2-core machine may delay the feeder itself by a few frames.
	if got := end.frames - start.frames; got < 200 {
		t.Fatalf("healthy viewer got %d frames in 10 s, want about 250", got)
	}
	if d := rec.Dropped(); d != 0 {
		t.Fatalf("recorder reader lost %d units", d)
	}
	good.close(t, e)
	stalled.close(t, e)
	rec.Close()
	<-recDone
}

// 100 connect/disconnect cycles leave no goroutines or memory behind, and the
// recording reader of the same camera loses nothing.
func TestConnectDisconnectCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("100 cycles")
	}
	e := newEnv(t)
	rec := e.stream.Subscribe(256, false)
	recDone := make(chan struct{})
	go func() {
		defer close(recDone)
		for range rec.C() {
		}
	}()
	defer func() { rec.Close(); <-recDone }()

	cycle := func() {
		w := newFrameWatcher()
		v := e.connect(t, "cam1", w.onRTP)
		testutil.WaitFor(t, 5*time.Second, "first keyframe", func() bool { return w.state().firstKey >= 0 })
		v.close(t, e)
		<-v.done
	}
	settle := func() uint64 {
		testutil.WaitFor(t, 10*time.Second, "sessions to end", func() bool { return e.srv.Sessions() == 0 })
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for range 5 { // warm up pools and pion's lazily started goroutines
		cycle()
	}
	h0 := settle()
	checkGoroutines := testutil.CheckGoroutines(t)
	for range 100 {
		cycle()
	}
	checkGoroutines() // goroutines of closed connections may take a moment to return
	h1 := settle()
	t.Logf("heap %d KiB -> %d KiB", h0>>10, h1>>10)
	if h1 > h0+8<<20 {
		t.Fatalf("heap grew from %d KiB to %d KiB over 100 cycles", h0>>10, h1>>10)
	}
	if d := rec.Dropped(); d != 0 {
		t.Fatalf("recorder reader lost %d units", d)
	}
}

// Close ends live sessions and leaves no goroutine of its own behind.
func TestCloseEndsSessions(t *testing.T) {
	t.Cleanup(testutil.CheckGoroutines(t)) // runs last, after newEnv's cleanup
	e := newEnv(t)
	w := newFrameWatcher()
	v := e.connect(t, "cam1", w.onRTP)
	testutil.WaitFor(t, 2*time.Second, "first keyframe", func() bool { return w.state().firstKey >= 0 })
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Sessions(); n != 0 {
		t.Fatalf("%d sessions after Close", n)
	}
	late := newClientPC(t, nil)
	_, _, err := e.srv.Offer(context.Background(), OfferRequest{CameraID: "cam1", Stream: e.stream, SDP: []byte(makeOffer(t, late))})
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("offer after close: %v, want ErrClosed", err)
	}
	_ = late.Close()
	_ = v.pc.Close()
}

// Beyond MaxSessions an offer is refused with ErrTooManySessions; closing a session
// makes room.
func TestMaxSessionsRefused(t *testing.T) {
	srv, err := New(Options{IncludeLoopback: true, TCPPort: -1, MaxSessions: 2}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	st := streaming.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := feed(ctx, t, st)
	t.Cleanup(func() { cancel(); <-done })
	e := &env{srv: srv, stream: st}

	a := e.connect(t, "cam1", func(*rtp.Packet) {})
	b := e.connect(t, "cam1", func(*rtp.Packet) {})
	_, _, err = srv.Offer(context.Background(), OfferRequest{CameraID: "cam1", Stream: st,
		SDP: []byte(makeOffer(t, newClientPC(t, nil)))})
	if !errors.Is(err, ErrTooManySessions) {
		t.Fatalf("third offer with MaxSessions 2: %v, want ErrTooManySessions", err)
	}
	if n := srv.Sessions(); n != 2 {
		t.Fatalf("%d sessions, want 2", n)
	}
	a.close(t, e)
	c := e.connect(t, "cam1", func(*rtp.Packet) {}) // fails the test unless accepted
	b.close(t, e)
	c.close(t, e)
}

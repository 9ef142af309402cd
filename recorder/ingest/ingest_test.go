package ingest

import (
	"bytes"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/recorder/internal/metrics"
	"github.com/straja-nvr/straja/streaming"
)

// testFeed drives a session's access unit handling directly, with a chosen clock.
type testFeed struct {
	t     *testing.T
	cam   *Camera
	s     *session
	clip  *testClip
	start time.Time
}

func newTestFeed(t *testing.T, codec streaming.Codec, sdpParams bool) *testFeed {
	clip := loadTestClip(t, codec)
	cam := NewCamera(Spec{ID: "unit"}, streaming.New(), metrics.New(prometheus.NewRegistry()), nil)
	f := &testFeed{t: t, cam: cam, clip: clip, start: time.Now()}
	f.newSession(sdpParams)
	return f
}

func (f *testFeed) newSession(sdpParams bool) {
	f.s = newSession(f.cam)
	var forma format.Format
	if f.clip.codec == streaming.H265 {
		h := &format.H265{PayloadTyp: 96}
		if sdpParams {
			h.VPS, h.SPS, h.PPS = f.clip.vps, f.clip.sps, f.clip.pps
		}
		forma = h
	} else {
		h := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
		if sdpParams {
			h.SPS, h.PPS = f.clip.sps, f.clip.pps
		}
		forma = h
	}
	if err := f.s.init(forma); err != nil {
		f.t.Fatal(err)
	}
}

// au feeds clip unit i with a PTS offset, arriving at start+wall.
func (f *testFeed) au(i int, ptsOffset int64, wall time.Duration) *streaming.Unit {
	a := f.clip.aus[i%len(f.clip.aus)]
	pts := a.pts + int64(i/len(f.clip.aus))*f.clip.duration + ptsOffset
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return oneUnit(f.t, f.s.onAU(a.au, pts, f.start.Add(wall)))
}

// oneUnit returns the one unit delivered, or nil. The test clips declare no
// reordering, so units are never held back and delivered together.
func oneUnit(t *testing.T, us []*streaming.Unit) *streaming.Unit {
	t.Helper()
	switch len(us) {
	case 0:
		return nil
	case 1:
		return us[0]
	}
	t.Fatalf("%d units delivered at once, want at most one", len(us))
	return nil
}

func keyIndexes(c *testClip) []int {
	var keys []int
	for i, a := range c.aus {
		if isKeyAU(c.codec, a.au) {
			keys = append(keys, i)
		}
	}
	return keys
}

func isKeyAU(codec streaming.Codec, au [][]byte) bool {
	if codec == streaming.H265 {
		return h265Key(au)
	}
	for _, n := range au {
		if n[0]&0x1f == 5 {
			return true
		}
	}
	return false
}

func TestIngestStartsAtKeyWithParams(t *testing.T) {
	for _, codec := range []streaming.Codec{streaming.H264, streaming.H265} {
		t.Run(string(codec), func(t *testing.T) {
			for _, sdp := range []bool{true, false} {
				f := newTestFeed(t, codec, sdp)
				keys := keyIndexes(f.clip)
				if len(keys) < 2 || keys[0] != 0 {
					t.Fatalf("clip keyframes at %v, want a GOP structure starting at 0", keys)
				}
				// Join mid-GOP: everything before the next keyframe is useless to a decoder.
				for i := 1; i < keys[1]; i++ {
					if u := f.au(i, 0, ticksToDuration(f.clip.aus[i].pts)); u != nil {
						t.Fatalf("sdp=%v: unit %d delivered before any keyframe", sdp, i)
					}
				}
				k := keys[1]
				if !sdp {
					// Without SDP or in-band parameters, a keyframe is not decodable either.
					if u := f.au(k, 0, ticksToDuration(f.clip.aus[k].pts)); u != nil {
						t.Fatalf("keyframe delivered without parameter sets: %+v", u)
					}
					continue
				}
				u := f.au(k, 0, ticksToDuration(f.clip.aus[k].pts))
				if u == nil || !u.Key {
					t.Fatalf("keyframe %d not delivered as key: %+v", k, u)
				}
				p := u.Params
				if p == nil || p.Codec != codec || p.Width != 640 || p.Height != 360 {
					t.Fatalf("params = %+v, want %s 640x360", p, codec)
				}
				want := [][]byte{p.SPS, p.PPS}
				if codec == streaming.H265 {
					want = [][]byte{p.VPS, p.SPS, p.PPS}
				}
				for j, w := range want {
					if !bytes.Equal(u.NALUs[j], w) {
						t.Fatalf("key unit NALU %d is not the parameter set", j)
					}
				}
				if !u.Time.Equal(f.start.Add(ticksToDuration(f.clip.aus[k].pts)).Round(0).UTC()) {
					t.Fatalf("first unit Time %v is not its arrival time", u.Time)
				}
				next := f.au(k+1, 0, ticksToDuration(f.clip.aus[k+1].pts))
				if next == nil || next.Key || next.Params != p || next.Epoch != u.Epoch {
					t.Fatalf("following unit = %+v", next)
				}
				if d := next.Time.Sub(u.Time); d != ticksToDuration(next.PTS-u.PTS) {
					t.Fatalf("Time advanced %v for %v of PTS", d, ticksToDuration(next.PTS-u.PTS))
				}
			}
		})
	}
}

func TestIngestInbandParamsAreUsedAndNotRepeated(t *testing.T) {
	f := newTestFeed(t, streaming.H264, false)
	au := append([][]byte{{0x09, 0xf0}, f.clip.sps, f.clip.pps}, f.clip.aus[0].au...) // AUD + params in-band
	f.s.mu.Lock()
	u := oneUnit(t, f.s.onAU(au, 0, f.start))
	f.s.mu.Unlock()
	if u == nil || !u.Key || u.Params == nil || u.Params.Width != 640 {
		t.Fatalf("key unit with in-band params = %+v", u)
	}
	sps := 0
	for i, n := range u.NALUs {
		switch n[0] & 0x1f {
		case 7:
			sps++
		case 9:
			t.Fatalf("access unit delimiter kept at %d", i)
		}
	}
	if sps != 1 || u.NALUs[0][0]&0x1f != 7 {
		t.Fatalf("key unit has %d SPS, first NALU type %d; want exactly one, first", sps, u.NALUs[0][0]&0x1f)
	}

	// A new session from the same camera with the same parameters: same *Params, so
	// consumers see no parameter change, but a new epoch.
	f.newSession(true)
	u2 := f.au(0, 0, 10*time.Second)
	if u2 == nil || u2.Params != u.Params {
		t.Fatalf("same parameters republished: %p vs %p", u2.Params, u.Params)
	}
	if u2.Epoch == u.Epoch {
		t.Fatal("new session kept the epoch")
	}
}

func TestIngestDiscontinuityStartsNewEpochAtKey(t *testing.T) {
	f := newTestFeed(t, streaming.H264, true)
	keys := keyIndexes(f.clip)
	gop := keys[1]
	wall := func(i int, off int64) time.Duration { return ticksToDuration(f.clip.aus[i].pts + off) }

	first := f.au(0, 0, 0)
	if first == nil {
		t.Fatal("first key not delivered")
	}
	for i := 1; i < 5; i++ {
		if u := f.au(i, 0, wall(i, 0)); u == nil || u.Epoch != first.Epoch {
			t.Fatalf("unit %d: %+v", i, u)
		}
	}

	// The camera's timestamps jump 1 h ahead mid-GOP (camera clock reset): the rest of
	// the GOP cannot be placed in time, the next keyframe starts a new epoch.
	const jump = 3600 * streaming.ClockRate
	for i := 5; i < gop; i++ {
		if u := f.au(i, jump, wall(i, 0)); u != nil {
			t.Fatalf("unit %d after a timestamp jump delivered in epoch %d", i, u.Epoch)
		}
	}
	k := f.au(gop, jump, wall(gop, 0))
	if k == nil || !k.Key || k.Epoch == first.Epoch {
		t.Fatalf("keyframe after jump: %+v", k)
	}
	wantTime := f.start.Add(wall(gop, 0)).Round(0).UTC()
	if !k.Time.Equal(wantTime) {
		t.Fatalf("keyframe after jump has Time %v, want its arrival %v", k.Time, wantTime)
	}

	// The local wall clock steps 5 s forward (NTP correction) while camera timestamps
	// run on: units keep flowing, and the first keyframe after they have been late for
	// lateFor (here 4 s after the step: the clip's GOP is 2 s) re-anchors in a
	// new epoch; the hole it leaves is a counted gap.
	const step = 5 * time.Second
	gaps := metricValue(f.cam.m.Gaps.WithLabelValues("unit", metrics.GapDiscontinuity))
	prev := k
	for i := gop + 1; i < 3*gop; i++ {
		u := f.au(i, jump, wall(i, 0)+step)
		if u == nil || u.Epoch != k.Epoch || u.DTS <= prev.DTS {
			t.Fatalf("unit %d after clock step: %+v", i, u)
		}
		prev = u
	}
	k2 := f.au(3*gop, jump, wall(3*gop, 0)+step)
	if k2 == nil || !k2.Key || k2.Epoch == k.Epoch {
		t.Fatalf("keyframe after clock step: %+v", k2)
	}
	if d := k2.Time.Sub(f.start.Add(wall(3*gop, 0) + step)).Abs(); d > time.Millisecond {
		t.Fatalf("re-anchored Time off by %v", d)
	}
	if got := metricValue(f.cam.m.Gaps.WithLabelValues("unit", metrics.GapDiscontinuity)) - gaps; got != 1 {
		t.Errorf("%v gaps counted for the hole a re-anchor leaves, want 1", got)
	}
}

// A camera that repeats a timestamp mid-GOP: the units up to the next keyframe cannot
// be recorded, and the hole must show up as a counted gap; delivery resumes at that
// keyframe in a new epoch, where the segmenter starts a new segment.
func TestIngestRepeatedDTSIsACountedGapAndNewSegment(t *testing.T) {
	f := newTestFeed(t, streaming.H264, true)
	gop := keyIndexes(f.clip)[1]
	var delivered []*streaming.Unit
	push := func(u *streaming.Unit) {
		if u != nil {
			delivered = append(delivered, u)
		}
	}
	wall := func(i int) time.Duration { return ticksToDuration(f.clip.aus[i].pts) }
	for i := 0; i < 5; i++ {
		push(f.au(i, 0, wall(i)))
	}
	// Unit 5 arrives with unit 4's timestamp.
	repeat := f.clip.aus[4].pts - f.clip.aus[5].pts
	push(f.au(5, repeat, wall(5)))
	for i := 6; i < 2*gop; i++ {
		push(f.au(i, 0, wall(i)))
	}

	if got := metricValue(f.cam.m.Gaps.WithLabelValues("unit", metrics.GapDiscontinuity)); got != 1 {
		t.Errorf("discontinuity gaps counted = %v, want 1", got)
	}
	for i := 1; i < len(delivered); i++ {
		if delivered[i].Epoch == delivered[i-1].Epoch && delivered[i].DTS <= delivered[i-1].DTS {
			t.Fatalf("unit %d delivered with DTS %d after %d in the same epoch", i, delivered[i].DTS, delivered[i-1].DTS)
		}
	}
	var next *streaming.Unit // the first unit of a new epoch: where a new segment starts
	for _, u := range delivered {
		if u.Epoch != delivered[0].Epoch {
			next = u
			break
		}
	}
	if want := f.start.Add(wall(gop)).Round(0).UTC(); next == nil || !next.Key || !next.Time.Equal(want) {
		t.Fatalf("after the repeat, delivery resumes with %+v, want the keyframe at %v in a new epoch", next, want)
	}
}

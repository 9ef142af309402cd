package recorder

import (
	"testing"
	"time"

	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/testutil"
)

// timelineFeed drives ingest into a segmenter with 2 s segments, the clip's GOP, and
// an injected clock: unit i of the looped clip, arriving at its presentation time
// plus a chosen lateness.
type timelineFeed struct {
	*ingestFeed
	sink memSink
	gaps gapLog
	seg  *segmenter
}

func newTimelineFeed(t *testing.T) *timelineFeed {
	f := &timelineFeed{ingestFeed: newIngestFeed(t, streaming.H264, true)}
	f.seg = newSegmenter(2*time.Second, time.Second, &f.sink, f.gaps.events())
	return f
}

// pts is unit i's presentation time from the clip's start, looped.
func (f *timelineFeed) pts(i int) time.Duration {
	n := len(f.clip.aus)
	return ingestTicks(f.clip.aus[i%n].pts + int64(i/n)*f.clip.duration)
}

// push feeds unit i with its timestamps moved by ptsOffset ticks, arriving at
// start+arrival, into the segmenter.
func (f *timelineFeed) push(i int, ptsOffset int64, arrival time.Duration) {
	if u := f.au(i, ptsOffset, arrival); u != nil {
		f.seg.write(streaming.Delivery{Unit: u})
	}
}

func (f *timelineFeed) gapsOf(cause string) float64 {
	return ingestMetric(f.cam.m.Gaps.WithLabelValues("unit", cause))
}

// checkNoOverlap fails if a segment starts before the previous one ends (beyond the
// nanosecond rounding of tick conversions) or where another started, at the key's
// millisecond precision. It returns the holes between segments.
func (f *timelineFeed) checkNoOverlap(t *testing.T) []time.Duration {
	t.Helper()
	segs := f.sink.segs
	if len(segs) < 2 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	var holes []time.Duration
	for i := 1; i < len(segs); i++ {
		prev, s := segs[i-1], segs[i]
		end := prev.start.Add(prev.duration())
		if s.start.Before(end.Add(-time.Microsecond)) {
			t.Errorf("segment %d starts at %s, %v before segment %d (from %s, %v) ends",
				i, s.start.Format(time.StampMicro), end.Sub(s.start), i-1, prev.start.Format(time.StampMicro), prev.duration())
		}
		if !s.start.Truncate(time.Millisecond).After(prev.start.Truncate(time.Millisecond)) {
			t.Errorf("segments %d and %d start at the same millisecond %s", i-1, i, s.start.Format(time.StampMilli))
		}
		if hole := s.start.Sub(end); hole > time.Microsecond {
			holes = append(holes, hole)
		}
	}
	return holes
}

// The recorder stalls for 6 s and then reads the camera's backlog in a burst: the
// units arrive late, all at once, with right timestamps. Re-anchoring the timeline to
// their arrival, then back to the local clock once the burst was read, made a segment
// start where an earlier one had (an overlap of 2 s, seen in TestRecordEndToEnd under
// load). The burst must be recorded where it belongs: no overlap, no hole.
func TestIngestBurstAfterStallKeepsTimeline(t *testing.T) {
	f := newTimelineFeed(t)
	const stallAt, stall = 60, 6 * time.Second // unit 60: 2.4 s in, mid-GOP
	i := 0
	for ; i < stallAt; i++ {
		f.push(i, 0, f.pts(i))
	}
	resume := f.pts(stallAt) + stall
	for ; f.pts(i) <= resume; i++ {
		f.push(i, 0, resume+time.Duration(i-stallAt)*time.Microsecond) // the backlog, read at once
	}
	for end := i + 200; i < end; i++ {
		f.push(i, 0, f.pts(i))
	}
	f.seg.close()

	if holes := f.checkNoOverlap(t); len(holes) > 0 {
		t.Errorf("holes %v: the backlog was not recorded where it belongs", holes)
	}
	for j, s := range f.sink.segs {
		want := f.start.Add(f.pts(j * 50)).Round(0).UTC() // one 2 s GOP per segment
		if !s.start.Equal(want) {
			t.Errorf("segment %d starts at %s, want its keyframe's time %s", j, s.start.Format(time.StampMicro), want.Format(time.StampMicro))
		}
	}
	if got := f.gapsOf(GapDiscontinuity) + f.gapsOf(GapReconnect); got != 0 {
		t.Errorf("%v gaps counted, want none: nothing was lost", got)
	}
}

// A time base anchored late (the session's first units arrive late, in a burst) runs
// ahead of the local clock. A new one, after a timestamp jump or a reconnect, must not
// start before the footage already recorded ends, even though its units arrive on
// time; a real hole before it is a counted gap.
func TestIngestNewEpochNeverStartsBeforePreviousFootage(t *testing.T) {
	f := newTimelineFeed(t)
	const late = 3 * time.Second
	// The first 3 s arrive at once, 3 s late; the timeline is anchored at the first.
	i := 0
	for ; f.pts(i) <= late; i++ {
		f.push(i, 0, late+time.Duration(i)*time.Microsecond)
	}
	for ; i < 100; i++ {
		f.push(i, 0, f.pts(i))
	}
	// Unit 100, a keyframe, arrives on time with a timestamp 2.5 s ahead: the camera
	// skipped 2.5 s. Its arrival is still 0.5 s before the recorded footage ends.
	const skip = 5 * streaming.ClockRate / 2
	for ; i < 150; i++ {
		f.push(i, skip, f.pts(i))
	}
	if got := f.gapsOf(GapDiscontinuity); got != 0 {
		t.Errorf("%v discontinuity gaps counted, want none: the new time base joins the previous footage", got)
	}
	f.seg.close()

	// The camera reconnects; its first keyframe arrives 0.2 s after the last unit,
	// still before the recorded footage ends.
	f.newSession(true)
	f.seg = newSegmenter(2*time.Second, time.Second, &f.sink, f.gaps.events())
	last := f.pts(i - 1)
	for j := 0; j < 100; j++ {
		f.push(i+j, 0, last+200*time.Millisecond+f.pts(i+j)-f.pts(i))
	}
	f.seg.close()
	if holes := f.checkNoOverlap(t); len(holes) > 0 {
		t.Errorf("holes %v, want none", holes)
	}
	if got := f.gapsOf(GapReconnect); got != 0 {
		t.Errorf("%v reconnect gaps counted, want none", got)
	}

	// Reconnected after 20 s without video: a real hole, counted once.
	f.newSession(true)
	f.seg = newSegmenter(2*time.Second, time.Second, &f.sink, f.gaps.events())
	i += 100
	last = f.pts(i - 1)
	for j := 0; j < 100; j++ {
		f.push(i+j, 0, last+20*time.Second+f.pts(i+j)-f.pts(i))
	}
	f.seg.close()
	holes := f.checkNoOverlap(t)
	if len(holes) != 1 {
		t.Fatalf("holes %v, want one", holes)
	}
	if got := f.gapsOf(GapReconnect); got != 1 {
		t.Errorf("%v reconnect gaps counted for a %v hole, want 1", got, holes[0])
	}
}

// The same through a real RTSP session: the camera holds its stream back for 3 s (the
// network or the camera stalls), then sends the backlog at once. Every unit keeps the
// time its timestamp gives, in one time base, and no gap is counted.
func TestCameraBurstAfterStallKeepsTimeline(t *testing.T) {
	if testing.Short() {
		t.Skip("streams real video for ~6 s")
	}
	srv := newIngestTestCam(t, streaming.H264)
	r := startIngestCamera(t, CameraSpec{ID: "burst", URL: srv.URL(), Transport: "tcp"}, nil)
	first := r.next(t, 5*time.Second)
	srv.held.Store(true)
	testutil.WaitFor(t, 15*time.Second, "3 s of frames held back", func() bool { return srv.heldN.Load() >= 75 })
	srv.held.Store(false)

	// Old enough to have been re-anchored twice: once on the late backlog, once back.
	until := first.PTS + 6*streaming.ClockRate
	for u := first; u.PTS < until; {
		u = r.next(t, 5*time.Second)
		if u.Epoch != first.Epoch {
			t.Fatalf("new time base at PTS %+.3f s after a burst with continuous timestamps",
				float64(u.PTS-first.PTS)/streaming.ClockRate)
		}
		if want := first.Time.Add(ingestTicks(u.PTS - first.PTS)); !u.Time.Equal(want) {
			t.Fatalf("unit at PTS %+.3f s has time %s, want %s", float64(u.PTS-first.PTS)/streaming.ClockRate,
				u.Time.Format(time.StampMicro), want.Format(time.StampMicro))
		}
	}
	for _, cause := range []string{GapDiscontinuity, GapReconnect} {
		if n := ingestMetric(r.m.Gaps.WithLabelValues("burst", cause)); n != 0 {
			t.Errorf("%v %s gaps counted, want none", n, cause)
		}
	}
}

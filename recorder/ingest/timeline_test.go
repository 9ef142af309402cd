package ingest

import (
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder/internal/metrics"
	"github.com/straja-nvr/straja/streaming"
)

// timelineFeed drives ingest with the clip's GOP and an injected clock: unit i of the
// looped clip, arriving at its presentation time plus a chosen lateness. It keeps what
// ingest delivers: the timeline the segmenter cuts into segments, starting a new one
// at each new epoch.
type timelineFeed struct {
	*testFeed
	units []*streaming.Unit
	index map[*streaming.Unit]int // unit i of the clip
}

func newTimelineFeed(t *testing.T) *timelineFeed {
	return &timelineFeed{testFeed: newTestFeed(t, streaming.H264, true), index: map[*streaming.Unit]int{}}
}

// pts is unit i's presentation time from the clip's start, looped.
func (f *timelineFeed) pts(i int) time.Duration {
	n := len(f.clip.aus)
	return ticksToDuration(f.clip.aus[i%n].pts + int64(i/n)*f.clip.duration)
}

// push feeds unit i with its timestamps moved by ptsOffset ticks, arriving at
// start+arrival.
func (f *timelineFeed) push(i int, ptsOffset int64, arrival time.Duration) {
	if u := f.au(i, ptsOffset, arrival); u != nil {
		f.units = append(f.units, u)
		f.index[u] = i
	}
}

func (f *timelineFeed) gapsOf(cause string) float64 {
	return metricValue(f.cam.m.Gaps.WithLabelValues("unit", cause))
}

// checkNoOverlap fails if an epoch's footage starts before the previous epoch's ends
// (its last unit plus one frame interval, beyond the nanosecond rounding of tick
// conversions) or at the same millisecond as the previous epoch started: the segments
// cut from them would overlap or share a key. It returns the holes between epochs.
func (f *timelineFeed) checkNoOverlap(t *testing.T) []time.Duration {
	t.Helper()
	if len(f.units) < 2 {
		t.Fatalf("%d units delivered, want many", len(f.units))
	}
	var holes []time.Duration
	first := f.units[0] // of the current epoch
	for i := 1; i < len(f.units); i++ {
		prev, u := f.units[i-1], f.units[i]
		if u.Epoch == prev.Epoch {
			if !u.Time.After(prev.Time) {
				t.Errorf("unit %d at %s, not after unit %d at %s in the same epoch", f.index[u],
					u.Time.Format(time.StampMicro), f.index[prev], prev.Time.Format(time.StampMicro))
			}
			continue
		}
		step := 40 * time.Millisecond // the clip's frame interval, for an epoch of one unit
		if i >= 2 && f.units[i-2].Epoch == prev.Epoch {
			step = prev.Time.Sub(f.units[i-2].Time)
		}
		end := prev.Time.Add(step)
		if !u.Key {
			t.Errorf("epoch starts with unit %d, not a keyframe", f.index[u])
		}
		if u.Time.Before(end.Add(-time.Microsecond)) {
			t.Errorf("epoch starts at %s, %v before the previous one (from %s) ends",
				u.Time.Format(time.StampMicro), end.Sub(u.Time), first.Time.Format(time.StampMicro))
		}
		if !u.Time.Truncate(time.Millisecond).After(first.Time.Truncate(time.Millisecond)) {
			t.Errorf("epochs start at the same millisecond %s", u.Time.Format(time.StampMilli))
		}
		if hole := u.Time.Sub(end); hole > time.Microsecond {
			holes = append(holes, hole)
		}
		first = u
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

	if holes := f.checkNoOverlap(t); len(holes) > 0 {
		t.Errorf("holes %v: the backlog was not recorded where it belongs", holes)
	}
	keys := 0
	for _, u := range f.units {
		if !u.Key {
			continue
		}
		keys++
		// Each keyframe starts a 2 s segment: it must keep its own time.
		if want := f.start.Add(f.pts(f.index[u])).Round(0).UTC(); !u.Time.Equal(want) {
			t.Errorf("keyframe %d at %s, want %s", f.index[u], u.Time.Format(time.StampMicro), want.Format(time.StampMicro))
		}
	}
	if keys < 3 {
		t.Errorf("%d keyframes delivered, want every GOP's", keys)
	}
	if got := f.gapsOf(metrics.GapDiscontinuity) + f.gapsOf(metrics.GapReconnect); got != 0 {
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
	if got := f.gapsOf(metrics.GapDiscontinuity); got != 0 {
		t.Errorf("%v discontinuity gaps counted, want none: the new time base joins the previous footage", got)
	}

	// The camera reconnects; its first keyframe arrives 0.2 s after the last unit,
	// still before the recorded footage ends.
	f.newSession(true)
	last := f.pts(i - 1)
	for j := 0; j < 100; j++ {
		f.push(i+j, 0, last+200*time.Millisecond+f.pts(i+j)-f.pts(i))
	}
	if holes := f.checkNoOverlap(t); len(holes) > 0 {
		t.Errorf("holes %v, want none", holes)
	}
	if got := f.gapsOf(metrics.GapReconnect); got != 0 {
		t.Errorf("%v reconnect gaps counted, want none", got)
	}

	// Reconnected after 20 s without video: a real hole, counted once.
	f.newSession(true)
	i += 100
	last = f.pts(i - 1)
	for j := 0; j < 100; j++ {
		f.push(i+j, 0, last+20*time.Second+f.pts(i+j)-f.pts(i))
	}
	holes := f.checkNoOverlap(t)
	if len(holes) != 1 {
		t.Fatalf("holes %v, want one", holes)
	}
	if got := f.gapsOf(metrics.GapReconnect); got != 1 {
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
	srv := newTestCam(t, streaming.H264)
	r := startCamera(t, Spec{ID: "burst", URL: srv.URL(), Transport: "tcp"}, nil)
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
		if want := first.Time.Add(ticksToDuration(u.PTS - first.PTS)); !u.Time.Equal(want) {
			t.Fatalf("unit at PTS %+.3f s has time %s, want %s", float64(u.PTS-first.PTS)/streaming.ClockRate,
				u.Time.Format(time.StampMicro), want.Format(time.StampMicro))
		}
	}
	for _, cause := range []string{metrics.GapDiscontinuity, metrics.GapReconnect} {
		if n := metricValue(r.m.Gaps.WithLabelValues("burst", cause)); n != 0 {
			t.Errorf("%v %s gaps counted, want none", n, cause)
		}
	}
}

package spool

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/straja-nvr/straja/internal/mp4"
	"github.com/straja-nvr/straja/recorder/internal/metrics"
	"github.com/straja-nvr/straja/streaming"
	streamclip "github.com/straja-nvr/straja/streaming/clip"
)

// clip is one test clip demuxed into units, as the ingest would deliver them.
type clip struct {
	units    []*streaming.Unit // one pass, DTS from 0
	duration int64             // ticks of one pass
	params   *streaming.Params
}

// loadClip returns the embedded test clip of codec name ("h264" or "h265") as units.
func loadClip(tb testing.TB, name string) *clip {
	tb.Helper()
	src, err := streamclip.Embedded(streaming.Codec(name))
	if err != nil {
		tb.Fatal(err)
	}
	units := src.Units(1, 0, time.Time{})
	c := &clip{units: units, duration: durationToTicks(src.Duration())}
	if len(units) > 0 {
		c.params = units[0].Params
	}
	return c
}

// clipEpoch is the fake wall clock of DTS 0.
var clipEpoch = time.Date(2026, 11, 25, 21, 55, 7, 0, time.UTC)

// loop returns n passes of the clip as continuous units of epoch, starting at DTS base,
// with Time following DTS on the fake clock.
func (c *clip) loop(n int, epoch uint64, base int64) []*streaming.Unit {
	var out []*streaming.Unit
	for i := 0; i < n; i++ {
		off := base + int64(i)*c.duration
		for _, u := range c.units {
			v := *u
			v.Epoch, v.DTS, v.PTS = epoch, u.DTS+off, u.PTS+off
			v.Time = clipEpoch.Add(ticksToDuration(v.PTS))
			out = append(out, &v)
		}
	}
	return out
}

// memSink keeps segments in memory.
type memSink struct {
	segs []*memSegment
	cur  *memSegment
	fail func() error // when set and non-nil, writes fail with its error
}

type memSegment struct {
	start time.Time
	data  bytes.Buffer
	frags []fragmentInfo
}

func (m *memSegment) duration() time.Duration {
	var d time.Duration
	for _, f := range m.frags {
		d += f.Duration
	}
	return d
}

func (m *memSink) startSegment(start time.Time, init []byte) error {
	if m.fail != nil {
		if err := m.fail(); err != nil {
			return err
		}
	}
	m.cur = &memSegment{start: start}
	m.cur.data.Write(init)
	return nil
}

func (m *memSink) writeFragment(frag *mp4.Fragment, f fragmentInfo) error {
	if m.fail != nil {
		if err := m.fail(); err != nil {
			return err
		}
	}
	if _, err := frag.WriteTo(&m.cur.data); err != nil {
		return err
	}
	m.cur.frags = append(m.cur.frags, f)
	return nil
}

func (m *memSink) endSegment() {
	if len(m.cur.frags) > 0 {
		m.segs = append(m.segs, m.cur)
	}
	m.cur = nil
}

// gapLog records the segmenter's gap events.
type gapLog []string

func (g *gapLog) events() segmenterEvents {
	return segmenterEvents{gap: func(cause string, _ error) { *g = append(*g, cause) }}
}

func feed(s *segmenter, units []*streaming.Unit) {
	for _, u := range units {
		s.write(streaming.Delivery{Unit: u})
	}
}

// readSamples parses a segment and returns its samples' DTS (from 0) and sync flags.
func readSamples(t *testing.T, data []byte) (dts []int64, key []bool) {
	t.Helper()
	var parts fmp4.Parts
	if err := parts.Unmarshal(data); err != nil {
		t.Fatalf("parse segment: %v", err)
	}
	for _, p := range parts {
		d := int64(p.Tracks[0].BaseTime)
		for _, s := range p.Tracks[0].Samples {
			dts = append(dts, d)
			key = append(key, !s.IsNonSyncSample)
			d += int64(s.Duration)
		}
	}
	return dts, key
}

func TestSegmenterCutsAtKeyframesContiguously(t *testing.T) {
	for _, name := range []string{"h264", "h265"} {
		t.Run(name, func(t *testing.T) {
			c := loadClip(t, name)
			var sink memSink
			var gaps gapLog
			s := newSegmenter(2*time.Second, time.Second, &sink, gaps.events())
			units := c.loop(2, 1, 0)
			feed(s, units)
			s.close()

			// GOP = 2 s, so 16 s cut into 8 segments of 2 s, each of two 1 s fragments.
			if len(sink.segs) != 8 {
				t.Fatalf("got %d segments, want 8", len(sink.segs))
			}
			if len(gaps) != 0 {
				t.Errorf("gaps %v on a clean stream", gaps)
			}
			end := sink.segs[0].start
			var frames int
			for i, seg := range sink.segs {
				if !seg.start.Equal(end) {
					t.Errorf("segment %d starts at %v, previous ends at %v", i, seg.start, end)
				}
				if d := seg.duration(); d != 2*time.Second {
					t.Errorf("segment %d lasts %v, want 2s", i, d)
				}
				end = seg.start.Add(seg.duration())
				if len(seg.frags) != 2 || !seg.frags[0].Key || seg.frags[1].Start != time.Second {
					t.Errorf("segment %d fragments %+v, want two of 1s starting with a keyframe", i, seg.frags)
				}
				dts, key := readSamples(t, seg.data.Bytes())
				if !key[0] || dts[0] != 0 {
					t.Errorf("segment %d does not start with a keyframe at 0", i)
				}
				frames += len(dts)
			}
			if frames != len(units) {
				t.Errorf("wrote %d frames of %d", frames, len(units))
			}
		})
	}
}

func TestSegmenterStartsOverOnDiscontinuity(t *testing.T) {
	c := loadClip(t, "h264")
	otherParams := *c.params
	otherParams.SPS = append([]byte(nil), c.params.SPS...)
	// otherParams has the same bytes in a new value: must not cut.
	changed := *c.params
	changed.PPS = append(append([]byte(nil), c.params.PPS...), 0) // different bytes: must cut

	cases := []struct {
		name     string
		mutate   func(u []*streaming.Unit) // applied to the second pass of a 2-pass loop
		lost     uint64
		wantSegs int
		wantGaps []string
	}{
		{name: "epoch", mutate: func(us []*streaming.Unit) {
			for _, u := range us {
				u.Epoch = 2
			}
		}, wantSegs: 2},
		{name: "dts backwards", mutate: func(us []*streaming.Unit) {
			for _, u := range us {
				u.DTS -= 3 * c.duration
				u.PTS -= 3 * c.duration
			}
		}, wantSegs: 2},
		{name: "params changed", mutate: func(us []*streaming.Unit) {
			for _, u := range us {
				u.Params = &changed
			}
		}, wantSegs: 2},
		{name: "same params new value", mutate: func(us []*streaming.Unit) {
			for _, u := range us {
				u.Params = &otherParams
			}
		}, wantSegs: 1},
		{name: "lost", lost: 7, wantSegs: 2, wantGaps: []string{metrics.GapOverflow}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sink memSink
			var gaps gapLog
			// Long segments: only discontinuities cut.
			s := newSegmenter(time.Hour, time.Second, &sink, gaps.events())
			units := c.loop(2, 1, 0)
			second := units[len(c.units):]
			if tc.mutate != nil {
				tc.mutate(second)
			}
			feed(s, units[:len(c.units)])
			s.write(streaming.Delivery{Unit: second[0], Lost: tc.lost})
			feed(s, second[1:])
			s.close()
			if len(sink.segs) != tc.wantSegs {
				t.Fatalf("got %d segments, want %d", len(sink.segs), tc.wantSegs)
			}
			if len(gaps) != len(tc.wantGaps) || len(gaps) > 0 && gaps[0] != tc.wantGaps[0] {
				t.Errorf("gaps %v, want %v", gaps, tc.wantGaps)
			}
			// Every frame is kept: closing uses the previous sample's duration.
			var d time.Duration
			for _, seg := range sink.segs {
				d += seg.duration()
			}
			if want := 2 * ticksToDuration(c.duration); d != want {
				t.Errorf("recorded %v, want %v", d, want)
			}
		})
	}
}

func TestSegmenterWaitsForKeyframe(t *testing.T) {
	c := loadClip(t, "h264")
	var sink memSink
	s := newSegmenter(time.Hour, time.Second, &sink, segmenterEvents{})
	units := c.loop(1, 1, 0)
	feed(s, units[10:]) // joins mid-GOP
	s.close()
	if len(sink.segs) != 1 {
		t.Fatalf("got %d segments, want 1", len(sink.segs))
	}
	seg := sink.segs[0]
	if want := units[50].Time; !seg.start.Equal(want) {
		t.Errorf("segment starts at %v, want the second keyframe at %v", seg.start, want)
	}
	if d, want := seg.duration(), ticksToDuration(c.duration-units[50].DTS); d != want {
		t.Errorf("duration %v, want %v", d, want)
	}
}

func TestSegmenterKeepsCompositionOffsets(t *testing.T) {
	c := loadClip(t, "h264")
	// Reorder timestamps like an IPB stream: P frames shown after the B frame that follows.
	units := c.loop(1, 1, 0)
	for i, u := range units {
		u.PTS = u.DTS + 2*3600
		if i%3 == 1 {
			u.PTS += 3600
		} else if i%3 == 2 {
			u.PTS -= 3600
		}
	}
	var sink memSink
	s := newSegmenter(time.Hour, time.Second, &sink, segmenterEvents{})
	feed(s, units)
	s.close()
	var parts fmp4.Parts
	if err := parts.Unmarshal(sink.segs[0].data.Bytes()); err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, p := range parts {
		for _, smp := range p.Tracks[0].Samples {
			if want := int32(units[i].PTS - units[i].DTS); smp.PTSOffset != want {
				t.Fatalf("sample %d: PTS offset %d, want %d", i, smp.PTSOffset, want)
			}
			i++
		}
	}
}

func TestSegmenterWriteFailureIsAGapNotACrash(t *testing.T) {
	c := loadClip(t, "h264")
	var sink memSink
	var gaps gapLog
	var resumed []string
	ev := gaps.events()
	ev.resumed = func(cause string) { resumed = append(resumed, cause) }
	s := newSegmenter(2*time.Second, time.Second, &sink, ev)
	units := c.loop(2, 1, 0)
	failing := false
	sink.fail = func() error {
		if failing {
			return ErrFull
		}
		return nil
	}
	feed(s, units[:80])    // 3.2 s: one closed segment, one with a fragment written
	failing = true         // the disk fills
	feed(s, units[80:260]) // until 10.4 s
	failing = false        // space is freed
	feed(s, units[260:])
	s.close()
	if len(gaps) != 1 || gaps[0] != metrics.GapSpoolFull || len(resumed) != 1 {
		t.Errorf("gaps %v resumed %v, want one spool_full episode", gaps, resumed)
	}
	// The open segment keeps its complete fragment [2s,3s); recording resumes at the
	// first keyframe after space was freed (12 s).
	var starts []time.Duration
	for _, seg := range sink.segs {
		starts = append(starts, seg.start.Sub(clipEpoch))
	}
	want := []time.Duration{0, 2 * time.Second, 12 * time.Second, 14 * time.Second}
	if len(starts) != len(want) {
		t.Fatalf("segment starts %v, want %v", starts, want)
	}
	for i := range want {
		if starts[i] != want[i] {
			t.Fatalf("segment starts %v, want %v", starts, want)
		}
	}
	if d := sink.segs[1].duration(); d != time.Second {
		t.Errorf("interrupted segment kept %v, want its one complete fragment (1s)", d)
	}
}

// meanFrameBytes is the average NAL payload per unit, for b.SetBytes.
func meanFrameBytes(units []*streaming.Unit) int64 {
	var n int64
	for _, u := range units {
		for _, nalu := range u.NALUs {
			n += int64(len(nalu))
		}
	}
	return n / int64(len(units))
}

// BenchmarkSegmenter measures the segmenter alone, one frame per op, over the H.264 clip.
func BenchmarkSegmenter(b *testing.B) {
	c := loadClip(b, "h264")
	units := c.loop(1, 1, 0)
	b.SetBytes(meanFrameBytes(units))
	b.ReportAllocs()
	s := newSegmenter(DefaultSegmentDuration, DefaultFragmentDuration, discardSink{}, segmenterEvents{})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Units are reused a pass (8 s) later; the segmenter holds at most a fragment's worth.
		src, u := c.units[i%len(c.units)], units[i%len(units)]
		off := int64(i/len(units)) * c.duration
		u.DTS, u.PTS = src.DTS+off, src.PTS+off
		s.write(streaming.Delivery{Unit: u})
	}
	s.close()
}

type discardSink struct{}

func (discardSink) startSegment(time.Time, []byte) error { return nil }
func (discardSink) writeFragment(f *mp4.Fragment, _ fragmentInfo) error {
	_, err := f.WriteTo(io.Discard) // walks the payload as a file write would
	return err
}
func (discardSink) endSegment() {}

// A unit repeating the previous DTS mid-GOP ends the segment; the units dropped until
// the next keyframe are one counted gap, never silent loss.
func TestSegmenterRepeatedDTSIsACountedGap(t *testing.T) {
	c := loadClip(t, "h264")
	var sink memSink
	var gaps gapLog
	s := newSegmenter(time.Hour, time.Second, &sink, gaps.events())
	units := c.loop(1, 1, 0)
	units[10].DTS, units[10].PTS = units[9].DTS, units[9].PTS
	feed(s, units)
	s.close()
	if len(gaps) != 1 || gaps[0] != metrics.GapDiscontinuity {
		t.Errorf("gaps %v, want one %s", gaps, metrics.GapDiscontinuity)
	}
	if len(sink.segs) != 2 {
		t.Fatalf("got %d segments, want 2", len(sink.segs))
	}
	if want := units[50].Time; !sink.segs[1].start.Equal(want) {
		t.Errorf("second segment starts at %v, want the next keyframe at %v", sink.segs[1].start, want)
	}
}

// TestSegmenterOpenGOP: after an H.265 CRA keyframe (open GOP) come leading pictures,
// decoded after it and shown before it. A segment is dated by its earliest picture,
// so segments join exactly whether a closed or an open group starts them.
func TestSegmenterOpenGOP(t *testing.T) {
	const frame, delay, lead = 3600, 2 * 3600, 4
	c := loadClip(t, "h265")
	units := c.loop(1, 1, 0) // 200 frames, a keyframe every 50
	shown := make([]int64, len(units))
	for i := range units {
		shown[i] = int64(i)
	}
	for k := 50; k < len(units); k += 100 { // the 2nd and 4th groups are open
		shown[k] = int64(k + lead)
		for j := 1; j <= lead; j++ {
			shown[k+j] = int64(k + j - 1)
		}
	}
	for i, u := range units {
		u.DTS, u.PTS = int64(i)*frame, shown[i]*frame+delay
		u.Time = clipEpoch.Add(ticksToDuration(u.PTS))
	}
	var sink memSink
	s := newSegmenter(2*time.Second, time.Second, &sink, segmenterEvents{})
	feed(s, units)
	s.close()
	if len(sink.segs) != 4 {
		t.Fatalf("%d segments, want 4", len(sink.segs))
	}
	for i, seg := range sink.segs {
		// The group's earliest picture: its presentation index is its decode index.
		if want := clipEpoch.Add(ticksToDuration(int64(i*50)*frame + delay)); !seg.start.Equal(want) {
			t.Errorf("segment %d starts at %v, want %v (its earliest picture)", i, seg.start, want)
		}
		if i > 0 {
			if prev := sink.segs[i-1]; !prev.start.Add(prev.duration()).Equal(seg.start) {
				t.Errorf("segment %d starts at %v, the previous one ends at %v", i, seg.start, prev.start.Add(prev.duration()))
			}
		}
	}
}

// TestSegmenterLeavesOutLeadingPicturesOfAFreshKeyframe: the RASL pictures after a CRA
// keyframe that does not follow on from recorded footage (the first of a recording, the
// first after lost frames) reference pictures never received: they are not recorded,
// and the segment starts with its keyframe's picture. After a keyframe that continues
// the footage they are kept.
func TestSegmenterLeavesOutLeadingPicturesOfAFreshKeyframe(t *testing.T) {
	const frame, delay, lead = 3600, 2 * 3600, 4
	c := loadClip(t, "h265")
	units := c.loop(1, 1, 0) // 200 frames, a keyframe every 50, all open here
	shown := make([]int64, len(units))
	for i := range units {
		shown[i] = int64(i)
	}
	raslNALU := []byte{8 << 1, 1, 0xaf}
	for k := 0; k < len(units); k += 50 {
		shown[k] = int64(k + lead)
		for j := 1; j <= lead; j++ {
			shown[k+j] = int64(k + j - 1)
			units[k+j].NALUs = [][]byte{raslNALU}
		}
	}
	for i, u := range units {
		u.DTS, u.PTS = int64(i)*frame, shown[i]*frame+delay
		u.Time = clipEpoch.Add(ticksToDuration(u.PTS))
	}
	var sink memSink
	s := newSegmenter(2*time.Second, time.Second, &sink, segmenterEvents{})
	for i, u := range units {
		d := streaming.Delivery{Unit: u}
		if i == 100 {
			d.Lost = 3 // the stream's queue overflowed before this keyframe
		}
		s.write(d)
	}
	s.close()
	if len(sink.segs) != 4 {
		t.Fatalf("%d segments, want 4", len(sink.segs))
	}
	wall := func(shown int) time.Time { return clipEpoch.Add(ticksToDuration(int64(shown)*frame + delay)) }
	for i, want := range []struct {
		start   time.Time
		samples int
	}{{wall(lead), 50 - lead}, {wall(50), 50}, {wall(100 + lead), 50 - lead}, {wall(150), 50}} {
		seg := sink.segs[i]
		var parts fmp4.Parts
		if err := parts.Unmarshal(seg.data.Bytes()); err != nil {
			t.Fatal(err)
		}
		var n, rasls int
		for _, p := range parts {
			for _, smp := range p.Tracks[0].Samples {
				n++
				if bytes.Equal(smp.Payload, append([]byte{0, 0, 0, 3}, raslNALU...)) {
					rasls++
				}
			}
		}
		if n != want.samples || !seg.start.Equal(want.start) {
			t.Errorf("segment %d: %d samples from %v, want %d from %v", i, n, seg.start, want.samples, want.start)
		}
		if n == 50-lead && rasls != 0 {
			t.Errorf("segment %d keeps %d RASL pictures", i, rasls)
		}
		// Its frames last from its start to the next one's (or to the hole).
		if end := seg.start.Add(seg.duration()); end != wall(50*(i+1)) {
			t.Errorf("segment %d ends at %v, want %v", i, end, wall(50*(i+1)))
		}
		if first := parts[0].Tracks[0].Samples[0]; n == 50-lead && first.PTSOffset != delay {
			t.Errorf("segment %d: keyframe shown %d ticks after it is decoded, want the stream's delay %d", i, first.PTSOffset, delay)
		}
	}
}

package playback

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/straja-nvr/straja/storage"
)

// Gap is a hole in a camera's recording with its cause ("camera_offline",
// "stalled", "service_stopped", "write_error", ...).
type Gap struct {
	Start, End time.Time
	Cause      string
}

// CauseUnknown is the cause of a gap no ledger explains.
const CauseUnknown = "no_recording"

// GapSource is a ledger of recording gaps with their causes.
type GapSource interface {
	// Gaps returns camera's recorded gaps overlapping [from, to).
	Gaps(ctx context.Context, camera string, from, to time.Time) ([]Gap, error)
}

// Span is a stretch of time.
type Span struct {
	Start, End time.Time
}

// Timeline is what a camera recorded over a range, for display.
type Timeline struct {
	Camera   string
	From, To time.Time
	// Recorded are the recorded stretches, merged where segments follow each other.
	Recorded []Span
	// Gaps are the stretches between them (up to now), each with its cause.
	Gaps []Gap
	// Step is the width of one Activity bucket, the first starting at From.
	Step time.Duration
	// Activity is, per bucket, the bytes per second of non-key frames relative to
	// the busiest bucket of the range (0..1), or -1 where nothing is recorded.
	// Compressed frames grow with motion, so it shows where something happened.
	Activity []float64
	// Detail says the activity comes from fragments (non-key frames only); over long
	// ranges it is each segment's overall bit rate.
	Detail bool
}

// Timeline limits.
const (
	// MaxTimelineRange is the longest range one timeline covers.
	MaxTimelineRange = 31 * 24 * time.Hour
	// detailRange is the longest range whose activity is read from fragments; longer
	// ones read only the catalog's index (no fragment lists), which keeps a month fast.
	detailRange = 6 * time.Hour
	// joinTolerance merges recorded stretches this close: segments end and start
	// within a frame of each other.
	joinTolerance = time.Second
	// MaxBuckets bounds the activity track.
	MaxBuckets = 5000
)

// Timeline returns camera's recorded stretches, gaps and activity over [from, to) in
// buckets activity buckets. gaps may be nil: every gap is then CauseUnknown.
func (p *Player) Timeline(ctx context.Context, camera string, from, to time.Time, buckets int, gaps GapSource) (*Timeline, error) {
	switch {
	case !to.After(from):
		return nil, &RangeError{Field: "to", Msg: "must be after from"}
	case to.Sub(from) > MaxTimelineRange:
		return nil, &RangeError{Field: "to", Msg: fmt.Sprintf("range longer than %v (31 days)", MaxTimelineRange)}
	case buckets < 1 || buckets > MaxBuckets:
		return nil, &RangeError{Field: "buckets", Msg: fmt.Sprintf("must be from 1 to %d", MaxBuckets)}
	}
	tl := &Timeline{Camera: camera, From: from, To: to, Step: to.Sub(from) / time.Duration(buckets),
		Detail: to.Sub(from) <= detailRange}
	if tl.Step <= 0 {
		tl.Step = time.Nanosecond
	}
	bytes := make([]float64, buckets)
	covered := make([]float64, buckets) // seconds
	// add spreads rate (bytes/s) over [s, e) into the buckets it overlaps.
	add := func(s, e time.Time, rate float64) {
		if s.Before(from) {
			s = from
		}
		if e.After(to) {
			e = to
		}
		for s.Before(e) {
			i := int(s.Sub(from) / tl.Step)
			if i >= buckets {
				return
			}
			be := from.Add(time.Duration(i+1) * tl.Step)
			if i == buckets-1 || be.After(e) {
				be = e
			}
			d := be.Sub(s).Seconds()
			bytes[i] += rate * d
			covered[i] += d
			s = be
		}
	}
	record := func(sp Span) {
		if sp.Start.Before(from) {
			sp.Start = from
		}
		if sp.End.After(to) {
			sp.End = to
		}
		if !sp.End.After(sp.Start) {
			return
		}
		if n := len(tl.Recorded); n > 0 && !sp.Start.After(tl.Recorded[n-1].End.Add(joinTolerance)) {
			if sp.End.After(tl.Recorded[n-1].End) {
				tl.Recorded[n-1].End = sp.End
			}
			return
		}
		tl.Recorded = append(tl.Recorded, sp)
	}
	segment := func(s storage.Segment) {
		record(Span{s.Start, s.End()})
		if len(s.Fragments) == 0 {
			if s.Duration > 0 {
				add(s.Start, s.End(), float64(s.Size)/s.Duration.Seconds())
			}
			return
		}
		// A fragment that starts with a keyframe, big whatever happens, takes the
		// rate of the nearest fragment without one.
		rate := func(f storage.Fragment) float64 { return float64(f.Size) / max(f.Duration.Seconds(), 0.001) }
		for i, f := range s.Fragments {
			if f.Duration <= 0 {
				continue
			}
			r := rate(f)
			if f.Key {
				for d := 1; d < len(s.Fragments); d++ {
					if j := i + d; j < len(s.Fragments) && !s.Fragments[j].Key {
						r = rate(s.Fragments[j])
						break
					}
					if j := i - d; j >= 0 && !s.Fragments[j].Key {
						r = rate(s.Fragments[j])
						break
					}
				}
			}
			fs := s.Start.Add(f.Start)
			add(fs, fs.Add(f.Duration), r)
		}
	}

	var spooled []storage.Segment
	if p.spool != nil {
		spooled = p.spool.Footage(camera, from, to)
	}
	have := make(map[int64]bool)
	if tl.Detail {
		segs, err := p.cat.Segments(ctx, camera, from, to)
		if err != nil {
			return nil, fmt.Errorf("timeline %s: %w", camera, err)
		}
		segs = mergeSpooled(segs, spooled)
		for _, s := range segs {
			segment(s)
		}
	} else {
		q := storage.SegmentQuery{Camera: camera, From: from, To: to, Limit: math.MaxInt32}
		var pending []storage.Segment = spooled
		err := p.cat.ListSegments(ctx, q, func(s storage.Segment) error {
			// Spooled footage goes in its place in start order.
			for len(pending) > 0 && pending[0].Start.Before(s.Start) {
				if !have[pending[0].Start.UnixMilli()] {
					segment(withoutFragments(pending[0]))
				}
				pending = pending[1:]
			}
			have[s.Start.UnixMilli()] = true
			segment(s)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("timeline %s: %w", camera, err)
		}
		for _, s := range pending {
			if !have[s.Start.UnixMilli()] {
				segment(withoutFragments(s))
			}
		}
	}

	// Normalise per camera: the busiest bucket of the range is 1.
	tl.Activity = make([]float64, buckets)
	peak := 0.0
	for i := range bytes {
		if covered[i] > 0 {
			peak = max(peak, bytes[i]/covered[i])
		}
	}
	for i := range bytes {
		switch {
		case covered[i] == 0:
			tl.Activity[i] = -1
		case peak > 0:
			tl.Activity[i] = math.Round(bytes[i]/covered[i]/peak*1000) / 1000
		}
	}

	// Gaps: what is not recorded, up to now.
	end := to
	if now := p.now(); now.Before(end) {
		end = now
	}
	var ledger []Gap
	if gaps != nil {
		var err error
		if ledger, err = gaps.Gaps(ctx, camera, from, to); err != nil {
			return nil, fmt.Errorf("timeline %s: gaps: %w", camera, err)
		}
	}
	at := from
	for _, r := range append(tl.Recorded, Span{end, end}) {
		if r.Start.After(end) {
			r.Start = end
		}
		if r.Start.Sub(at) > joinTolerance {
			tl.Gaps = append(tl.Gaps, Gap{Start: at, End: r.Start, Cause: causeOf(at, r.Start, ledger)})
		}
		if r.End.After(at) {
			at = r.End
		}
	}
	return tl, nil
}

// causeOf picks the cause of the ledger gap that overlaps [s, e) the most.
func causeOf(s, e time.Time, ledger []Gap) string {
	cause, best := CauseUnknown, time.Duration(0)
	for _, g := range ledger {
		os, oe := g.Start, g.End
		if os.Before(s) {
			os = s
		}
		if oe.After(e) {
			oe = e
		}
		if d := oe.Sub(os); d > best && g.Cause != "" {
			cause, best = g.Cause, d
		}
	}
	return cause
}

// mergeSpooled adds the spooled segments the catalog does not have, in start order.
func mergeSpooled(segs, spooled []storage.Segment) []storage.Segment {
	if len(spooled) == 0 {
		return segs
	}
	have := make(map[int64]bool, len(segs))
	for _, s := range segs {
		have[s.Start.UnixMilli()] = true
	}
	out := make([]storage.Segment, 0, len(segs)+len(spooled))
	i := 0
	for _, s := range spooled {
		if have[s.Start.UnixMilli()] {
			continue
		}
		for i < len(segs) && segs[i].Start.Before(s.Start) {
			out = append(out, segs[i])
			i++
		}
		out = append(out, s)
	}
	return append(out, segs[i:]...)
}

// withoutFragments makes a spooled segment look like an index-only catalog row, so a
// long range's activity is the same kind of figure throughout.
func withoutFragments(s storage.Segment) storage.Segment {
	s.Fragments = nil
	return s
}

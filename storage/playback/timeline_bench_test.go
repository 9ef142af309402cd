package playback_test

import (
	"iter"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
)

// syntheticMonth fills cat with 30 days of one camera: 1-minute segments of 1 s
// fragments, a keyframe every 2 s, an hour's outage each day.
func syntheticMonth(tb testing.TB, cat *storage.Catalog, camera string, end time.Time) {
	tb.Helper()
	start := end.Add(-30 * 24 * time.Hour)
	segs := func(yield func(storage.Segment) bool) {
		for t := start; t.Before(end); t = t.Add(time.Minute) {
			if t.Hour() == 3 {
				continue
			}
			s := storage.Segment{Camera: camera, Start: t, Duration: time.Minute, Size: 30 << 20}
			s.Key = storage.SegmentKey{Camera: camera, Start: t, Duration: time.Minute}.String()
			off := int64(800)
			for i := range 60 {
				size := int64(40_000 + (i%7)*3000)
				if i%2 == 0 {
					size += 60_000
				}
				s.Fragments = append(s.Fragments, storage.Fragment{Offset: off, Size: size,
					Start: time.Duration(i) * time.Second, Duration: time.Second, Key: i%2 == 0})
				off += size
			}
			if !yield(s) {
				return
			}
		}
	}
	if err := cat.AddAll(tb.Context(), iter.Seq[storage.Segment](segs)); err != nil {
		tb.Fatal(err)
	}
}

func BenchmarkCatalogMonth(b *testing.B) {
	_, cat := playbacktest.NewDisk(b)
	end := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	syntheticMonth(b, cat, "gate", end)
	b.ResetTimer()
	for b.Loop() {
		segs, err := cat.Segments(b.Context(), "gate", end.Add(-30*24*time.Hour), end)
		if err != nil || len(segs) == 0 {
			b.Fatal(err)
		}
	}
}

func BenchmarkCatalogMonthList(b *testing.B) {
	_, cat := playbacktest.NewDisk(b)
	end := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	syntheticMonth(b, cat, "gate", end)
	b.ResetTimer()
	for b.Loop() {
		n := 0
		err := cat.ListSegments(b.Context(), storage.SegmentQuery{Camera: "gate", From: end.Add(-30 * 24 * time.Hour), To: end, Limit: 1 << 30},
			func(storage.Segment) error { n++; return nil })
		if err != nil || n == 0 {
			b.Fatal(err)
		}
	}
}

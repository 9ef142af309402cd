package playback_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
	"github.com/straja-nvr/straja/streaming/clip"
)

// ledger is a gap ledger with fixed entries.
type ledger []playback.Gap

func (l ledger) Gaps(_ context.Context, _ string, from, to time.Time) ([]playback.Gap, error) {
	var out []playback.Gap
	for _, g := range l {
		if g.Start.Before(to) && g.End.After(from) {
			out = append(out, g)
		}
	}
	return out, nil
}

func TestTimelineGaps(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	// 6 s segments at 0, 6, (outage), 18, (gap without a ledger entry), 30.
	playbacktest.Record(t, st, cat, "gate", t0, 6, 6*time.Second, 2, 4)
	p := playback.New(cat, st, nil)
	outage := playback.Gap{Start: t0.Add(12 * time.Second), End: t0.Add(18 * time.Second), Cause: "camera_offline"}
	tl, err := p.Timeline(t.Context(), "gate", t0, t0.Add(36*time.Second), 36, ledger{outage})
	if err != nil {
		t.Fatal(err)
	}
	want := []playback.Span{{t0, t0.Add(12 * time.Second)}, {t0.Add(18 * time.Second), t0.Add(24 * time.Second)},
		{t0.Add(30 * time.Second), t0.Add(36 * time.Second)}}
	if len(tl.Recorded) != len(want) {
		t.Fatalf("recorded %v, want %v", tl.Recorded, want)
	}
	for i, r := range tl.Recorded {
		if r.Start.Sub(want[i].Start).Abs() > frame || r.End.Sub(want[i].End).Abs() > frame {
			t.Errorf("recorded[%d] = %v to %v, want %v to %v", i, r.Start, r.End, want[i].Start, want[i].End)
		}
	}
	if len(tl.Gaps) != 2 || tl.Gaps[0].Cause != "camera_offline" || tl.Gaps[1].Cause != playback.CauseUnknown {
		t.Fatalf("gaps %+v, want camera_offline then %s", tl.Gaps, playback.CauseUnknown)
	}
	for i, a := range tl.Activity {
		inGap := (i >= 12 && i < 18) || (i >= 24 && i < 30)
		if inGap != (a < 0) {
			t.Errorf("activity[%d] = %v; in a gap: %v", i, a, inGap)
		}
	}
	// Without a ledger every gap is unexplained.
	tl, err = p.Timeline(t.Context(), "gate", t0, t0.Add(36*time.Second), 36, nil)
	if err != nil || len(tl.Gaps) != 2 || tl.Gaps[0].Cause != playback.CauseUnknown {
		t.Fatalf("timeline without a ledger: %v %+v", err, tl)
	}
}

// TestTimelineActivity records a still picture then a moving one: the activity
// track is higher over the moving one, and the same over a long range, which reads
// only the catalog's index.
func TestTimelineActivity(t *testing.T) {
	ffmpeg := testutil.NeedTool(t, "ffmpeg")
	st, cat := playbacktest.NewDisk(t)
	path := filepath.Join(t.TempDir(), "still.mp4")
	// The embedded clip's size, rate and GOP, of a picture that never changes.
	out, err := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "color=c=gray:size=640x360:rate=25", "-t", "8",
		"-pix_fmt", "yuv420p", "-c:v", "libx264", "-bf", "0", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
		"-b:v", "1000k", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v %s", err, out)
	}
	still, err := clip.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	data := playbacktest.ClipSegment(t, still, 0, 150)
	playbacktest.Store(t, st, cat, playbacktest.Segment(t, "gate", t0, data), data)
	playbacktest.Record(t, st, cat, "gate", t0.Add(time.Hour), 1, 6*time.Second)
	p := playback.New(cat, st, nil)
	for _, tc := range []struct {
		r       time.Duration
		buckets int
	}{{2 * time.Hour, 2}, {24 * time.Hour, 24}} {
		tl, err := p.Timeline(t.Context(), "gate", t0, t0.Add(tc.r), tc.buckets, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a := tl.Activity; !(a[0] >= 0 && a[1] > a[0]) {
			t.Errorf("range %v (detail %v): activity still %.3f, moving %.3f: want moving higher", tc.r, tl.Detail, a[0], a[1])
		}
	}
}

func BenchmarkTimelineMonth(b *testing.B) {
	_, cat := playbacktest.NewDisk(b)
	end := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	syntheticMonth(b, cat, "gate", end)
	p := playback.New(cat, nil, nil)
	b.ResetTimer()
	for b.Loop() {
		tl, err := p.Timeline(b.Context(), "gate", end.Add(-30*24*time.Hour), end, 1000, nil)
		if err != nil || len(tl.Gaps) < 30 {
			b.Fatal(err, len(tl.Gaps))
		}
	}
}

func BenchmarkTimelineDay(b *testing.B) {
	_, cat := playbacktest.NewDisk(b)
	end := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	syntheticMonth(b, cat, "gate", end)
	p := playback.New(cat, nil, nil)
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Timeline(b.Context(), "gate", end.Add(-24*time.Hour), end, 1000, nil); err != nil {
			b.Fatal(err)
		}
	}
}

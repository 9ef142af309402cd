package playback_test

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/clip"
)

// withoutTables is a catalog whose rows have no recorded init or sample table, as
// rows catalogued before they were kept: playback reads the moofs.
type withoutTables struct{ *storage.Catalog }

func (c withoutTables) SegmentsWithTables(ctx context.Context, camera string, from, to time.Time) ([]storage.Segment, error) {
	return c.Segments(ctx, camera, from, to)
}

// TestMovieFromRecordedTables makes the same movies from the catalog's recorded
// sample tables (reading nothing from the store) and from the segments' moofs, and
// compares every byte, the ETag and the range.
func TestMovieFromRecordedTables(t *testing.T) {
	clips := map[string]func(t *testing.T) *clip.Clip{
		"h264": func(t *testing.T) *clip.Clip { return embedded(t, streaming.H264) },
		"h265": func(t *testing.T) *clip.Clip { return embedded(t, streaming.H265) },
		"h264 b-frames": func(t *testing.T) *clip.Clip {
			if testing.Short() {
				t.Skip("encodes a clip")
			}
			path := filepath.Join(t.TempDir(), "bframes.mp4")
			out, err := exec.Command(testutil.NeedTool(t, "ffmpeg"), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
				"-t", "8", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-bf", "2", "-g", "50", "-keyint_min", "50",
				"-sc_threshold", "0", path).CombinedOutput()
			if err != nil {
				t.Fatalf("ffmpeg: %v %s", err, out)
			}
			c, err := clip.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	}
	for name, load := range clips {
		t.Run(name, func(t *testing.T) {
			c := load(t)
			st, cat := playbacktest.NewDisk(t)
			// 4 s segments, the third missing (a gap).
			for i := range 5 {
				if i == 2 {
					continue
				}
				data := playbacktest.ClipSegment(t, c, i*100, 100)
				seg := playbacktest.Segment(t, "gate", t0.Add(time.Duration(i)*4*time.Second), data)
				if seg.Init == nil || seg.Samples == nil {
					t.Fatalf("segment %s indexed without its init or sample table", seg.Key)
				}
				playbacktest.Store(t, st, cat, seg, data)
			}
			counted := &countingStore{Store: st}
			recorded, fromMoofs := playback.New(cat, counted, nil), playback.New(withoutTables{cat}, st, nil)
			for _, r := range []struct{ from, to time.Duration }{
				{0, 20 * time.Second},
				{2500 * time.Millisecond, 6 * time.Second},
				{5 * time.Second, 19*time.Second + 500*time.Millisecond},
				{9 * time.Second, 15 * time.Second}, // starts in the gap
			} {
				from, to := t0.Add(r.from), t0.Add(r.to)
				counted.read.Store(0)
				a, err := recorded.Movie(t.Context(), "gate", from, to)
				if err != nil {
					t.Fatal(err)
				}
				if n := counted.read.Load(); n != 0 {
					t.Errorf("%v to %v: making the movie from recorded tables read %d bytes of the store", r.from, r.to, n)
				}
				b, err := fromMoofs.Movie(t.Context(), "gate", from, to)
				if err != nil {
					t.Fatal(err)
				}
				if a.ETag() != b.ETag() || !a.Start().Equal(b.Start()) || !a.End().Equal(b.End()) || a.Size() != b.Size() {
					t.Errorf("%v to %v: from tables %s %v-%v %d bytes, from moofs %s %v-%v %d bytes", r.from, r.to,
						a.ETag(), a.Start(), a.End(), a.Size(), b.ETag(), b.Start(), b.End(), b.Size())
				}
				if ab, bb := movieBytes(t, a), movieBytes(t, b); !bytes.Equal(ab, bb) {
					t.Errorf("%v to %v: the movie's bytes differ (first at %d)", r.from, r.to, firstDiff(ab, bb))
				}
			}
			a, err := recorded.Still(t.Context(), "gate", t0.Add(13*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			b, err := fromMoofs.Still(t.Context(), "gate", t0.Add(13*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(movieBytes(t, a), movieBytes(t, b)) {
				t.Error("still: the bytes differ")
			}
		})
	}
}

func embedded(t *testing.T, codec streaming.Codec) *clip.Clip {
	t.Helper()
	c, err := clip.Embedded(codec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// A catalog row whose sample table does not describe its fragments gives an error
// naming the segment, never a movie of wrong bytes.
func TestMovieBadRecordedTable(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	data := playbacktest.SegmentBytes(t, 0, 100)
	seg := playbacktest.Segment(t, "gate", t0, data)
	seg.Samples = append([]byte(nil), seg.Samples...)
	seg.Samples[2]++ // the first fragment's data offset
	playbacktest.Store(t, st, cat, seg, data)
	_, err := playback.New(cat, st, nil).Movie(t.Context(), "gate", t0, t0.Add(4*time.Second))
	if !errors.Is(err, storage.ErrSampleTable) {
		t.Fatalf("movie over a bad sample table: %v; want ErrSampleTable", err)
	}
	t.Log(err)
}

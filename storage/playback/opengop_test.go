package playback_test

import (
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
	"github.com/straja-nvr/straja/storage/storetest"
	"github.com/straja-nvr/straja/streaming/clip"
)

// openGOPLead is how long before an open-GOP keyframe its leading pictures are
// shown: x265 with 4 B-frames puts 4 before each CRA.
const openGOPLead = 4 * frame

// recordOpenGOP stores n segments of 4 s of H.265 footage with open GOPs (x265's
// default: CRA keyframes every 2 s, each followed by 4 pictures that reference the
// group before), every segment starting at a CRA, the first at t0.
func recordOpenGOP(tb testing.TB, st storage.Store, cat *storage.Catalog, n int) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "opengop.mp4")
	out, err := exec.Command(testutil.NeedTool(tb, "ffmpeg"), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
		"-t", "8", "-pix_fmt", "yuv420p", "-c:v", "libx265", "-preset", "veryfast", "-b:v", "300k",
		"-x265-params", "keyint=50:min-keyint=50:scenecut=0:bframes=4:open-gop=1:log-level=error", path).CombinedOutput()
	if err != nil {
		tb.Fatalf("ffmpeg: %v %s", err, out)
	}
	c, err := clip.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	// The clip's CRAs come 4 frames before every 50th in decode order: 46, 96, 146,
	// then after the loop's IDR 246, 296...
	for i := range n {
		first := 46 + 100*i
		if !c.Frames()[first%len(c.Frames())].Key {
			tb.Fatalf("clip frame %d is not a keyframe", first)
		}
		data := playbacktest.ClipSegment(tb, c, first, 100)
		playbacktest.Store(tb, st, cat, playbacktest.Segment(tb, "gate", t0.Add(time.Duration(i)*4*time.Second), data), data)
	}
}

// TestMovieOpenGOP: a movie that starts at a CRA keyframe leaves out its leading
// pictures that reference footage before it, starts at the keyframe's picture when
// from is earlier, and ffmpeg decodes it without an error, every frame of its range;
// one that starts later in the group plays from from. On disk and on MinIO.
func TestMovieOpenGOP(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes a clip")
	}
	t.Run("disk", func(t *testing.T) {
		st, cat := playbacktest.NewDisk(t)
		testMovieOpenGOP(t, st, cat)
	})
	t.Run("minio", func(t *testing.T) {
		st, err := storage.NewS3(t.Context(), storetest.S3FromEnv(t))
		if err != nil {
			t.Fatal(err)
		}
		_, cat := playbacktest.NewDisk(t)
		testMovieOpenGOP(t, st, cat)
	})
}

func testMovieOpenGOP(t *testing.T, st storage.Store, cat *storage.Catalog) {
	recordOpenGOP(t, st, cat, 4)
	p := playback.New(cat, st, nil)
	for _, tc := range []struct {
		from, to, start time.Time
	}{
		{t0, t0.Add(2500 * time.Millisecond), t0.Add(openGOPLead)},                                              // the recording's first keyframe
		{t0.Add(4 * time.Second), t0.Add(6500 * time.Millisecond), t0.Add(4*time.Second + openGOPLead)},         // mid-recording
		{t0.Add(4100 * time.Millisecond), t0.Add(6500 * time.Millisecond), t0.Add(4*time.Second + openGOPLead)}, // among the leading pictures
		{t0.Add(4500 * time.Millisecond), t0.Add(9500 * time.Millisecond), t0.Add(4500 * time.Millisecond)},     // after them, over a boundary
		{t0.Add(8 * time.Second), t0.Add(10500 * time.Millisecond), t0.Add(8*time.Second + openGOPLead)},        // the next segment's
	} {
		name := fmt.Sprintf("%v-%v", tc.from.Sub(t0), tc.to.Sub(t0))
		m, err := p.Movie(t.Context(), "gate", tc.from, tc.to)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !m.Start().Equal(tc.start) || !m.End().Equal(tc.to) {
			t.Errorf("%s: movie %v to %v, want %v to %v", name, m.Start().Sub(t0), m.End().Sub(t0), tc.start.Sub(t0), tc.to.Sub(t0))
		}
		path := writeTemp(t, movieBytes(t, m))
		if out, err := exec.Command(testutil.NeedTool(t, "ffmpeg"), "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("%s: ffmpeg decoding the movie: %v %s", name, err, out)
		}
		out, err := exec.Command(testutil.NeedTool(t, "ffprobe"), "-v", "error", "-count_frames", "-select_streams", "v",
			"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).Output()
		if err != nil {
			t.Fatalf("%s: ffprobe: %v", name, err)
		}
		if n, want := strings.TrimSpace(string(out)), strconv.Itoa(int((tc.to.Sub(tc.start)+frame-1)/frame)); n != want {
			t.Errorf("%s: %s frames decoded, want %s", name, n, want)
		}
		if ps := probePackets(t, path); !ps[0].key {
			t.Errorf("%s: first packet is not a keyframe", name)
		}
	}
}

// BenchmarkFirstByteOpenGOP is the time to the first byte of a movie that starts at an
// open-GOP keyframe, whose leading pictures' types are read to leave some out: cold
// (a new player) and warm (the player has read them).
func BenchmarkFirstByteOpenGOP(b *testing.B) {
	for _, backend := range []string{"disk", "minio"} {
		b.Run(backend, func(b *testing.B) {
			var st storage.Store
			var cat *storage.Catalog
			if backend == "disk" {
				st, cat = playbacktest.NewDisk(b)
			} else {
				s3, err := storage.NewS3(b.Context(), storetest.S3FromEnv(b))
				if err != nil {
					b.Fatal(err)
				}
				st = s3
				_, cat = playbacktest.NewDisk(b)
			}
			recordOpenGOP(b, st, cat, 3)
			from, to := t0.Add(4*time.Second), t0.Add(10*time.Second)
			for _, warm := range []bool{false, true} {
				b.Run(map[bool]string{false: "cold", true: "warm"}[warm], func(b *testing.B) {
					p := playback.New(cat, st, nil)
					for b.Loop() {
						if !warm {
							p = playback.New(cat, st, nil)
						}
						m, err := p.Movie(b.Context(), "gate", from, to)
						if err != nil {
							b.Fatal(err)
						}
						r := m.NewReader(b.Context())
						var one [1]byte
						if _, err := io.ReadFull(r, one[:]); err != nil {
							b.Fatal(err)
						}
						r.Close()
					}
				})
			}
		})
	}
}

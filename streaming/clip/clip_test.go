package clip

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/streaming"
)

func TestEmbedded(t *testing.T) {
	for _, codec := range []streaming.Codec{streaming.H264, streaming.H265} {
		t.Run(string(codec), func(t *testing.T) {
			c, err := Embedded(codec)
			if err != nil {
				t.Fatal(err)
			}
			if c.Codec() != codec || c.Width() != 640 || c.Height() != 360 {
				t.Errorf("got %s %dx%d, want %s 640x360", c.Codec(), c.Width(), c.Height(), codec)
			}
			if c.Duration() != 8*time.Second || c.FrameRate() != 25 || c.KeyInterval() != 2*time.Second {
				t.Errorf("got %v at %.2f fps, key interval %v; want 8s at 25 fps, 2s",
					c.Duration(), c.FrameRate(), c.KeyInterval())
			}
			vps, sps, pps := c.Params()
			if (codec == streaming.H265) != (len(vps) > 0) || len(sps) == 0 || len(pps) == 0 {
				t.Errorf("params: vps %d bytes, sps %d, pps %d", len(vps), len(sps), len(pps))
			}
			checkFrames(t, c)
		})
	}
	if _, err := Embedded("vp8"); err == nil {
		t.Error("Embedded(vp8) succeeded")
	}
}

// checkFrames checks what a decoder relies on: a keyframe first, parameter
// sets in every keyframe, and presentation times that tile the loop exactly
// once (so loops join without a gap or a repeated timestamp).
func checkFrames(t *testing.T, c *Clip) {
	t.Helper()
	frames := c.Frames()
	if !frames[0].Key {
		t.Error("clip does not start with a keyframe")
	}
	step := c.duration / int64(len(frames))
	var pts []int64
	for i, f := range frames {
		pts = append(pts, f.PTS)
		if f.Key && !hasNALU(f.NALUs, spsType(c), naluTypeOf(c)) {
			t.Errorf("keyframe %d has no in-band SPS", i)
		}
	}
	slices.Sort(pts)
	for i, p := range pts {
		if p != int64(i)*step {
			t.Fatalf("sorted pts[%d] = %d, want %d (pts %v…)", i, p, int64(i)*step, pts[:min(len(pts), 8)])
		}
	}
}

func spsType(c *Clip) uint8 {
	if c.codec == streaming.H264 {
		return 7
	}
	return 33
}

func naluTypeOf(c *Clip) func([]byte) uint8 {
	if c.codec == streaming.H264 {
		return func(n []byte) uint8 { return n[0] & 0x1f }
	}
	return func(n []byte) uint8 { return (n[0] >> 1) & 0x3f }
}

func TestUnitsLoopContinuously(t *testing.T) {
	c, err := Embedded(streaming.H265)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	units := c.Units(3, 7, start)
	n := len(c.Frames())
	if len(units) != 3*n {
		t.Fatalf("%d units, want %d", len(units), 3*n)
	}
	const frame = streaming.ClockRate / 25
	for i, u := range units {
		if u.DTS != int64(i)*frame || u.PTS != u.DTS {
			t.Fatalf("unit %d: DTS %d PTS %d, want both %d", i, u.DTS, u.PTS, int64(i)*frame)
		}
		if !u.Time.Equal(start.Add(time.Duration(i) * 40 * time.Millisecond)) {
			t.Fatalf("unit %d: Time %v, want start + %v", i, u.Time, time.Duration(i)*40*time.Millisecond)
		}
		if u.Epoch != 7 || u.Params != units[0].Params || u.Key != c.Frames()[i%n].Key {
			t.Fatalf("unit %d: epoch %d, key %v, params %p (first %p)", i, u.Epoch, u.Key, u.Params, units[0].Params)
		}
	}
	p := units[0].Params
	vps, sps, pps := c.Params()
	if p.Codec != streaming.H265 || p.Width != 640 || p.Height != 360 ||
		!bytes.Equal(p.VPS, vps) || !bytes.Equal(p.SPS, sps) || !bytes.Equal(p.PPS, pps) {
		t.Errorf("params %s %dx%d do not match the clip", p.Codec, p.Width, p.Height)
	}
	if !units[0].Key || !units[n].Key {
		t.Error("a loop does not start with a keyframe")
	}
}

func needFFmpeg(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("encodes clips with ffmpeg")
	}
	testutil.NeedTool(t, "ffmpeg")
}

// encode makes a 2 s 320x180 clip at 25 fps, GOP 25, with two consecutive
// B-frames: the layout cameras rarely send and the reader must still get right.
func encode(t *testing.T, codec streaming.Codec) string {
	t.Helper()
	needFFmpeg(t)
	p := filepath.Join(t.TempDir(), "clip.mp4")
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25", "-t", "2", "-pix_fmt", "yuv420p", "-an"}
	if codec == streaming.H264 {
		args = append(args, "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-keyint_min", "25",
			"-sc_threshold", "0", "-bf", "2")
	} else {
		args = append(args, "-c:v", "libx265", "-preset", "veryfast", "-tag:v", "hvc1",
			"-x265-params", "keyint=25:min-keyint=25:scenecut=0:bframes=2:log-level=error")
	}
	if out, err := exec.Command("ffmpeg", append(args, p)...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	return p
}

func TestLoadWithBFrames(t *testing.T) {
	for _, codec := range []streaming.Codec{streaming.H264, streaming.H265} {
		t.Run(string(codec), func(t *testing.T) {
			c, err := Load(encode(t, codec))
			if err != nil {
				t.Fatal(err)
			}
			frames := c.Frames()
			reordered := false
			for i := 1; i < len(frames); i++ {
				if frames[i].PTS < frames[i-1].PTS {
					reordered = true
				}
			}
			if !reordered {
				t.Fatal("no frame is presented before its predecessor: the clip has no B-frames or offsets were lost")
			}
			checkFrames(t, c)

			// Units must stay decodable: no frame presented before it is decoded.
			units := c.Units(2, 1, time.Now())
			for i, u := range units {
				if u.PTS < u.DTS || (i > 0 && u.DTS <= units[i-1].DTS) {
					t.Fatalf("unit %d: DTS %d PTS %d after DTS %d", i, u.DTS, u.PTS, units[max(i-1, 0)].DTS)
				}
			}
			if units[0].DTS != 0 {
				t.Errorf("first DTS %d, want 0", units[0].DTS)
			}
		})
	}
}

func TestLoadFragmented(t *testing.T) {
	src := encode(t, streaming.H264)
	want, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	// The two ways ffmpeg addresses sample data: relative to moof, or
	// absolute file offsets in tfhd.
	for _, flags := range []string{"frag_keyframe+empty_moov+default_base_moof", "frag_keyframe+empty_moov"} {
		t.Run(flags, func(t *testing.T) {
			frag := filepath.Join(t.TempDir(), "frag.mp4")
			out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", src,
				"-c", "copy", "-movflags", flags, frag).CombinedOutput()
			if err != nil {
				t.Fatalf("ffmpeg: %v: %s", err, out)
			}
			got, err := Load(frag)
			if err != nil {
				t.Fatal(err)
			}
			g, w := got.Frames(), want.Frames()
			if len(g) != len(w) || got.Duration() != want.Duration() || got.KeyInterval() != want.KeyInterval() {
				t.Errorf("fragmented: %d frames, %v, key interval %v; progressive: %d frames, %v, %v",
					len(g), got.Duration(), got.KeyInterval(), len(w), want.Duration(), want.KeyInterval())
			}
			for i := range min(len(g), len(w)) {
				if g[i].DTS != w[i].DTS || g[i].PTS != w[i].PTS || g[i].Key != w[i].Key ||
					!slices.EqualFunc(g[i].NALUs, w[i].NALUs, slices.Equal) {
					t.Fatalf("frame %d: fragmented %s, progressive %s (or NALUs differ)", i, frameString(g[i]), frameString(w[i]))
				}
			}
		})
	}
}

func frameString(f Frame) string {
	return fmt.Sprintf("dts %d pts %d key %v", f.DTS, f.PTS, f.Key)
}

func TestLoadRejectsNonVideo(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.mp4")
	if err := os.WriteFile(p, []byte("not an mp4 at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil {
		t.Error("Load accepted a text file")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.mp4")); err == nil {
		t.Error("Load accepted a missing file")
	}
}

// FuzzParse feeds mutated MP4 files to the reader, which takes files
// from operators: it must return an error, never panic or allocate wildly.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"clips/h264.mp4", "clips/h265.mp4"} {
		data, err := clipFS.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse(data)
		if err == nil && (len(c.frames) == 0 || c.duration <= 0 || !c.frames[0].Key) {
			t.Errorf("accepted a clip with %d frames lasting %d ticks", len(c.frames), c.duration)
		}
	})
}

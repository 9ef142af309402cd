package camsim

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestEmbeddedClips(t *testing.T) {
	for _, codec := range []string{CodecH264, CodecH265} {
		t.Run(codec, func(t *testing.T) {
			c, err := EmbeddedClip(codec)
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
			checkUnits(t, c)
		})
	}
	if _, err := EmbeddedClip("vp8"); err == nil {
		t.Error("EmbeddedClip(vp8) succeeded")
	}
}

// checkUnits checks what a decoder relies on: a keyframe first, parameter
// sets in every keyframe, and presentation times that tile the loop exactly
// once (so loops join without a gap or a repeated timestamp).
func checkUnits(t *testing.T, c *Clip) {
	t.Helper()
	if !c.units[0].key {
		t.Error("clip does not start with a keyframe")
	}
	step := c.duration / int64(len(c.units))
	var pts []int64
	for i, u := range c.units {
		pts = append(pts, u.pts)
		if u.key && !hasNALU(u.nalus, spsType(c), naluTypeOf(c)) {
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
	if c.codec == CodecH264 {
		return 7
	}
	return 33
}

func naluTypeOf(c *Clip) func([]byte) uint8 {
	if c.codec == CodecH264 {
		return func(n []byte) uint8 { return n[0] & 0x1f }
	}
	return func(n []byte) uint8 { return (n[0] >> 1) & 0x3f }
}

func needFFmpeg(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("encodes clips with ffmpeg")
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not on PATH: cannot make test clips")
	}
}

func makeClip(t *testing.T, spec ClipSpec) string {
	t.Helper()
	needFFmpeg(t)
	p := filepath.Join(t.TempDir(), "clip.mp4")
	if err := spec.Make(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadClipMadeByMakeClip(t *testing.T) {
	needFFmpeg(t)
	p := filepath.Join(t.TempDir(), "c.mp4")
	if err := MakeClip(context.Background(), p, CodecH265, 320, 240, 10, 5, 300); err != nil {
		t.Fatal(err)
	}
	c, err := LoadClip(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Codec() != CodecH265 || c.Width() != 320 || c.Height() != 240 || c.FrameRate() != 10 ||
		c.KeyInterval() != 500*time.Millisecond || c.Duration() != 8*time.Second {
		t.Errorf("got %s %dx%d %.2f fps key interval %v duration %v; want h265 320x240 10 fps 500ms 8s",
			c.Codec(), c.Width(), c.Height(), c.FrameRate(), c.KeyInterval(), c.Duration())
	}
	checkUnits(t, c)
}

func TestLoadClipWithBFrames(t *testing.T) {
	for _, codec := range []string{CodecH264, CodecH265} {
		t.Run(codec, func(t *testing.T) {
			c, err := LoadClip(makeClip(t, ClipSpec{Codec: codec, Duration: 2 * time.Second, GOP: 25, BFrames: 2}))
			if err != nil {
				t.Fatal(err)
			}
			reordered := false
			for i := 1; i < len(c.units); i++ {
				if c.units[i].pts < c.units[i-1].pts {
					reordered = true
				}
			}
			if !reordered {
				t.Fatal("no frame is presented before its predecessor: the clip has no B-frames or offsets were lost")
			}
			checkUnits(t, c)
		})
	}
}

func TestLoadClipFragmented(t *testing.T) {
	needFFmpeg(t)
	src := makeClip(t, ClipSpec{Duration: 2 * time.Second, GOP: 25, BFrames: 2})
	want, err := LoadClip(src)
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
			got, err := LoadClip(frag)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.units) != len(want.units) || got.Duration() != want.Duration() ||
				got.KeyInterval() != want.KeyInterval() {
				t.Errorf("fragmented: %d units, %v, key interval %v; progressive: %d units, %v, %v",
					len(got.units), got.Duration(), got.KeyInterval(), len(want.units), want.Duration(), want.KeyInterval())
			}
			for i := range min(len(got.units), len(want.units)) {
				g, w := got.units[i], want.units[i]
				if g.pts != w.pts || g.key != w.key || !slices.EqualFunc(g.nalus, w.nalus, slices.Equal) {
					t.Fatalf("unit %d: fragmented pts %d key %v, progressive pts %d key %v (or NALUs differ)",
						i, g.pts, g.key, w.pts, w.key)
				}
			}
		})
	}
}

func TestLoadClipRejectsNonVideo(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.mp4")
	if err := os.WriteFile(p, []byte("not an mp4 at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClip(p); err == nil {
		t.Error("LoadClip accepted a text file")
	}
	if _, err := LoadClip(filepath.Join(t.TempDir(), "missing.mp4")); err == nil {
		t.Error("LoadClip accepted a missing file")
	}
}

// FuzzParseClip feeds mutated MP4 files to the reader, which takes files
// from operators: it must return an error, never panic or allocate wildly.
func FuzzParseClip(f *testing.F) {
	for _, name := range []string{"clips/h264.mp4", "clips/h265.mp4"} {
		data, err := clipFS.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseClip(data)
		if err == nil && (len(c.units) == 0 || c.duration <= 0) {
			t.Errorf("accepted a clip with %d units lasting %d ticks", len(c.units), c.duration)
		}
	})
}

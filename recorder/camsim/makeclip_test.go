package camsim

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/clip"
)

func needFFmpeg(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("encodes clips with ffmpeg")
	}
	testutil.NeedTool(t, "ffmpeg")
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

// TestMakeClip checks that a clip gets the size, rate and GOP asked for:
// what cameras using it will send.
func TestMakeClip(t *testing.T) {
	needFFmpeg(t)
	p := filepath.Join(t.TempDir(), "c.mp4")
	if err := MakeClip(context.Background(), p, streaming.H265, 320, 240, 10, 5, 300); err != nil {
		t.Fatal(err)
	}
	c, err := clip.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Codec() != streaming.H265 || c.Width() != 320 || c.Height() != 240 || c.FrameRate() != 10 ||
		c.KeyInterval() != 500*time.Millisecond || c.Duration() != 8*time.Second {
		t.Errorf("got %s %dx%d %.2f fps key interval %v duration %v; want h265 320x240 10 fps 500ms 8s",
			c.Codec(), c.Width(), c.Height(), c.FrameRate(), c.KeyInterval(), c.Duration())
	}
	frames := c.Frames()
	for i, f := range frames {
		if f.PTS != int64(i)*9000 || f.Key != (i%5 == 0) {
			t.Fatalf("frame %d: pts %d key %v; want pts %d key %v (no B-frames, GOP 5)", i, f.PTS, f.Key, i*9000, i%5 == 0)
		}
	}
}

func TestMakeClipRejectsBadSpecs(t *testing.T) {
	for name, spec := range map[string]ClipSpec{
		"odd width":  {Width: 641, Height: 360},
		"no frames":  {FPS: -1},
		"vp8":        {Codec: "vp8"},
		"negative B": {BFrames: -1},
		"open h264":  {OpenGOP: true},
	} {
		if err := spec.Make(context.Background(), filepath.Join(t.TempDir(), "x.mp4")); err == nil {
			t.Errorf("%s: Make succeeded", name)
		}
	}
}

// TestMakeClipOpenGOP checks that an open-GOP clip has what such cameras send: CRA
// keyframes after the first, each followed in decode order by pictures shown before it.
func TestMakeClipOpenGOP(t *testing.T) {
	p := makeClip(t, ClipSpec{Codec: streaming.H265, Width: 320, Height: 180, GOP: 25, BFrames: 4, OpenGOP: true,
		Duration: 3 * time.Second})
	c, err := clip.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	frames := c.Frames()
	cras, leading := 0, 0
	for i, f := range frames {
		if !f.Key || i == 0 {
			continue
		}
		if !slices.ContainsFunc(f.NALUs, func(n []byte) bool { return len(n) > 0 && (n[0]>>1)&0x3f == 21 }) {
			t.Errorf("keyframe %d is not a CRA", i)
		}
		cras++
		for _, g := range frames[i+1:] {
			if g.PTS > f.PTS {
				break
			}
			leading++
		}
	}
	if cras != 2 || leading == 0 {
		t.Errorf("%d CRA keyframes after the first with %d leading pictures; want 2 with some", cras, leading)
	}
}

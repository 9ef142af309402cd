package camsim

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/straja-nvr/straja/streaming"
)

// ClipSpec describes a test clip; see Make. Zero fields take the defaults
// of the embedded clips: h264, 640x360, 25 fps, keyframe every 2 s, 1000 kbit/s, 8 s.
type ClipSpec struct {
	Codec       streaming.Codec
	Width       int
	Height      int
	FPS         int
	GOP         int // frames between keyframes
	BitrateKbps int
	Duration    time.Duration
	// BFrames is the number of consecutive B-frames. Cameras rarely send
	// them and browsers decode them badly, so the default is none.
	BFrames int
	// OpenGOP makes H.265 keyframes after the first CRA pictures (x265's default)
	// whose leading pictures reference the group before; with BFrames > 0 some of
	// each group's first frames cannot be decoded without the footage before it.
	// Cameras usually close their groups (IDR keyframes), the default.
	OpenGOP bool
}

func (s ClipSpec) withDefaults() ClipSpec {
	if s.Codec == "" {
		s.Codec = streaming.H264
	}
	if s.Width == 0 {
		s.Width, s.Height = 640, 360
	}
	if s.FPS == 0 {
		s.FPS = 25
	}
	if s.GOP == 0 {
		s.GOP = 2 * s.FPS
	}
	if s.BitrateKbps == 0 {
		s.BitrateKbps = 1000
	}
	if s.Duration == 0 {
		s.Duration = 8 * time.Second
	}
	return s
}

// MakeClip encodes an 8 s test-pattern clip without B-frames into a
// progressive MP4 at path, for Options.Clip: this is how cameras get a
// different resolution, bitrate or GOP (in frames). It needs ffmpeg on PATH.
func MakeClip(ctx context.Context, path string, codec streaming.Codec, width, height, fps, gop int, bitrateKbps int) error {
	return ClipSpec{Codec: codec, Width: width, Height: height, FPS: fps, GOP: gop, BitrateKbps: bitrateKbps}.Make(ctx, path)
}

// Make encodes the clip with ffmpeg (libx264 or libx265) into a progressive
// MP4 at path. It needs ffmpeg on PATH.
func (spec ClipSpec) Make(ctx context.Context, path string) error {
	s := spec.withDefaults()
	if s.Width <= 0 || s.Height <= 0 || s.Width%2 != 0 || s.Height%2 != 0 {
		return fmt.Errorf("make clip: size %dx%d: want positive even numbers", s.Width, s.Height)
	}
	if s.OpenGOP && s.Codec != streaming.H265 {
		return fmt.Errorf("make clip: open GOPs are made for %s only", streaming.H265)
	}
	if s.FPS <= 0 || s.GOP <= 0 || s.BitrateKbps <= 0 || s.BFrames < 0 || s.Duration <= 0 {
		return fmt.Errorf("make clip: fps, gop, bitrate and duration must be positive, B-frames not negative")
	}
	kbps := strconv.Itoa(s.BitrateKbps) + "k"
	args := []string{
		"-hide_banner", "-loglevel", "error", "-nostdin", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", s.Width, s.Height, s.FPS),
		"-t", strconv.FormatFloat(s.Duration.Seconds(), 'f', 3, 64),
		"-pix_fmt", "yuv420p", "-an",
		"-b:v", kbps, "-maxrate", kbps, "-bufsize", strconv.Itoa(2*s.BitrateKbps) + "k",
	}
	switch s.Codec {
	case streaming.H264:
		args = append(args, "-c:v", "libx264", "-preset", "veryfast",
			"-g", strconv.Itoa(s.GOP), "-keyint_min", strconv.Itoa(s.GOP), "-sc_threshold", "0",
			"-bf", strconv.Itoa(s.BFrames))
	case streaming.H265:
		// Closed GOPs (IDR keyframes) unless asked, as cameras send; x265's default opens them.
		open := 0
		if s.OpenGOP {
			open = 1
		}
		args = append(args, "-c:v", "libx265", "-preset", "veryfast", "-tag:v", "hvc1",
			"-x265-params", fmt.Sprintf("keyint=%d:min-keyint=%d:scenecut=0:bframes=%d:open-gop=%d:log-level=error",
				s.GOP, s.GOP, s.BFrames, open))
	default:
		return fmt.Errorf("make clip: codec %q: want %s or %s", s.Codec, streaming.H264, streaming.H265)
	}
	args = append(args, "-f", "mp4", path)

	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("make clip %s: ffmpeg: %w: %s", path, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

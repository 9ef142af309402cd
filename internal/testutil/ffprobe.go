package testutil

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Probe is what ffprobe, an independent reader, says of a media file's video.
type Probe struct {
	Codec         string // ffprobe's codec_name: h264, hevc
	Width, Height int
	Duration      time.Duration // of the container
	FirstKey      bool          // the first video frame is a keyframe
}

// FFprobe reads the file at path with ffprobe, failing tb when ffprobe cannot read
// it or finds other than one video stream. Without ffprobe the test is skipped (see
// NeedTool).
func FFprobe(tb testing.TB, path string) Probe {
	tb.Helper()
	bin := NeedTool(tb, "ffprobe")
	out, err := exec.Command(bin, "-v", "error", "-of", "json",
		"-show_entries", "format=duration:stream=codec_type,codec_name,width,height", path).Output()
	if err != nil {
		tb.Fatalf("ffprobe %s: %v", path, err)
	}
	var info struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &info); err != nil || len(info.Streams) != 1 || info.Streams[0].CodecType != "video" {
		tb.Fatalf("ffprobe %s: %v; want one video stream in %s", path, err, out)
	}
	secs, err := strconv.ParseFloat(info.Format.Duration, 64)
	if err != nil {
		tb.Fatalf("ffprobe %s: duration %q: %v", path, info.Format.Duration, err)
	}
	out, err = exec.Command(bin, "-v", "error", "-of", "json", "-select_streams", "v",
		"-read_intervals", "%+#1", "-show_entries", "frame=pict_type,key_frame", path).Output()
	if err != nil {
		tb.Fatalf("ffprobe frames %s: %v", path, err)
	}
	var frames struct {
		Frames []struct {
			PictType string `json:"pict_type"`
			KeyFrame int    `json:"key_frame"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(out, &frames); err != nil || len(frames.Frames) == 0 {
		tb.Fatalf("ffprobe frames %s: %v %s", path, err, out)
	}
	s, f := info.Streams[0], frames.Frames[0]
	return Probe{Codec: s.CodecName, Width: s.Width, Height: s.Height,
		Duration: time.Duration(secs * float64(time.Second)), FirstKey: f.KeyFrame == 1 || f.PictType == "I"}
}

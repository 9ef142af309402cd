package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/streaming"
)

// TestRecordEndToEnd records four simulated cameras (one H.265) with 2 s segments and
// checks every segment with ffprobe, contiguity, catalog == storage, and rebuild.
func TestRecordEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: records for ~10 s")
	}
	testutil.NeedTool(t, "ffprobe")
	for _, backend := range []string{"disk", "s3"} {
		t.Run(backend, func(t *testing.T) {
			sim := startSim(t, 4, camsimOpts())
			cfg := baseConfig(t, t.TempDir(), sim, 4)
			if backend == "s3" {
				useS3(t, cfg)
			}
			m := startMain(t, cfg)
			testutil.WaitFor(t, 40*time.Second, "3 segments per camera", func() bool {
				for _, c := range cfg.Cameras {
					if len(segmentsOf(t, m.Addr(), c.ID)) < 3 {
						return false
					}
				}
				return true
			})
			// A machine loaded enough to stall the simulator makes real holes; each must
			// be a counted gap. Read just before the recording stops.
			gaps := map[string]float64{}
			for _, c := range cfg.Cameras {
				gaps[c.ID] = gapsOf(t, m.Addr(), c.ID)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}

			st := testStore(t, cfg)
			var catKeys []string
			for i, c := range cfg.Cameras {
				segs := recorded(t, cfg, c.ID)
				if len(segs) < 3 {
					t.Fatalf("%s: %d segments after shutdown, want >= 3", c.ID, len(segs))
				}
				wantCodec := "h264"
				if i == 3 {
					wantCodec = "hevc"
				}
				holes := 0
				for j, s := range segs {
					catKeys = append(catKeys, s.Key)
					p := testutil.FFprobe(t, fetch(t, st, s.Key))
					if p.Codec != wantCodec || p.Width != 640 || p.Height != 360 {
						t.Errorf("%s: got %s %dx%d, want %s 640x360", s.Key, p.Codec, p.Width, p.Height, wantCodec)
					}
					if d := p.Duration - s.Duration; d > frame || d < -frame {
						t.Errorf("%s: ffprobe duration %v, catalog %v: differ by more than one frame", s.Key, p.Duration, s.Duration)
					}
					if !p.FirstKey {
						t.Errorf("%s: does not start on a keyframe", s.Key)
					}
					if j > 0 {
						// Overlapping footage is never right; a hole only with a gap counted.
						switch hole := s.Start.Sub(segs[j-1].End()); {
						case hole < -time.Millisecond:
							t.Errorf("%s: %s overlaps %s by %v", c.ID, s.Key, segs[j-1].Key, -hole)
						case hole > frame:
							holes++
							t.Logf("%s: %v hole between %s and %s", c.ID, hole, segs[j-1].Key, s.Key)
						}
					}
				}
				if float64(holes) > gaps[c.ID] {
					t.Errorf("%s: %d holes between segments, %v gaps counted", c.ID, holes, gaps[c.ID])
				}
			}
			keys := listKeys(t, st)
			if !sameSet(keys, catKeys) {
				t.Fatalf("catalog keys %v\n != storage keys %v", catKeys, keys)
			}

			before := catalogRows(t, cfg)
			out, err := exec.Command(strajaBinary(t), "catalog", "rebuild", "--config", writeConfig(t, cfg)).CombinedOutput()
			if err != nil {
				t.Fatalf("catalog rebuild: %v\n%s", err, out)
			}
			if after := catalogRows(t, cfg); !reflect.DeepEqual(before, after) {
				t.Fatalf("rebuilt catalog differs:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// gapsOf sums a camera's straja_recording_gaps_total over every cause, from /metrics.
func gapsOf(t *testing.T, addr, camera string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	prefix := `straja_recording_gaps_total{camera="` + camera + `",`
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		_, v, _ := strings.Cut(line, "} ")
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		n += f
	}
	return n
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestBFramesCamera: a camera that sends B-frames is recorded correctly (composition
// offsets kept: ffprobe agrees on duration, keyframe first) and live view says why it
// does not show it instead of showing a frozen picture.
func TestBFramesCamera(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: ~10 s per codec")
	}
	testutil.NeedTool(t, "ffmpeg")
	testutil.NeedTool(t, "ffprobe")
	for _, codec := range []streaming.Codec{streaming.H264, streaming.H265} {
		t.Run(string(codec), func(t *testing.T) { testBFramesCamera(t, codec) })
	}
}

func testBFramesCamera(t *testing.T, codec streaming.Codec) {
	clipPath := filepath.Join(t.TempDir(), "bframes.mp4")
	spec := camsim.ClipSpec{Codec: codec, Width: 320, Height: 180, FPS: 25, GOP: 50, BitrateKbps: 300,
		Duration: 4 * time.Second, BFrames: 3}
	if err := spec.Make(context.Background(), clipPath); err != nil {
		t.Fatal(err)
	}
	sim := startSim(t, 1, camsim.Options{Clip: clipPath})
	cfg := baseConfig(t, t.TempDir(), sim, 1)
	m := startMain(t, cfg)
	var info struct {
		State      string `json:"state"`
		Live       bool   `json:"live"`
		LiveReason string `json:"live_reason"`
	}
	testutil.WaitFor(t, 20*time.Second, "3 segments", func() bool { return len(segmentsOf(t, m.Addr(), "cam-1")) >= 3 })
	if codec == streaming.H264 { // an H.265 camera is not live for its codec already
		getJSON(t, "http://"+m.Addr()+"/api/v1/cameras/cam-1", &info)
		if info.Live || !strings.Contains(info.LiveReason, "B-frames") {
			t.Errorf("B-frame camera: %+v, want not live with a reason naming B-frames", info)
		}
		// WHEP says the same: 409 with the reason, not 503 "offline" (the camera is online).
		resp, err := http.Post("http://"+m.Addr()+"/api/v1/cameras/cam-1/whep", "application/sdp", strings.NewReader("v=0\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "B-frames") {
			t.Errorf("whep offer for the B-frame camera: %s %q, want 409 naming B-frames", resp.Status, body)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	st := testStore(t, cfg)
	segs := recorded(t, cfg, "cam-1")
	if len(segs) < 2 {
		t.Fatalf("%d segments, want >= 2", len(segs))
	}
	// Playback stitches segments: each must last exactly as long as its frames, the
	// next must start where it ends, and ffmpeg must join them without a timestamp
	// going backwards or a frame lost.
	var files []string
	var frames int
	for i, s := range segs {
		file := fetch(t, st, s.Key)
		files = append(files, file)
		p := testutil.FFprobe(t, file)
		if p.Codec != map[streaming.Codec]string{streaming.H264: "h264", streaming.H265: "hevc"}[codec] || p.Width != 320 || !p.FirstKey {
			t.Errorf("%s: %+v", s.Key, p)
		}
		frames += checkJoin(t, segs, i, file)
	}
	joined := concatSegments(t, files)
	if got := decodedFrames(t, joined); got != frames {
		t.Errorf("joined segments decode to %d frames, want the %d frames of the segments", got, frames)
	}
}

// concatSegments joins the segment files with `ffmpeg -f concat -c copy`, failing the
// test on non-monotonic decode times, and returns the joined file's path.
func concatSegments(t *testing.T, files []string) string {
	t.Helper()
	dir := t.TempDir()
	var list strings.Builder
	for _, f := range files {
		fmt.Fprintf(&list, "file '%s'\n", f)
	}
	listPath, joined := filepath.Join(dir, "list.txt"), filepath.Join(dir, "joined.mp4")
	if err := os.WriteFile(listPath, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "warning", "-f", "concat", "-safe", "0", "-i", listPath,
		"-c", "copy", joined).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg -f concat: %v\n%s", err, out)
	}
	if low := strings.ToLower(string(out)); strings.Contains(low, "non monotonous dts") || strings.Contains(low, "non-monotonic") {
		t.Errorf("ffmpeg -f concat -c copy over %d segments:\n%s", len(files), out)
	}
	return joined
}

// checkJoin checks that segment i, fetched to file, lasts exactly as long as its
// frames and starts where the one before it ends (within 1 ms), and returns how many
// frames it holds.
func checkJoin(t *testing.T, segs []storage.Segment, i int, file string) int {
	t.Helper()
	s := segs[i]
	n, span := packetSpan(t, file)
	if d := span - s.Duration; d > time.Millisecond || d < -time.Millisecond {
		t.Errorf("%s: its %d frames span %v, catalogued duration %v", s.Key, n, span, s.Duration)
	}
	if i > 0 {
		if hole := s.Start.Sub(segs[i-1].End()); hole > time.Millisecond || hole < -time.Millisecond {
			t.Errorf("%s: %v between the previous segment's end and its start", s.Key, hole)
		}
	}
	return n
}

// packetSpan returns how many frames the file at path holds and the time they span
// in presentation order, from the first frame's start to the last one's end.
func packetSpan(t *testing.T, path string) (int, time.Duration) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
		"packet=pts_time,duration_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets %s: %v", path, err)
	}
	first, last, n := math.Inf(1), math.Inf(-1), 0
	for _, line := range strings.Fields(string(out)) {
		var pts, dur float64
		if _, err := fmt.Sscanf(strings.ReplaceAll(line, ",", " "), "%g %g", &pts, &dur); err != nil {
			t.Fatalf("ffprobe packet %q: %v", line, err)
		}
		first, last, n = min(first, pts), max(last, pts+dur), n+1
	}
	return n, time.Duration(math.Round((last-first)*1e6)) * time.Microsecond
}

package main

import (
	"context"
	"io"
	"log/slog"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
)

func TestParseStatTicks(t *testing.T) {
	// A command name with spaces and a ')' must not shift the fields.
	line := "4242 (tricky ) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 20 0 12 0 100 2000000 5000 18446744073709551615\n"
	got, err := parseStatTicks([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if got != 1234+567 {
		t.Errorf("ticks = %d, want %d (utime 1234 + stime 567)", got, 1234+567)
	}
	for _, bad := range []string{"", "1 (x) S 1 2 3", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 0"} {
		if _, err := parseStatTicks([]byte(bad)); err == nil {
			t.Errorf("parseStatTicks(%q): no error", bad)
		}
	}
	// And the real thing: this process has used some CPU by now.
	u, err := readUsage([]string{"self"})
	if err != nil {
		t.Fatal(err)
	}
	if u.rssKB == 0 || u.pssKB == 0 {
		t.Errorf("own usage %+v: want RSS and PSS", u)
	}
}

func TestParseKB(t *testing.T) {
	status := "Name:\tstraja\nVmPeak:\t  900000 kB\nVmRSS:\t  131072 kB\nThreads:\t12\n"
	if got, err := parseKB([]byte(status), "VmRSS:"); err != nil || got != 131072 {
		t.Errorf("VmRSS = %d, %v; want 131072", got, err)
	}
	smaps := "55d0-7ffc ---p 00000000 00:00 0 [rollup]\nRss:  2048 kB\nPss:  1024 kB\n"
	if got, err := parseKB([]byte(smaps), "Pss:"); err != nil || got != 1024 {
		t.Errorf("Pss = %d, %v; want 1024", got, err)
	}
	if _, err := parseKB([]byte("Name:\tzombie\nState:\tZ\n"), "VmRSS:"); err == nil {
		t.Error("a zombie's status (no VmRSS) gave no error")
	}
	if _, err := parseKB([]byte("VmRSS:\t12 MB\n"), "VmRSS:"); err == nil {
		t.Error("a unit other than kB gave no error")
	}
}

func TestParseUDPStats(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL\nIp: 1 64\n" +
		"Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n" +
		"Udp: 1562506 1416 243542 1810002 243541 0 0 0 0\n" +
		"UdpLite: InDatagrams NoPorts\nUdpLite: 0 0\n"
	got, err := parseUDPStats([]byte(snmp))
	if err != nil || got.rcvbufErrors != 243541 {
		t.Errorf("RcvbufErrors = %d, %v; want 243541", got.rcvbufErrors, err)
	}
	if _, err := parseUDPStats([]byte("Udp: A RcvbufErrors\nUdp: 1\n")); err == nil {
		t.Error("mismatched Udp lines gave no error")
	}
}

func TestLossCounter(t *testing.T) {
	tests := []struct {
		name     string
		seqs     []uint16
		received int64
		lost     int64
	}{
		{"none", nil, 0, 0},
		{"contiguous", []uint16{10, 11, 12, 13}, 4, 0},
		{"gap", []uint16{10, 11, 15, 16}, 4, 3},
		{"wraparound", []uint16{65533, 65534, 65535, 0, 1}, 5, 0},
		{"loss across the wrap", []uint16{65534, 65535, 2, 3}, 4, 2},
		{"two wraps", append(seqRange(65000, 65535), append(seqRange(0, 65535), seqRange(0, 100)...)...), 536 + 65536 + 101, 0},
		{"reordered is not lost", []uint16{1, 3, 2, 4}, 4, 0},
		{"late packet before the first", []uint16{5, 4, 6}, 3, 0},
		{"duplicates do not hide loss as negative", []uint16{1, 1, 1, 2}, 4, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c lossCounter
			for _, s := range tt.seqs {
				c.add(s, 1200)
			}
			if c.received != tt.received || c.lost() != tt.lost {
				t.Errorf("received %d lost %d; want %d and %d", c.received, c.lost(), tt.received, tt.lost)
			}
			if tt.lost == 0 && c.lossPercent() != 0 {
				t.Errorf("loss %.3f %% with nothing lost", c.lossPercent())
			}
		})
	}
	var c lossCounter
	for _, s := range []uint16{0, 1, 2, 3, 4, 5, 6, 7, 8, 10} {
		c.add(s, 1)
	}
	if got := c.lossPercent(); got < 9.09 || got > 9.10 {
		t.Errorf("1 lost of 11 = %.3f %%, want 9.09 %%", got)
	}
}

func seqRange(from, to int) []uint16 {
	var s []uint16
	for i := from; i <= to; i++ {
		s = append(s, uint16(i))
	}
	return s
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    string
		wantErr string // "" for valid
	}{
		{"", ""},
		{"--cameras 21 --viewers 100 --viewer-camera 21 --duration 30s --store minio", ""},
		{"--cameras 20 --ffmpeg-baseline --store disk", ""},
		{"--cameras 0", "--cameras 0"},
		{"--cameras 300", "--cameras 300"},
		{"--width 1919", "--width/--height 1919x1080"},
		{"--bitrate 0", "--bitrate 0"},
		{"--duration 1s", "--duration 1s"},
		{"--store s3", `--store "s3"`},
		{"--segment-duration 1s", "--segment-duration 1s"},
		{"--viewers 5 --viewer-camera 21", "--viewer-camera 21: want a camera between 1 and 20"},
		{"--viewers -1", "--viewers -1"},
		{"--viewers 2 --ffmpeg-baseline", "ffmpeg has no live view"},
		{"--cameras 20 --versus-ffmpeg --store disk", ""},
		{"--versus-ffmpeg --ffmpeg-baseline", "choose one"},
		{"--versus-ffmpeg --versus-straja /bin/straja", "choose one"},
		{"--versus-straja /bin/straja", ""},
		{"--versus-ffmpeg --viewers 2", "--viewers with --versus-ffmpeg"},
		{"--viewer-rcvbuf -5", "--viewer-rcvbuf -5"},
		{"extra", `unexpected argument "extra"`},
		{"--cameras 0 --store s3", "--store"}, // every problem is reported, not just the first
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			o, err := parseFlags(strings.Fields(tt.args), io.Discard)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if o.cameras < 1 || o.duration <= 0 {
					t.Errorf("defaults not applied: %+v", o)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	o, _ := parseFlags(nil, io.Discard)
	if o.cameras != 20 || o.width != 1920 || o.height != 1080 || o.bitrateKbps != 4000 || o.store != storeMinio ||
		o.segmentDuration != time.Minute || o.warmup != 5*time.Second {
		t.Errorf("defaults %+v, want 20 cameras of 1080p 4000 kbit/s into minio, 60s segments, 5s warm-up", o)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP straja_camera_frames_total Access units received.
# TYPE straja_camera_frames_total counter
straja_camera_frames_total{camera="cam-1"} 100
straja_camera_frames_total{camera="cam-2"} 250
straja_recording_gaps_total{camera="cam } 1",cause="reconnect"} 2
straja_spool_bytes 4.5e+06
straja_camera_frames_total_extra 7
straja_upload_seconds_bucket{le="0.01"} 3
straja_upload_seconds_bucket{le="+Inf"} 4
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := metrics{"straja_camera_frames_total": 350, "straja_recording_gaps_total": 2,
		"straja_spool_bytes": 4.5e6, "straja_camera_frames_total_extra": 7,
		"straja_upload_seconds_bucket": 7, `straja_upload_seconds_bucket{le="0.01"}`: 3,
		`straja_upload_seconds_bucket{le="+Inf"}`: 4}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if _, err := parseMetrics(strings.NewReader("x{a=\"b\" 1\n")); err == nil {
		t.Error("unterminated labels gave no error")
	}
}

func TestHistogramQuantile(t *testing.T) {
	hist := func(counts ...float64) metrics {
		m := metrics{}
		for i, le := range []string{"0.1", "0.2", "0.4", "+Inf"} {
			m[`straja_upload_seconds_bucket{le="`+le+`"}`] = counts[i]
		}
		return m
	}
	m0 := hist(5, 5, 5, 5) // observations before the window do not count
	tests := []struct {
		name  string
		m1    metrics
		q     float64
		want  float64
		wantN float64
	}{
		{"middle of the first bucket", hist(105, 105, 105, 105), 0.5, 0.05, 100},
		{"interpolated in the second bucket", hist(5, 105, 105, 105), 0.5, 0.15, 100},
		{"p99 in the third", hist(55, 55, 105, 105), 0.99, 0.2 + 0.2*0.98, 100},
		{"beyond the last bound is the last bound", hist(5, 5, 5, 105), 0.5, 0.4, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, ok := histogramQuantile(m0, tt.m1, "straja_upload_seconds", tt.q)
			if !ok || n != tt.wantN || math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("quantile %.2f = %v over %v (ok %v), want %v over %v", tt.q, got, n, ok, tt.want, tt.wantN)
			}
		})
	}
	if _, _, ok := histogramQuantile(m0, m0, "straja_upload_seconds", 0.5); ok {
		t.Error("no observation in the window gave a quantile")
	}
	if _, _, ok := histogramQuantile(m0, hist(6, 6, 6, 6), "straja_other_seconds", 0.5); ok {
		t.Error("a missing histogram gave a quantile")
	}
}

func TestFFmpegArgsCopyIntoFragmentedSegments(t *testing.T) {
	args := strings.Join(ffmpegArgs("rtsp://127.0.0.1:8554/cam1", "/out", 90*time.Second), " ")
	for _, want := range []string{"-rtsp_transport tcp", "-i rtsp://127.0.0.1:8554/cam1", "-c copy", "-segment_time 90",
		"movflags=frag_keyframe+empty_moov", "-reset_timestamps 1", "/out/out%03d.mp4"} {
		if !strings.Contains(args, want) {
			t.Errorf("ffmpeg args %q lack %q", args, want)
		}
	}
}

// TestRunMeasuresStrajaAndViewers runs the whole tool small: two cameras of the
// embedded clip, straja on disk, two viewers.
func TestRunMeasuresStrajaAndViewers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs straja for ~15 s")
	}
	testutil.NeedTool(t, "go") // builds straja
	clip, err := filepath.Abs("../../streaming/clip/clips/h264.mp4")
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags([]string{"--cameras", "2", "--duration", "5s", "--warmup", "1s", "--store", "disk",
		"--viewers", "2", "--viewer-camera", "2", "--clip", clip}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// A private TMPDIR makes this run's children recognisable among other processes.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := run(ctx, o, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res.print(&out)
	t.Log(out.String())
	if len(res.Failures) > 0 {
		t.Errorf("failures: %v", res.Failures)
	}
	if res.CPUPercent <= 0 || res.RSSPeakKB < 1024 {
		t.Errorf("CPU %.2f %%, RSS %d kB: the recorder's usage was not measured", res.CPUPercent, res.RSSPeakKB)
	}
	if s := res.Straja; s == nil || s.FramesPerSec < 45 || s.FramesPerSec > 55 {
		t.Errorf("straja stats %+v: want ~50 frames/s from 2 cameras at 25 fps", s)
	}
	if v := res.Viewers; v == nil || v.Working != 2 || v.Packets == 0 || v.LossMax > 1 {
		t.Errorf("viewers %+v: want 2 receiving with little loss", v)
	}
	if !strings.Contains(out.String(), "| straja (disk) | 2 × 360p25 H.264") {
		t.Errorf("README row missing or wrong:\n%s", out.String())
	}
	// Every child is gone once run returns.
	if out, _ := exec.Command("pgrep", "-f", tmp+"/strajaload-.*/straja.yaml").Output(); len(out) > 0 {
		t.Errorf("straja still running after run returned: %s", out)
	}
}

// TestRunVersusFFmpeg runs straja and one ffmpeg per camera on the same two cameras at
// once, with short segments so some are written and stored in the window.
func TestRunVersusFFmpeg(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs straja and ffmpeg for ~15 s")
	}
	testutil.NeedTool(t, "go")
	testutil.NeedTool(t, "ffmpeg")
	clip, err := filepath.Abs("../../streaming/clip/clips/h264.mp4")
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags([]string{"--cameras", "2", "--duration", "6s", "--warmup", "1s", "--store", "disk",
		"--segment-duration", "2s", "--versus-ffmpeg", "--clip", clip}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := run(ctx, o, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res.print(&out)
	t.Log(out.String())
	if len(res.Failures) > 0 {
		t.Errorf("failures: %v", res.Failures)
	}
	if res.CPUPercent <= 0 || res.Versus == nil || res.Versus.CPUPercent <= 0 || res.Versus.RSSPeakKB < 1024 {
		t.Fatalf("straja CPU %.2f %%, ffmpeg %+v: both recorders must be measured", res.CPUPercent, res.Versus)
	}
	if got, want := res.cpuRatio(), res.CPUPercent/res.Versus.CPUPercent; got != want {
		t.Errorf("ratio %v, want %v", got, want)
	}
	s := res.Straja
	if s == nil || s.FramesPerSec < 45 || s.FramesPerSec > 55 {
		t.Fatalf("straja stats %+v: want ~50 frames/s from 2 cameras at 25 fps", s)
	}
	if s.SegmentsWrittenTotal < 2 || s.SegmentsStoredAfter < s.SegmentsWrittenTotal || s.GapsTotal != 0 {
		t.Errorf("segments written %v, stored %v, gaps %v: want some, all stored, none", s.SegmentsWrittenTotal, s.SegmentsStoredAfter, s.GapsTotal)
	}
	if !s.UploadsOK || s.Uploads < 1 || s.UploadP50 <= 0 || s.UploadP99 < s.UploadP50 {
		t.Errorf("upload latency %v over %v uploads (ok %v), p99 %v: want both quantiles", s.UploadP50, s.Uploads, s.UploadsOK, s.UploadP99)
	}
	for _, want := range []string{"| straja (disk) with ffmpeg -c copy | 2 × 360p25 H.264", "ratio      straja / ffmpeg: CPU "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	// Every child is gone once run returns.
	for _, c := range []string{"straja.yaml", "ffmpeg/cam-1/out"} {
		if out, _ := exec.Command("pgrep", "-f", tmp+"/strajaload-.*/"+c).Output(); len(out) > 0 {
			t.Errorf("a child still runs after run returned: %s", out)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

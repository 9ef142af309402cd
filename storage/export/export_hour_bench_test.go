package export_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/export"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
	"github.com/straja-nvr/straja/storage/storetest"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/clip"
)

// hourClip is the camera of the hour benchmark: 1080p25 H.264 at 4 Mbit/s, a keyframe
// every 2 s, no B-frames; the load tool (cmd/strajaload) caches the same clip.
var hourClip = camsim.ClipSpec{Codec: streaming.H264, Width: 1920, Height: 1080, FPS: 25, GOP: 50,
	BitrateKbps: 4000, Duration: 10 * time.Second}

// loadHourClip returns hourClip from the user's cache, making it there first if missing.
func loadHourClip(b *testing.B) *clip.Clip {
	b.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(cache, "straja", fmt.Sprintf("clip-h264-%dx%d-%dfps-%dk-%s.mp4",
		hourClip.Width, hourClip.Height, hourClip.FPS, hourClip.BitrateKbps, hourClip.Duration))
	if _, err := os.Stat(path); err != nil {
		if _, err := exec.LookPath("ffmpeg"); err != nil {
			b.Skip("ffmpeg is not installed")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			b.Fatal(err)
		}
		tmp := path + ".tmp.mp4"
		if err := hourClip.Make(b.Context(), tmp); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			b.Fatal(err)
		}
	}
	c, err := clip.Load(path)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkExportHour is the export benchmark: a whole export of one hour of
// one 1080p25 4 Mbit/s camera (60 one-minute segments, about 1.8 GB) from MinIO and
// from disk, against `ffmpeg -f concat -safe 0 -i list.txt -c copy clip.mp4` over the
// same segment files on local disk, alternating in the same run, three rounds. The
// footage is written once per run, to both stores. Opt-in (several GB of I/O):
//
//	STRAJA_BENCH_EXPORT_HOUR=1 go test -run '^$' -bench ExportHour -benchmem -timeout 30m ./storage/export
//
// with STRAJA_TEST_S3_* naming a MinIO. Besides time, MB/s and allocations, each run
// reports peak-rss-MB (the process's, reset before the run; ffmpeg's own for ffmpeg)
// and load1 (the load average as it started); ffmpeg's also sync-s, the time syncing
// its clip takes afterwards (an export syncs its clip inside its time, ffmpeg does not).
func BenchmarkExportHour(b *testing.B) {
	if os.Getenv("STRAJA_BENCH_EXPORT_HOUR") != "1" {
		b.Skip("set STRAJA_BENCH_EXPORT_HOUR=1 to export an hour of 1080p footage (several GB of I/O)")
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		b.Skip("ffmpeg is not installed")
	}
	s3, err := storage.NewS3(b.Context(), storetest.S3FromEnv(b))
	if err != nil {
		b.Fatal(err)
	}
	c := loadHourClip(b)
	diskDir := b.TempDir()
	disk, err := storage.NewDisk(diskDir)
	if err != nil {
		b.Fatal(err)
	}
	_, cat := playbacktest.NewDisk(b)
	frames := 60 * hourClip.FPS
	var list strings.Builder
	for i := range 60 {
		start := t0.Add(time.Duration(i) * time.Minute)
		data := playbacktest.DatedClipSegment(b, c, 0, frames, start)
		seg := playbacktest.Segment(b, "gate", start, data)
		playbacktest.Store(b, disk, cat, seg, data)
		if err := s3.Put(b.Context(), seg.Key, bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
		list.WriteString("file '" + filepath.Join(diskDir, seg.Key) + "'\n")
	}
	lp := filepath.Join(b.TempDir(), "list.txt")
	if err := os.WriteFile(lp, []byte(list.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	keys, err := export.OpenKeys(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	out := b.TempDir()

	straja := func(st storage.Store) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			load := loadAvg(b)
			resetPeakRSS(b)
			var size int64
			for b.Loop() {
				bl := &export.Builder{Store: st, Catalog: cat, Keys: keys}
				f := export.Files{Clip: filepath.Join(out, "clip.mp4"), Manifest: filepath.Join(out, "manifest.json"),
					Signature: filepath.Join(out, "manifest.json.sig")}
				m, err := bl.Build(b.Context(), export.Request{Camera: "gate", From: t0, To: t0.Add(time.Hour),
					Reason: "benchmark", User: "bench"}, f, nil)
				if err != nil {
					b.Fatal(err)
				}
				size = m.Clip.Size
			}
			b.SetBytes(size)
			b.ReportMetric(peakRSS(b), "peak-rss-MB")
			b.ReportMetric(load, "load1")
		}
	}
	concat := func(b *testing.B) {
		load := loadAvg(b)
		clip := filepath.Join(out, "ffmpeg.mp4")
		var rss int64
		for b.Loop() {
			cmd := exec.Command(ffmpeg, "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", lp, "-c", "copy", clip)
			if o, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("ffmpeg: %v\n%s", err, o)
			}
			rss = max(rss, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) // KiB
		}
		fi, err := os.Stat(clip)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(fi.Size())
		// ffmpeg does not sync, an export does: sync-s is what syncing ffmpeg's clip
		// afterwards takes (not in ns/op). Then it is deleted, leaving no writeback to
		// slow the next run.
		f, err := os.Open(clip)
		if err != nil {
			b.Fatal(err)
		}
		synced := time.Now()
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(synced).Seconds(), "sync-s")
		f.Close()
		if err := os.Remove(clip); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(rss)/1024, "peak-rss-MB")
		b.ReportMetric(load, "load1")
	}
	for range 3 {
		b.Run("minio", straja(s3))
		b.Run("ffmpeg-concat", concat)
		b.Run("disk", straja(disk))
	}
}

// loadAvg is the one-minute load average.
func loadAvg(b *testing.B) float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		b.Fatal(err)
	}
	f, err := strconv.ParseFloat(strings.Fields(string(raw))[0], 64)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// resetPeakRSS starts the process's peak RSS (VmHWM) over from its current RSS, after a
// GC so that the heap left by the footage's making does not count.
func resetPeakRSS(b *testing.B) {
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Fatal(err)
	}
}

// peakRSS is the process's peak RSS (VmHWM) in MB.
func peakRSS(b *testing.B) float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

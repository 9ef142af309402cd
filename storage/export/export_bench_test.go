package export_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/export"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
	"github.com/straja-nvr/straja/storage/storetest"
)

var t0 = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)

// tenMinutes stores ten one-minute segments of one camera (the embedded clip,
// 25 fps, about 1 Mbit/s) and returns their keys.
func tenMinutes(b *testing.B, st storage.Store, cat *storage.Catalog) []string {
	b.Helper()
	data := playbacktest.SegmentBytes(b, 0, 60*25)
	var keys []string
	for i := range 10 {
		seg := playbacktest.Segment(b, "gate", t0.Add(time.Duration(i)*time.Minute), data)
		if err := st.Put(b.Context(), seg.Key, bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
		if err := cat.Add(b.Context(), seg); err != nil {
			b.Fatal(err)
		}
		keys = append(keys, seg.Key)
	}
	return keys
}

// BenchmarkExport is the throughput of a whole export of a 10-minute clip (MB/s of
// clip): every source segment read once and checked against its SHA-256 as the clip
// is stitched from it, the clip written, synced and hashed, the manifest signed. From disk
// and from MinIO; "ffmpeg-concat" is `ffmpeg -f concat -c copy` over the same
// segment files on disk in the same run, for scale (it checks nothing).
func BenchmarkExport(b *testing.B) {
	run := func(b *testing.B, st storage.Store, cat *storage.Catalog) {
		keys, err := export.OpenKeys(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		out := b.TempDir()
		var size int64
		for b.Loop() {
			bl := &export.Builder{Store: st, Catalog: cat, Keys: keys}
			f := export.Files{Clip: filepath.Join(out, "clip.mp4"), Manifest: filepath.Join(out, "manifest.json"),
				Signature: filepath.Join(out, "manifest.json.sig")}
			m, err := bl.Build(b.Context(), export.Request{Camera: "gate", From: t0, To: t0.Add(10 * time.Minute),
				Reason: "benchmark", User: "bench"}, f, nil)
			if err != nil {
				b.Fatal(err)
			}
			size = m.Clip.Size
		}
		b.SetBytes(size)
	}
	b.Run("disk", func(b *testing.B) {
		st, cat := playbacktest.NewDisk(b)
		tenMinutes(b, st, cat)
		run(b, st, cat)
	})
	b.Run("minio", func(b *testing.B) {
		st, err := storage.NewS3(b.Context(), storetest.S3FromEnv(b))
		if err != nil {
			b.Fatal(err)
		}
		_, cat := playbacktest.NewDisk(b)
		tenMinutes(b, st, cat)
		run(b, st, cat)
	})
	b.Run("ffmpeg-concat", func(b *testing.B) {
		ffmpeg, err := exec.LookPath("ffmpeg")
		if err != nil {
			b.Skip("ffmpeg is not installed")
		}
		dir := b.TempDir()
		st, err := storage.NewDisk(dir)
		if err != nil {
			b.Fatal(err)
		}
		_, cat := playbacktest.NewDisk(b)
		var list strings.Builder
		for _, k := range tenMinutes(b, st, cat) {
			list.WriteString("file '" + filepath.Join(dir, k) + "'\n")
		}
		lp := filepath.Join(b.TempDir(), "list.txt")
		if err := os.WriteFile(lp, []byte(list.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		out := filepath.Join(b.TempDir(), "clip.mp4")
		for b.Loop() {
			if o, err := exec.Command(ffmpeg, "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", lp, "-c", "copy",
				out).CombinedOutput(); err != nil {
				b.Fatalf("ffmpeg: %v\n%s", err, o)
			}
		}
		fi, err := os.Stat(out)
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(fi.Size())
	})
}

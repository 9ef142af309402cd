package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/mp4"
	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/export"
	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/streaming"
)

// H.265 NAL unit types of the pictures an open GOP is made of.
const (
	nalRADLN, nalRASLR = 6, 9
	nalCRA             = 21
)

// TestOpenGOPCamera records an H.265 camera with open GOPs (x265's default: CRA
// keyframes whose leading pictures reference the group before) and checks that its
// segments join exactly, that ffmpeg joins them decoding every frame, and that a movie starting at a CRA in the middle of the
// recording decodes without an error, every frame of its range.
func TestOpenGOPCamera(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: records for ~10 s")
	}
	testutil.NeedTool(t, "ffmpeg")
	testutil.NeedTool(t, "ffprobe")
	clipPath := filepath.Join(t.TempDir(), "opengop.mp4")
	spec := camsim.ClipSpec{Codec: streaming.H265, Width: 320, Height: 180, FPS: 25, GOP: 50, BitrateKbps: 300,
		BFrames: 4, OpenGOP: true}
	if err := spec.Make(context.Background(), clipPath); err != nil {
		t.Fatal(err)
	}
	sim := startSim(t, 1, camsim.Options{Clip: clipPath})
	cfg := baseConfig(t, t.TempDir(), sim, 1)
	m := startMain(t, cfg)
	testutil.WaitFor(t, 30*time.Second, "6 segments", func() bool { return len(segmentsOf(t, m.Addr(), "cam-1")) >= 6 })
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	st := testStore(t, cfg)
	segs := recorded(t, cfg, "cam-1")

	var files []string
	var frames, cras int
	for i, s := range segs {
		file := fetch(t, st, s.Key)
		files = append(files, file)
		frames += checkJoin(t, segs, i, file)
		if firstPicture(t, file) == nalCRA {
			cras++
		}
	}
	t.Logf("%d segments, %d start with a CRA; the first with NAL unit type %d", len(segs), cras, firstPicture(t, files[0]))
	if cras == 0 {
		t.Fatalf("none of %d segments starts with a CRA", len(segs))
	}
	joined := concatSegments(t, files)
	// Every frame decodes: the leading pictures of the recording's first keyframe,
	// which reference footage never received, are not recorded.
	if got := decodedFrames(t, joined); got != frames {
		t.Errorf("joined segments decode to %d frames, want their %d", got, frames)
	}

	// A movie from a CRA in the middle of the recording, over a segment boundary.
	cat, err := storage.OpenCatalog(catalogPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	p := playback.New(cat, st, nil)
	keys, err := export.OpenKeys(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	exported := false
	for i, s := range segs[1 : len(segs)-1] {
		if firstPicture(t, files[i+1]) != nalCRA {
			continue
		}
		// The keyframe is shown after its leading pictures, which are left out.
		cra := s.Start.Add(time.Duration(leadingSkipped(t, files[i+1])) * 40 * time.Millisecond)
		for _, off := range []time.Duration{0, 500 * time.Millisecond} {
			from := s.Start.Add(off)
			to := from.Add(3 * time.Second)
			if to.After(segs[len(segs)-1].End()) {
				continue
			}
			mv, err := p.Movie(context.Background(), "cam-1", from, to)
			if err != nil {
				t.Fatal(err)
			}
			start := from
			if cra.After(from) {
				start = cra
			}
			if !mv.Start().Equal(start) || !mv.End().Equal(to) {
				t.Errorf("movie from a CRA (+%v): %v to %v, want %v to %v", off, mv.Start(), mv.End(), start, to)
			}
			path := filepath.Join(t.TempDir(), "movie.mp4")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := mv.WriteRange(context.Background(), f, 0, mv.Size()); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if out, err := exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("ffmpeg decoding a movie from a CRA (+%v): %v %s", off, err, out)
			}
			if n, want := decodedFrames(t, path), int(to.Sub(start)/(40*time.Millisecond)); n != want {
				t.Errorf("movie from a CRA (+%v) decodes to %d frames, want %d", off, n, want)
			}
			if exported {
				continue
			}
			// An export is cut by the same movie: its manifest's actual range is the movie's.
			exported = true
			dir := t.TempDir()
			out := export.Files{Clip: filepath.Join(dir, "clip.mp4"), Manifest: filepath.Join(dir, "manifest.json"),
				Signature: filepath.Join(dir, "manifest.json.sig")}
			man, err := (&export.Builder{Store: st, Catalog: cat, Keys: keys}).Build(context.Background(),
				export.Request{Camera: "cam-1", From: from, To: to}, out, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !man.Actual.From.Equal(start) || !man.Actual.To.Equal(to) {
				t.Errorf("export from a CRA: actual range %v to %v, want %v to %v", man.Actual.From, man.Actual.To, start, to)
			}
			if out, err := exec.Command("ffmpeg", "-v", "error", "-i", out.Clip, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("ffmpeg decoding an export from a CRA: %v %s", err, out)
			}
			if n, want := decodedFrames(t, out.Clip), int(to.Sub(start)/(40*time.Millisecond)); n != want {
				t.Errorf("export from a CRA decodes to %d frames, want %d", n, want)
			}
		}
	}
	if !exported {
		t.Error("no export from a CRA was checked")
	}
}

// decodedFrames counts the frames ffmpeg decodes and shows from the file at path.
func decodedFrames(t *testing.T, path string) int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe -count_frames %s: %v", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("ffprobe -count_frames %s: %q", path, out)
	}
	return n
}

// pictureTypes returns the NAL unit type of each sample's first picture slice in the
// fMP4 segment at path, in decode order.
func pictureTypes(t *testing.T, path string) []int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := storage.ScanSegment(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	moov, _ := mp4.Child(data[:idx.InitSize], "moov")
	mv, err := mp4.ParseMoov(moov)
	if err != nil || len(mv.Tracks) == 0 {
		t.Fatalf("%s: moov: %v", path, err)
	}
	var types []int
	for _, f := range idx.Fragments {
		size := int64(binary.BigEndian.Uint32(data[f.Offset:]))
		trafs, err := mp4.ParseMoof(data[f.Offset+8:f.Offset+size], uint64(f.Offset), mv.TrackDefaults(mv.Tracks[0].ID))
		if err != nil {
			t.Fatalf("%s: moof at %d: %v", path, f.Offset, err)
		}
		for _, tf := range trafs {
			for _, s := range tf.Samples {
				au, typ := data[s.Offset:s.Offset+uint64(s.Size)], -1
				for len(au) > 4 {
					n := int(binary.BigEndian.Uint32(au))
					if nt := int(au[4]>>1) & 0x3f; nt < 32 {
						typ = nt
						break
					}
					au = au[4+n:]
				}
				types = append(types, typ)
			}
		}
	}
	return types
}

// firstPicture returns the NAL unit type of the segment's first picture.
func firstPicture(t *testing.T, path string) int { return pictureTypes(t, path)[0] }

// leadingSkipped counts the leading pictures after the segment's first keyframe that
// reference footage before it (RASL), which a decoder starting there skips.
func leadingSkipped(t *testing.T, path string) int {
	types := pictureTypes(t, path)
	n := 0
	for _, typ := range types[1:] {
		if typ < nalRADLN || typ > nalRASLR {
			break
		}
		if typ >= nalRASLR-1 {
			n++
		}
	}
	return n
}

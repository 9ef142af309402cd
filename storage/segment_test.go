package storage_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage"
)

// ffmpegFMP4 remuxes an 8 s test clip (GOP 2 s) into a fragmented MP4, as
// ffmpeg-based recorders write them: tfhd defaults, first-sample-flags, an mfra tail.
func ffmpegFMP4(t *testing.T, clip string) []byte {
	t.Helper()
	testutil.NeedTool(t, "ffmpeg")
	out := filepath.Join(t.TempDir(), "out.mp4")
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-i", "../streaming/clip/clips/"+clip,
		"-c", "copy", "-movflags", "frag_keyframe+empty_moov+default_base_moof", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mediacommonFMP4 writes a segment the way the recorder does: an audio track first
// (so the video track must be picked as the time reference), three 1 s parts of n
// samples at 90 kHz starting at a non-zero decode time, the last one not starting on
// a keyframe.
func mediacommonFMP4(t testing.TB, n int) []byte {
	t.Helper()
	var buf seekablebuffer.Buffer
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{
		{ID: 1, TimeScale: 44100, Codec: &mp4.CodecMPEG4Audio{Config: mpeg4audio.AudioSpecificConfig{Type: 2, SampleRate: 44100, ChannelCount: 1}}},
		{ID: 2, TimeScale: 90000, Codec: &mp4.CodecH264{
			SPS: []byte{0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9, 0x20},
			PPS: []byte{0x08},
		}},
	}}
	if err := init.Marshal(&buf); err != nil {
		t.Fatal(err)
	}
	for p := range 3 {
		video := &fmp4.PartTrack{ID: 2, BaseTime: uint64(900_000 + p*90_000)}
		for i := range n {
			video.Samples = append(video.Samples, &fmp4.Sample{
				Duration:        uint32(90_000 / n),
				IsNonSyncSample: i > 0 || p == 2,
				Payload:         bytes.Repeat([]byte{byte(p), byte(i)}, 1+i),
			})
		}
		audio := &fmp4.PartTrack{ID: 1, BaseTime: uint64(p * 44100), Samples: []*fmp4.Sample{{Duration: 44100, Payload: []byte{1, 2, 3}}}}
		part := fmp4.Part{SequenceNumber: uint32(p + 1), Tracks: []*fmp4.PartTrack{audio, video}}
		if err := part.Marshal(&buf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func scan(t *testing.T, b []byte) storage.SegmentIndex {
	t.Helper()
	idx, err := storage.ScanSegment(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("ScanSegment(%d bytes): %v", len(b), err)
	}
	return idx
}

// checkFragments asserts what playback relies on: each fragment starts with a moof
// at Offset, fragments tile the file from InitSize to Complete, and times add up.
func checkFragments(t *testing.T, b []byte, idx storage.SegmentIndex) {
	t.Helper()
	next := idx.InitSize
	var end time.Duration
	for i, f := range idx.Fragments {
		if f.Offset != next || string(b[f.Offset+4:f.Offset+8]) != "moof" {
			t.Fatalf("fragment %d at %d (want %d) does not start with a moof", i, f.Offset, next)
		}
		if f.Start != end {
			t.Errorf("fragment %d starts at %v, want %v after the previous one", i, f.Start, end)
		}
		next, end = f.Offset+f.Size, f.Start+f.Duration
	}
	if idx.Complete != next || idx.Duration != end {
		t.Errorf("Complete %d, Duration %v; want %d, %v from the fragments", idx.Complete, idx.Duration, next, end)
	}
	if idx.Size != int64(len(b)) || idx.SHA256 != sha256.Sum256(b) {
		t.Errorf("Size %d / SHA256 do not describe the %d bytes scanned", idx.Size, len(b))
	}
}

func TestScanSegmentFFmpeg(t *testing.T) {
	for _, clip := range []string{"h264.mp4", "h265.mp4"} {
		t.Run(clip, func(t *testing.T) { testScanFFmpeg(t, ffmpegFMP4(t, clip)) })
	}
}

func testScanFFmpeg(t *testing.T, b []byte) {
	idx := scan(t, b)
	checkFragments(t, b, idx)
	if len(idx.Fragments) != 4 || idx.Duration != 8*time.Second {
		t.Fatalf("got %d fragments, %v; want 4 GOPs of 2 s", len(idx.Fragments), idx.Duration)
	}
	for i, f := range idx.Fragments {
		if f.Start != time.Duration(i)*2*time.Second || f.Duration != 2*time.Second || !f.Key {
			t.Errorf("fragment %d = %+v, want a 2 s keyframe fragment at %d s", i, f, 2*i)
		}
	}
	if tail := idx.Size - idx.Complete; string(b[idx.Complete+4:idx.Complete+8]) != "mfra" || tail <= 0 {
		t.Errorf("after the last fragment want ffmpeg's mfra, got %q (%d bytes)", b[idx.Complete+4:idx.Complete+8], tail)
	}
}

func TestScanSegmentMediacommon(t *testing.T) {
	b := mediacommonFMP4(t, 25)
	idx := scan(t, b)
	checkFragments(t, b, idx)
	if len(idx.Fragments) != 3 || idx.Duration != 3*time.Second || idx.Complete != idx.Size {
		t.Fatalf("got %d fragments, %v, complete %d of %d; want 3 parts of 1 s, all complete",
			len(idx.Fragments), idx.Duration, idx.Complete, idx.Size)
	}
	if keys := []bool{idx.Fragments[0].Key, idx.Fragments[1].Key, idx.Fragments[2].Key}; !slices.Equal(keys, []bool{true, true, false}) {
		t.Errorf("fragment key flags = %v, want [true true false]", keys)
	}
}

// TestScanSegmentTruncated cuts segments everywhere after the init and checks the
// recovery contract: no error, only whole fragments, and Complete marks them.
func TestScanSegmentTruncated(t *testing.T) {
	for name, b := range map[string][]byte{"ffmpeg": ffmpegFMP4(t, "h264.mp4"), "mediacommon": mediacommonFMP4(t, 25)} {
		t.Run(name, func(t *testing.T) {
			full := scan(t, b)
			for cut := full.InitSize; cut <= int64(len(b)); cut += 331 {
				idx := scan(t, b[:cut])
				var want []storage.Fragment
				for _, f := range full.Fragments {
					if f.Offset+f.Size <= cut {
						want = append(want, f)
					}
				}
				if !slices.Equal(idx.Fragments, want) {
					t.Fatalf("cut at %d: %d fragments, want the %d that fit", cut, len(idx.Fragments), len(want))
				}
				checkFragments(t, b[:cut], idx)
				// What the recorder does with a crashed spool file.
				fixed := scan(t, b[:idx.Complete])
				if fixed.Complete != fixed.Size || !slices.Equal(fixed.Fragments, want) {
					t.Fatalf("cut at %d, truncated to %d: not a clean segment", cut, idx.Complete)
				}
			}
			// A crash can also leave zeros where the tail should be.
			idx := scan(t, append(slices.Clone(b), make([]byte, 5000)...))
			if !slices.Equal(idx.Fragments, full.Fragments) || idx.Complete != full.Complete {
				t.Errorf("zero-filled tail changed the fragments")
			}
		})
	}
}

// TestScanSegmentPlayable checks with ffprobe that a recovered file really plays:
// a segment cut inside its third fragment keeps exactly two GOPs of frames.
func TestScanSegmentPlayable(t *testing.T) {
	b := ffmpegFMP4(t, "h264.mp4")
	full := scan(t, b)
	f := full.Fragments[2]
	idx := scan(t, b[:f.Offset+f.Size/2])
	path := filepath.Join(t.TempDir(), "recovered.mp4")
	if err := os.WriteFile(path, b[:idx.Complete], 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(string(out))); n != 100 {
		t.Fatalf("recovered file has %q frames, want 100 (two 2 s GOPs at 25 fps)", out)
	}
}

func TestScanSegmentErrors(t *testing.T) {
	b := mediacommonFMP4(t, 25)
	idx := scan(t, b)
	moof := idx.Fragments[0].Offset
	progressive, err := os.ReadFile("../streaming/clip/clips/h264.mp4")
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{
		"empty":           nil,
		"init cut":        b[:idx.InitSize-1],
		"no moov":         b[moof:],
		"ftyp and mdat":   []byte("\x00\x00\x00\x08ftyp\x00\x00\x00\x08mdat"),
		"progressive":     progressive,
		"mdat after moov": slices.Concat(b[:idx.InitSize], []byte("\x00\x00\x00\x08mdat"), b[moof:]),
	} {
		if _, err := storage.ScanSegment(bytes.NewReader(in)); err == nil {
			t.Errorf("%s: ScanSegment succeeded", name)
		}
	}
}

func FuzzScanSegment(f *testing.F) {
	b := mediacommonFMP4(f, 2) // small, so the fuzzer minimizes quickly
	f.Add(b)
	f.Add(b[:len(b)-100])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		idx, err := storage.ScanSegment(bytes.NewReader(in))
		if err != nil {
			return
		}
		if idx.Size != int64(len(in)) || idx.InitSize > idx.Complete || idx.Complete > idx.Size {
			t.Fatalf("inconsistent index: size %d init %d complete %d for %d bytes", idx.Size, idx.InitSize, idx.Complete, len(in))
		}
		next := idx.InitSize
		for _, f := range idx.Fragments {
			if f.Offset < next || f.Size <= 0 || f.Offset+f.Size > idx.Complete || f.Start < 0 || f.Duration < 0 {
				t.Fatalf("fragment %+v outside [%d, %d]", f, next, idx.Complete)
			}
			next = f.Offset + f.Size
		}
	})
}

// TestScanSegmentCorruptFragment checks what crash recovery relies on when the tail is
// not a clean cut: a fragment whose moof is garbage is an error, yet the index still
// holds the complete fragments before it, so only that fragment is lost.
func TestScanSegmentCorruptFragment(t *testing.T) {
	b := ffmpegFMP4(t, "h264.mp4")
	full := scan(t, b)
	f := full.Fragments[3]
	for name, corrupt := range map[string]func([]byte){
		// Stale bytes inside the moof: its header is fine, its boxes are not.
		"garbage moof body": func(c []byte) {
			rnd := rand.New(rand.NewPCG(1, 2))
			for i := f.Offset + 8; i < f.Offset+f.Size && i < f.Offset+200; i++ {
				c[i] = byte(rnd.Uint32() | 1)
			}
		},
		// A moof header claiming more than a moof may hold.
		"huge moof": func(c []byte) { binary.BigEndian.PutUint32(c[f.Offset:], 64<<20) },
	} {
		t.Run(name, func(t *testing.T) {
			c := slices.Clone(b)
			corrupt(c)
			idx, err := storage.ScanSegment(bytes.NewReader(c))
			if err == nil {
				t.Fatal("ScanSegment accepted a corrupt moof")
			}
			if !slices.Equal(idx.Fragments, full.Fragments[:3]) || idx.Complete != f.Offset ||
				idx.InitSize != full.InitSize || idx.Duration != full.Fragments[2].Start+full.Fragments[2].Duration {
				t.Errorf("on error got %d fragments, complete %d, %v; want the 3 before the corrupt one, %d",
					len(idx.Fragments), idx.Complete, idx.Duration, f.Offset)
			}
		})
	}
}

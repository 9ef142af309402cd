package recorder

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/streaming"
)

// partMarshal is what the segmenter wrote before fragments were streamed: mediacommon's
// fmp4.Part.Marshal of the same samples.
func partMarshal(t *testing.T, seq uint32, base uint64, units []*streaming.Unit, ticks []int64) []byte {
	t.Helper()
	track := &fmp4.PartTrack{ID: trackID, BaseTime: base}
	for i, u := range units {
		var payload []byte
		for _, n := range u.NALUs {
			payload = binary.BigEndian.AppendUint32(payload, uint32(len(n)))
			payload = append(payload, n...)
		}
		track.Samples = append(track.Samples, &fmp4.Sample{Duration: uint32(ticks[i]),
			PTSOffset: int32(u.PTS - u.DTS), IsNonSyncSample: !u.Key, Payload: payload})
	}
	part := fmp4.Part{SequenceNumber: seq, Tracks: []*fmp4.PartTrack{track}}
	var buf seekablebuffer.Buffer
	if err := part.Marshal(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Players and ScanSegment were checked against mediacommon's output, so ours must be
// byte for byte the same: sample flags, composition offsets (B-frames, negative too),
// data offset, 64-bit decode times.
func TestFragmentMatchesMediacommon(t *testing.T) {
	bframes := func(us []*streaming.Unit) {
		for i, u := range us {
			u.PTS = u.DTS + []int64{2 * 3600, 3 * 3600, 1 * 3600}[i%3]
		}
	}
	cases := []struct {
		name   string
		codec  string
		from   int
		n      int
		seq    uint32
		base   uint64
		mutate func([]*streaming.Unit)
	}{
		{name: "h264 GOP start", codec: "h264", n: 25, seq: 1},
		{name: "h265 GOP start", codec: "h265", n: 25, seq: 7, base: 90000},
		{name: "h264 non-sync only", codec: "h264", from: 3, n: 25, seq: 2, base: 3600},
		{name: "h264 one keyframe", codec: "h264", n: 1, seq: 3},
		{name: "h264 B-frames", codec: "h264", n: 30, seq: 4, base: 1 << 40, mutate: bframes},
		{name: "h265 B-frames", codec: "h265", from: 40, n: 30, seq: 5, mutate: bframes},
		{name: "h264 negative offsets", codec: "h264", n: 10, seq: 6, mutate: func(us []*streaming.Unit) {
			for i, u := range us {
				u.PTS = u.DTS - int64(i%2)*3600
			}
		}},
		{name: "no samples with offsets but the last", codec: "h265", n: 12, seq: 8, mutate: func(us []*streaming.Unit) {
			us[len(us)-1].PTS += 1800
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			units := loadClip(t, tc.codec).loop(1, 1, 0)[tc.from : tc.from+tc.n]
			if tc.mutate != nil {
				tc.mutate(units)
			}
			var f fragment
			ticks := make([]int64, len(units))
			for i, u := range units {
				ticks[i] = 3600 + int64(i%3) // uneven durations
				f.add(u, ticks[i])
			}
			f.seq, f.baseTime = tc.seq, tc.base
			if err := f.marshalHeader(); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			n, err := f.writeTo(&got)
			if err != nil || n != f.size() || int64(got.Len()) != f.size() {
				t.Fatalf("writeTo wrote %d bytes (%v), buffer has %d, size says %d", n, err, got.Len(), f.size())
			}
			want := partMarshal(t, tc.seq, tc.base, units, ticks)
			if !bytes.Equal(got.Bytes(), want) {
				i := 0
				for i < min(got.Len(), len(want)) && got.Bytes()[i] == want[i] {
					i++
				}
				t.Fatalf("fragment differs from fmp4.Part.Marshal at byte %d of %d (want %d)\ngot  % x\nwant % x",
					i, got.Len(), len(want), head(got.Bytes(), i), head(want, i))
			}
			// And it reads back as the samples that went in.
			var parts fmp4.Parts
			if err := parts.Unmarshal(got.Bytes()); err != nil {
				t.Fatal(err)
			}
			if s := parts[0].Tracks[0].Samples; len(s) != len(units) || s[0].IsNonSyncSample == units[0].Key {
				t.Errorf("read back %d samples, first sync %v", len(s), !s[0].IsNonSyncSample)
			}

			// Reused for the next fragment, nothing of this one is left.
			f.reset()
			f.add(units[0], 3600)
			f.seq, f.baseTime = tc.seq+1, 0
			if err := f.marshalHeader(); err != nil {
				t.Fatal(err)
			}
			got.Reset()
			if _, err := f.writeTo(&got); err != nil {
				t.Fatal(err)
			}
			if want := partMarshal(t, tc.seq+1, 0, units[:1], []int64{3600}); !bytes.Equal(got.Bytes(), want) {
				t.Error("reused fragment differs from fmp4.Part.Marshal")
			}
		})
	}
}

// head returns b around i, for failure messages.
func head(b []byte, i int) []byte {
	return b[max(0, i-16):min(len(b), i+16)]
}

// TestSpoolSegmentIndexMatchesScan records B-frame H.264 and H.265 through the spool
// and checks that the index and hash made while writing are those ScanSegment finds
// in the file, which is what recovery and export rely on.
func TestSpoolSegmentIndexMatchesScan(t *testing.T) {
	for _, codec := range []string{"h264", "h265"} {
		t.Run(codec, func(t *testing.T) {
			units := loadClip(t, codec).loop(1, 1, 0)
			for i, u := range units {
				u.PTS = u.DTS + []int64{2 * 3600, 3 * 3600, 1 * 3600}[i%3]
			}
			sp := openTestSpool(t)
			recordUnits(t, sp, units, openSpoolFile, nil)
			if segs := checkSpooled(t, sp); len(segs) != 2 {
				t.Errorf("%d segments of the 8 s clip, want 2 of 4 s", len(segs))
			}
		})
	}
}

// A fragment that fails half-written must leave neither bytes in the file nor a trace
// in the segment's SHA-256: the hash recorded for export is that of what is stored.
func TestSpoolFailedFragmentLeavesHashAndIndexTrue(t *testing.T) {
	units := loadClip(t, "h264").loop(1, 1, 0)
	var full atomic.Bool
	open := func(path string) (spoolFile, error) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if err != nil {
			return nil, err
		}
		return failingFile{File: f, full: &full}, nil
	}
	sp := openTestSpool(t)
	// Full from 1.2 s to 2.4 s: the second fragment, written at 2 s, fails half-way.
	recordUnits(t, sp, units, open, func(i int) { full.Store(i >= 30 && i < 60) })
	segs := checkSpooled(t, sp)
	if len(segs) != 2 || segs[0].Duration != time.Second || len(segs[0].Fragments) != 1 ||
		segs[1].Start.Sub(clipEpoch) != 4*time.Second || segs[1].Duration != 4*time.Second {
		t.Errorf("segments %+v, want [0,1s) and [4s,8s)", segs)
	}
}

func openTestSpool(t *testing.T) *Spool {
	t.Helper()
	sp, err := OpenSpool(SpoolOptions{Dir: filepath.Join(t.TempDir(), "spool"), SegmentDuration: 4 * time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// recordUnits records units into sp, calling before(i), if set, before unit i.
func recordUnits(t *testing.T, sp *Spool, units []*streaming.Unit, open func(string) (spoolFile, error), before func(i int)) {
	t.Helper()
	c := make(chan streaming.Delivery)
	done := make(chan error, 1)
	go func() { done <- sp.recordWith(context.Background(), testCamera, c, open) }()
	for i, u := range units {
		if before != nil {
			before(i)
		}
		c <- streaming.Delivery{Unit: u}
	}
	close(c)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// checkSpooled compares each closed segment's index, made while writing, with what
// ScanSegment reads from its file, and removes them from the spool.
func checkSpooled(t *testing.T, sp *Spool) []storage.Segment {
	t.Helper()
	var segs []storage.Segment
	for {
		s, ok := sp.next()
		if !ok {
			return segs
		}
		segs = append(segs, s.seg)
		f, err := os.Open(s.path)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := storage.ScanSegment(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if idx.SHA256 != s.seg.SHA256 || idx.Size != s.seg.Size || idx.Complete != idx.Size ||
			idx.Duration != s.seg.Duration || fmt.Sprint(idx.Fragments) != fmt.Sprint(s.seg.Fragments) {
			t.Errorf("segment %s indexed while writing as %d bytes, %v, sha %x, %v; scanned %d bytes, %v, sha %x, %v",
				s.seg.Key, s.seg.Size, s.seg.Duration, s.seg.SHA256[:4], s.seg.Fragments,
				idx.Size, idx.Duration, idx.SHA256[:4], idx.Fragments)
		}
		if err := sp.remove(s); err != nil {
			t.Fatal(err)
		}
	}
}

// syncFreeFile leaves fsync out of BenchmarkSpoolRecord: it measures CPU, not the disk.
type syncFreeFile struct{ *os.File }

func (syncFreeFile) Sync() error { return nil }

// BenchmarkSpoolRecord measures the whole write path, one frame per op: segmenting,
// fragment writing and hashing into a spool file.
func BenchmarkSpoolRecord(b *testing.B) {
	c := loadClip(b, "h264")
	units := c.loop(1, 1, 0)
	b.SetBytes(meanFrameBytes(units))
	b.ReportAllocs()
	sp, err := OpenSpool(SpoolOptions{Dir: b.TempDir(), SegmentDuration: time.Hour}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	in := make(chan streaming.Delivery, 64)
	done := make(chan error, 1)
	go func() {
		done <- sp.recordWith(context.Background(), testCamera, in, func(path string) (spoolFile, error) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
			return syncFreeFile{f}, err
		})
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Units are reused a pass (200 frames) later; the recorder holds at most the
		// channel's 64 and a fragment's 26, and the channel orders the accesses.
		src, u := c.units[i%len(c.units)], units[i%len(units)]
		off := int64(i/len(units)) * c.duration
		u.DTS, u.PTS = src.DTS+off, src.PTS+off
		in <- streaming.Delivery{Unit: u}
	}
	close(in)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

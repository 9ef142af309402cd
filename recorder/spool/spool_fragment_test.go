package spool

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/streaming"
)

func TestSpoolSegmentIndexMatchesScan(t *testing.T) {
	for _, codec := range []string{"h264", "h265"} {
		t.Run(codec, func(t *testing.T) {
			units := loadClip(t, codec).loop(1, 1, 0)
			for i, u := range units {
				u.PTS = u.DTS + []int64{2 * 3600, 3 * 3600, 1 * 3600}[i%3]
			}
			sp := openTestSpool(t)
			recordUnits(t, sp, units, openSegmentFile, nil)
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
	open := func(path string) (segmentFile, error) {
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
	sp, err := Open(Options{Dir: filepath.Join(t.TempDir(), "spool"), SegmentDuration: 4 * time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// recordUnits records units into sp, calling before(i), if set, before unit i.
func recordUnits(t *testing.T, sp *Spool, units []*streaming.Unit, open func(string) (segmentFile, error), before func(i int)) {
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
		// The init section and sample table the catalog gets from the writer are those
		// a catalog rebuild reads from the file.
		if s.seg.Samples == nil || s.seg.Init == nil || !bytes.Equal(idx.Samples, s.seg.Samples) || !bytes.Equal(idx.Init, s.seg.Init) {
			t.Errorf("segment %s: sample table written %x, scanned %x; init written %d bytes, scanned %d (equal: %v)",
				s.seg.Key, s.seg.Samples, idx.Samples, len(s.seg.Init), len(idx.Init), bytes.Equal(idx.Init, s.seg.Init))
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
	sp, err := Open(Options{Dir: b.TempDir(), SegmentDuration: time.Hour}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	in := make(chan streaming.Delivery, 64)
	done := make(chan error, 1)
	go func() {
		done <- sp.recordWith(context.Background(), testCamera, in, func(path string) (segmentFile, error) {
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

// Package playbacktest records test footage the way the recorder does, for tests of
// playback and of what is built on it.
package playbacktest

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/straja-nvr/straja/internal/mp4"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/clip"
)

// SegmentBytes returns frames frames of the embedded test clip (25 fps, a keyframe
// every 2 s), from clip frame first, as one segment the way the recorder writes
// them: 1 s fragments whose decode times restart at 0.
func SegmentBytes(tb testing.TB, first, frames int) []byte {
	tb.Helper()
	c, err := clip.Embedded(streaming.H264)
	if err != nil {
		tb.Fatal(err)
	}
	return ClipSegment(tb, c, first, frames)
}

// ClipSegment returns frames frames of c from frame first as one segment.
func ClipSegment(tb testing.TB, c *clip.Clip, first, frames int) []byte {
	tb.Helper()
	return clipSegment(tb, c, first, frames, time.Time{})
}

// DatedClipSegment is ClipSegment with a prft box before each fragment giving its
// wall-clock time from start, as the recorder writes them (so segments of a looped clip
// differ as recorded ones do).
func DatedClipSegment(tb testing.TB, c *clip.Clip, first, frames int, start time.Time) []byte {
	tb.Helper()
	return clipSegment(tb, c, first, frames, start)
}

func clipSegment(tb testing.TB, c *clip.Clip, first, frames int, start time.Time) []byte {
	tb.Helper()
	vps, sps, pps := c.Params()
	var codec fmp4.Codec = &fmp4.CodecH264{SPS: sps, PPS: pps}
	if c.Codec() == streaming.H265 {
		codec = &fmp4.CodecH265{VPS: vps, SPS: sps, PPS: pps}
	}
	init, err := mp4.MarshalInit(codec, streaming.ClockRate)
	if err != nil {
		tb.Fatal(err)
	}
	loops := (first+frames)/len(c.Frames()) + 2
	units := c.Units(loops, 0, time.Unix(0, 0))[first : first+frames+1]
	var buf bytes.Buffer
	buf.Write(init)
	var f mp4.Fragment
	base := units[0].DTS
	for i := 0; i < frames; i += 25 {
		f.Reset()
		f.Seq = uint32(i/25 + 1)
		f.BaseTime = uint64(units[i].DTS - base)
		for j := i; j < min(i+25, frames); j++ {
			u := units[j]
			f.Add(u.NALUs, uint32(units[j+1].DTS-u.DTS), int32(u.PTS-u.DTS), u.Key)
		}
		if err := f.MarshalHeader(); err != nil {
			tb.Fatal(err)
		}
		if !start.IsZero() {
			pts := units[i].PTS - base
			buf.Write(mp4.AppendPrft(nil, mp4.Prft{TrackID: mp4.TrackID, Flags: mp4.PrftCaptureTime,
				Time: start.Add(time.Duration(pts) * time.Second / streaming.ClockRate), MediaTime: uint64(max(pts, 0))}))
		}
		if _, err := f.WriteTo(&buf); err != nil {
			tb.Fatal(err)
		}
	}
	return buf.Bytes()
}

// Segment indexes data as the recorder does (with its init section and sample
// table) and names it.
func Segment(tb testing.TB, camera string, start time.Time, data []byte) storage.Segment {
	tb.Helper()
	idx, err := storage.ScanSegment(bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	start = start.UTC().Truncate(time.Millisecond)
	dur := idx.Duration.Truncate(time.Millisecond)
	return storage.Segment{Camera: camera, Start: start, Duration: dur,
		Key:  storage.SegmentKey{Camera: camera, Start: start, Duration: dur}.String(),
		Size: idx.Size, SHA256: idx.SHA256, Fragments: idx.Fragments, Init: idx.Init, Samples: idx.Samples}
}

// Record stores n segments of segDur (a multiple of 2 s) of the embedded clip from start, skipping the
// indexes in skip (gaps), into st and cat, and returns them.
func Record(tb testing.TB, st storage.Store, cat *storage.Catalog, camera string, start time.Time, n int, segDur time.Duration, skip ...int) []storage.Segment {
	tb.Helper()
	frames := int(segDur / (40 * time.Millisecond))
	var segs []storage.Segment
	for i := range n {
		if slices.Contains(skip, i) {
			continue
		}
		data := SegmentBytes(tb, i*frames, frames)
		segs = append(segs, Store(tb, st, cat, Segment(tb, camera, start.Add(time.Duration(i)*segDur), data), data))
	}
	return segs
}

// Store puts seg's data in st and seg in cat.
func Store(tb testing.TB, st storage.Store, cat *storage.Catalog, seg storage.Segment, data []byte) storage.Segment {
	tb.Helper()
	if err := st.Put(context.Background(), seg.Key, bytes.NewReader(data), int64(len(data))); err != nil {
		tb.Fatal(err)
	}
	if err := cat.Add(context.Background(), seg); err != nil {
		tb.Fatal(err)
	}
	return seg
}

// NewDisk returns a disk store and a catalog in a temporary directory.
func NewDisk(tb testing.TB) (*storage.Disk, *storage.Catalog) {
	tb.Helper()
	dir := tb.TempDir()
	st, err := storage.NewDisk(filepath.Join(dir, "store"))
	if err != nil {
		tb.Fatal(err)
	}
	cat, err := storage.OpenCatalog(filepath.Join(dir, "catalog.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cat.Close() })
	return st, cat
}

package mp4

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// TrackID is the only track of the segments Straja writes.
const TrackID = 1

// Box sizes of a fragment's moof.
const (
	mfhdSize      = HeaderSize + 4 + 4 // version+flags, sequence number
	tfhdSize      = HeaderSize + 4 + 4 // version+flags, track ID
	tfdtSize      = HeaderSize + 4 + 8 // version+flags, 64-bit decode time
	trunFixedSize = HeaderSize + 4 + 4 + 4
)

// MarshalInit builds the init section (ftyp+moov) of a one-track fragmented MP4.
func MarshalInit(codec fmp4.Codec, timeScale uint32) ([]byte, error) {
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: TrackID, TimeScale: timeScale, Codec: codec}}}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// fragmentSample is one sample of a fragment: its trun entry and the NALUs that make its
// AVCC payload. The NALUs are the caller's (the recorder's units are immutable once
// written to the stream), so building a fragment copies no media.
type fragmentSample struct {
	duration  uint32
	ptsOffset int32
	nonSync   bool
	size      int64 // AVCC bytes: a 4-byte length before each NALU
	nalus     [][]byte
}

// Fragment is one moof+mdat of a segment, assembled from references to the samples'
// NALUs and written out as a stream: only the moof is ever built in memory. It writes
// the same bytes as mediacommon's fmp4.Part.Marshal for one track, without go-mp4's
// reflection and without copying the samples into an mdat buffer. Reused across
// fragments; not safe for concurrent use.
type Fragment struct {
	Seq      uint32 // mfhd sequence number
	BaseTime uint64 // tfdt decode time
	samples  []fragmentSample
	ticks    uint64 // sum of the samples' durations

	header   []byte // moof and mdat header, built by MarshalHeader
	dataSize int64  // mdat payload bytes
	prefix   [4]byte
}

// Add appends a sample of the given NALUs lasting duration ticks, presented ptsOffset
// ticks after its decode time.
func (f *Fragment) Add(nalus [][]byte, duration uint32, ptsOffset int32, sync bool) {
	var size int64
	for _, n := range nalus {
		size += 4 + int64(len(n))
	}
	f.samples = append(f.samples, fragmentSample{
		duration:  duration,
		ptsOffset: ptsOffset,
		nonSync:   !sync,
		size:      size,
		nalus:     nalus,
	})
	f.dataSize += size
	f.ticks += uint64(duration)
}

// Reset empties f, dropping its references to NALUs so that the GC can free them once
// their owner lets go of them too.
func (f *Fragment) Reset() {
	clear(f.samples)
	f.samples, f.header, f.dataSize, f.ticks = f.samples[:0], f.header[:0], 0, 0
}

// Timing returns sample i's duration and presentation offset.
func (f *Fragment) Timing(i int) (duration uint32, ptsOffset int32) {
	return f.samples[i].duration, f.samples[i].ptsOffset
}

// DropLast removes the last sample, if any.
func (f *Fragment) DropLast() {
	n := len(f.samples)
	if n == 0 {
		return
	}
	f.dataSize -= f.samples[n-1].size
	f.ticks -= uint64(f.samples[n-1].duration)
	f.samples[n-1] = fragmentSample{}
	f.samples = f.samples[:n-1]
}

// Len is the number of samples.
func (f *Fragment) Len() int { return len(f.samples) }

// Ticks is the fragment's duration: the sum of its samples'.
func (f *Fragment) Ticks() uint64 { return f.ticks }

// Sync reports whether the fragment starts with a sync sample.
func (f *Fragment) Sync() bool { return len(f.samples) > 0 && !f.samples[0].nonSync }

// Size is the bytes WriteTo writes; valid after MarshalHeader.
func (f *Fragment) Size() int64 { return int64(len(f.header)) + f.dataSize }

// MarshalHeader builds the moof (mfhd; traf: tfhd, tfdt, trun) and the mdat header.
func (f *Fragment) MarshalHeader() error {
	flags := uint32(trunDataOffset | trunSampleDuration | trunSampleSize)
	for _, s := range f.samples {
		if s.nonSync {
			flags |= trunSampleFlags
		}
		if s.ptsOffset != 0 {
			flags |= trunSampleCTO
		}
	}
	entry := 8
	if flags&trunSampleFlags != 0 {
		entry += 4
	}
	if flags&trunSampleCTO != 0 {
		entry += 4
	}
	trunSize := trunFixedSize + len(f.samples)*entry
	trafSize := HeaderSize + tfhdSize + tfdtSize + trunSize
	moofSize := HeaderSize + mfhdSize + trafSize
	mdatSize := HeaderSize + f.dataSize
	if mdatSize > math.MaxUint32 || moofSize > math.MaxInt32 {
		return fmt.Errorf("fragment of %d samples, %d bytes: too large for 32-bit boxes", len(f.samples), mdatSize)
	}

	be := binary.BigEndian
	b := f.header[:0]
	b = appendBoxHeader(b, moofSize, "moof")
	b = appendBoxHeader(b, mfhdSize, "mfhd")
	b = be.AppendUint32(b, 0)
	b = be.AppendUint32(b, f.Seq)
	b = appendBoxHeader(b, trafSize, "traf")
	b = appendBoxHeader(b, tfhdSize, "tfhd")
	b = be.AppendUint32(b, tfhdDefaultBaseIsMoof)
	b = be.AppendUint32(b, TrackID)
	b = appendBoxHeader(b, tfdtSize, "tfdt")
	b = be.AppendUint32(b, 1<<24) // version 1: 64-bit time
	b = be.AppendUint64(b, f.BaseTime)
	b = appendBoxHeader(b, trunSize, "trun")
	b = be.AppendUint32(b, 1<<24|flags)
	b = be.AppendUint32(b, uint32(len(f.samples)))
	b = be.AppendUint32(b, uint32(moofSize+HeaderSize)) // data starts past the mdat header
	for _, s := range f.samples {
		b = be.AppendUint32(b, s.duration)
		b = be.AppendUint32(b, uint32(s.size))
		if flags&trunSampleFlags != 0 {
			var sf uint32
			if s.nonSync {
				sf = SampleFlagNonSync
			}
			b = be.AppendUint32(b, sf)
		}
		if flags&trunSampleCTO != 0 {
			b = be.AppendUint32(b, uint32(s.ptsOffset))
		}
	}
	f.header = appendBoxHeader(b, int(mdatSize), "mdat")
	return nil
}

// WriteTo writes the fragment built by MarshalHeader: moof, mdat header, then each
// sample's NALUs with their lengths. w should be buffered; NALUs go to it uncopied.
func (f *Fragment) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(f.header)
	written := int64(n)
	if err != nil {
		return written, err
	}
	for _, s := range f.samples {
		for _, nalu := range s.nalus {
			binary.BigEndian.PutUint32(f.prefix[:], uint32(len(nalu)))
			n, err = w.Write(f.prefix[:])
			written += int64(n)
			if err != nil {
				return written, err
			}
			n, err = w.Write(nalu)
			written += int64(n)
			if err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// Sample returns sample i's size, duration, presentation offset and sync flag, as
// its trun entry has them.
func (f *Fragment) Sample(i int) (size, duration uint32, ptsOffset int32, sync bool) {
	s := &f.samples[i]
	return uint32(s.size), s.duration, s.ptsOffset, !s.nonSync
}

// DataOffset is where the first sample's data starts, from the start of the moof;
// valid after MarshalHeader.
func (f *Fragment) DataOffset() int64 { return int64(len(f.header)) }

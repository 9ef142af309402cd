package recorder

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/straja-nvr/straja/streaming"
)

// trackID is the only track of the segments we write.
const trackID = 1

// trun flags (ISO/IEC 14496-12 8.8.8), as mediacommon's fmp4.Part.Marshal sets them.
const (
	trunDataOffset     = 0x1
	trunSampleDuration = 0x100
	trunSampleSize     = 0x200
	trunSampleFlags    = 0x400
	trunSampleCTO      = 0x800 // signed in a version 1 trun
)

// tfhdDefaultBaseIsMoof makes data offsets relative to the moof.
const tfhdDefaultBaseIsMoof = 0x020000

// Box header and fixed box sizes of a fragment's moof.
const (
	boxHeaderSize = 8
	mfhdSize      = boxHeaderSize + 4 + 4 // version+flags, sequence number
	tfhdSize      = boxHeaderSize + 4 + 4 // version+flags, track ID
	tfdtSize      = boxHeaderSize + 4 + 8 // version+flags, 64-bit decode time
	trunFixedSize = boxHeaderSize + 4 + 4 + 4
)

// fragmentSample is one sample of a fragment: its trun entry and the NALUs that make its
// AVCC payload. The NALUs are the unit's own (units are immutable once written to the
// stream), so building a fragment copies no media.
type fragmentSample struct {
	duration  uint32
	ptsOffset int32
	nonSync   bool
	size      int64 // AVCC bytes: a 4-byte length before each NALU
	nalus     [][]byte
}

// fragment is one moof+mdat of a segment, assembled from references to the units'
// NALUs and written out as a stream: only the moof is ever built in memory. It writes
// the same bytes as mediacommon's fmp4.Part.Marshal for one track, without go-mp4's
// reflection and without copying the samples into an mdat buffer. Reused across
// fragments; not safe for concurrent use.
type fragment struct {
	seq      uint32 // mfhd sequence number
	baseTime uint64 // tfdt decode time
	samples  []fragmentSample

	header   []byte // moof and mdat header, built by marshalHeader
	dataSize int64  // mdat payload bytes
	prefix   [4]byte
}

// add appends u as a sample lasting ticks.
func (f *fragment) add(u *streaming.Unit, ticks int64) {
	var size int64
	for _, n := range u.NALUs {
		size += 4 + int64(len(n))
	}
	f.samples = append(f.samples, fragmentSample{
		duration:  uint32(ticks),
		ptsOffset: int32(u.PTS - u.DTS),
		nonSync:   !u.Key,
		size:      size,
		nalus:     u.NALUs,
	})
	f.dataSize += size
}

// reset empties f, dropping its references to NALUs so that the GC can free them once
// the stream lets go of them too.
func (f *fragment) reset() {
	clear(f.samples)
	f.samples, f.header, f.dataSize = f.samples[:0], f.header[:0], 0
}

// size is the bytes writeTo writes; valid after marshalHeader.
func (f *fragment) size() int64 { return int64(len(f.header)) + f.dataSize }

// marshalHeader builds the moof (mfhd; traf: tfhd, tfdt, trun) and the mdat header.
func (f *fragment) marshalHeader() error {
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
	trafSize := boxHeaderSize + tfhdSize + tfdtSize + trunSize
	moofSize := boxHeaderSize + mfhdSize + trafSize
	mdatSize := boxHeaderSize + f.dataSize
	if mdatSize > math.MaxUint32 || moofSize > math.MaxInt32 {
		return fmt.Errorf("fragment of %d samples, %d bytes: too large for 32-bit boxes", len(f.samples), mdatSize)
	}

	be := binary.BigEndian
	b := f.header[:0]
	b = appendBoxHeader(b, moofSize, "moof")
	b = appendBoxHeader(b, mfhdSize, "mfhd")
	b = be.AppendUint32(b, 0)
	b = be.AppendUint32(b, f.seq)
	b = appendBoxHeader(b, trafSize, "traf")
	b = appendBoxHeader(b, tfhdSize, "tfhd")
	b = be.AppendUint32(b, tfhdDefaultBaseIsMoof)
	b = be.AppendUint32(b, trackID)
	b = appendBoxHeader(b, tfdtSize, "tfdt")
	b = be.AppendUint32(b, 1<<24) // version 1: 64-bit time
	b = be.AppendUint64(b, f.baseTime)
	b = appendBoxHeader(b, trunSize, "trun")
	b = be.AppendUint32(b, 1<<24|flags)
	b = be.AppendUint32(b, uint32(len(f.samples)))
	b = be.AppendUint32(b, uint32(moofSize+boxHeaderSize)) // data starts past the mdat header
	for _, s := range f.samples {
		b = be.AppendUint32(b, s.duration)
		b = be.AppendUint32(b, uint32(s.size))
		if flags&trunSampleFlags != 0 {
			var sf uint32
			if s.nonSync {
				sf = sampleFlagNonSync
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

// sampleFlagNonSync is sample_is_non_sync_sample in trun sample flags.
const sampleFlagNonSync = 1 << 16

func appendBoxHeader(b []byte, size int, typ string) []byte {
	return append(binary.BigEndian.AppendUint32(b, uint32(size)), typ...)
}

// writeTo writes the fragment built by marshalHeader: moof, mdat header, then each
// sample's NALUs with their lengths. w should be buffered; NALUs go to it uncopied.
func (f *fragment) writeTo(w io.Writer) (int64, error) {
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

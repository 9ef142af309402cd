package storage

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/straja-nvr/straja/internal/mp4"
)

// SegmentIndex describes a fragmented-MP4 segment: what playback, export and crash
// recovery need without reading the media again.
type SegmentIndex struct {
	Size      int64    // bytes read, including any torn tail
	SHA256    [32]byte // of all Size bytes
	InitSize  int64    // bytes up to the end of moov (ftyp+moov)
	Fragments []Fragment
	// Complete is the length up to the end of the last complete moof+mdat pair (or
	// InitSize if there is none): truncating a crashed file there leaves a valid one.
	Complete int64
	Duration time.Duration // end of the last complete fragment
	// Init is the bytes up to the end of moov, and Samples the sample table of the
	// complete fragments' video samples (nil if they cannot be described: see
	// SampleTableWriter); what the catalog keeps so that playback reads no moof.
	Init    []byte
	Samples []byte
}

// Fragment is one moof+mdat pair of a segment.
type Fragment struct {
	Offset   int64         // of the moof box
	Size     int64         // moof+mdat
	Start    time.Duration // decode time from the first fragment's
	Duration time.Duration
	Key      bool // first sample is a sync sample
}

// Limits keep hostile input from exhausting memory: moov and moof are read whole.
const (
	maxHeaderBoxSize = 16 << 20
	maxSegmentSpan   = 24 * time.Hour // beyond this, timestamps are garbage
)

// errTorn marks input that ends inside a box or with bytes that are not a box.
var errTorn = errors.New("torn box")

// ScanSegment reads a fragmented MP4 (ftyp, moov, then moof+mdat pairs) to its end
// and indexes it. Fragment times come from tfdt and the moov timescale of the first
// video track (or the first track). A trailing fragment that is cut short, or
// trailing bytes that do not form a box, are not an error: they are left out of
// Fragments and Complete says where the valid part ends. Other top-level boxes (free,
// sidx, mfra, ...) are skipped.
//
// On error, the returned index still describes the complete fragments before the
// problem (InitSize, Fragments, Complete, Duration; all zero if the init is bad), so
// crash recovery can keep them; its Size and SHA256 are then zero.
func ScanSegment(r io.Reader) (SegmentIndex, error) {
	sc := &scanner{h: sha256.New(), inInit: true}
	sc.table.Reset()
	sc.r = io.TeeReader(r, sc)
	idx, err := sc.scan()
	if err != nil {
		return idx, err
	}
	// Drain the tail so Size and SHA256 cover the whole input.
	n, err := io.Copy(io.Discard, sc.r)
	if err != nil {
		return idx, fmt.Errorf("scan segment: %w", err)
	}
	idx.Size = sc.off + n
	copy(idx.SHA256[:], sc.h.Sum(nil))
	return idx, nil
}

type scanner struct {
	r   io.Reader
	h   hash.Hash
	off int64 // bytes consumed

	init    []byte // the bytes read while looking for moov, up to maxInitSize
	inInit  bool
	table   SampleTableWriter
	samples []mp4.Sample // of the last fragment parsed

	timescale uint32            // of the reference track
	trex      mp4.TrackDefaults // the reference track's ID and defaults
	base      uint64            // first fragment's decode time
	started   bool              // base is set
}

// maxInitSize bounds the init section the index keeps: larger ones are not ours.
const maxInitSize = 1 << 20

// Write hashes what is read and keeps the init section's bytes.
func (sc *scanner) Write(p []byte) (int, error) {
	sc.h.Write(p)
	if sc.inInit {
		if len(sc.init)+len(p) > maxInitSize {
			sc.init, sc.inInit = nil, false
		} else {
			sc.init = append(sc.init, p...)
		}
	}
	return len(p), nil
}

// tables fills idx's Init and Samples from what the scan kept.
func (sc *scanner) tables(idx *SegmentIndex) {
	if idx.InitSize > 0 && int64(len(sc.init)) >= idx.InitSize {
		idx.Init = sc.init[:idx.InitSize:idx.InitSize]
	}
	if len(idx.Fragments) > 0 {
		idx.Samples = sc.table.Table()
	}
}

// addSamples adds fragment f's video samples to the sample table, which is dropped
// when they do not lie back to back.
func (sc *scanner) addSamples(f Fragment) {
	sc.table.Fragment(int64(sc.samples[0].Offset) - f.Offset)
	next := sc.samples[0].Offset
	for _, s := range sc.samples {
		if s.Offset != next {
			sc.table.Invalidate()
		}
		next = s.Offset + uint64(s.Size)
		sc.table.Add(s.Size, s.Duration, s.PTSOffset, s.Sync())
	}
}

type boxHeader struct {
	typ        string
	off, size  int64 // size includes the header
	headerSize int64
	raw        [16]byte
}

// header reads a box header. io.EOF means a clean end between boxes; errTorn means
// the input ends inside the header or the header is not valid.
func (sc *scanner) header() (boxHeader, error) {
	h := boxHeader{off: sc.off, headerSize: 8}
	b := h.raw[:]
	n, err := io.ReadFull(sc.r, b[:8])
	sc.off += int64(n)
	if err == io.EOF {
		return h, io.EOF
	}
	if err != nil {
		return h, sc.readErr(err)
	}
	size := uint64(binary.BigEndian.Uint32(b[:4]))
	h.typ = string(b[4:8])
	if size == 1 {
		n, err := io.ReadFull(sc.r, b[8:16])
		sc.off += int64(n)
		if err != nil {
			return h, sc.readErr(err)
		}
		size, h.headerSize = binary.BigEndian.Uint64(b[8:16]), 16
	}
	// size 0 ("to end of file") is never written by our muxers; zeros are what a
	// crash leaves behind.
	if size < uint64(h.headerSize) || size > 1<<62 {
		return h, errTorn
	}
	h.size = int64(size)
	return h, nil
}

// body reads the rest of box h into memory, header included.
func (sc *scanner) body(h boxHeader) ([]byte, error) {
	if h.size > maxHeaderBoxSize {
		return nil, fmt.Errorf("%s box at %d: %d bytes is too large", h.typ, h.off, h.size)
	}
	buf := make([]byte, h.size)
	copy(buf, h.raw[:h.headerSize])
	n, err := io.ReadFull(sc.r, buf[h.headerSize:])
	sc.off += int64(n)
	if err != nil {
		return nil, sc.readErr(err)
	}
	return buf, nil
}

// skip discards the rest of box h.
func (sc *scanner) skip(h boxHeader) error {
	n, err := io.CopyN(io.Discard, sc.r, h.size-h.headerSize)
	sc.off += n
	if err != nil {
		return sc.readErr(err)
	}
	return nil
}

func (sc *scanner) readErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errTorn
	}
	return err
}

func (sc *scanner) scan() (SegmentIndex, error) {
	var idx SegmentIndex
	// Init: everything up to and including moov.
	for idx.InitSize == 0 {
		h, err := sc.header()
		if err == nil && h.typ == "moof" {
			err = fmt.Errorf("moof at %d before moov", h.off)
		}
		if err == nil && h.typ == "moov" {
			var moov []byte
			if moov, err = sc.body(h); err == nil {
				err = sc.parseMoov(moov[h.headerSize:])
				idx.InitSize = sc.off
			}
		} else if err == nil {
			err = sc.skip(h)
		}
		switch {
		case err == io.EOF || errors.Is(err, errTorn):
			return SegmentIndex{}, fmt.Errorf("scan segment: no complete moov in the first %d bytes", sc.off)
		case err != nil:
			return SegmentIndex{}, fmt.Errorf("scan segment: %w", err)
		}
	}
	idx.Complete = idx.InitSize
	sc.inInit = false
	for {
		f, err := sc.fragment()
		switch {
		case err == io.EOF || errors.Is(err, errTorn):
			sc.tables(&idx)
			return idx, nil
		case err != nil:
			sc.tables(&idx)
			return idx, fmt.Errorf("scan segment: %w", err)
		}
		if f.Size == 0 { // a box other than moof, skipped
			continue
		}
		sc.addSamples(f)
		idx.Fragments = append(idx.Fragments, f)
		idx.Complete = sc.off
		idx.Duration = f.Start + f.Duration
	}
}

// fragment reads the next top-level box and, if it is a moof, the mdat after it.
// A zero Fragment means another box was skipped.
func (sc *scanner) fragment() (Fragment, error) {
	h, err := sc.header()
	if err != nil {
		return Fragment{}, err
	}
	if h.typ != "moof" {
		if h.typ == "mdat" || h.typ == "moov" {
			return Fragment{}, fmt.Errorf("unexpected %s at %d", h.typ, h.off)
		}
		return Fragment{}, sc.skip(h)
	}
	moof, err := sc.body(h)
	if err != nil {
		return Fragment{}, err
	}
	m, err := sc.header()
	if err == io.EOF {
		return Fragment{}, errTorn
	}
	if err != nil {
		return Fragment{}, err
	}
	if m.typ != "mdat" {
		return Fragment{}, fmt.Errorf("moof at %d is followed by %s, not mdat", h.off, m.typ)
	}
	if err := sc.skip(m); err != nil {
		return Fragment{}, err
	}
	f := Fragment{Offset: h.off, Size: h.size + m.size}
	if err := sc.parseMoof(moof, h.headerSize, &f, m.off+m.headerSize, m.off+m.size); err != nil {
		return Fragment{}, fmt.Errorf("moof at %d: %w", h.off, err)
	}
	return f, nil
}

// parseMoov finds, in a moov's body, the reference track, its timescale and its trex
// defaults.
func (sc *scanner) parseMoov(moov []byte) error {
	m, err := mp4.ParseMoov(moov)
	if err != nil {
		return err
	}
	if len(m.Tracks) == 0 {
		return errors.New("moov has no track")
	}
	if len(m.Defaults) == 0 {
		return errors.New("moov has no mvex: not a fragmented MP4")
	}
	ref := m.Tracks[0]
	for i := len(m.Tracks) - 1; i >= 0; i-- {
		if m.Tracks[i].Handler == "vide" {
			ref = m.Tracks[i]
		}
	}
	if ref.TimeScale == 0 {
		return fmt.Errorf("track %d has no timescale", ref.ID)
	}
	sc.timescale, sc.trex = ref.TimeScale, m.TrackDefaults(ref.ID)
	return nil
}

// parseMoof fills f's times and key flag from the reference track's traf, and checks
// that the track's sample data lies inside the mdat payload [dataStart, dataEnd).
func (sc *scanner) parseMoof(moof []byte, headerSize int64, f *Fragment, dataStart, dataEnd int64) error {
	trafs, err := mp4.ParseMoof(moof[headerSize:], uint64(f.Offset), sc.trex)
	switch {
	case err != nil:
		return err
	case len(trafs) == 0:
		return fmt.Errorf("no samples of track %d", sc.trex.TrackID)
	case len(trafs) > 1:
		return fmt.Errorf("two trafs for track %d", sc.trex.TrackID)
	}
	tf := trafs[0]
	switch {
	case len(tf.Samples) == 0:
		return fmt.Errorf("no samples of track %d", sc.trex.TrackID)
	case !tf.HasDecodeTime:
		return fmt.Errorf("no tfdt for track %d", sc.trex.TrackID)
	}
	var ticks uint64
	for _, s := range tf.Samples {
		if s.Offset < uint64(dataStart) || s.Offset > uint64(dataEnd) || uint64(s.Size) > uint64(dataEnd)-s.Offset {
			return fmt.Errorf("sample data of track %d at %d+%d lies outside mdat data [%d, %d)",
				sc.trex.TrackID, s.Offset, s.Size, dataStart, dataEnd)
		}
		ticks += uint64(s.Duration)
	}
	f.Key = tf.Samples[0].Sync()
	sc.samples = tf.Samples
	decode := tf.DecodeTime
	if !sc.started {
		sc.base, sc.started = decode, true
	}
	if decode < sc.base {
		return fmt.Errorf("decode time %d goes back before the first fragment's %d", decode, sc.base)
	}
	ts := uint64(sc.timescale)
	if (decode-sc.base)/ts > uint64(maxSegmentSpan/time.Second) || ticks/ts > uint64(maxSegmentSpan/time.Second) {
		return fmt.Errorf("fragment times beyond %v from the segment start", maxSegmentSpan)
	}
	f.Start = sc.duration(decode - sc.base)
	f.Duration = sc.duration(ticks)
	return nil
}

// duration converts ticks of the reference timescale without overflowing early.
func (sc *scanner) duration(ticks uint64) time.Duration {
	ts := uint64(sc.timescale)
	return time.Duration(ticks/ts)*time.Second + time.Duration(ticks%ts*uint64(time.Second)/ts)
}

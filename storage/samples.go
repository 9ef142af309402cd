package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// A sample table is a segment's video samples, fragment by fragment, in the compact
// form the catalog keeps beside the segment's row, so that playback builds a movie's
// sample tables without reading any moof from the store. Layout (varints as in
// encoding/binary):
//
//	byte      format (sampleTableFormat)
//	uvarint   fragments F, then F × (uvarint data offset from the moof's start, uvarint samples)
//	uvarint   size of every sample, in order
//	runs      durations: (uvarint count, uvarint ticks) until every sample is covered
//	runs      composition offsets: (uvarint count, varint ticks) likewise
//	runs      sync flags: alternating counts, sync first (the first may be 0)
//
// A fragment's samples lie back to back from its data offset, as the recorder writes
// them. A sample takes about 2–3 bytes (its size, mostly).
const sampleTableFormat = 1

// MaxSegmentSamples bounds the samples one sample table may describe (an hour-long
// segment at 60 fps has 216,000), so that a corrupt or hostile catalog row cannot
// drive a large allocation.
const MaxSegmentSamples = 1 << 20

// Sample is one video sample of a segment, from its sample table.
type Sample struct {
	Offset    int64 // of its data in the segment object
	Size      uint32
	Duration  uint32 // ticks of the track's timescale
	PTSOffset int32  // composition time minus decode time
	Sync      bool
}

// SampleTableWriter builds a sample table as fragments are written. Its buffers are
// kept across Reset, so recording allocates only the finished table. The zero value
// is ready; not safe for concurrent use.
type SampleTableWriter struct {
	frags []tableFragment
	sizes []byte
	durs  []byte
	ctos  []byte
	syncs []byte
	out   []byte // the table is assembled here, then copied out
	n     int    // samples added
	bad   bool

	dur     uint32 // the open duration run
	durRun  int
	cto     int32
	ctoRun  int
	sync    bool // the open sync run (starts true: the first count is of sync samples)
	syncRun int
}

type tableFragment struct {
	dataOffset int64
	samples    int
}

// Reset empties w for the next segment.
func (w *SampleTableWriter) Reset() {
	*w = SampleTableWriter{frags: w.frags[:0], sizes: w.sizes[:0], durs: w.durs[:0], ctos: w.ctos[:0],
		syncs: w.syncs[:0], out: w.out[:0], sync: true}
}

// Fragment starts the next fragment, whose first sample's data is dataOffset bytes
// after the start of its moof.
func (w *SampleTableWriter) Fragment(dataOffset int64) {
	if dataOffset < 0 {
		w.bad = true
	}
	w.frags = append(w.frags, tableFragment{dataOffset: dataOffset})
}

// Invalidate marks the segment as one the table cannot describe: Table returns nil.
func (w *SampleTableWriter) Invalidate() { w.bad = true }

// Add appends a sample to the current fragment, right after the previous one's data.
func (w *SampleTableWriter) Add(size, duration uint32, ptsOffset int32, sync bool) {
	if len(w.frags) == 0 || w.n >= MaxSegmentSamples {
		w.bad = true
		return
	}
	if w.n == 0 {
		w.sync = true
	}
	w.frags[len(w.frags)-1].samples++
	w.n++
	w.sizes = binary.AppendUvarint(w.sizes, uint64(size))
	if w.durRun > 0 && duration != w.dur {
		w.durs = binary.AppendUvarint(binary.AppendUvarint(w.durs, uint64(w.durRun)), uint64(w.dur))
		w.durRun = 0
	}
	w.dur = duration
	w.durRun++
	if w.ctoRun > 0 && ptsOffset != w.cto {
		w.ctos = binary.AppendVarint(binary.AppendUvarint(w.ctos, uint64(w.ctoRun)), int64(w.cto))
		w.ctoRun = 0
	}
	w.cto = ptsOffset
	w.ctoRun++
	if sync != w.sync {
		w.syncs = binary.AppendUvarint(w.syncs, uint64(w.syncRun))
		w.sync, w.syncRun = sync, 0
	}
	w.syncRun++
}

// Table returns the finished table in a new slice of its exact size, or nil when
// there is nothing to describe or the samples cannot be described (too many, a
// fragment without samples, samples not back to back).
func (w *SampleTableWriter) Table() []byte {
	if w.bad || w.n == 0 {
		return nil
	}
	b := append(w.out[:0], sampleTableFormat)
	b = binary.AppendUvarint(b, uint64(len(w.frags)))
	for _, f := range w.frags {
		if f.samples == 0 {
			return nil
		}
		b = binary.AppendUvarint(binary.AppendUvarint(b, uint64(f.dataOffset)), uint64(f.samples))
	}
	b = append(b, w.sizes...)
	b = append(b, w.durs...)
	b = binary.AppendUvarint(binary.AppendUvarint(b, uint64(w.durRun)), uint64(w.dur))
	b = append(b, w.ctos...)
	b = binary.AppendVarint(binary.AppendUvarint(b, uint64(w.ctoRun)), int64(w.cto))
	b = append(b, w.syncs...)
	b = binary.AppendUvarint(b, uint64(w.syncRun))
	w.out = b
	return bytes.Clone(b)
}

// ErrSampleTable is returned (wrapped) for a sample table that does not describe its
// segment's fragments.
var ErrSampleTable = errors.New("bad sample table")

// DecodeSamples decodes the sample table of a segment whose fragments are frags,
// calling fn with each sample in order and the index of its fragment, so that the
// caller fills its own tables without an array in between. It checks the whole table
// first and calls fn only for a valid one: the samples lie inside their fragments, and
// the table matches frags and describes at most MaxSegmentSamples samples. Otherwise
// the error matches ErrSampleTable. It returns the number of samples.
func DecodeSamples(table []byte, frags []Fragment, fn func(frag int, s Sample)) (int, error) {
	total, c, err := checkSamples(table, frags)
	if err != nil || fn == nil {
		return total, err
	}
	hdr := tableDecoder{b: c.header}
	sizes, durs, ctos, syncs := tableDecoder{b: c.sizes}, tableDecoder{b: c.durs}, tableDecoder{b: c.ctos}, tableDecoder{b: c.syncs}
	var durLeft, ctoLeft, syncLeft uint64
	var dur uint32
	var cto int32
	sync := false // flipped before the first run
	for i, f := range frags {
		pos := f.Offset + int64(hdr.uvarint())
		for range hdr.uvarint() {
			for durLeft == 0 {
				durLeft, dur = durs.uvarint(), uint32(durs.uvarint())
			}
			for ctoLeft == 0 {
				ctoLeft, cto = ctos.uvarint(), int32(ctos.varint())
			}
			for syncLeft == 0 {
				syncLeft, sync = syncs.uvarint(), !sync
			}
			size := uint32(sizes.uvarint())
			fn(i, Sample{Offset: pos, Size: size, Duration: dur, PTSOffset: cto, Sync: sync})
			pos += int64(size)
			durLeft, ctoLeft, syncLeft = durLeft-1, ctoLeft-1, syncLeft-1
		}
	}
	return total, nil
}

// tableColumns are the parts of a sample table, after its format byte.
type tableColumns struct {
	header, sizes, durs, ctos, syncs []byte
}

// checkSamples validates a whole sample table against frags and splits it into its
// columns.
func checkSamples(table []byte, frags []Fragment) (int, tableColumns, error) {
	var c tableColumns
	d := tableDecoder{b: table}
	if v := d.byte(); v != sampleTableFormat {
		return 0, c, fmt.Errorf("%w: format %d", ErrSampleTable, v)
	}
	if nf := d.uvarint(); nf != uint64(len(frags)) || nf == 0 {
		return 0, c, fmt.Errorf("%w: %d fragments, the segment has %d", ErrSampleTable, nf, len(frags))
	}
	c.header = d.b
	total := 0
	for i, f := range frags {
		if f.Offset < 0 || f.Size < 0 || f.Offset > math.MaxInt64-f.Size {
			return 0, c, fmt.Errorf("%w: fragment %d at %d of %d bytes", ErrSampleTable, i, f.Offset, f.Size)
		}
		off, n := d.uvarint(), d.uvarint()
		if d.err != nil {
			return 0, c, d.err
		}
		if n == 0 || n > uint64(MaxSegmentSamples-total) {
			return 0, c, fmt.Errorf("%w: fragment %d claims %d samples", ErrSampleTable, i, n)
		}
		if off > uint64(f.Size) {
			return 0, c, fmt.Errorf("%w: fragment %d: data offset %d past its %d bytes", ErrSampleTable, i, off, f.Size)
		}
		total += int(n)
	}
	c.header = c.header[:len(c.header)-len(d.b)]
	// Sizes, fragment by fragment: each sample inside its fragment.
	c.sizes = d.b
	hdr := tableDecoder{b: c.header}
	for i, f := range frags {
		left := f.Size - int64(hdr.uvarint())
		for j := range hdr.uvarint() {
			size := d.uvarint()
			if d.err != nil {
				return 0, c, d.err
			}
			if size > uint64(left) {
				return 0, c, fmt.Errorf("%w: fragment %d: sample %d of %d bytes lies outside the fragment", ErrSampleTable, i, j, size)
			}
			left -= int64(size)
		}
	}
	c.sizes = c.sizes[:len(c.sizes)-len(d.b)]
	c.durs = d.b
	for at := 0; at < total; {
		n, v := d.uvarint(), d.uvarint()
		if err := d.run(n, total-at, v > math.MaxUint32, "duration"); err != nil {
			return 0, c, err
		}
		at += int(n)
	}
	c.durs = c.durs[:len(c.durs)-len(d.b)]
	c.ctos = d.b
	for at := 0; at < total; {
		n, v := d.uvarint(), d.varint()
		if err := d.run(n, total-at, v > math.MaxInt32 || v < math.MinInt32, "composition offset"); err != nil {
			return 0, c, err
		}
		at += int(n)
	}
	c.ctos = c.ctos[:len(c.ctos)-len(d.b)]
	c.syncs = d.b
	for at, first := 0, true; at < total; first = false {
		n := d.uvarint()
		if d.err != nil {
			return 0, c, d.err
		}
		// Only the first run (of sync samples) may be empty.
		if n > uint64(total-at) || n == 0 && !first {
			return 0, c, fmt.Errorf("%w: sync run of %d with %d samples left", ErrSampleTable, n, total-at)
		}
		at += int(n)
	}
	if len(d.b) > 0 {
		return 0, c, fmt.Errorf("%w: %d bytes after the last run", ErrSampleTable, len(d.b))
	}
	return total, c, nil
}

// tableDecoder reads varints, keeping the first error.
type tableDecoder struct {
	b   []byte
	err error
}

func (d *tableDecoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *tableDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *tableDecoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *tableDecoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: cut short or a malformed number", ErrSampleTable)
	}
	d.b = nil
}

// run checks a run of n samples with left samples still to cover.
func (d *tableDecoder) run(n uint64, left int, badValue bool, what string) error {
	switch {
	case d.err != nil:
		return d.err
	case n == 0 || n > uint64(left):
		return fmt.Errorf("%w: %s run of %d with %d samples left", ErrSampleTable, what, n, left)
	case badValue:
		return fmt.Errorf("%w: %s out of range", ErrSampleTable, what)
	}
	return nil
}

package mp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// This file reads the video track of an MP4 file into samples. mediacommon's
// fmp4.Init reads the codec parameters from any file, but its pmp4 reader
// rejects every box it did not write itself (pasp, udta, btrt…) and its
// fmp4.Parts reader drops the composition offsets of version-0 trun boxes
// (what ffmpeg writes), so sample tables and fragments are read here.

// maxSamples bounds allocations driven by counts in the file (1 hour at 60 fps).
const maxSamples = 60 * 60 * 60

// FileSample is one access unit in decode order, as stored in the file.
type FileSample struct {
	Duration  uint32
	PTSOffset int32
	Payload   []byte // length-prefixed NALUs
}

// VideoTrack is the video track of a file.
type VideoTrack struct {
	TimeScale  uint32
	Codec      fmp4.Codec // *fmp4.CodecH264 or *fmp4.CodecH265
	LengthSize int        // bytes of each NALU length prefix
	Samples    []FileSample
}

// ReadVideoTrack reads the first H.264 or H.265 track of a progressive or
// fragmented MP4 file held in data; sample payloads point into data.
func ReadVideoTrack(data []byte) (*VideoTrack, error) {
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("read moov: %w", err)
	}
	var it *fmp4.InitTrack
	for _, t := range init.Tracks {
		switch t.Codec.(type) {
		case *fmp4.CodecH264, *fmp4.CodecH265:
			if it == nil {
				it = t
			}
		}
	}
	if it == nil {
		return nil, errors.New("no H.264 or H.265 track")
	}
	if it.TimeScale == 0 {
		return nil, errors.New("track time scale is zero")
	}

	top, err := ReadBoxes(data)
	if err != nil {
		return nil, err
	}
	var moov []byte
	fragmented := false
	for _, b := range top {
		switch b.Type {
		case "moov":
			moov = b.Body
		case "moof":
			fragmented = true
		}
	}
	if moov == nil {
		return nil, errors.New("no moov box")
	}
	trak, err := FindTrak(moov, uint32(it.ID))
	if err != nil {
		return nil, err
	}
	stbl, ok := Path(trak, "mdia", "minf", "stbl")
	if !ok {
		return nil, errors.New("track has no stbl")
	}
	ls, err := lengthSize(stbl)
	if err != nil {
		return nil, err
	}
	t := &VideoTrack{TimeScale: it.TimeScale, Codec: it.Codec, LengthSize: ls}

	if fragmented {
		t.Samples, err = readFragments(data, top, moov, uint32(it.ID))
		if err != nil {
			return nil, err
		}
	} else if t.Samples, err = readSampleTables(stbl, data); err != nil {
		return nil, err
	}
	if len(t.Samples) == 0 {
		return nil, errors.New("video track has no samples")
	}
	return t, nil
}

// lengthSize reads the NALU length size from the avcC or hvcC record.
func lengthSize(stbl []byte) (int, error) {
	stsd, ok := Child(stbl, "stsd")
	if !ok || len(stsd) < 8 {
		return 0, errors.New("track has no stsd")
	}
	entries, err := ReadBoxes(stsd[8:])
	if err != nil || len(entries) == 0 {
		return 0, errors.New("stsd has no sample entry")
	}
	const visualEntry = 78 // fields of a VisualSampleEntry before its child boxes
	e := entries[0].Body
	if len(e) < visualEntry {
		return 0, fmt.Errorf("sample entry %q: %w", entries[0].Type, ErrTruncated)
	}
	var n int
	if rec, ok := Child(e[visualEntry:], "avcC"); ok && len(rec) >= 5 {
		n = int(rec[4]&3) + 1
	} else if rec, ok := Child(e[visualEntry:], "hvcC"); ok && len(rec) >= 22 {
		n = int(rec[21]&3) + 1
	} else {
		return 0, fmt.Errorf("sample entry %q has no avcC or hvcC", entries[0].Type)
	}
	if n == 3 {
		return 0, errors.New("NALU length size 3 is invalid")
	}
	return n, nil
}

// fullBox checks a full box's header and an entry table of count*entry bytes
// after it (plus extra fixed bytes), returning the count and the table.
func fullBox(name string, b []byte, extra, entry int) (int, []byte, error) {
	if len(b) < 8+extra {
		return 0, nil, fmt.Errorf("%s: %w", name, ErrTruncated)
	}
	n := binary.BigEndian.Uint32(b[4+extra:])
	if n > maxSamples || int(n)*entry > len(b)-8-extra {
		return 0, nil, fmt.Errorf("%s: %d entries: %w", name, n, ErrTruncated)
	}
	return int(n), b[8+extra:], nil
}

// readSampleTables resolves stts, ctts, stsz, stsc and stco/co64 into samples
// whose payloads point into data.
func readSampleTables(stbl, data []byte) ([]FileSample, error) {
	stts, ok := Child(stbl, "stts")
	if !ok {
		return nil, errors.New("track has no stts")
	}
	n, tab, err := fullBox("stts", stts, 0, 8)
	if err != nil {
		return nil, err
	}
	var samples []FileSample
	for i := range n {
		count := binary.BigEndian.Uint32(tab[i*8:])
		delta := binary.BigEndian.Uint32(tab[i*8+4:])
		if uint64(len(samples))+uint64(count) > maxSamples {
			return nil, fmt.Errorf("stts: more than %d samples", maxSamples)
		}
		for range count {
			samples = append(samples, FileSample{Duration: delta})
		}
	}

	if ctts, ok := Child(stbl, "ctts"); ok {
		n, tab, err := fullBox("ctts", ctts, 0, 8)
		if err != nil {
			return nil, err
		}
		j := 0
		for i := range n {
			count := int(binary.BigEndian.Uint32(tab[i*8:]))
			// Version 0 offsets are unsigned but never near 2^31 in practice.
			off := int32(binary.BigEndian.Uint32(tab[i*8+4:]))
			if count < 0 || count > len(samples)-j {
				return nil, errors.New("ctts: more entries than samples")
			}
			for range count {
				samples[j].PTSOffset = off
				j++
			}
		}
	}

	stsz, ok := Child(stbl, "stsz")
	if !ok {
		return nil, errors.New("track has no stsz (stz2 is not supported)")
	}
	if len(stsz) < 12 {
		return nil, fmt.Errorf("stsz: %w", ErrTruncated)
	}
	fixed := binary.BigEndian.Uint32(stsz[4:])
	if int(binary.BigEndian.Uint32(stsz[8:])) != len(samples) {
		return nil, fmt.Errorf("stsz has %d samples, stts %d", binary.BigEndian.Uint32(stsz[8:]), len(samples))
	}
	if fixed == 0 && len(stsz)-12 < 4*len(samples) {
		return nil, fmt.Errorf("stsz: %w", ErrTruncated)
	}
	size := func(i int) uint64 {
		if fixed != 0 {
			return uint64(fixed)
		}
		return uint64(binary.BigEndian.Uint32(stsz[12+4*i:]))
	}

	var chunks []uint64
	if stco, ok := Child(stbl, "stco"); ok {
		n, tab, err := fullBox("stco", stco, 0, 4)
		if err != nil {
			return nil, err
		}
		for i := range n {
			chunks = append(chunks, uint64(binary.BigEndian.Uint32(tab[i*4:])))
		}
	} else if co64, ok := Child(stbl, "co64"); ok {
		n, tab, err := fullBox("co64", co64, 0, 8)
		if err != nil {
			return nil, err
		}
		for i := range n {
			chunks = append(chunks, binary.BigEndian.Uint64(tab[i*8:]))
		}
	} else {
		return nil, errors.New("track has no stco or co64")
	}

	stsc, ok := Child(stbl, "stsc")
	if !ok {
		return nil, errors.New("track has no stsc")
	}
	nsc, sc, err := fullBox("stsc", stsc, 0, 12)
	if err != nil {
		return nil, err
	}
	s := 0
	for e := 0; e < nsc && s < len(samples); e++ {
		first := uint64(binary.BigEndian.Uint32(sc[e*12:]))
		perChunk := int(binary.BigEndian.Uint32(sc[e*12+4:]))
		last := uint64(len(chunks)) // 1-based, inclusive
		if e+1 < nsc {
			last = uint64(binary.BigEndian.Uint32(sc[(e+1)*12:])) - 1
		}
		if first == 0 || last > uint64(len(chunks)) {
			return nil, errors.New("stsc refers to missing chunks")
		}
		for c := first; c <= last && s < len(samples); c++ {
			off := chunks[c-1]
			for k := 0; k < perChunk && s < len(samples); k++ {
				sz := size(s)
				if off+sz > uint64(len(data)) {
					return nil, fmt.Errorf("sample %d lies outside the file", s)
				}
				samples[s].Payload = data[off : off+sz]
				off += sz
				s++
			}
		}
	}
	if s != len(samples) {
		return nil, fmt.Errorf("stsc places %d of %d samples", s, len(samples))
	}
	return samples, nil
}

// SplitNALUs splits a length-prefixed sample into NALUs, dropping empty ones.
func SplitNALUs(buf []byte, lengthSize int) ([][]byte, error) {
	var nalus [][]byte
	for len(buf) > 0 {
		if len(buf) < lengthSize {
			return nil, errors.New("NALU length: truncated")
		}
		var n uint64
		for _, b := range buf[:lengthSize] {
			n = n<<8 | uint64(b)
		}
		buf = buf[lengthSize:]
		if n > uint64(len(buf)) {
			return nil, fmt.Errorf("NALU of %d bytes exceeds sample", n)
		}
		if n > 0 {
			nalus = append(nalus, buf[:n])
		}
		buf = buf[n:]
	}
	return nalus, nil
}

// readFragments collects the samples of track id from every moof/mdat pair.
// data is the whole file: data offsets in moof are relative to it.
func readFragments(data []byte, top []Box, moov []byte, id uint32) ([]FileSample, error) {
	movie, err := ParseMoov(moov)
	if err != nil {
		return nil, err
	}
	def := movie.TrackDefaults(id)
	var samples []FileSample
	for _, moof := range top {
		if moof.Type != "moof" {
			continue
		}
		trafs, err := ParseMoof(moof.Body, uint64(moof.Offset), def)
		if err != nil {
			return nil, fmt.Errorf("moof at %d: %w", moof.Offset, err)
		}
		for _, tf := range trafs {
			for _, s := range tf.Samples {
				if s.Offset > uint64(len(data)) || uint64(s.Size) > uint64(len(data))-s.Offset {
					return nil, fmt.Errorf("moof at %d: trun sample lies outside the file", moof.Offset)
				}
				samples = append(samples, FileSample{Duration: s.Duration, PTSOffset: s.PTSOffset,
					Payload: data[s.Offset : s.Offset+uint64(s.Size)]})
			}
			if len(samples) > maxSamples {
				return nil, fmt.Errorf("more than %d samples", maxSamples)
			}
		}
	}
	return samples, nil
}

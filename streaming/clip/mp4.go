package clip

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

var errTruncated = errors.New("truncated box")

// mp4Sample is one access unit in decode order, as stored in the file.
type mp4Sample struct {
	duration  uint32
	ptsOffset int32
	payload   []byte // length-prefixed NALUs
}

// mp4Track is the video track of a file.
type mp4Track struct {
	timeScale  uint32
	codec      fmp4.Codec // *fmp4.CodecH264 or *fmp4.CodecH265
	lengthSize int        // bytes of each NALU length prefix
	samples    []mp4Sample
}

// mp4Box is one box: its type, its body (without the header) and where
// the box starts in the buffer it was read from.
type mp4Box struct {
	typ  string
	body []byte
	off  int
}

// readBoxes splits buf into consecutive boxes.
func readBoxes(buf []byte) ([]mp4Box, error) {
	var boxes []mp4Box
	for off := 0; off < len(buf); {
		if len(buf)-off < 8 {
			return nil, fmt.Errorf("box at %d: %w", off, errTruncated)
		}
		size := uint64(binary.BigEndian.Uint32(buf[off:]))
		typ := string(buf[off+4 : off+8])
		hdr := uint64(8)
		switch size {
		case 0: // extends to the end of the file
			size = uint64(len(buf) - off)
		case 1:
			if len(buf)-off < 16 {
				return nil, fmt.Errorf("box %q at %d: %w", typ, off, errTruncated)
			}
			size = binary.BigEndian.Uint64(buf[off+8:])
			hdr = 16
		}
		if size < hdr || size > uint64(len(buf)-off) {
			return nil, fmt.Errorf("box %q at %d: size %d: %w", typ, off, size, errTruncated)
		}
		boxes = append(boxes, mp4Box{typ: typ, body: buf[off+int(hdr) : off+int(size)], off: off})
		off += int(size)
	}
	return boxes, nil
}

// child returns the first child box of the given type inside body.
func child(body []byte, typ string) ([]byte, bool) {
	boxes, err := readBoxes(body)
	if err != nil {
		return nil, false
	}
	for _, b := range boxes {
		if b.typ == typ {
			return b.body, true
		}
	}
	return nil, false
}

// path follows a chain of child boxes.
func path(body []byte, types ...string) ([]byte, bool) {
	for _, t := range types {
		var ok bool
		if body, ok = child(body, t); !ok {
			return nil, false
		}
	}
	return body, true
}

// readMP4 reads the first H.264 or H.265 track of a progressive or
// fragmented MP4 file.
func readMP4(data []byte) (*mp4Track, error) {
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

	top, err := readBoxes(data)
	if err != nil {
		return nil, err
	}
	var moov []byte
	fragmented := false
	for _, b := range top {
		switch b.typ {
		case "moov":
			moov = b.body
		case "moof":
			fragmented = true
		}
	}
	if moov == nil {
		return nil, errors.New("no moov box")
	}
	trak, err := findTrak(moov, it.ID)
	if err != nil {
		return nil, err
	}
	stbl, ok := path(trak, "mdia", "minf", "stbl")
	if !ok {
		return nil, errors.New("track has no stbl")
	}
	ls, err := lengthSize(stbl)
	if err != nil {
		return nil, err
	}
	t := &mp4Track{timeScale: it.TimeScale, codec: it.Codec, lengthSize: ls}

	if fragmented {
		t.samples, err = readFragments(data, top, moov, it.ID)
		if err != nil {
			return nil, err
		}
	} else if t.samples, err = readSampleTables(stbl, data); err != nil {
		return nil, err
	}
	if len(t.samples) == 0 {
		return nil, errors.New("video track has no samples")
	}
	return t, nil
}

// findTrak returns the trak box whose tkhd has the given track ID.
func findTrak(moov []byte, id int) ([]byte, error) {
	boxes, err := readBoxes(moov)
	if err != nil {
		return nil, fmt.Errorf("read moov: %w", err)
	}
	for _, b := range boxes {
		if b.typ != "trak" {
			continue
		}
		tkhd, ok := child(b.body, "tkhd")
		if !ok || len(tkhd) < 4 {
			continue
		}
		idOff := 12 // version, flags, creation and modification times
		if tkhd[0] == 1 {
			idOff = 20
		}
		if len(tkhd) >= idOff+4 && int(binary.BigEndian.Uint32(tkhd[idOff:])) == id {
			return b.body, nil
		}
	}
	return nil, fmt.Errorf("track %d not found", id)
}

// lengthSize reads the NALU length size from the avcC or hvcC record.
func lengthSize(stbl []byte) (int, error) {
	stsd, ok := child(stbl, "stsd")
	if !ok || len(stsd) < 8 {
		return 0, errors.New("track has no stsd")
	}
	entries, err := readBoxes(stsd[8:])
	if err != nil || len(entries) == 0 {
		return 0, errors.New("stsd has no sample entry")
	}
	const visualEntry = 78 // fields of a VisualSampleEntry before its child boxes
	e := entries[0].body
	if len(e) < visualEntry {
		return 0, fmt.Errorf("sample entry %q: %w", entries[0].typ, errTruncated)
	}
	var n int
	if rec, ok := child(e[visualEntry:], "avcC"); ok && len(rec) >= 5 {
		n = int(rec[4]&3) + 1
	} else if rec, ok := child(e[visualEntry:], "hvcC"); ok && len(rec) >= 22 {
		n = int(rec[21]&3) + 1
	} else {
		return 0, fmt.Errorf("sample entry %q has no avcC or hvcC", entries[0].typ)
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
		return 0, nil, fmt.Errorf("%s: %w", name, errTruncated)
	}
	n := binary.BigEndian.Uint32(b[4+extra:])
	if n > maxSamples || int(n)*entry > len(b)-8-extra {
		return 0, nil, fmt.Errorf("%s: %d entries: %w", name, n, errTruncated)
	}
	return int(n), b[8+extra:], nil
}

// readSampleTables resolves stts, ctts, stsz, stsc and stco/co64 into samples
// whose payloads point into data.
func readSampleTables(stbl, data []byte) ([]mp4Sample, error) {
	stts, ok := child(stbl, "stts")
	if !ok {
		return nil, errors.New("track has no stts")
	}
	n, tab, err := fullBox("stts", stts, 0, 8)
	if err != nil {
		return nil, err
	}
	var samples []mp4Sample
	for i := range n {
		count := binary.BigEndian.Uint32(tab[i*8:])
		delta := binary.BigEndian.Uint32(tab[i*8+4:])
		if uint64(len(samples))+uint64(count) > maxSamples {
			return nil, fmt.Errorf("stts: more than %d samples", maxSamples)
		}
		for range count {
			samples = append(samples, mp4Sample{duration: delta})
		}
	}

	if ctts, ok := child(stbl, "ctts"); ok {
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
				samples[j].ptsOffset = off
				j++
			}
		}
	}

	stsz, ok := child(stbl, "stsz")
	if !ok {
		return nil, errors.New("track has no stsz (stz2 is not supported)")
	}
	if len(stsz) < 12 {
		return nil, fmt.Errorf("stsz: %w", errTruncated)
	}
	fixed := binary.BigEndian.Uint32(stsz[4:])
	if int(binary.BigEndian.Uint32(stsz[8:])) != len(samples) {
		return nil, fmt.Errorf("stsz has %d samples, stts %d", binary.BigEndian.Uint32(stsz[8:]), len(samples))
	}
	if fixed == 0 && len(stsz)-12 < 4*len(samples) {
		return nil, fmt.Errorf("stsz: %w", errTruncated)
	}
	size := func(i int) uint64 {
		if fixed != 0 {
			return uint64(fixed)
		}
		return uint64(binary.BigEndian.Uint32(stsz[12+4*i:]))
	}

	var chunks []uint64
	if stco, ok := child(stbl, "stco"); ok {
		n, tab, err := fullBox("stco", stco, 0, 4)
		if err != nil {
			return nil, err
		}
		for i := range n {
			chunks = append(chunks, uint64(binary.BigEndian.Uint32(tab[i*4:])))
		}
	} else if co64, ok := child(stbl, "co64"); ok {
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

	stsc, ok := child(stbl, "stsc")
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
				samples[s].payload = data[off : off+sz]
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

// splitNALUs splits a length-prefixed sample into NALUs, dropping empty ones.
func splitNALUs(buf []byte, lengthSize int) ([][]byte, error) {
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

// trun and tfhd flags (ISO/IEC 14496-12 8.8.7, 8.8.8).
const (
	tfhdBaseDataOffset   = 0x000001
	tfhdSampleDescIndex  = 0x000002
	tfhdDefaultDuration  = 0x000008
	tfhdDefaultSize      = 0x000010
	trunDataOffset       = 0x000001
	trunFirstSampleFlags = 0x000004
	trunDuration         = 0x000100
	trunSize             = 0x000200
	trunFlags            = 0x000400
	trunCTO              = 0x000800
)

// readFragments collects the samples of track id from every moof/mdat pair.
// data is the whole file: data offsets in moof are relative to it.
func readFragments(data []byte, top []mp4Box, moov []byte, id int) ([]mp4Sample, error) {
	// Defaults from trex, overridden per fragment by tfhd.
	var def fragDefaults
	if mvex, ok := child(moov, "mvex"); ok {
		if boxes, err := readBoxes(mvex); err == nil {
			for _, b := range boxes {
				if b.typ == "trex" && len(b.body) >= 24 && int(binary.BigEndian.Uint32(b.body[4:])) == id {
					def.duration = binary.BigEndian.Uint32(b.body[12:])
					def.size = binary.BigEndian.Uint32(b.body[16:])
				}
			}
		}
	}

	var samples []mp4Sample
	for _, moof := range top {
		if moof.typ != "moof" {
			continue
		}
		trafs, err := readBoxes(moof.body)
		if err != nil {
			return nil, fmt.Errorf("moof at %d: %w", moof.off, err)
		}
		for _, traf := range trafs {
			if traf.typ != "traf" {
				continue
			}
			s, err := readTraf(data, traf.body, uint64(moof.off), id, def)
			if err != nil {
				return nil, fmt.Errorf("moof at %d: %w", moof.off, err)
			}
			samples = append(samples, s...)
			if len(samples) > maxSamples {
				return nil, fmt.Errorf("more than %d samples", maxSamples)
			}
		}
	}
	return samples, nil
}

// fragDefaults are the sample duration and size used when trun omits them.
type fragDefaults struct{ duration, size uint32 }

// readTraf reads the samples of one track fragment, or none if it belongs
// to another track.
func readTraf(data, traf []byte, moofOff uint64, id int, def fragDefaults) ([]mp4Sample, error) {
	tfhd, ok := child(traf, "tfhd")
	if !ok || len(tfhd) < 8 {
		return nil, errors.New("traf without tfhd")
	}
	if int(binary.BigEndian.Uint32(tfhd[4:])) != id {
		return nil, nil
	}
	flags := binary.BigEndian.Uint32(tfhd) & 0xffffff
	rest := tfhd[8:]
	field := func(n int) (uint64, error) {
		if len(rest) < n {
			return 0, fmt.Errorf("tfhd: %w", errTruncated)
		}
		var v uint64
		for _, b := range rest[:n] {
			v = v<<8 | uint64(b)
		}
		rest = rest[n:]
		return v, nil
	}
	base := moofOff // default-base-is-moof, and ffmpeg's usual layout
	var err error
	if flags&tfhdBaseDataOffset != 0 {
		if base, err = field(8); err != nil {
			return nil, err
		}
	}
	if flags&tfhdSampleDescIndex != 0 {
		if _, err = field(4); err != nil {
			return nil, err
		}
	}
	if flags&tfhdDefaultDuration != 0 {
		v, err := field(4)
		if err != nil {
			return nil, err
		}
		def.duration = uint32(v)
	}
	if flags&tfhdDefaultSize != 0 {
		v, err := field(4)
		if err != nil {
			return nil, err
		}
		def.size = uint32(v)
	}

	boxes, err := readBoxes(traf)
	if err != nil {
		return nil, err
	}
	var samples []mp4Sample
	pos := base
	for _, b := range boxes {
		if b.typ != "trun" {
			continue
		}
		t := b.body
		if len(t) < 8 {
			return nil, fmt.Errorf("trun: %w", errTruncated)
		}
		tf := binary.BigEndian.Uint32(t) & 0xffffff
		count := binary.BigEndian.Uint32(t[4:])
		t = t[8:]
		if tf&trunDataOffset != 0 {
			if len(t) < 4 {
				return nil, fmt.Errorf("trun: %w", errTruncated)
			}
			pos = base + uint64(int64(int32(binary.BigEndian.Uint32(t))))
			t = t[4:]
		}
		if tf&trunFirstSampleFlags != 0 {
			if len(t) < 4 {
				return nil, fmt.Errorf("trun: %w", errTruncated)
			}
			t = t[4:]
		}
		per := 0
		for _, f := range []uint32{trunDuration, trunSize, trunFlags, trunCTO} {
			if tf&f != 0 {
				per += 4
			}
		}
		if count > maxSamples || uint64(count)*uint64(per) > uint64(len(t)) {
			return nil, fmt.Errorf("trun: %d samples: %w", count, errTruncated)
		}
		for range count {
			s := mp4Sample{duration: def.duration}
			size := def.size
			if tf&trunDuration != 0 {
				s.duration, t = binary.BigEndian.Uint32(t), t[4:]
			}
			if tf&trunSize != 0 {
				size, t = binary.BigEndian.Uint32(t), t[4:]
			}
			if tf&trunFlags != 0 {
				t = t[4:] // keyframes are found from the NALUs instead
			}
			if tf&trunCTO != 0 {
				// Signed in version 1, unsigned in version 0; never near 2^31.
				s.ptsOffset, t = int32(binary.BigEndian.Uint32(t)), t[4:]
			}
			if pos > uint64(len(data)) || uint64(size) > uint64(len(data))-pos {
				return nil, errors.New("trun sample lies outside the file")
			}
			s.payload = data[pos : pos+uint64(size)]
			pos += uint64(size)
			samples = append(samples, s)
		}
	}
	return samples, nil
}

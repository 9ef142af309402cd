package mp4

import (
	"errors"
	"fmt"
)

// MaxMoofSamples bounds the samples of one track in one moof, so that counts read from
// a hostile file cannot drive a large allocation.
const MaxMoofSamples = 1 << 18

// SampleFlagNonSync is sample_is_non_sync_sample in sample flags (ISO/IEC 14496-12 8.8.3.1).
const SampleFlagNonSync = 1 << 16

// tfhd and trun flags (ISO/IEC 14496-12 8.8.7, 8.8.8).
const (
	tfhdBaseDataOffset    = 0x000001
	tfhdSampleDescIndex   = 0x000002
	tfhdDefaultDuration   = 0x000008
	tfhdDefaultSize       = 0x000010
	tfhdDefaultFlags      = 0x000020
	tfhdDefaultBaseIsMoof = 0x020000
	trunDataOffset        = 0x000001
	trunFirstSampleFlags  = 0x000004
	trunSampleDuration    = 0x000100
	trunSampleSize        = 0x000200
	trunSampleFlags       = 0x000400
	trunSampleCTO         = 0x000800 // signed in a version 1 trun
	fullBoxFlags          = 0xffffff
)

// Sample is one sample of a track fragment, its defaults applied.
type Sample struct {
	Duration  uint32
	Size      uint32
	Flags     uint32
	PTSOffset int32
	Offset    uint64 // of its data, in the file the moof was read from
}

// Sync reports whether the sample is a sync (random access) sample.
func (s Sample) Sync() bool { return s.Flags&SampleFlagNonSync == 0 }

// TrackFragment is one traf: a track's samples in one moof.
type TrackFragment struct {
	TrackID       uint32
	DecodeTime    uint64 // tfdt's base media decode time
	HasDecodeTime bool
	Samples       []Sample
}

// ParseMoof reads the trafs of track in the body of a moof box that starts at
// moofOffset in its file, with the track's trex defaults. Trafs of other tracks are
// skipped. Sample data offsets are resolved but not checked against any mdat.
func ParseMoof(moof []byte, moofOffset uint64, def TrackDefaults) ([]TrackFragment, error) {
	boxes, err := ReadBoxes(moof)
	if err != nil {
		return nil, err
	}
	var out []TrackFragment
	budget := MaxMoofSamples
	for _, b := range boxes {
		if b.Type != "traf" {
			continue
		}
		tf, ok, err := parseTraf(b.Body, moofOffset, def, budget)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, tf)
			budget -= len(tf.Samples)
		}
	}
	return out, nil
}

// parseTraf reads one traf if it belongs to def.TrackID, with at most budget samples.
func parseTraf(traf []byte, moofOffset uint64, def TrackDefaults, budget int) (TrackFragment, bool, error) {
	tf := TrackFragment{TrackID: def.TrackID}
	tfhd, ok := Child(traf, "tfhd")
	if !ok {
		return tf, false, errors.New("traf without tfhd")
	}
	r := reader{b: tfhd, name: "tfhd"}
	flags := r.u32() & fullBoxFlags
	if id := r.u32(); r.err != nil || id != def.TrackID {
		return tf, false, r.err
	}
	base := moofOffset // default-base-is-moof, and what ffmpeg's layout means without it
	if flags&tfhdBaseDataOffset != 0 {
		base = r.uint(8)
	}
	if flags&tfhdSampleDescIndex != 0 {
		r.u32()
	}
	if flags&tfhdDefaultDuration != 0 {
		def.Duration = r.u32()
	}
	if flags&tfhdDefaultSize != 0 {
		def.Size = r.u32()
	}
	if flags&tfhdDefaultFlags != 0 {
		def.Flags = r.u32()
	}
	if r.err != nil {
		return tf, false, r.err
	}

	boxes, err := ReadBoxes(traf)
	if err != nil {
		return tf, false, err
	}
	pos := base
	for _, b := range boxes {
		switch b.Type {
		case "tfdt":
			r := reader{b: b.Body, name: "tfdt"}
			if r.uint(4)>>24 == 1 {
				tf.DecodeTime = r.uint(8)
			} else {
				tf.DecodeTime = r.uint(4)
			}
			if r.err != nil {
				return tf, false, r.err
			}
			tf.HasDecodeTime = true
		case "trun":
			if tf.Samples, pos, err = parseTrun(b.Body, tf.Samples, base, pos, def, budget); err != nil {
				return tf, false, err
			}
		}
	}
	return tf, true, nil
}

// parseTrun appends a trun's samples, up to budget in all; pos is where its data starts
// unless the trun says otherwise. It returns where the data of a following trun would
// start.
func parseTrun(t []byte, samples []Sample, base, pos uint64, def TrackDefaults, budget int) ([]Sample, uint64, error) {
	r := reader{b: t, name: "trun"}
	flags := r.u32() & fullBoxFlags
	count := r.u32()
	if flags&trunDataOffset != 0 {
		pos = base + uint64(int64(int32(r.u32())))
	}
	first, hasFirst := uint32(0), flags&trunFirstSampleFlags != 0
	if hasFirst {
		first = r.u32()
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	per := 0
	for _, f := range []uint32{trunSampleDuration, trunSampleSize, trunSampleFlags, trunSampleCTO} {
		if flags&f != 0 {
			per += 4
		}
	}
	if uint64(len(samples))+uint64(count) > uint64(budget) {
		return nil, 0, fmt.Errorf("trun: more than %d samples in a moof", MaxMoofSamples)
	}
	if uint64(count)*uint64(per) > uint64(len(r.b)) {
		return nil, 0, fmt.Errorf("trun: %d samples: %w", count, ErrTruncated)
	}
	for i := range count {
		s := Sample{Duration: def.Duration, Size: def.Size, Flags: def.Flags}
		if flags&trunSampleDuration != 0 {
			s.Duration = r.u32()
		}
		if flags&trunSampleSize != 0 {
			s.Size = r.u32()
		}
		switch {
		case flags&trunSampleFlags != 0:
			s.Flags = r.u32()
		case i == 0 && hasFirst: // as ffmpeg writes them
			s.Flags = first
		}
		if flags&trunSampleCTO != 0 {
			// Signed in version 1, unsigned in version 0; never near 2^31 in practice.
			s.PTSOffset = int32(r.u32())
		}
		s.Offset = pos
		pos += uint64(s.Size)
		samples = append(samples, s)
	}
	return samples, pos, nil
}

package mp4

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Track is what a moov says of one track.
type Track struct {
	ID        uint32
	TimeScale uint32 // of mdhd; 0 if the track has none
	Handler   string // hdlr type: "vide", "soun", ...
}

// TrackDefaults are a track's sample defaults (trex, overridden per fragment by tfhd).
type TrackDefaults struct {
	TrackID  uint32
	Duration uint32
	Size     uint32
	Flags    uint32
}

// Movie is the part of a moov that reading fragments needs.
type Movie struct {
	Tracks   []Track
	Defaults []TrackDefaults // one per trex: a fragmented file has at least one
}

// ParseMoov reads the tracks and their fragment defaults from a moov's body.
func ParseMoov(moov []byte) (Movie, error) {
	var m Movie
	boxes, err := ReadBoxes(moov)
	if err != nil {
		return m, fmt.Errorf("moov: %w", err)
	}
	for _, b := range boxes {
		switch b.Type {
		case "trak":
			t, err := parseTrak(b.Body)
			if err != nil {
				return m, fmt.Errorf("moov: %w", err)
			}
			m.Tracks = append(m.Tracks, t)
		case "mvex":
			ex, err := ReadBoxes(b.Body)
			if err != nil {
				return m, fmt.Errorf("mvex: %w", err)
			}
			for _, e := range ex {
				if e.Type != "trex" {
					continue
				}
				r := reader{b: e.Body, name: "trex"}
				r.u32() // version and flags
				d := TrackDefaults{TrackID: r.u32()}
				r.u32() // sample description index
				d.Duration, d.Size, d.Flags = r.u32(), r.u32(), r.u32()
				if r.err != nil {
					return m, r.err
				}
				m.Defaults = append(m.Defaults, d)
			}
		}
	}
	return m, nil
}

// TrackDefaults returns the trex of track id, or zero defaults.
func (m Movie) TrackDefaults(id uint32) TrackDefaults {
	for _, d := range m.Defaults {
		if d.TrackID == id {
			return d
		}
	}
	return TrackDefaults{TrackID: id}
}

func parseTrak(trak []byte) (Track, error) {
	var t Track
	tkhd, ok := Child(trak, "tkhd")
	if !ok {
		return t, errors.New("trak without tkhd")
	}
	id, err := tkhdTrackID(tkhd)
	if err != nil {
		return t, err
	}
	t.ID = id
	mdia, ok := Child(trak, "mdia")
	if !ok {
		return t, nil
	}
	if mdhd, ok := Child(mdia, "mdhd"); ok {
		r := reader{b: mdhd, name: "mdhd"}
		if r.uint(1) == 1 { // version 1: 64-bit times
			r.uint(3 + 8 + 8)
		} else {
			r.uint(3 + 4 + 4)
		}
		t.TimeScale = r.u32()
		if r.err != nil {
			return t, r.err
		}
	}
	if hdlr, ok := Child(mdia, "hdlr"); ok {
		if len(hdlr) < 12 {
			return t, fmt.Errorf("hdlr: %w", ErrTruncated)
		}
		t.Handler = string(hdlr[8:12]) // after version, flags and pre_defined
	}
	return t, nil
}

func tkhdTrackID(tkhd []byte) (uint32, error) {
	idOff := 12 // version, flags, creation and modification times
	if len(tkhd) > 0 && tkhd[0] == 1 {
		idOff = 20
	}
	if len(tkhd) < idOff+4 {
		return 0, fmt.Errorf("tkhd: %w", ErrTruncated)
	}
	return binary.BigEndian.Uint32(tkhd[idOff:]), nil
}

// FindTrak returns the body of the trak box whose tkhd has the given track ID.
func FindTrak(moov []byte, id uint32) ([]byte, error) {
	boxes, err := ReadBoxes(moov)
	if err != nil {
		return nil, fmt.Errorf("read moov: %w", err)
	}
	for _, b := range boxes {
		if b.Type != "trak" {
			continue
		}
		tkhd, ok := Child(b.Body, "tkhd")
		if !ok {
			continue
		}
		if got, err := tkhdTrackID(tkhd); err == nil && got == id {
			return b.Body, nil
		}
	}
	return nil, fmt.Errorf("track %d not found", id)
}

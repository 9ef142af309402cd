package mp4

import (
	"encoding/binary"
	"fmt"
	"time"
)

// PrftSize is the size of a version 1 prft box.
const PrftSize = HeaderSize + 4 + 4 + 8 + 8

// PrftCaptureTime is the prft flag saying that the wall-clock time is when the scene at
// media_time happened, give or take a small constant offset (ISO/IEC 14496-12 8.16.5:
// flags 24). For a camera that is its capture time.
const PrftCaptureTime = 24

// ntpEpochOffset is the number of seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix).
const ntpEpochOffset = 2208988800

// Prft is a producer reference time box: the wall-clock time of a track's media time,
// so a file alone says when what it shows was recorded.
type Prft struct {
	TrackID   uint32
	Flags     uint32
	Time      time.Time // UTC, to the nanosecond the NTP format keeps
	MediaTime uint64    // presentation time in the track's timescale
}

// AppendPrft appends a version 1 prft box to b.
func AppendPrft(b []byte, p Prft) []byte {
	b = appendBoxHeader(b, PrftSize, "prft")
	b = binary.BigEndian.AppendUint32(b, 1<<24|p.Flags&0xffffff)
	b = binary.BigEndian.AppendUint32(b, p.TrackID)
	b = binary.BigEndian.AppendUint64(b, ntpTime(p.Time))
	return binary.BigEndian.AppendUint64(b, p.MediaTime)
}

// ParsePrft reads a prft box body (after the box header), version 0 or 1.
func ParsePrft(body []byte) (Prft, error) {
	if len(body) < 4 {
		return Prft{}, fmt.Errorf("prft: %w", ErrTruncated)
	}
	v, flags := body[0], binary.BigEndian.Uint32(body)&0xffffff
	want := 4 + 4 + 8 + 4
	if v == 1 {
		want += 4
	} else if v != 0 {
		return Prft{}, fmt.Errorf("prft: version %d", v)
	}
	if len(body) < want {
		return Prft{}, fmt.Errorf("prft: %w", ErrTruncated)
	}
	p := Prft{TrackID: binary.BigEndian.Uint32(body[4:]), Flags: flags,
		Time: fromNTP(binary.BigEndian.Uint64(body[8:]))}
	if v == 1 {
		p.MediaTime = binary.BigEndian.Uint64(body[16:])
	} else {
		p.MediaTime = uint64(binary.BigEndian.Uint32(body[16:]))
	}
	return p, nil
}

// ntpTime is t as a 64-bit NTP timestamp: seconds since 1900 and a binary fraction.
func ntpTime(t time.Time) uint64 {
	sec := uint64(t.Unix() + ntpEpochOffset)
	frac := (uint64(t.Nanosecond())<<32 + 999_999_999) / 1_000_000_000 // rounded up, so it reads back exactly
	return sec<<32 | frac
}

func fromNTP(v uint64) time.Time {
	sec := int64(v>>32) - ntpEpochOffset
	ns := (v & 0xffffffff) * 1_000_000_000 >> 32
	return time.Unix(sec, int64(ns)).UTC()
}

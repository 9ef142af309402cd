package camsim

import (
	"embed"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// Codec names accepted by Options, EmbeddedClip and ClipSpec.
const (
	CodecH264 = "h264"
	CodecH265 = "h265"
)

//go:embed clips/h264.mp4 clips/h265.mp4
var clipFS embed.FS

// embedded loads each embedded clip once; a Clip is immutable, so every
// camera and every Server shares it.
var embedded = map[string]func() (*Clip, error){
	CodecH264: sync.OnceValues(func() (*Clip, error) { return loadEmbedded("clips/h264.mp4") }),
	CodecH265: sync.OnceValues(func() (*Clip, error) { return loadEmbedded("clips/h265.mp4") }),
}

func loadEmbedded(name string) (*Clip, error) {
	data, err := clipFS.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("embedded clip %s: %w", name, err)
	}
	c, err := parseClip(data)
	if err != nil {
		return nil, fmt.Errorf("embedded clip %s: %w", name, err)
	}
	return c, nil
}

// Clip is an encoded H.264 or H.265 video that a camera loops without
// re-encoding, so its resolution, bitrate and GOP are what the camera sends.
// A Clip is immutable and safe to share between cameras.
type Clip struct {
	codec       string
	width       int
	height      int
	timeScale   uint32   // ticks per second of dts, pts and duration
	duration    int64    // one loop, in ticks
	keyInterval int64    // longest distance between random-access units, in ticks
	params      [][]byte // VPS (H.265 only), SPS, PPS
	units       []unit   // decode order; units[0] is a random-access unit
}

// unit is one access unit of a Clip.
type unit struct {
	dts   int64    // from the start of the loop
	pts   int64    // from the start of the loop; the earliest is 0
	key   bool     // random access (IDR, or CRA for H.265)
	nalus [][]byte // parameter sets are prepended to every key unit
}

// EmbeddedClip returns the built-in clip of a codec ("h264" or "h265"):
// 640x360, 25 fps, a keyframe every 2 s, 8 s long, no B-frames.
func EmbeddedClip(codec string) (*Clip, error) {
	load, ok := embedded[codec]
	if !ok {
		return nil, fmt.Errorf("codec %q: want %s or %s", codec, CodecH264, CodecH265)
	}
	return load()
}

// LoadClip reads the first H.264 or H.265 track of a progressive or
// fragmented MP4 file. Composition offsets are honoured, so clips with
// B-frames keep correct presentation times.
func LoadClip(path string) (*Clip, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load clip: %w", err)
	}
	c, err := parseClip(data)
	if err != nil {
		return nil, fmt.Errorf("load clip %s: %w", path, err)
	}
	return c, nil
}

// Codec returns "h264" or "h265".
func (c *Clip) Codec() string { return c.codec }

// Width returns the picture width in pixels.
func (c *Clip) Width() int { return c.width }

// Height returns the picture height in pixels.
func (c *Clip) Height() int { return c.height }

// Duration returns the length of one loop.
func (c *Clip) Duration() time.Duration { return ticksToDuration(c.duration, c.timeScale) }

// FrameRate returns the average number of frames per second.
func (c *Clip) FrameRate() float64 {
	return float64(len(c.units)) / c.Duration().Seconds()
}

// KeyInterval returns the longest time between two random-access units,
// counting the jump from the end of the clip back to its start: the longest
// a client that joins at a random moment waits for a decodable picture.
func (c *Clip) KeyInterval() time.Duration { return ticksToDuration(c.keyInterval, c.timeScale) }

func parseClip(data []byte) (*Clip, error) {
	t, err := readMP4(data)
	if err != nil {
		return nil, err
	}
	c := &Clip{timeScale: t.timeScale}

	var isKey func([][]byte) bool
	var spsType uint8
	var naluType func(nalu []byte) uint8
	switch codec := t.codec.(type) {
	case *fmp4.CodecH264:
		var sps h264.SPS
		if err := sps.Unmarshal(codec.SPS); err != nil {
			return nil, fmt.Errorf("parse SPS: %w", err)
		}
		c.codec, c.width, c.height = CodecH264, sps.Width(), sps.Height()
		c.params = [][]byte{codec.SPS, codec.PPS}
		isKey = h264.IsRandomAccess
		spsType = uint8(h264.NALUTypeSPS)
		naluType = func(n []byte) uint8 { return n[0] & 0x1f }
	case *fmp4.CodecH265:
		var sps h265.SPS
		if err := sps.Unmarshal(codec.SPS); err != nil {
			return nil, fmt.Errorf("parse SPS: %w", err)
		}
		c.codec, c.width, c.height = CodecH265, sps.Width(), sps.Height()
		c.params = [][]byte{codec.VPS, codec.SPS, codec.PPS}
		isKey = h265.IsRandomAccess
		spsType = uint8(h265.NALUType_SPS_NUT)
		naluType = func(n []byte) uint8 { return (n[0] >> 1) & 0x3f }
	}
	for _, p := range c.params {
		if len(p) == 0 {
			return nil, errors.New("missing parameter set")
		}
	}

	// Some muxers leave the last duration at zero; a zero would make two
	// frames share a timestamp at every loop boundary.
	last := uint32(0)
	for _, s := range t.samples {
		if s.duration != 0 {
			last = s.duration
			break
		}
	}
	if last == 0 {
		return nil, errors.New("all samples have zero duration")
	}

	dts := int64(0)
	minPTS := int64(0)
	for _, s := range t.samples {
		d := s.duration
		if d == 0 {
			d = last
		}
		last = d
		nalus, err := splitNALUs(s.payload, t.lengthSize)
		if err != nil {
			return nil, fmt.Errorf("sample at %d: %w", dts, err)
		}
		if len(nalus) == 0 {
			dts += int64(d)
			continue
		}
		key := isKey(nalus)
		if len(c.units) == 0 {
			if !key { // a decoder cannot start before the first random-access unit
				continue
			}
			dts = 0
		}
		if key && !hasNALU(nalus, spsType, naluType) {
			nalus = append(append([][]byte{}, c.params...), nalus...)
		}
		u := unit{dts: dts, pts: dts + int64(s.ptsOffset), key: key, nalus: nalus}
		if len(c.units) == 0 || u.pts < minPTS {
			minPTS = u.pts
		}
		c.units = append(c.units, u)
		dts += int64(d)
	}
	if len(c.units) == 0 {
		return nil, errors.New("no random-access unit")
	}
	c.duration = dts

	prevKey := int64(0)
	for i := range c.units {
		c.units[i].pts -= minPTS
		if c.units[i].key {
			c.keyInterval = max(c.keyInterval, c.units[i].dts-prevKey)
			prevKey = c.units[i].dts
		}
	}
	c.keyInterval = max(c.keyInterval, c.duration-prevKey)
	return c, nil
}

// hasNALU reports whether the access unit holds a NALU of type typ.
func hasNALU(au [][]byte, typ uint8, naluType func([]byte) uint8) bool {
	for _, n := range au {
		if naluType(n) == typ {
			return true
		}
	}
	return false
}

// ticksToDuration converts ticks of a time scale without overflowing.
func ticksToDuration(t int64, scale uint32) time.Duration {
	s := int64(scale)
	return time.Duration(t/s)*time.Second + time.Duration(t%s)*time.Second/time.Duration(s)
}

// durationToTicks is the inverse of ticksToDuration, rounding down.
func durationToTicks(d time.Duration, scale uint32) int64 {
	s := int64(scale)
	return int64(d/time.Second)*s + int64(d%time.Second)*s/int64(time.Second)
}

// rescale converts ticks of one time scale to another, rounding down.
func rescale(t int64, from, to uint32) int64 {
	f, o := int64(from), int64(to)
	return t/f*o + t%f*o/f
}

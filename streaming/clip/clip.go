// Package clip holds encoded H.264/H.265 clips read from MP4 as access units,
// for the camera simulator and tests. Nothing is decoded or re-encoded: a clip's
// resolution, bitrate and GOP are those of its file.
package clip

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

	"github.com/straja-nvr/straja/internal/mp4"
	"github.com/straja-nvr/straja/streaming"
)

//go:embed clips/h264.mp4 clips/h265.mp4
var clipFS embed.FS

// embedded loads each embedded clip once; a Clip is immutable, so every
// user shares it.
var embedded = map[streaming.Codec]func() (*Clip, error){
	streaming.H264: sync.OnceValues(func() (*Clip, error) { return loadEmbedded("clips/h264.mp4") }),
	streaming.H265: sync.OnceValues(func() (*Clip, error) { return loadEmbedded("clips/h265.mp4") }),
}

func loadEmbedded(name string) (*Clip, error) {
	data, err := clipFS.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("embedded clip %s: %w", name, err)
	}
	c, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("embedded clip %s: %w", name, err)
	}
	return c, nil
}

// Clip is an encoded H.264 or H.265 video, one loop of access units.
// A Clip is immutable and safe for concurrent use.
type Clip struct {
	codec       streaming.Codec
	width       int
	height      int
	duration    int64             // one loop, in 90 kHz ticks
	keyInterval int64             // longest distance between random-access units, in 90 kHz ticks
	delay       int64             // largest DTS-PTS: how far decoding runs ahead of presentation
	params      [][]byte          // VPS (H.265 only), SPS, PPS
	unitParams  *streaming.Params // shared by every Unit of the clip
	frames      []Frame           // decode order; frames[0] is a random-access unit
}

// Frame is one access unit of a Clip.
type Frame struct {
	// DTS is the decode time in 90 kHz ticks from the first frame (0).
	// PTS is the presentation time in 90 kHz ticks from the earliest
	// presentation (0); with B-frames it can be below DTS.
	DTS, PTS int64
	// Key is true for a random-access unit (IDR, or IRAP for H.265).
	Key bool
	// NALUs without start codes or length prefixes. The parameter sets are
	// prepended to every key frame that lacks them in band.
	NALUs [][]byte
}

// Embedded returns the built-in clip of a codec: 640x360, 25 fps,
// a keyframe every 2 s, 8 s long, no B-frames.
func Embedded(codec streaming.Codec) (*Clip, error) {
	load, ok := embedded[codec]
	if !ok {
		return nil, fmt.Errorf("codec %q: want %s or %s", codec, streaming.H264, streaming.H265)
	}
	return load()
}

// Load reads the first H.264 or H.265 track of a progressive or
// fragmented MP4 file. Composition offsets are honoured, so clips with
// B-frames keep correct presentation times.
func Load(path string) (*Clip, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load clip: %w", err)
	}
	c, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("load clip %s: %w", path, err)
	}
	return c, nil
}

// Codec returns streaming.H264 or streaming.H265.
func (c *Clip) Codec() streaming.Codec { return c.codec }

// Width returns the picture width in pixels.
func (c *Clip) Width() int { return c.width }

// Height returns the picture height in pixels.
func (c *Clip) Height() int { return c.height }

// Duration returns the length of one loop.
func (c *Clip) Duration() time.Duration { return ticksToDuration(c.duration, streaming.ClockRate) }

// FrameRate returns the average number of frames per second.
func (c *Clip) FrameRate() float64 {
	return float64(len(c.frames)) / c.Duration().Seconds()
}

// KeyInterval returns the longest time between two random-access units,
// counting the jump from the end of the clip back to its start: the longest
// a client that joins at a random moment waits for a decodable picture.
func (c *Clip) KeyInterval() time.Duration {
	return ticksToDuration(c.keyInterval, streaming.ClockRate)
}

// Params returns the parameter sets from the file's sample description;
// vps is nil for H.264.
func (c *Clip) Params() (vps, sps, pps []byte) {
	if c.codec == streaming.H265 {
		return c.params[0], c.params[1], c.params[2]
	}
	return nil, c.params[0], c.params[1]
}

// Frames returns one loop in decode order, starting with a key frame.
// The frames and their NALUs are shared: do not modify them.
func (c *Clip) Frames() []Frame { return c.frames }

// Units returns loops consecutive loops of the clip as the ingest would
// deliver them: timestamps continuous across loops, PTS never below DTS
// (the first DTS is 0), Time = start + PTS, Key set, and one Params (with
// the picture size) shared by every unit of the clip.
func (c *Clip) Units(loops int, epoch uint64, start time.Time) []*streaming.Unit {
	out := make([]*streaming.Unit, 0, loops*len(c.frames))
	for l := range int64(loops) {
		base := l * c.duration
		for _, f := range c.frames {
			pts := base + f.PTS + c.delay
			out = append(out, &streaming.Unit{Epoch: epoch, DTS: base + f.DTS, PTS: pts,
				Time: start.Add(ticksToDuration(pts, streaming.ClockRate)), Key: f.Key, NALUs: f.NALUs, Params: c.unitParams})
		}
	}
	return out
}

func parse(data []byte) (*Clip, error) {
	t, err := mp4.ReadVideoTrack(data)
	if err != nil {
		return nil, err
	}
	c := &Clip{}

	var isKey func([][]byte) bool
	var spsType uint8
	var naluType func(nalu []byte) uint8
	switch codec := t.Codec.(type) {
	case *fmp4.CodecH264:
		var sps h264.SPS
		if err := sps.Unmarshal(codec.SPS); err != nil {
			return nil, fmt.Errorf("parse SPS: %w", err)
		}
		c.codec, c.width, c.height = streaming.H264, sps.Width(), sps.Height()
		c.params = [][]byte{codec.SPS, codec.PPS}
		c.unitParams = &streaming.Params{Codec: c.codec, SPS: codec.SPS, PPS: codec.PPS, Width: c.width, Height: c.height}
		isKey = h264.IsRandomAccess
		spsType = uint8(h264.NALUTypeSPS)
		naluType = func(n []byte) uint8 { return n[0] & 0x1f }
	case *fmp4.CodecH265:
		var sps h265.SPS
		if err := sps.Unmarshal(codec.SPS); err != nil {
			return nil, fmt.Errorf("parse SPS: %w", err)
		}
		c.codec, c.width, c.height = streaming.H265, sps.Width(), sps.Height()
		c.params = [][]byte{codec.VPS, codec.SPS, codec.PPS}
		c.unitParams = &streaming.Params{Codec: c.codec, VPS: codec.VPS, SPS: codec.SPS, PPS: codec.PPS,
			Width: c.width, Height: c.height}
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
	for _, s := range t.Samples {
		if s.Duration != 0 {
			last = s.Duration
			break
		}
	}
	if last == 0 {
		return nil, errors.New("all samples have zero duration")
	}

	// Timestamps are in the track's time scale until the end.
	dts := int64(0)
	minPTS := int64(0)
	for _, s := range t.Samples {
		d := s.Duration
		if d == 0 {
			d = last
		}
		last = d
		nalus, err := mp4.SplitNALUs(s.Payload, t.LengthSize)
		if err != nil {
			return nil, fmt.Errorf("sample at %d: %w", dts, err)
		}
		if len(nalus) == 0 {
			dts += int64(d)
			continue
		}
		key := isKey(nalus)
		if len(c.frames) == 0 {
			if !key { // a decoder cannot start before the first random-access unit
				continue
			}
			dts = 0
		}
		if key && !hasNALU(nalus, spsType, naluType) {
			nalus = append(append([][]byte{}, c.params...), nalus...)
		}
		f := Frame{DTS: dts, PTS: dts + int64(s.PTSOffset), Key: key, NALUs: nalus}
		if len(c.frames) == 0 || f.PTS < minPTS {
			minPTS = f.PTS
		}
		c.frames = append(c.frames, f)
		dts += int64(d)
	}
	if len(c.frames) == 0 {
		return nil, errors.New("no random-access unit")
	}

	to90k := func(ts int64) int64 { return rescale(ts, t.TimeScale, streaming.ClockRate) }
	c.duration = to90k(dts)
	if c.duration <= 0 {
		return nil, errors.New("clip is shorter than a 90 kHz tick")
	}
	prevKey := int64(0)
	for i := range c.frames {
		f := &c.frames[i]
		f.DTS, f.PTS = to90k(f.DTS), to90k(f.PTS-minPTS)
		c.delay = max(c.delay, f.DTS-f.PTS)
		if f.Key {
			c.keyInterval = max(c.keyInterval, f.DTS-prevKey)
			prevKey = f.DTS
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

// rescale converts non-negative ticks of one time scale to another, rounding down.
func rescale(t int64, from, to uint32) int64 {
	f, o := int64(from), int64(to)
	return t/f*o + t%f*o/f
}

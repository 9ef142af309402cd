package spool

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/straja-nvr/straja/internal/mp4"
	"github.com/straja-nvr/straja/recorder/internal/metrics"
	"github.com/straja-nvr/straja/streaming"
)

// Default segment and fragment durations. A fragment is the unit of durability: a crash
// loses at most the fragment being written.
const (
	DefaultSegmentDuration  = 60 * time.Second
	DefaultFragmentDuration = time.Second
)

// maxSampleTicks bounds one sample's duration: a longer DTS step within an epoch is a
// timestamp discontinuity, not a frame, and starts a new segment.
const maxSampleTicks = 5 * streaming.ClockRate

// defaultSampleTicks closes a segment whose only sample has no measured duration (25 fps).
const defaultSampleTicks = streaming.ClockRate / 25

// ErrFull is returned (wrapped) by the spool when writing would exceed its cap.
var ErrFull = errors.New("spool full")

// fragmentInfo describes one fragment of a segment, relative to the segment's start.
type fragmentInfo struct {
	Start, Duration time.Duration
	Key             bool // the fragment starts with a random access sample
	// Shown is when the fragment's first sample is presented, from the segment's
	// start (its earliest picture's presentation); PTS is that presentation time on the
	// segment's media timeline. Together they date the fragment (prft).
	Shown time.Duration
	PTS   int64
}

// segmentSink receives the bytes of consecutive segments. At most one segment is open.
type segmentSink interface {
	// startSegment opens a segment whose first sample is at wall-clock start, writing init.
	startSegment(start time.Time, init []byte) error
	// writeFragment appends frag (its header marshalled) with frag.WriteTo; on error
	// nothing of it is kept. frag is reused once writeFragment returns.
	writeFragment(frag *mp4.Fragment, f fragmentInfo) error
	// endSegment closes the open segment with every fragment written successfully.
	endSegment()
}

// segmenterEvents reports holes in the recording. Either func may be nil.
type segmenterEvents struct {
	// gap is called for every overflow and once at the start of each failure episode.
	gap func(cause string, err error)
	// resumed is called when writing succeeds again after a failure episode.
	resumed func(cause string)
}

// segmenter cuts access units into keyframe-aligned fMP4 segments without re-encoding.
// It is a pure state machine: units in, bytes out to a segmentSink; sink errors become
// gaps and recording resumes at the next keyframe. Not safe for concurrent use.
type segmenter struct {
	segTicks, fragTicks int64
	sink                segmentSink
	ev                  segmenterEvents

	params *streaming.Params
	epoch  uint64
	init   []byte // init section for params, nil until needed

	open    bool   // a segment is open in the sink
	failing string // cause of the current failure episode, "" when healthy

	prev         *streaming.Unit // held back until the next DTS gives its duration
	lastTicks    int64           // duration of the last sample written
	segStartDTS  int64
	keyDTS       int64 // the keyframe's decode time as it came, which segment lengths count from
	fragStartDTS int64
	segDelay     int64 // earliest PTS of the key's group - the key's DTS: the stream's reorder delay
	flushedPTS   int64 // latest presentation time among the segment's written fragments
	seq          uint32

	// A segment is dated by its earliest picture. After an H.265 CRA keyframe (open
	// GOP) that is a leading picture, which comes after the keyframe in decode order
	// and is shown before it: the sink is started once the first picture shown after
	// the keyframe arrives, so that segments join exactly whichever keyframes start them.
	pending bool
	keyTime time.Time
	keyPTS  int64
	minPTS  int64 // earliest presentation time among the keyframe and its leading pictures
	// joined: the segment being begun follows on from the one just closed at a
	// keyframe; fresh: the open one does not (see skipLeading).
	joined, fresh bool

	frag mp4.Fragment // being built: samples since fragStartDTS
}

func newSegmenter(segment, fragment time.Duration, sink segmentSink, ev segmenterEvents) *segmenter {
	if segment <= 0 {
		segment = DefaultSegmentDuration
	}
	if fragment <= 0 {
		fragment = DefaultFragmentDuration
	}
	s := &segmenter{
		segTicks:  durationToTicks(segment),
		fragTicks: durationToTicks(fragment),
		sink:      sink,
		ev:        ev,
		lastTicks: defaultSampleTicks,
	}
	return s
}

// write consumes one delivery.
func (s *segmenter) write(d streaming.Delivery) {
	u := d.Unit
	if u == nil {
		return
	}
	if d.Lost > 0 {
		s.finish()
		if s.ev.gap != nil {
			s.ev.gap(metrics.GapOverflow, fmt.Errorf("%d units lost", d.Lost))
		}
	}
	if s.prev != nil && s.discontinuous(u) {
		s.finish()
		if !u.Key && s.ev.gap != nil {
			// begin drops u and what follows until the next keyframe.
			s.ev.gap(metrics.GapDiscontinuity, fmt.Errorf("discontinuity at dts %d, dropping until the next keyframe", u.DTS))
		}
	}
	if s.prev == nil {
		s.begin(u)
		return
	}
	if s.pending && s.fresh && rasl(u) {
		s.skipLeading(u)
		return
	}

	dts := u.DTS - s.prev.DTS
	s.appendSample(s.prev, dts)
	s.lastTicks = dts
	s.prev = nil
	if s.pending {
		if u.PTS < s.keyPTS { // a leading picture
			s.minPTS = min(s.minPTS, u.PTS)
			s.segDelay = s.minPTS - s.segStartDTS
		} else if !s.startPending() {
			s.begin(u)
			return
		}
	}
	if u.Key && u.DTS-s.keyDTS >= s.segTicks {
		if s.flush() {
			s.endSegment()
			s.joined = true
		}
		s.begin(u)
		return
	}
	if u.DTS-s.fragStartDTS >= s.fragTicks && !s.flush() {
		s.begin(u) // the failed segment is closed; u may start the next one
		return
	}
	s.prev = u
}

// close finalises the open segment, giving its last sample the previous one's duration.
func (s *segmenter) close() { s.finish() }

// discontinuous reports whether u cannot continue the open segment.
func (s *segmenter) discontinuous(u *streaming.Unit) bool {
	step := u.DTS - s.prev.DTS
	return u.Epoch != s.epoch || step <= 0 || step > maxSampleTicks || !s.sameParams(u.Params)
}

func (s *segmenter) sameParams(p *streaming.Params) bool {
	if p == s.params {
		return true
	}
	if p == nil || s.params == nil || p.Codec != s.params.Codec || !bytes.Equal(p.SPS, s.params.SPS) ||
		!bytes.Equal(p.PPS, s.params.PPS) || !bytes.Equal(p.VPS, s.params.VPS) {
		return false
	}
	s.params = p // same bytes in a new value: nothing for the decoder changes
	return true
}

// begin opens a segment at u if u is a keyframe; otherwise u is dropped. The sink is
// started once u's leading pictures are known (startPending).
func (s *segmenter) begin(u *streaming.Unit) {
	if !u.Key {
		return
	}
	fresh := !s.joined
	s.joined = false
	if !s.sameParams(u.Params) {
		s.params, s.init = u.Params, nil
	}
	if s.init == nil {
		init, err := marshalInit(u.Params)
		if err != nil {
			s.fail(metrics.GapUnsupported, err)
			return
		}
		s.init = init
	}
	s.open, s.pending = true, true
	s.fresh = fresh
	s.keyTime, s.keyPTS, s.minPTS = u.Time.UTC(), u.PTS, u.PTS
	s.epoch = u.Epoch
	s.prev = u
	s.segStartDTS, s.fragStartDTS, s.keyDTS, s.seq = u.DTS, u.DTS, u.DTS, 0
	s.segDelay, s.flushedPTS = u.PTS-u.DTS, u.PTS
}

// skipLeading leaves out u, a picture that references footage before the keyframe
// that opened a fresh segment (a new time base's first keyframe, or the first after
// frames were lost or not written): an H.265 RASL picture after a CRA, which no
// decoder can make. The held-back sample takes u's decode time, so that the segment's
// timeline has no hole and it starts with its keyframe's picture.
func (s *segmenter) skipLeading(u *streaming.Unit) {
	if u.DTS > s.prev.PTS {
		return // it would be decoded after it is shown: leave a longer sample
	}
	held := *s.prev // shared with other readers of the stream: change a copy
	held.DTS = u.DTS
	s.prev = &held
	if s.frag.Len() == 0 { // the keyframe
		s.segStartDTS, s.fragStartDTS = u.DTS, u.DTS
		s.segDelay = s.minPTS - u.DTS
	}
}

// rasl reports whether u is an H.265 RASL picture: shown before the CRA keyframe it
// follows, referencing pictures before that keyframe.
func rasl(u *streaming.Unit) bool {
	if u.Params == nil || u.Params.Codec != streaming.H265 {
		return false
	}
	for _, n := range u.NALUs {
		if len(n) == 0 {
			continue
		}
		if typ := (n[0] >> 1) & 0x3f; typ < 32 { // the first picture slice
			return typ == 8 || typ == 9 // RASL_N, RASL_R
		}
	}
	return false
}

// startPending starts the open segment in the sink, dated by its earliest picture. If
// the sink fails the segment is dropped and startPending reports false.
func (s *segmenter) startPending() bool {
	if !s.pending {
		return true
	}
	s.pending = false
	start := s.keyTime.Add(-ticksToDuration(s.keyPTS - s.minPTS))
	if err := s.sink.startSegment(start, s.init); err != nil {
		s.fail(causeOf(err), err)
		s.open, s.prev = false, nil
		s.frag.Reset()
		return false
	}
	return true
}

// finish closes the open segment, if any, with the held-back sample.
func (s *segmenter) finish() {
	if !s.open {
		return
	}
	if s.prev != nil {
		s.appendSample(s.prev, s.lastTicks)
		s.prev = nil
	}
	s.trimTail()
	if s.flush() {
		s.endSegment()
	}
}

// trimTail drops the last samples of a segment that ends before the next keyframe
// while frames presented before them never came (the B-frames of a cut-off group), so
// that the segment lasts exactly as long as the frames it shows. Without reordering
// it drops nothing.
func (s *segmenter) trimTail() {
	f := &s.frag
	for f.Len() > 0 {
		dts, last, latest := s.fragStartDTS, int64(0), s.flushedPTS
		for i := range f.Len() {
			d, off := f.Timing(i)
			latest = max(latest, dts+int64(off))
			last = dts
			dts += int64(d)
		}
		// Complete: the latest frame shown is the one a constant delay after the last
		// decode time.
		if latest <= last+s.segDelay {
			return
		}
		f.DropLast()
	}
}

func (s *segmenter) endSegment() {
	s.open = false
	s.sink.endSegment()
}

func (s *segmenter) appendSample(u *streaming.Unit, ticks int64) {
	s.frag.Add(u.NALUs, uint32(ticks), int32(u.PTS-u.DTS), u.Key)
}

// flush writes the buffered samples as one fragment. On a sink error the segment is
// closed with what was written before, and flush reports false.
func (s *segmenter) flush() bool {
	f := &s.frag
	if f.Len() == 0 {
		return true
	}
	if !s.startPending() {
		return false
	}
	ticks := int64(f.Ticks())
	var dts int64
	for i := range f.Len() {
		d, off := f.Timing(i)
		s.flushedPTS = max(s.flushedPTS, s.fragStartDTS+dts+int64(off))
		dts += int64(d)
	}
	start := s.fragStartDTS - s.segStartDTS
	_, off0 := f.Timing(0)
	s.seq++
	f.Seq, f.BaseTime = s.seq, uint64(start)
	err := f.MarshalHeader()
	if err == nil {
		err = s.sink.writeFragment(f, fragmentInfo{
			Start:    ticksToDuration(start),
			Duration: ticksToDuration(ticks),
			Key:      f.Sync(),
			Shown:    ticksToDuration(start + int64(off0) - s.segDelay),
			PTS:      start + int64(off0),
		})
	}
	f.Reset()
	s.fragStartDTS += ticks
	if err != nil {
		s.fail(causeOf(err), err)
		s.endSegment()
		return false
	}
	s.ok() // footage is being kept again
	return true
}

// fail reports a gap at the start of a failure episode.
func (s *segmenter) fail(cause string, err error) {
	if s.failing != "" {
		return
	}
	s.failing = cause
	if s.ev.gap != nil {
		s.ev.gap(cause, err)
	}
}

func (s *segmenter) ok() {
	if s.failing == "" {
		return
	}
	if s.ev.resumed != nil {
		s.ev.resumed(s.failing)
	}
	s.failing = ""
}

func causeOf(err error) string {
	if errors.Is(err, ErrFull) {
		return metrics.GapSpoolFull
	}
	return metrics.GapWriteError
}

// marshalInit builds the fMP4 init section (ftyp+moov) for p.
func marshalInit(p *streaming.Params) ([]byte, error) {
	if p == nil {
		return nil, errors.New("no codec parameters")
	}
	var codec fmp4.Codec
	switch p.Codec {
	case streaming.H264:
		codec = &fmp4.CodecH264{SPS: p.SPS, PPS: p.PPS}
	case streaming.H265:
		codec = &fmp4.CodecH265{VPS: p.VPS, SPS: p.SPS, PPS: p.PPS}
	default:
		return nil, fmt.Errorf("codec %q not supported", p.Codec)
	}
	init, err := mp4.MarshalInit(codec, streaming.ClockRate)
	if err != nil {
		return nil, fmt.Errorf("marshal %s init: %w", p.Codec, err)
	}
	return init, nil
}

func ticksToDuration(t int64) time.Duration {
	return time.Duration(t) * time.Second / streaming.ClockRate
}

func durationToTicks(d time.Duration) int64 {
	return int64(d) * streaming.ClockRate / int64(time.Second)
}

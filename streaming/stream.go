// Package streaming fans out each camera's access units from its single ingest session
// to every consumer (the segmenter, live viewers) without ever blocking the ingest.
package streaming

import (
	"sync"
	"sync/atomic"
	"time"
)

// Codec names a video codec carried by a Stream.
type Codec string

// Supported video codecs.
const (
	H264 Codec = "h264"
	H265 Codec = "h265"
)

// Params are a stream's codec parameters. A Params value is immutable once published:
// a parameter change is signalled by a new *Params on the next Unit.
type Params struct {
	Codec  Codec
	VPS    []byte // H.265 only
	SPS    []byte
	PPS    []byte
	Width  int
	Height int
}

// ClockRate is the rate of Unit PTS/DTS ticks (the RTP video clock).
const ClockRate = 90000

// Unit is one access unit as received from the camera. Units are shared between readers
// and must not be modified after Write.
type Unit struct {
	// Epoch changes whenever timestamps stop being continuous with the previous unit:
	// a new camera session, a clock jump. Consumers start over on a new epoch.
	Epoch uint64
	// PTS and DTS in ClockRate ticks, continuous within an Epoch.
	PTS, DTS int64
	// Time is the UTC wall-clock time of PTS.
	Time time.Time
	// Key is true for a random access unit (IDR / IRAP with parameters available).
	Key bool
	// NALUs without start codes.
	NALUs [][]byte
	// Params in force for this unit.
	Params *Params
}

// Delivery is what a Reader receives: a unit, and how many units this reader lost just
// before it because it was not keeping up.
type Delivery struct {
	Unit *Unit
	Lost uint64
}

// Stream is one camera's fan-out point. Write never blocks: a reader whose queue is full
// loses units, which are counted, and resumes at the next keyframe.
// Safe for concurrent use.
type Stream struct {
	mu      sync.Mutex
	readers map[*Reader]struct{}
	gop     GOP[*Unit] // so a new live reader can start at once
	closed  bool
	written atomic.Uint64
}

// New returns an empty Stream.
func New() *Stream {
	return &Stream{readers: map[*Reader]struct{}{}}
}

// Write publishes u to every reader without blocking.
func (s *Stream) Write(u *Unit) {
	s.written.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.gop.Add(u, u.Key)
	for r := range s.readers {
		r.offer(u)
	}
}

// Written returns how many units have been written.
func (s *Stream) Written() uint64 { return s.written.Load() }

// Subscribe adds a reader with a queue of size units. With fromGOP the reader first
// receives the latest GOP, so it can start decoding at once.
func (s *Stream) Subscribe(size int, fromGOP bool) *Reader {
	r := &Reader{s: s, c: make(chan Delivery, size)}
	r.gate.WaitKey() // a reader starts at a keyframe
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(r.c)
		return r
	}
	if fromGOP {
		for _, u := range s.gop.Units() {
			r.offer(u)
		}
	}
	s.readers[r] = struct{}{}
	return r
}

// Close ends the stream: every reader's channel is closed after its queued units.
func (s *Stream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for r := range s.readers {
		close(r.c)
	}
	s.readers = nil
	s.gop.Reset()
}

// Reader receives a Stream's units through a bounded queue.
type Reader struct {
	s     *Stream
	c     chan Delivery
	gate  KeyGate // guarded by s.mu
	lost  uint64  // guarded by s.mu: lost since the last delivery
	drops atomic.Uint64
}

func (r *Reader) offer(u *Unit) {
	if !r.gate.Admit(u.Key) {
		if r.lost > 0 { // not before the first delivery: a new reader loses nothing
			r.lost++
			r.drops.Add(1)
		}
		return
	}
	select {
	case r.c <- Delivery{Unit: u, Lost: r.lost}:
		r.lost = 0
	default:
		r.lost++
		r.drops.Add(1)
		r.gate.WaitKey()
	}
}

// C returns the channel of deliveries; it is closed when the reader or stream closes.
func (r *Reader) C() <-chan Delivery { return r.c }

// Dropped returns how many units this reader has lost in total.
func (r *Reader) Dropped() uint64 { return r.drops.Load() }

// Close unsubscribes the reader and closes its channel.
func (r *Reader) Close() {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if _, ok := r.s.readers[r]; ok {
		delete(r.s.readers, r)
		close(r.c)
	}
}

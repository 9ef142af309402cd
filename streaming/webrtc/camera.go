package webrtc

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/streaming"
)

// Packetise once, send per viewer, start from the cached GOP.
//
// A camera has one worker that reads its Stream once and turns each access unit into
// RTP packets once. Those packets are immutable and shared by every viewer. Each viewer
// has its own pion TrackLocalStaticRTP and a bounded queue drained by its own writer
// goroutine, which only rewrites the sequence number and timestamp in a header copy.
//
// Why not one TrackLocalStaticRTP bound to every PeerConnection: it writes to all
// bindings in turn from the caller's goroutine, so one viewer whose ICE-TCP socket is
// full (pion waits up to 5 s per write) would stall the camera for everyone, and it
// cannot send the cached GOP to a newcomer alone. With a shared track a new viewer
// would wait up to a whole GOP (median 1 s at a 2 s GOP) for the next keyframe; here it
// gets the latest GOP at once, as soon as DTLS is up. SRTP encryption is per viewer in
// either design, so the per-viewer track costs one goroutine and a header copy.

// rtpPayloadMax keeps packets under common MTUs after SRTP, TURN and VPN overhead.
const rtpPayloadMax = 1200

// viewerQueue is how many queue items (a live unit, or a whole GOP burst) a viewer may
// lag behind before it drops and resumes at the next keyframe (~2.5 s at 25 fps).
const viewerQueue = 64

// streamQueue bounds the camera worker's subscription; it holds a whole GOP so the
// initial GOP replay from the Stream is not truncated.
const streamQueue = 1024

// unit is one access unit packetised for RTP. Shared by all viewers: read only.
type unit struct {
	pkts []*rtp.Packet
	key  bool
	ts   uint32 // RTP timestamp of pkts
}

// item is what a viewer's writer sends: one live unit or a burst (the cached GOP).
type item struct {
	units []*unit
	burst bool
}

// camera reads one Stream and feeds its viewers.
type camera struct {
	id      string
	st      *streaming.Stream
	log     *slog.Logger
	refs    int // guarded by Server.mu
	ready   chan struct{}
	ended   chan struct{}
	done    chan struct{}
	quit    chan struct{}
	reader  *streaming.Reader
	fault   atomic.Pointer[error]
	profile atomic.Pointer[string] // profile-level-id of the camera's SPS

	packets, bytes, drops prometheus.Counter
	viewerGauge           prometheus.Gauge
	firstFrame            prometheus.Observer

	mu      sync.Mutex
	gop     streaming.GOP[*unit]
	viewers map[*viewer]struct{}
}

func startCamera(id string, st *streaming.Stream, m *metrics, log *slog.Logger) *camera {
	c := &camera{
		id:          id,
		st:          st,
		log:         log,
		ready:       make(chan struct{}),
		ended:       make(chan struct{}),
		done:        make(chan struct{}),
		quit:        make(chan struct{}),
		viewers:     map[*viewer]struct{}{},
		packets:     m.packets.WithLabelValues(id),
		bytes:       m.bytes.WithLabelValues(id),
		drops:       m.drops.WithLabelValues(id),
		viewerGauge: m.viewers.WithLabelValues(id),
		firstFrame:  m.firstFrame.WithLabelValues(id),
	}
	// Subscribe here, not in the goroutine, so the GOP replay is queued before run starts.
	c.reader = st.Subscribe(streamQueue, true)
	go c.run()
	return c
}

func (c *camera) err() error {
	if p := c.fault.Load(); p != nil {
		return *p
	}
	return nil
}

// stop ends the worker and waits for it.
func (c *camera) stop() {
	close(c.quit)
	c.reader.Close()
	<-c.done
}

func (c *camera) run() {
	defer close(c.done)
	defer close(c.ended)
	var seed [6]byte
	_, _ = rand.Read(seed[:])
	seq := binary.BigEndian.Uint16(seed[:2])
	ssrc := uint32(0) // replaced per binding by pion
	enc := &rtph264.Encoder{
		PayloadType:           96, // replaced per binding by pion
		SSRC:                  &ssrc,
		InitialSequenceNumber: &seq,
		PayloadMaxSize:        rtpPayloadMax,
		PacketizationMode:     1,
	}
	if err := enc.Init(); err != nil {
		c.setFault(err)
		close(c.ready)
		return
	}
	tsBase := binary.BigEndian.Uint32(seed[2:])

	// The GOP replay was queued by Subscribe: take it into the cache before the first
	// viewer is served, so every viewer, first or later, starts with a burst.
	backlog := len(c.reader.C())
	isReady := false
	markReady := func() {
		if !isReady {
			isReady = true
			close(c.ready)
		}
	}
	defer markReady()
	if backlog == 0 {
		markReady()
	}
	for n := 0; ; n++ {
		var d streaming.Delivery
		var ok bool
		select {
		case <-c.quit:
			return
		case d, ok = <-c.reader.C():
		}
		if !ok {
			c.setFault(ErrUnavailable)
			return
		}
		if d.Lost > 0 {
			c.drops.Add(float64(d.Lost))
		}
		u := d.Unit
		if u.Params != nil && u.Params.Codec != streaming.H264 {
			// Sessions end and the next offer reports it; an H.264 substream is needed.
			c.setFault(ErrCodecNotSupported)
			return
		}
		if u.PTS != u.DTS {
			// Reordered frames: browsers' WebRTC decoders show almost nothing of them.
			// Sessions end and the next offer says why.
			c.setFault(&LiveUnavailableError{Reason: ReasonBFrames})
			return
		}
		pu, err := packetise(enc, u, tsBase)
		if err != nil {
			c.log.Warn("packetise access unit", "err", err)
			continue
		}
		if u.Key && u.Params != nil && len(u.Params.SPS) >= 4 {
			p := hex.EncodeToString(u.Params.SPS[1:4])
			c.profile.Store(&p)
		}
		c.publish(pu, n < backlog)
		if n+1 >= backlog {
			markReady()
		}
	}
}

func (c *camera) setFault(err error) { c.fault.Store(&err) }

// publish adds pu to the GOP cache and, unless it is part of the initial backlog, sends
// it to every viewer without blocking.
func (c *camera) publish(pu *unit, backlog bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gop.Add(pu, pu.key) // bursts already queued keep reading the previous GOP
	if backlog {
		return
	}
	for v := range c.viewers {
		v.offer(item{units: []*unit{pu}}, pu.key, c.drops)
	}
}

// add starts feeding v, first with the cached GOP. It returns false if v was removed.
func (c *camera) add(v *viewer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v.removed {
		return false
	}
	if gop := c.gop.Units(); len(gop) > 0 {
		v.offer(item{units: gop, burst: true}, true, c.drops)
	}
	c.viewers[v] = struct{}{}
	c.viewerGauge.Inc()
	return true
}

// remove stops feeding v.
func (c *camera) remove(v *viewer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v.removed = true
	if _, ok := c.viewers[v]; ok {
		delete(c.viewers, v)
		c.viewerGauge.Dec()
	}
}

// packetise turns an access unit into RTP packets. A keyframe always carries SPS and
// PPS in band: browsers learn them nowhere else.
func packetise(enc *rtph264.Encoder, u *streaming.Unit, tsBase uint32) (*unit, error) {
	nalus := make([][]byte, 0, len(u.NALUs)+2)
	hasSPS, hasPPS := false, false
	for _, n := range u.NALUs {
		if len(n) == 0 {
			continue
		}
		switch n[0] & 0x1f {
		case 7:
			hasSPS = true
		case 8:
			hasPPS = true
		case 9: // access unit delimiter: useless over RTP
			continue
		}
		nalus = append(nalus, n)
	}
	if u.Key && u.Params != nil {
		var ps [][]byte
		if !hasSPS && len(u.Params.SPS) > 0 {
			ps = append(ps, u.Params.SPS)
		}
		if !hasPPS && len(u.Params.PPS) > 0 {
			ps = append(ps, u.Params.PPS)
		}
		nalus = append(ps, nalus...)
	}
	if len(nalus) == 0 {
		return nil, errEmptyUnit
	}
	pkts, err := enc.Encode(nalus)
	if err != nil {
		return nil, err
	}
	ts := tsBase + uint32(u.PTS)
	for _, p := range pkts {
		p.Timestamp = ts
	}
	return &unit{pkts: pkts, key: u.Key, ts: ts}, nil
}

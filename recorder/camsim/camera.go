package camsim

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/clip"
)

// behindLimit is how late a unit may be before the camera skips ahead
// instead of sending a burst, as a real camera would after a stall.
const behindLimit = time.Second

// camera loops its clip into a ServerStream while running.
type camera struct {
	index  int
	path   string
	clip   *clip.Clip
	log    *slog.Logger
	tsBase uint32         // RTP timestamp at epoch; kept across restarts
	skips  *atomic.Uint64 // the server's count of skips to real time

	// Guarded by Server.mu.
	epoch  time.Time // when loop 0 started, monotonic and wall
	stream *gortsplib.ServerStream
	cancel context.CancelFunc
	done   chan struct{}
}

// auEncoder packetises access units: rtph264.Encoder or rtph265.Encoder.
type auEncoder interface {
	Encode(au [][]byte) ([]*rtp.Packet, error)
}

func newCamera(index int, cl *clip.Clip, skips *atomic.Uint64, log *slog.Logger) *camera {
	name := "cam" + strconv.Itoa(index)
	return &camera{
		skips:  skips,
		index:  index,
		path:   name,
		clip:   cl,
		log:    log.With("camera", name),
		tsBase: rand.Uint32(),
	}
}

func (c *camera) running() bool { return c.stream != nil }

// start publishes a new stream and starts sending into it.
func (c *camera) start(rs *gortsplib.Server) error {
	var forma format.Format
	var enc auEncoder
	vps, sps, pps := c.clip.Params()
	switch c.clip.Codec() {
	case streaming.H264:
		f := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: sps, PPS: pps}
		e, err := f.CreateEncoder()
		if err != nil {
			return err
		}
		forma, enc = f, e
	default:
		f := &format.H265{PayloadTyp: 96, VPS: vps, SPS: sps, PPS: pps}
		e, err := f.CreateEncoder()
		if err != nil {
			return err
		}
		forma, enc = f, e
	}
	media := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	stream := &gortsplib.ServerStream{Server: rs, Desc: &description.Session{Medias: []*description.Media{media}}}
	if err := stream.Initialize(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.stream, c.cancel, c.done = stream, cancel, make(chan struct{})
	go c.run(ctx, c.done, c.epoch, stream, media, enc)
	return nil
}

// stop stops sending and closes the stream, which disconnects its clients.
func (c *camera) stop() {
	if c.stream == nil {
		return
	}
	c.cancel()
	<-c.done
	c.stream.Close()
	c.stream, c.cancel, c.done = nil, nil, nil
}

// seek returns the loop and unit to send next at time now: the first
// keyframe at or after the clip position of now.
func (c *camera) seek(epoch, now time.Time) (loop int64, i int) {
	d := durationToTicks(c.clip.Duration())
	e := max(durationToTicks(now.Sub(epoch)), 0)
	loop, pos := e/d, e%d
	for i, f := range c.clip.Frames() {
		if f.Key && f.DTS >= pos {
			return loop, i
		}
	}
	return loop + 1, 0
}

// run sends each access unit at its decode time relative to epoch until ctx
// ends. Loop k adds k clip durations to every timestamp.
func (c *camera) run(ctx context.Context, done chan<- struct{}, epoch time.Time,
	stream *gortsplib.ServerStream, media *description.Media, enc auEncoder,
) {
	defer close(done)
	frames := c.clip.Frames()
	loopTicks := durationToTicks(c.clip.Duration())
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	writeFailed := false

	loop, i := c.seek(epoch, time.Now())
	for {
		f := &frames[i]
		base := loop * loopTicks
		wait := time.Until(epoch.Add(ticksToDuration(base + f.DTS)))
		if wait < -behindLimit {
			c.log.Warn("camera fell behind real time; skipping to the next keyframe", "late", -wait)
			c.skips.Add(1)
			loop, i = c.seek(epoch, time.Now())
			continue
		}
		if wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}

		pkts, err := enc.Encode(f.NALUs)
		if err != nil {
			c.log.Error("packetise access unit", "err", err)
		}
		pts := base + f.PTS
		ts := c.tsBase + uint32(pts) // clip ticks are the RTP clock (90 kHz)
		ntp := epoch.Add(ticksToDuration(pts))
		for _, p := range pkts {
			p.Timestamp = ts
			if err := stream.WritePacketRTPWithNTP(media, p, ntp); err != nil && !writeFailed {
				writeFailed = true // log once, not 25 times a second
				c.log.Error("write rtp packet", "err", err)
			}
		}

		if i++; i == len(frames) {
			i, loop = 0, loop+1
		}
	}
}

// ticksToDuration converts 90 kHz ticks to a duration without overflowing.
func ticksToDuration(t int64) time.Duration {
	const s = streaming.ClockRate
	return time.Duration(t/s)*time.Second + time.Duration(t%s)*time.Second/s
}

// durationToTicks is the inverse of ticksToDuration, rounding to the nearest
// tick so that a round trip (a clip's Duration) gives back the same ticks.
func durationToTicks(d time.Duration) int64 {
	const s = streaming.ClockRate
	return int64(d/time.Second)*s + (int64(d%time.Second)*s+int64(time.Second)/2)/int64(time.Second)
}

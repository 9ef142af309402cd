package camsim

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// rtpClock is the RTP clock rate of H.264 and H.265.
const rtpClock = 90000

// behindLimit is how late a unit may be before the camera skips ahead
// instead of sending a burst, as a real camera would after a stall.
const behindLimit = time.Second

// camera loops its clip into a ServerStream while running.
type camera struct {
	index  int
	path   string
	clip   *Clip
	log    *slog.Logger
	tsBase uint32 // RTP timestamp at epoch; kept across restarts

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

func newCamera(index int, clip *Clip, log *slog.Logger) *camera {
	name := "cam" + strconv.Itoa(index)
	return &camera{
		index:  index,
		path:   name,
		clip:   clip,
		log:    log.With("camera", name),
		tsBase: rand.Uint32(),
	}
}

func (c *camera) running() bool { return c.stream != nil }

// start publishes a new stream and starts sending into it.
func (c *camera) start(rs *gortsplib.Server) error {
	var forma format.Format
	var enc auEncoder
	switch c.clip.codec {
	case CodecH264:
		f := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: c.clip.params[0], PPS: c.clip.params[1]}
		e, err := f.CreateEncoder()
		if err != nil {
			return err
		}
		forma, enc = f, e
	default:
		f := &format.H265{PayloadTyp: 96, VPS: c.clip.params[0], SPS: c.clip.params[1], PPS: c.clip.params[2]}
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
	e := max(durationToTicks(now.Sub(epoch), c.clip.timeScale), 0)
	loop, pos := e/c.clip.duration, e%c.clip.duration
	for i, u := range c.clip.units {
		if u.key && u.dts >= pos {
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
	clip := c.clip
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	writeFailed := false

	loop, i := c.seek(epoch, time.Now())
	for {
		u := &clip.units[i]
		base := loop * clip.duration
		wait := time.Until(epoch.Add(ticksToDuration(base+u.dts, clip.timeScale)))
		if wait < -behindLimit {
			c.log.Warn("camera fell behind real time; skipping to the next keyframe", "late", -wait)
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

		pkts, err := enc.Encode(u.nalus)
		if err != nil {
			c.log.Error("packetise access unit", "err", err)
		}
		pts := base + u.pts
		ts := c.tsBase + uint32(rescale(pts, clip.timeScale, rtpClock))
		ntp := epoch.Add(ticksToDuration(pts, clip.timeScale))
		for _, p := range pkts {
			p.Timestamp = ts
			if err := stream.WritePacketRTPWithNTP(media, p, ntp); err != nil && !writeFailed {
				writeFailed = true // log once, not 25 times a second
				c.log.Error("write rtp packet", "err", err)
			}
		}

		if i++; i == len(clip.units) {
			i, loop = 0, loop+1
		}
	}
}

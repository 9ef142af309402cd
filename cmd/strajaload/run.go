package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/clip"
)

// clipDuration is how long the cached clip is; the simulator loops it.
const clipDuration = 10 * time.Second

// ensureClip returns --clip, or a clip for o made once and cached under the user's
// cache directory (encoding 1080p takes a while on a small machine).
func ensureClip(ctx context.Context, o options, log *slog.Logger) (string, error) {
	if o.clip != "" {
		return o.clip, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("clip cache: %w", err)
	}
	dir := filepath.Join(cache, "straja")
	path := filepath.Join(dir, fmt.Sprintf("clip-h264-%dx%d-%dfps-%dk-%s.mp4",
		o.width, o.height, o.fps, o.bitrateKbps, clipDuration))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("clip cache: %w", err)
	}
	log.Info("making the camera clip (once; cached)", "path", path)
	tmp := path + ".tmp.mp4"
	spec := camsim.ClipSpec{Codec: streaming.H264, Width: o.width, Height: o.height, FPS: o.fps,
		GOP: 2 * o.fps, BitrateKbps: o.bitrateKbps, Duration: clipDuration}
	if err := spec.Make(ctx, tmp); err != nil {
		_ = os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("clip cache: %w", err)
	}
	return path, nil
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// run sets up the cameras, the recorder and the viewers, measures, and tears all of it
// down again. The result is returned even with an error when something was measured.
func run(ctx context.Context, o options, log *slog.Logger) (*result, error) {
	clk := clockTicks()
	clipPath, err := ensureClip(ctx, o, log)
	if err != nil {
		return nil, err
	}
	c, err := clip.Load(clipPath)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(clipPath)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	res := &result{opts: o, Cameras: o.cameras,
		Clip: clipInfo{Width: c.Width(), Height: c.Height(), FPS: c.FrameRate(), GOP: c.KeyInterval(),
			Mbps: float64(fi.Size()) * 8 / c.Duration().Seconds() / 1e6}}

	dir, err := os.MkdirTemp("", "strajaload-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	if o.keep {
		log.Info("keeping the run's files", "dir", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	sim, err := camsim.New(camsim.Options{Listen: "127.0.0.1:0", Cameras: o.cameras, Clip: clipPath},
		log.With("component", "camsim"))
	if err != nil {
		return nil, fmt.Errorf("camera simulator: %w", err)
	}
	if err := sim.Start(); err != nil {
		return nil, fmt.Errorf("camera simulator: %w", err)
	}
	defer sim.Close()

	var (
		tgt target // what the window measures first: straja, or ffmpeg with --ffmpeg-baseline
		ff  *ffmpegTarget
		st  *strajaTarget
		sb  *strajaTarget // --versus-straja
		mio *minioServer
	)
	if o.ffmpegBaseline || o.versusFFmpeg {
		if ff, err = startFFmpeg(o, dir, sim, log); err != nil {
			return nil, err
		}
		defer ff.stop()
	}
	if !o.ffmpegBaseline {
		if o.store == storeMinio {
			if mio, err = startMinio(ctx, dir, log); err != nil {
				return nil, err
			}
			defer mio.stop(10 * time.Second)
		}
		if st, err = startStraja(ctx, o, o.strajaBin, dir, "strajaload", sim, mio, log); err != nil {
			return nil, err
		}
		defer st.stop()
	}
	if o.versusStraja != "" {
		if sb, err = startStraja(ctx, o, o.versusStraja, filepath.Join(dir, "versus"), "strajaload-versus", sim, mio, log); err != nil {
			return nil, err
		}
		defer sb.stop()
	}
	switch {
	case o.ffmpegBaseline:
		res.Recorder = "ffmpeg -c copy"
		tgt = ff
	case o.versusFFmpeg:
		res.Recorder = "straja (" + o.store + ") with ffmpeg -c copy"
		res.VersusName = "ffmpeg"
		tgt = st
	case o.versusStraja != "":
		res.Recorder = "straja (" + o.store + ") with " + o.versusStraja
		res.VersusName = "other"
		tgt = st
	default:
		res.Recorder = "straja (" + o.store + ")"
		tgt = st
	}
	if ff != nil {
		if err := ff.waitRecording(ctx, 90*time.Second); err != nil {
			return nil, err
		}
	}
	for _, s := range []*strajaTarget{st, sb} {
		if s == nil {
			continue
		}
		if err := s.waitOnline(ctx, 90*time.Second); err != nil {
			return nil, err
		}
	}
	online := time.Now()
	log.Info("every camera is recording; warming up", "warmup", o.warmup)
	if err := sleepCtx(ctx, o.warmup); err != nil {
		return nil, err
	}

	var vs *viewerSet
	if o.viewers > 0 {
		log.Info("opening viewers", "viewers", o.viewers, "camera", cameraID(o.viewerCamera))
		if vs, err = openViewers(ctx, "http://"+st.addr, cameraID(o.viewerCamera), o.viewers, o.viewerRcvbuf); err != nil {
			return nil, err
		}
		defer vs.close()
		log.Info("viewers receiving video", "ok", len(vs.viewers), "failed", len(vs.errs))
	}

	// The measurement window.
	var m0 metrics
	if st != nil {
		if m0, err = st.scrape(); err != nil {
			return nil, err
		}
	}
	if vs != nil {
		vs.reset()
	}
	res.LoadBefore = loadAverage()
	skips0 := sim.Skips()
	udp0, udpErr := readUDPStats()
	self0, err := readUsage([]string{"self"})
	if err != nil {
		return nil, err
	}
	primary := &sampler{t: tgt}
	samplers := []*sampler{primary}
	var versus *sampler
	switch {
	case o.versusFFmpeg:
		versus = &sampler{t: ff}
	case sb != nil:
		versus = &sampler{t: sb}
	}
	if versus != nil {
		samplers = append(samplers, versus)
	}
	for _, s := range samplers {
		if err := s.begin(); err != nil {
			return nil, err
		}
	}
	var mio0 procUsage
	if mio != nil {
		mio0, _ = readUsage([]string{mio.pid()})
	}
	t0 := time.Now()
	log.Info("measuring", "duration", o.duration, "pids", tgt.pids())
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for end := t0.Add(o.duration); time.Now().Before(end); {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		for _, s := range samplers {
			if err := s.sample(); err != nil {
				return nil, fmt.Errorf("during measurement: %w", err)
			}
		}
	}
	secs := time.Since(t0).Seconds()
	for _, s := range samplers {
		if err := s.end(clk, secs); err != nil {
			return nil, err
		}
	}
	self1, err := readUsage([]string{"self"})
	if err != nil {
		return nil, err
	}
	res.Window = time.Since(t0)
	if mio != nil {
		if mio1, err := readUsage([]string{mio.pid()}); err == nil {
			res.MinioCPUPercent = 100 * float64(mio1.ticks-mio0.ticks) / clk / res.Window.Seconds()
		}
	}
	res.LoadAfter = loadAverage()
	res.SimulatorSkips = sim.Skips() - skips0
	if udp1, err := readUDPStats(); err == nil && udpErr == nil {
		res.UDPRcvbufErrors = udp1.rcvbufErrors - udp0.rcvbufErrors
		res.UDPStatsOK = true
	}
	res.usage = primary.u
	if versus != nil {
		res.Versus = &versus.u
	}
	res.ToolCPUPercent = 100 * float64(self1.ticks-self0.ticks) / clk / secs

	if st != nil {
		m1, err := st.scrape()
		if err != nil {
			return res, err
		}
		res.Straja = strajaStatsFrom(m0, m1, secs)
		// Segments closed until now must all reach the store.
		if err := st.waitStored(ctx, m1, 2*time.Minute, res.Straja); err != nil {
			return res, err
		}
		res.Straja.SegmentsExpected = expectedSegments(o.cameras, t0.Add(res.Window).Sub(online), o.segmentDuration)
	}
	if vs != nil {
		res.Viewers = viewerStatsFrom(vs, cameraID(o.viewerCamera), o.viewers, secs)
	}
	res.judge()
	return res, nil
}

// sampler measures one recorder's processes over the window: CPU from start to end, RSS
// and PSS every second.
type sampler struct {
	t       target
	u0      procUsage
	rssSum  uint64
	samples int
	u       usage
}

func (s *sampler) begin() error {
	var err error
	s.u0, err = readUsage(s.t.pids())
	return err
}

func (s *sampler) sample() error {
	if err := s.t.check(); err != nil {
		return err
	}
	u, err := readUsage(s.t.pids())
	if err != nil {
		return err
	}
	s.rssSum += u.rssKB
	s.samples++
	s.u.RSSPeakKB = max(s.u.RSSPeakKB, u.rssKB)
	s.u.PSSPeakKB = max(s.u.PSSPeakKB, u.pssKB)
	return nil
}

func (s *sampler) end(clk, secs float64) error {
	u1, err := readUsage(s.t.pids())
	if err != nil {
		return err
	}
	s.u.CPUPercent = 100 * float64(u1.ticks-s.u0.ticks) / clk / secs
	s.u.RSSMeanKB = s.rssSum / uint64(max(s.samples, 1))
	s.u.RSSPeakKB = max(s.u.RSSPeakKB, u1.rssKB)
	s.u.PSSPeakKB = max(s.u.PSSPeakKB, u1.pssKB)
	return nil
}

// expectedSegments is how many segments cameras recording for d should have closed: a
// segment ends at the first keyframe after its duration, so each camera may be one short.
func expectedSegments(cameras int, d, segment time.Duration) int {
	return cameras * int(d/segment)
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/straja-nvr/straja/recorder/camsim"
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
	spec := camsim.ClipSpec{Codec: camsim.CodecH264, Width: o.width, Height: o.height, FPS: o.fps,
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
		tgt target
		st  *strajaTarget
		mio *minioServer
	)
	if o.ffmpegBaseline {
		res.Recorder = "ffmpeg -c copy"
		f, err := startFFmpeg(o, dir, sim, log)
		if err != nil {
			return nil, err
		}
		defer f.stop()
		if err := f.waitRecording(ctx, 90*time.Second); err != nil {
			return nil, err
		}
		tgt = f
	} else {
		res.Recorder = "straja (" + o.store + ")"
		if o.store == storeMinio {
			if mio, err = startMinio(ctx, dir, log); err != nil {
				return nil, err
			}
			defer mio.stop(10 * time.Second)
		}
		if st, err = startStraja(ctx, o, dir, sim, mio, log); err != nil {
			return nil, err
		}
		defer st.stop()
		if err := st.waitOnline(ctx, 90*time.Second); err != nil {
			return nil, err
		}
		tgt = st
	}
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
	udp0, udpErr := readUDPStats()
	self0, err := readUsage([]string{"self"})
	if err != nil {
		return nil, err
	}
	u0, err := readUsage(tgt.pids())
	if err != nil {
		return nil, err
	}
	var mio0 procUsage
	if mio != nil {
		mio0, _ = readUsage([]string{mio.pid()})
	}
	t0 := time.Now()
	log.Info("measuring", "duration", o.duration, "pids", tgt.pids())
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var rssSum uint64
	samples := 0
	for end := t0.Add(o.duration); time.Now().Before(end); {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		if err := tgt.check(); err != nil {
			return nil, fmt.Errorf("during measurement: %w", err)
		}
		u, err := readUsage(tgt.pids())
		if err != nil {
			return nil, fmt.Errorf("during measurement: %w", err)
		}
		rssSum += u.rssKB
		samples++
		res.RSSPeakKB = max(res.RSSPeakKB, u.rssKB)
		res.PSSPeakKB = max(res.PSSPeakKB, u.pssKB)
	}
	u1, err := readUsage(tgt.pids())
	if err != nil {
		return nil, err
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
	if udp1, err := readUDPStats(); err == nil && udpErr == nil {
		res.UDPRcvbufErrors = udp1.rcvbufErrors - udp0.rcvbufErrors
		res.UDPStatsOK = true
	}
	secs := res.Window.Seconds()
	res.CPUPercent = 100 * float64(u1.ticks-u0.ticks) / clk / secs
	res.ToolCPUPercent = 100 * float64(self1.ticks-self0.ticks) / clk / secs
	res.RSSMeanKB = rssSum / uint64(max(samples, 1))
	res.RSSPeakKB = max(res.RSSPeakKB, u1.rssKB)
	res.PSSPeakKB = max(res.PSSPeakKB, u1.pssKB)

	if st != nil {
		m1, err := st.scrape()
		if err != nil {
			return res, err
		}
		res.Straja = strajaStatsFrom(m0, m1, secs)
	}
	if vs != nil {
		res.Viewers = viewerStatsFrom(vs, cameraID(o.viewerCamera), o.viewers, secs)
	}
	res.judge()
	return res, nil
}

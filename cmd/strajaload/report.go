package main

import (
	"fmt"
	"io"
	"runtime"
	"time"
)

// Targets the README promises; judge says which a run missed.
const (
	targetCPUPerCamera = 0.6 // % of one core
	targetRSSPerCamera = 3.0 // MB
	targetLoss         = 0.1 // %
)

// result is what one run measured.
type result struct {
	opts     options
	Recorder string
	Cameras  int
	Clip     clipInfo
	Window   time.Duration
	// LoadBefore and LoadAfter are /proc/loadavg around the window: other work on the
	// machine skews the figures.
	LoadBefore, LoadAfter string
	usage                 // the recorder's (straja's, with --versus-ffmpeg)
	// Versus is the other recorder's usage in the same window: the ffmpeg processes with
	// --versus-ffmpeg, the other straja build with --versus-straja. VersusName names it.
	Versus     *usage
	VersusName string
	// SimulatorSkips counts the simulated cameras' skips ahead to real time during the
	// window: the machine was too busy to send every frame on time.
	SimulatorSkips uint64
	// ToolCPUPercent is strajaload's own CPU: the simulated cameras and the viewers.
	ToolCPUPercent float64
	// MinioCPUPercent is the private MinIO's CPU (storage, not the recorder).
	MinioCPUPercent float64
	// UDPRcvbufErrors counts datagrams the kernel dropped on any full socket (all
	// processes) during the window: where viewer loss happens on loopback.
	UDPRcvbufErrors uint64
	UDPStatsOK      bool
	Straja          *strajaStats
	Viewers         *viewerStats
	Failures        []string // the run does not show what it should
	Misses          []string // a target was missed
}

// usage is what a recorder's processes used over the window.
type usage struct {
	// CPUPercent is user+system CPU over the window, in % of one core.
	CPUPercent float64
	// RSSPeakKB and RSSMeanKB are resident memory, sampled every second.
	RSSPeakKB, RSSMeanKB uint64
	// PSSPeakKB is the peak proportional set size: shared library pages split between
	// the processes sharing them (fair for many ffmpeg processes; ≈ RSS for straja).
	PSSPeakKB uint64
}

// cpuRatio is straja's CPU as a multiple of the other recorder's, 0 without one.
func (r *result) cpuRatio() float64 {
	if r.Versus == nil || r.Versus.CPUPercent <= 0 {
		return 0
	}
	return r.CPUPercent / r.Versus.CPUPercent
}

type clipInfo struct {
	Width, Height int
	FPS           float64
	GOP           time.Duration
	Mbps          float64
}

// strajaStats are straja's own counters over the window.
type strajaStats struct {
	FramesPerSec, IngestMbps        float64
	SegmentsWritten, SegmentsStored float64 // in the window
	SegmentsStoredTotal             float64 // since start, at the end of the window
	// SegmentsWrittenTotal were closed in the spool from start to the end of the window;
	// SegmentsStoredAfter were stored once uploads caught up (they should be equal), and
	// SegmentsExpected is what the cameras' recording time implies.
	SegmentsWrittenTotal, SegmentsStoredAfter float64
	SegmentsExpected                          int
	Gaps, Reconnects, UploadErrors            float64
	GapsTotal                                 float64 // since start
	// Upload latency of the segments uploaded in the window, from straja's histogram.
	Uploads, UploadP50, UploadP99       float64
	UploadsOK                           bool
	LiveDroppedUnits, LiveViewersMetric float64
	// Go runtime figures at the end of the window, to explain RSS.
	HeapInuseMB, HeapAllocMB, StackMB, GoSysMB, Goroutines float64
}

func strajaStatsFrom(m0, m1 metrics, secs float64) *strajaStats {
	d := func(name string) float64 { return m1[name] - m0[name] }
	p50, n, ok := histogramQuantile(m0, m1, "straja_upload_seconds", 0.5)
	p99, _, _ := histogramQuantile(m0, m1, "straja_upload_seconds", 0.99)
	return &strajaStats{
		Uploads: n, UploadP50: p50, UploadP99: p99, UploadsOK: ok,
		GapsTotal:           m1["straja_recording_gaps_total"],
		FramesPerSec:        d("straja_camera_frames_total") / secs,
		IngestMbps:          d("straja_camera_bytes_total") * 8 / secs / 1e6,
		SegmentsWritten:     d("straja_segments_written_total"),
		SegmentsStored:      d("straja_segments_stored_total"),
		SegmentsStoredTotal: m1["straja_segments_stored_total"],
		Gaps:                d("straja_recording_gaps_total"),
		Reconnects:          d("straja_camera_reconnects_total"),
		UploadErrors:        d("straja_upload_errors_total"),
		LiveDroppedUnits:    d("straja_live_dropped_units_total"),
		LiveViewersMetric:   m1["straja_live_viewers"],
		HeapInuseMB:         m1["go_memstats_heap_inuse_bytes"] / (1 << 20),
		HeapAllocMB:         m1["go_memstats_heap_alloc_bytes"] / (1 << 20),
		StackMB:             m1["go_memstats_stack_inuse_bytes"] / (1 << 20),
		GoSysMB:             m1["go_memstats_sys_bytes"] / (1 << 20),
		Goroutines:          m1["go_goroutines"],
	}
}

// viewerStats summarise the viewers' counters over the window.
type viewerStats struct {
	Camera              string
	Requested, Working  int
	Errors              []string
	LossMean, LossMax   float64 // %
	Packets, Lost       int64
	Mbps                float64 // all viewers together
	Silent              int     // viewers that received nothing in the window
	SlowestPacketsShare float64 // fewest packets of a viewer / most, 1 when all got the same
}

func viewerStatsFrom(vs *viewerSet, camera string, requested int, secs float64) *viewerStats {
	s := &viewerStats{Camera: camera, Requested: requested, Working: len(vs.viewers), SlowestPacketsShare: 1}
	for _, err := range vs.errs {
		s.Errors = append(s.Errors, err.Error())
	}
	var sum float64
	var bytes, minP, maxP int64
	for i, v := range vs.viewers {
		c := v.snapshot()
		p := c.lossPercent()
		sum += p
		s.LossMax = max(s.LossMax, p)
		s.Packets += c.received
		s.Lost += c.lost()
		bytes += c.bytes
		if c.received == 0 {
			s.Silent++
		}
		if i == 0 {
			minP, maxP = c.received, c.received
		}
		minP, maxP = min(minP, c.received), max(maxP, c.received)
	}
	if n := len(vs.viewers); n > 0 {
		s.LossMean = sum / float64(n)
	}
	if maxP > 0 {
		s.SlowestPacketsShare = float64(minP) / float64(maxP)
	}
	s.Mbps = float64(bytes) * 8 / secs / 1e6
	return s
}

// judge fills Failures (the run is not valid) and Misses (a target was missed).
func (r *result) judge() {
	fail := func(format string, a ...any) { r.Failures = append(r.Failures, fmt.Sprintf(format, a...)) }
	miss := func(format string, a ...any) { r.Misses = append(r.Misses, fmt.Sprintf(format, a...)) }
	if s := r.Straja; s != nil {
		wantFPS := float64(r.Cameras) * r.Clip.FPS
		switch {
		case s.FramesPerSec < 0.95*wantFPS && r.SimulatorSkips > 0:
			fail("straja received %.0f frames/s, want %.0f (%d cameras × %.0f fps): the simulated cameras fell behind real time %d times and dropped frames (the machine is too busy; load average %s)",
				s.FramesPerSec, wantFPS, r.Cameras, r.Clip.FPS, r.SimulatorSkips, r.LoadAfter)
		case s.FramesPerSec < 0.95*wantFPS:
			fail("straja received %.0f frames/s, want %.0f (%d cameras × %.0f fps): it is falling behind", s.FramesPerSec, wantFPS, r.Cameras, r.Clip.FPS)
		}
		if s.Gaps > 0 {
			fail("%.0f recording gaps during the window", s.Gaps)
		}
		if s.Reconnects > 0 {
			fail("%.0f camera reconnects during the window", s.Reconnects)
		}
		if s.UploadErrors > 0 {
			fail("%.0f upload errors during the window", s.UploadErrors)
		}
		if s.GapsTotal > 0 {
			fail("%.0f recording gaps since start", s.GapsTotal)
		}
		if s.SegmentsStoredAfter < s.SegmentsWrittenTotal {
			fail("%.0f of %.0f segments written were stored", s.SegmentsStoredAfter, s.SegmentsWrittenTotal)
		}
		// A segment ends at a keyframe, so a camera may close one fewer than its time implies.
		if s.SegmentsWrittenTotal < float64(s.SegmentsExpected-r.Cameras) {
			fail("%.0f segments written, want about %d (%d cameras' recording time)", s.SegmentsWrittenTotal, s.SegmentsExpected, r.Cameras)
		}
		// Per-camera targets are for recording; viewers cost on top.
		if c := r.CPUPercent / float64(r.Cameras); c > targetCPUPerCamera && r.Viewers == nil {
			miss("CPU %.2f %% of one core per camera > %.1f %%", c, targetCPUPerCamera)
		}
		if m := mb(r.RSSPeakKB) / float64(r.Cameras); m > targetRSSPerCamera && r.Viewers == nil {
			miss("RSS %.2f MB per camera > %.0f MB", m, targetRSSPerCamera)
		}
	}
	if v := r.Viewers; v != nil {
		if v.Working < v.Requested {
			fail("%d of %d viewers failed to connect (first error: %s)", v.Requested-v.Working, v.Requested, first(v.Errors))
		}
		if v.Silent > 0 {
			fail("%d viewers received nothing during the window", v.Silent)
		}
		if v.LossMax >= targetLoss {
			miss("viewer loss max %.3f %% ≥ %.1f %%", v.LossMax, targetLoss)
		}
		if r.Straja != nil && r.Straja.LiveDroppedUnits > 0 {
			miss("straja dropped %.0f access units for slow viewers (each viewer resumes at the next keyframe)", r.Straja.LiveDroppedUnits)
		}
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return s[0]
}

func mb(kb uint64) float64 { return float64(kb) / 1024 }

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// seconds formats a latency in ms below 1 s.
func seconds(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.0f ms", s*1000)
	}
	return fmt.Sprintf("%.2f s", s)
}

// print writes the report and a Markdown row for the README.
func (r *result) print(w io.Writer) {
	o := r.opts
	fmt.Fprintf(w, "\nstrajaload: %s\n", r.Recorder)
	fmt.Fprintf(w, "  cameras    %d × %dx%d %.0f fps H.264, %.2f Mbit/s, keyframe every %v; %v segments\n",
		r.Cameras, r.Clip.Width, r.Clip.Height, r.Clip.FPS, r.Clip.Mbps, r.Clip.GOP, o.segmentDuration)
	fmt.Fprintf(w, "  window     %.1f s after %v warm-up; %d CPUs; load average %s before, %s after\n",
		r.Window.Seconds(), o.warmup, runtime.NumCPU(), r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(w, "  recorder   CPU %.1f %% of one core = %.2f %% per camera; RSS peak %.1f MB = %.2f MB per camera (mean %.1f MB); PSS peak %.1f MB = %.2f MB per camera\n",
		r.CPUPercent, r.CPUPercent/float64(r.Cameras), mb(r.RSSPeakKB), mb(r.RSSPeakKB)/float64(r.Cameras), mb(r.RSSMeanKB),
		mb(r.PSSPeakKB), mb(r.PSSPeakKB)/float64(r.Cameras))
	if f := r.Versus; f != nil {
		fmt.Fprintf(w, "  %-10s CPU %.1f %% of one core = %.2f %% per camera; RSS peak %.1f MB = %.2f MB per camera; PSS peak %.1f MB = %.2f MB per camera (same cameras, same window)\n",
			r.VersusName, f.CPUPercent, f.CPUPercent/float64(r.Cameras), mb(f.RSSPeakKB), mb(f.RSSPeakKB)/float64(r.Cameras),
			mb(f.PSSPeakKB), mb(f.PSSPeakKB)/float64(r.Cameras))
		fmt.Fprintf(w, "  ratio      straja / %s: CPU %.2f×, RSS %.2f×, PSS %.2f×\n",
			r.VersusName, r.cpuRatio(), ratio(r.RSSPeakKB, f.RSSPeakKB), ratio(r.PSSPeakKB, f.PSSPeakKB))
	}
	if s := r.Straja; s != nil {
		fmt.Fprintf(w, "  segments   %.0f written since start (about %d expected), %.0f of them stored after uploads caught up; %.0f gaps since start\n",
			s.SegmentsWrittenTotal, s.SegmentsExpected, s.SegmentsStoredAfter, s.GapsTotal)
		if s.UploadsOK {
			fmt.Fprintf(w, "  uploads    %.0f in the window: latency p50 %s, p99 %s (from straja's histogram, interpolated in its bucket)\n",
				s.Uploads, seconds(s.UploadP50), seconds(s.UploadP99))
		}
		fmt.Fprintf(w, "  ingest     %.0f frames/s, %.1f Mbit/s; segments written %.0f, stored %.0f in the window (%.0f since start); gaps %.0f, reconnects %.0f, upload errors %.0f\n",
			s.FramesPerSec, s.IngestMbps, s.SegmentsWritten, s.SegmentsStored, s.SegmentsStoredTotal, s.Gaps, s.Reconnects, s.UploadErrors)
		fmt.Fprintf(w, "  go runtime heap in use %.1f MB (live objects %.1f MB), stacks %.1f MB, obtained from the OS %.1f MB; %.0f goroutines\n",
			s.HeapInuseMB, s.HeapAllocMB, s.StackMB, s.GoSysMB, s.Goroutines)
	}
	if v := r.Viewers; v != nil {
		fmt.Fprintf(w, "  viewers    %d/%d of %s: loss mean %.3f %%, max %.3f %% (%d of %d packets); %.1f Mbit/s received in all; slowest viewer got %.1f %% of the fastest's packets\n",
			v.Working, v.Requested, v.Camera, v.LossMean, v.LossMax, v.Lost, v.Packets+v.Lost, v.Mbps, 100*v.SlowestPacketsShare)
		if r.UDPStatsOK {
			buf := "the system default"
			if o.viewerRcvbuf > 0 {
				buf = fmt.Sprintf("%d bytes (capped by net.core.rmem_max)", o.viewerRcvbuf)
			}
			fmt.Fprintf(w, "             kernel dropped %d UDP datagrams on full receive buffers (all sockets on the machine; viewer sockets buffer %s)\n",
				r.UDPRcvbufErrors, buf)
		}
		if r.Straja != nil {
			fmt.Fprintf(w, "             straja: %.0f live viewers, %.0f access units dropped for slow viewers\n",
				r.Straja.LiveViewersMetric, r.Straja.LiveDroppedUnits)
		}
	}
	fmt.Fprintf(w, "  load tool  CPU %.1f %% of one core (camera simulator%s; not counted above); the simulated cameras skipped ahead to real time %d times\n",
		r.ToolCPUPercent, map[bool]string{true: " and viewers", false: ""}[r.Viewers != nil], r.SimulatorSkips)
	if r.MinioCPUPercent > 0 {
		fmt.Fprintf(w, "  minio      CPU %.1f %% of one core (the object store; not counted above)\n", r.MinioCPUPercent)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  ERROR      %s\n", f)
	}
	for _, m := range r.Misses {
		fmt.Fprintf(w, "  MISSED     %s\n", m)
	}
	if len(r.Failures) == 0 && len(r.Misses) == 0 && r.Straja != nil {
		if r.Viewers != nil {
			fmt.Fprintf(w, "  targets    met (viewer loss < %.1f %%; per-camera CPU and RSS are judged in runs without viewers)\n", targetLoss)
		} else {
			fmt.Fprintf(w, "  targets    met (≤ %.1f %% CPU and ≤ %.0f MB per camera)\n", targetCPUPerCamera, targetRSSPerCamera)
		}
	}
	fmt.Fprintf(w, "\nREADME row:\n%s\n%s\n", markdownHeader, r.markdownRow())
}

const markdownHeader = "| recorder | cameras | viewers | CPU (% of one core) | CPU per camera | RSS | RSS per camera | PSS per camera | viewer loss mean / max | CPU ÷ the other recorder's, same run | segments stored / written, gaps | upload p50 / p99 | load average |\n" +
	"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"

func (r *result) markdownRow() string {
	viewers, loss := "—", "—"
	if v := r.Viewers; v != nil {
		viewers = fmt.Sprintf("%d of %s (%.1f Mbit/s)", v.Working, v.Camera, v.Mbps)
		loss = fmt.Sprintf("%.3f %% / %.3f %%", v.LossMean, v.LossMax)
	}
	vs, segs, up := "—", "—", "—"
	if f := r.Versus; f != nil {
		vs = fmt.Sprintf("%.2f× (%s %.1f %%, %.2f MB PSS per camera)", r.cpuRatio(), r.VersusName, f.CPUPercent, mb(f.PSSPeakKB)/float64(r.Cameras))
	}
	if s := r.Straja; s != nil {
		segs = fmt.Sprintf("%.0f / %.0f, %.0f gaps", s.SegmentsStoredAfter, s.SegmentsWrittenTotal, s.GapsTotal)
		if s.UploadsOK {
			up = seconds(s.UploadP50) + " / " + seconds(s.UploadP99)
		}
	}
	return fmt.Sprintf("| %s | %d × %dp%.0f H.264 %.1f Mbit/s | %s | %.1f %% | %.2f %% | %.0f MB | %.2f MB | %.2f MB | %s | %s | %s | %s | %s |",
		r.Recorder, r.Cameras, r.Clip.Height, r.Clip.FPS, r.Clip.Mbps, viewers, r.CPUPercent, r.CPUPercent/float64(r.Cameras),
		mb(r.RSSPeakKB), mb(r.RSSPeakKB)/float64(r.Cameras), mb(r.PSSPeakKB)/float64(r.Cameras), loss, vs, segs, up, r.LoadBefore)
}

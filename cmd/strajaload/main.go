// Command strajaload measures what Straja costs per camera. It simulates N RTSP cameras
// in its own process, runs the real `straja serve` binary against them (or, with
// --ffmpeg-baseline, one `ffmpeg -c copy` recorder per camera; with --versus-ffmpeg both
// at once on the same cameras, so machine noise hits both alike), optionally opens M
// WebRTC viewers of one camera, and reports the recorder's CPU and memory per camera and
// the viewers' packet loss, as a table and as a Markdown row for the README.
//
// It reads /proc, so it runs on Linux only. The simulator and the viewers run inside
// strajaload, so their cost is not counted against the recorder.
//
//	go run ./cmd/strajaload --cameras 20 --duration 30s --store minio
//	go run ./cmd/strajaload --cameras 20 --duration 30s --ffmpeg-baseline
//	go run ./cmd/strajaload --cameras 20 --duration 60s --versus-ffmpeg
//	go run ./cmd/strajaload --cameras 21 --viewers 100 --viewer-camera 21 --store minio
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "strajaload:", err)
		os.Exit(2)
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	res, err := run(ctx, o, log)
	if res != nil {
		res.print(os.Stdout)
	}
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "strajaload: interrupted; every child process was stopped")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "strajaload: ERROR:", err)
		os.Exit(1)
	}
	if res != nil && len(res.Failures) > 0 {
		os.Exit(1)
	}
}

// options are the command-line flags, validated by parseFlags.
type options struct {
	cameras         int
	width, height   int
	fps             int
	bitrateKbps     int
	duration        time.Duration
	warmup          time.Duration
	store           string
	segmentDuration time.Duration
	viewers         int
	viewerCamera    int
	viewerRcvbuf    int
	ffmpegBaseline  bool
	versusFFmpeg    bool
	versusStraja    string
	strajaBin       string
	clip            string
	keep            bool
	verbose         bool
}

// Storage choices for --store.
const (
	storeMinio = "minio"
	storeDisk  = "disk"
)

// maxCameras bounds --cameras; one machine's file descriptors and ports run out beyond.
const maxCameras = 256

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("strajaload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: strajaload [flags]\n\nRuns straja (or ffmpeg) against simulated cameras and reports CPU, memory and live-view loss.\n\nflags:")
		fs.PrintDefaults()
	}
	fs.IntVar(&o.cameras, "cameras", 20, fmt.Sprintf("number of simulated cameras (1-%d)", maxCameras))
	fs.IntVar(&o.width, "width", 1920, "clip width in pixels (even)")
	fs.IntVar(&o.height, "height", 1080, "clip height in pixels (even)")
	fs.IntVar(&o.fps, "fps", 25, "clip frame rate (keyframe every 2 s)")
	fs.IntVar(&o.bitrateKbps, "bitrate", 4000, "clip bitrate in kbit/s")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "measurement window")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "wait after every camera is online, before measuring")
	fs.StringVar(&o.store, "store", storeMinio, "straja storage: minio (a private MinIO server) or disk")
	fs.DurationVar(&o.segmentDuration, "segment-duration", time.Minute, "segment length (straja and ffmpeg)")
	fs.IntVar(&o.viewers, "viewers", 0, "WebRTC viewers to open (straja only)")
	fs.IntVar(&o.viewerCamera, "viewer-camera", 1, "camera number (1-based) the viewers watch")
	fs.IntVar(&o.viewerRcvbuf, "viewer-rcvbuf", 4<<20, "receive buffer of each viewer's UDP socket in bytes, capped by net.core.rmem_max (0: system default)")
	fs.BoolVar(&o.ffmpegBaseline, "ffmpeg-baseline", false, "measure one `ffmpeg -c copy` segment recorder per camera instead of straja")
	fs.BoolVar(&o.versusFFmpeg, "versus-ffmpeg", false, "run one `ffmpeg -c copy` segment recorder per camera next to straja, on the same cameras at once, and report straja's CPU and memory as a ratio of ffmpeg's")
	fs.StringVar(&o.versusStraja, "versus-straja", "", "another straja binary to run next to straja on the same cameras at once (compares two builds under the same load)")
	fs.StringVar(&o.strajaBin, "straja-bin", "", "prebuilt straja binary (default: go build ./cmd/straja)")
	fs.StringVar(&o.clip, "clip", "", "MP4 clip for the cameras (default: made with ffmpeg and cached)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs, logs, recordings)")
	fs.BoolVar(&o.verbose, "v", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, o.validate()
}

func (o options) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if o.cameras < 1 || o.cameras > maxCameras {
		bad("--cameras %d: want 1-%d", o.cameras, maxCameras)
	}
	if o.width <= 0 || o.height <= 0 || o.width%2 != 0 || o.height%2 != 0 {
		bad("--width/--height %dx%d: want positive even numbers", o.width, o.height)
	}
	if o.fps < 1 || o.fps > 120 {
		bad("--fps %d: want 1-120", o.fps)
	}
	if o.bitrateKbps < 50 || o.bitrateKbps > 100_000 {
		bad("--bitrate %d: want 50-100000 kbit/s", o.bitrateKbps)
	}
	if o.duration < 5*time.Second {
		bad("--duration %v: want at least 5s", o.duration)
	}
	if o.warmup < 0 {
		bad("--warmup %v: must not be negative", o.warmup)
	}
	if o.store != storeMinio && o.store != storeDisk {
		bad("--store %q: want minio or disk", o.store)
	}
	if o.segmentDuration < 2*time.Second || o.segmentDuration > time.Hour {
		bad("--segment-duration %v: want 2s-1h", o.segmentDuration)
	}
	if o.viewers < 0 {
		bad("--viewers %d: must not be negative", o.viewers)
	}
	if o.viewers > 0 && (o.viewerCamera < 1 || o.viewerCamera > o.cameras) {
		bad("--viewer-camera %d: want a camera between 1 and %d", o.viewerCamera, o.cameras)
	}
	if o.viewerRcvbuf < 0 {
		bad("--viewer-rcvbuf %d: must not be negative", o.viewerRcvbuf)
	}
	if o.viewers > 0 && o.ffmpegBaseline {
		bad("--viewers needs straja: ffmpeg has no live view")
	}
	if n := btoi(o.versusFFmpeg) + btoi(o.ffmpegBaseline) + btoi(o.versusStraja != ""); n > 1 {
		bad("--versus-ffmpeg, --versus-straja and --ffmpeg-baseline: choose one (--versus-ffmpeg measures both recorders)")
	}
	if o.viewers > 0 && (o.versusFFmpeg || o.versusStraja != "") {
		bad("--viewers with --versus-ffmpeg or --versus-straja: viewers would count against one recorder only")
	}
	return errors.Join(errs...)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

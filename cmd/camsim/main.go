// Command camsim serves simulated RTSP cameras for demos, drills and load
// tests: each camera loops a real H.264 or H.265 clip at real-time pace.
//
//	camsim -listen 127.0.0.1:8554 -cameras 6 -h265 5,6 -user admin -pass secret
//	camsim -cameras 20 -clip 1080p-4mbps.mp4 -flap cam3:5s/20s
//
// Bitrate, resolution and GOP come from the clip (-clip); nothing is
// re-encoded. SIGINT or SIGTERM stops it.
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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/streaming"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	var usage usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, &usage):
		if !usage.shown {
			fmt.Fprintln(os.Stderr, "camsim:", err)
		}
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "camsim:", err)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line; shown means the flag
// package already printed it with the usage.
type usageError struct {
	error
	shown bool
}

// run serves cameras until ctx ends. It prints the camera URLs to stdout
// and logs to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("camsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts   camsim.Options
		h265   string
		flaps  flapList
		udp    = fs.Bool("udp", false, "also offer the UDP transport (TCP is always offered)")
		udpRTP = fs.Int("udp-port", 0, "even UDP port for RTP (RTCP uses the next one); 0 picks a free pair")
		debug  = fs.Bool("debug", false, "log every RTSP connection")
	)
	fs.StringVar(&opts.Listen, "listen", "127.0.0.1:8554", "RTSP listen address (host:port)")
	fs.IntVar(&opts.Cameras, "cameras", 4, "number of cameras, served as /cam1 … /camN")
	fs.Func("codec", "codec of every camera: h264 or h265 (default: the -clip's codec, else h264)", func(v string) error {
		opts.Codec = streaming.Codec(v) // camsim.New rejects others
		return nil
	})
	fs.StringVar(&h265, "h265", "", "comma-separated camera numbers that send H.265, e.g. 4,5")
	fs.StringVar(&opts.Clip, "clip", "", "MP4 file (H.264 or H.265) replacing the built-in 640x360 clip of its codec")
	fs.StringVar(&opts.Username, "user", "", "require this RTSP user name (with -pass)")
	fs.StringVar(&opts.Password, "pass", "", "require this RTSP password (with -user)")
	fs.Var(&flaps, "flap", "take a camera off the air periodically, e.g. cam3:5s/20s (5 s down every 20 s); repeatable")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: camsim [flags]\n\nServes simulated RTSP cameras at rtsp://LISTEN/cam1 … /camN.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err, true}
	}
	if fs.NArg() > 0 {
		return usageError{error: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	opts.UDP, opts.UDPPort = *udp, *udpRTP
	if h265 != "" {
		opts.Codecs = make(map[int]streaming.Codec)
		for _, f := range strings.Split(h265, ",") {
			n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(f), "cam"))
			if err != nil {
				return usageError{error: fmt.Errorf("-h265 %q: %q is not a camera number", h265, f)}
			}
			opts.Codecs[n] = streaming.H265
		}
	}
	for _, f := range flaps {
		if f.cam > opts.Cameras {
			return usageError{error: fmt.Errorf("-flap cam%d: there are only %d cameras", f.cam, opts.Cameras)}
		}
	}

	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	s, err := camsim.New(opts, log)
	if err != nil {
		return usageError{error: err}
	}
	if err := s.Start(); err != nil {
		return err
	}
	defer s.Close()

	for i := 1; i <= s.Cameras(); i++ {
		c := s.Clip(i)
		fmt.Fprintf(stdout, "%s\t%s %dx%d %.4g fps, keyframe every %v\n",
			s.URL(i), c.Codec(), c.Width(), c.Height(), c.FrameRate(), c.KeyInterval())
	}
	if opts.Username != "" {
		fmt.Fprintf(stdout, "credentials required: user %q and the -pass password\n", opts.Username)
	}

	var wg sync.WaitGroup
	for _, f := range flaps {
		wg.Go(func() { f.run(ctx, s, log) })
	}
	<-ctx.Done()
	wg.Wait()
	log.Info("stopping")
	return nil
}

// flap takes a camera down for a while in every period.
type flap struct {
	cam         int
	down, every time.Duration
}

func (f flap) run(ctx context.Context, s *camsim.Server, log *slog.Logger) {
	t := time.NewTimer(f.every - f.down)
	defer t.Stop()
	for up := true; ; up = !up {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if up {
			err = s.StopCamera(f.cam)
			t.Reset(f.down)
		} else {
			err = s.StartCamera(f.cam)
			t.Reset(f.every - f.down)
		}
		if err != nil {
			log.Error("flap", "camera", f.cam, "err", err)
		}
	}
}

// flapList parses repeated -flap values of the form camN:DOWN/EVERY.
type flapList []flap

func (l *flapList) String() string { return "" }

func (l *flapList) Set(v string) error {
	cam, spec, ok := strings.Cut(v, ":")
	downS, everyS, ok2 := strings.Cut(spec, "/")
	if !ok || !ok2 {
		return fmt.Errorf("want camN:DOWN/EVERY, e.g. cam3:5s/20s")
	}
	n, err := strconv.Atoi(strings.TrimPrefix(cam, "cam"))
	if err != nil || n < 1 {
		return fmt.Errorf("camera %q: want cam1, cam2, …", cam)
	}
	down, err := time.ParseDuration(downS)
	if err != nil {
		return fmt.Errorf("down time: %w", err)
	}
	every, err := time.ParseDuration(everyS)
	if err != nil {
		return fmt.Errorf("period: %w", err)
	}
	if down <= 0 || every <= down {
		return fmt.Errorf("want 0 < down (%v) < period (%v)", down, every)
	}
	*l = append(*l, flap{cam: n, down: down, every: every})
	return nil
}

package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/recorder/camsim"
)

// demoMain builds the demo: the embedded demo config, an in-process camera simulator
// and disk storage under --data.
func demoMain(args []string, stderr io.Writer, log *slog.Logger) (*Main, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP listen address")
	data := fs.String("data", "./straja-demo-data", "data directory (segments, spool, catalog)")
	cameras := fs.Int("cameras", 4, "number of simulated cameras (1-64)")
	segDur := fs.Duration("segment-duration", 0, "segment duration (2s-1h; default from the demo config)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("demo: unexpected argument %q", fs.Arg(0))
	}
	if *cameras < 1 || *cameras > 64 {
		return nil, fmt.Errorf("demo: --cameras must be between 1 and 64, got %d", *cameras)
	}
	cfg, err := configs.Demo()
	if err != nil {
		return nil, err
	}
	cfg.Listen = *listen
	cfg.DataDir = *data
	cfg.Storage.Disk.Path = *data + "/segments"
	cfg.Spool.Dir = *data + "/spool"
	if *segDur != 0 {
		cfg.Recording.SegmentDuration = configs.Duration(*segDur)
	}
	// Extra cameras alternate between the two sites, named after the first ones.
	for i := len(cfg.Cameras); i < *cameras; i++ {
		c := cfg.Cameras[i%2]
		c.ID = fmt.Sprintf("%s-%d", c.Site, i+1)
		c.Name = fmt.Sprintf("%s %d", c.Name, i+1)
		cfg.Cameras = append(cfg.Cameras, c)
	}
	cfg.Cameras = cfg.Cameras[:*cameras]

	sim, err := camsim.New(camsim.Options{Listen: "127.0.0.1:0", Cameras: *cameras, Codec: "h264"}, log.With("component", "camsim"))
	if err != nil {
		return nil, err
	}
	if err := sim.Start(); err != nil {
		return nil, fmt.Errorf("demo: camera simulator: %w", err)
	}
	for i := range cfg.Cameras {
		cfg.Cameras[i].URL = sim.URL(i + 1)
	}
	if err := cfg.Validate(); err != nil {
		sim.Close()
		return nil, fmt.Errorf("demo: %w", err)
	}
	log.Info("demo cameras simulated", "rtsp", sim.Addr(), "cameras", *cameras,
		"segment_duration", time.Duration(cfg.Recording.SegmentDuration))
	return &Main{Config: cfg, Log: log, Sim: sim}, nil
}

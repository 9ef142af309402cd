package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/web/auth"
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
	// Free ports by default, so that demos side by side do not collide.
	udpPort := fs.Int("webrtc-udp-port", 0, "UDP port for live view media (0: a free port)")
	tcpPort := fs.Int("webrtc-tcp-port", 0, "ICE-TCP port for live view media (0: a free port, -1: none)")
	password := fs.String("demo-password", "", "password of the demo users guard, admin and itc (default: a random one, printed)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	demo := &DemoUsers{Password: *password}
	if demo.Password == "" {
		p, err := auth.RandomPassword()
		if err != nil {
			return nil, err
		}
		demo.Password, demo.Random = p, true
	}
	for _, u := range auth.Roles {
		if err := auth.CheckPassword(u, demo.Password); err != nil {
			return nil, fmt.Errorf("demo: --demo-%w", err)
		}
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
	// Errors about a value a flag set must name the flag, not the embedded demo.yaml.
	cfg.Listen = *listen
	cfg.SetByFlag("listen", "listen")
	cfg.DataDir = *data
	cfg.Storage.Disk.Path = *data + "/segments"
	cfg.Spool.Dir = *data + "/spool"
	cfg.SetByFlag("data_dir", "data")
	cfg.SetByFlag("storage.disk.path", "data")
	cfg.SetByFlag("spool.dir", "data")
	if *segDur != 0 {
		cfg.Recording.SegmentDuration = configs.Duration(*segDur)
		cfg.SetByFlag("recording.segment_duration", "segment-duration")
	}
	cfg.WebRTC.UDPPort, cfg.WebRTC.TCPPort = *udpPort, *tcpPort
	cfg.SetByFlag("webrtc.udp_port", "webrtc-udp-port")
	cfg.SetByFlag("webrtc.tcp_port", "webrtc-tcp-port")
	// Extra cameras alternate between the two sites, named after the first ones.
	for i := len(cfg.Cameras); i < *cameras; i++ {
		c := cfg.Cameras[i%2]
		c.ID = fmt.Sprintf("%s-%d", c.Site, i+1)
		c.Name = fmt.Sprintf("%s %d", c.Name, i+1)
		cfg.Cameras = append(cfg.Cameras, c)
	}
	cfg.Cameras = cfg.Cameras[:*cameras]

	sim, err := camsim.New(camsim.Options{Listen: "127.0.0.1:0", Cameras: *cameras, Codec: streaming.H264}, log.With("component", "camsim"))
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
	return &Main{Config: cfg, Log: log, Sim: sim, Demo: demo}, nil
}

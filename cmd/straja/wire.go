package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/recorder/alerts"
	"github.com/straja-nvr/straja/recorder/gaps"
	"github.com/straja-nvr/straja/recorder/ingest"
	"github.com/straja-nvr/straja/recorder/spool"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/web/auth"
	"github.com/straja-nvr/straja/web/events"
)

// This file is where the configuration becomes the recorder's options: no package
// below cmd reads the configuration schema.

// recorderOptions wires the recorder from cfg: the store opened, camera passwords
// applied, errors shown to operators redacted with cfg's secrets.
func recorderOptions(ctx context.Context, cfg *configs.Config) (recorder.Options, error) {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return recorder.Options{}, err
	}
	cams, err := cameraConfigs(cfg)
	if err != nil {
		return recorder.Options{}, err
	}
	return recorder.Options{
		DataDir: cfg.DataDir,
		Store:   st,
		Spool: spool.Options{
			Dir:              cfg.Spool.Dir,
			MaxBytes:         int64(cfg.Spool.MaxBytes),
			SegmentDuration:  time.Duration(cfg.Recording.SegmentDuration),
			FragmentDuration: time.Duration(cfg.Recording.FragmentDuration),
		},
		Cameras: cams,
		Redact:  func(s string) string { return configs.Redact(s, cfg) },
	}, nil
}

// cameraConfigs converts the configuration file's cameras for the recorder: passwords
// from password_env applied, site names looked up.
func cameraConfigs(cfg *configs.Config) ([]recorder.CameraConfig, error) {
	sites := make(map[string]string, len(cfg.Sites))
	for _, s := range cfg.Sites {
		sites[s.ID] = s.Name
	}
	out := make([]recorder.CameraConfig, 0, len(cfg.Cameras))
	var errs []error
	for _, c := range cfg.Cameras {
		cc := recorder.CameraConfig{ID: c.ID, Name: c.Name, Site: c.Site, SiteName: sites[c.Site],
			Transport: ingest.Transport(c.Transport), ReadTimeout: time.Duration(c.ReadTimeout), Record: c.Recording()}
		var err error
		if cc.URL, err = c.DialURL(); err != nil {
			errs = append(errs, err)
		}
		if c.LiveURL != "" {
			if cc.LiveURL, err = c.DialLiveURL(); err != nil {
				errs = append(errs, err)
			}
		}
		out = append(out, cc)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, errors.New(configs.Redact(err.Error(), cfg))
	}
	return out, nil
}

// openStore opens the storage backend cfg names.
func openStore(ctx context.Context, cfg *configs.Config) (storage.Store, error) {
	switch cfg.Storage.Backend {
	case configs.BackendS3:
		s := cfg.Storage.S3
		st, err := storage.NewS3(ctx, storage.S3Options{Endpoint: s.Endpoint, Bucket: s.Bucket, Prefix: s.Prefix,
			AccessKey: s.AccessKey, SecretKey: s.SecretKey, Region: s.Region, TLS: s.TLS})
		if err != nil {
			return nil, fmt.Errorf("storage.s3: %s", configs.Redact(err.Error(), cfg))
		}
		return st, nil
	default:
		st, err := storage.NewDisk(cfg.Storage.Disk.Path)
		if err != nil {
			return nil, fmt.Errorf("storage.disk: %w", err)
		}
		return st, nil
	}
}

// catalogPath is where the catalog of cfg's data_dir lives.
func catalogPath(cfg *configs.Config) string { return recorder.CatalogPath(cfg.DataDir) }

// timelineGaps gives the playback timeline the gap ledger's causes.
type timelineGaps struct{ l *gaps.Ledger }

var _ playback.GapSource = timelineGaps{}

// Gaps returns the ledger's gaps; one that lasts ends now.
func (t timelineGaps) Gaps(ctx context.Context, camera string, from, to time.Time) ([]playback.Gap, error) {
	list, err := t.l.Gaps(ctx, camera, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]playback.Gap, len(list))
	now := time.Now().UTC()
	for i, g := range list {
		end := g.End
		if end.IsZero() {
			end = now
		}
		out[i] = playback.Gap{Start: g.Start, End: end, Cause: string(g.Cause)}
	}
	return out, nil
}

// publishCameraEvent puts a camera's state change or removal on the live event bus.
func publishCameraEvent(bus *events.Bus, ev recorder.Event) {
	if ev.State == "" && !ev.Removed {
		return // recording failures show as gaps and alerts
	}
	data := map[string]any{"state": ev.State}
	if ev.Removed {
		data = map[string]any{"removed": true}
	}
	if ev.Reason != "" {
		data["reason"] = ev.Reason
	}
	bus.Publish(events.Event{Type: events.TypeCameraState, Camera: ev.Camera, Site: ev.Site, At: ev.At, Data: data})
}

// alertSource gives the alert rules the recorder's figures.
type alertSource struct{ rec *recorder.Recorder }

var _ alerts.Source = alertSource{}

func (a alertSource) AlertCameras() []alerts.CameraFigures {
	cams := a.rec.Cameras()
	out := make([]alerts.CameraFigures, len(cams))
	for i, c := range cams {
		st := c.Stream
		out[i] = alerts.CameraFigures{ID: c.ID, Site: c.Site, Record: c.Record, Online: st.State == ingest.StateOnline,
			Since: st.Since, BitrateBps: st.BitrateBps, Lag: c.Lag, LagKnown: c.LagKnown,
			ClockOffset: st.ClockOffset, ClockKnown: st.ClockKnown}
	}
	return out
}

func (a alertSource) AlertService() alerts.ServiceFigures {
	s := a.rec.Service()
	return alerts.ServiceFigures{SpoolBytes: s.SpoolBytes, SpoolMaxBytes: s.SpoolMaxBytes, StoreProbed: s.StoreProbed,
		StoreReachable: s.StoreReachable}
}

// alertOptions wires alerting from cfg: its rules, and the webhook with the secret
// from the environment.
func alertOptions(cfg *configs.Config, reg prometheus.Registerer, log *slog.Logger) (alerts.Options, error) {
	window := time.Duration(cfg.Alerts.TamperWindow)
	opts := alerts.Options{TamperWindow: window, TamperSample: window / 360}
	for _, r := range cfg.Alerts.Rules {
		opts.Rules = append(opts.Rules, r.Rule())
	}
	w := cfg.Alerts.Webhook
	if w.SecretEnv == "" {
		return opts, nil // no secret, no webhook (configs requires one with any URL)
	}
	secret, ok := os.LookupEnv(w.SecretEnv)
	if !ok || secret == "" {
		return opts, fmt.Errorf("alerts.webhook.secret_env: environment variable %s is not set", w.SecretEnv)
	}
	wh, err := alerts.NewWebhook(alerts.WebhookOptions{URL: w.URL, Secret: []byte(secret), Attempts: w.Attempts,
		Timeout: time.Duration(w.Timeout)}, reg, log)
	if err != nil {
		return opts, err
	}
	opts.Webhook = wh
	return opts, nil
}

// publishAlert puts an alert's transition on the live event bus: a camera's to those
// who may view the camera, the service's to itc and admins.
func publishAlert(bus *events.Bus, a alerts.Alert) {
	ev := events.Event{Type: events.TypeAlert, Camera: a.Camera, Site: a.Site, Data: a}
	if a.Camera == "" {
		ev.Roles = []string{auth.RoleITC, auth.RoleAdmin}
	}
	bus.Publish(ev)
}

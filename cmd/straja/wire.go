package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/recorder/gaps"
	"github.com/straja-nvr/straja/recorder/ingest"
	"github.com/straja-nvr/straja/recorder/spool"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/playback"
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

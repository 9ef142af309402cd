package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/schollz/progressbar/v3"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/export"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/audit"
	"github.com/straja-nvr/straja/web/events"
)

// keysCommand runs `straja keys show|rotate`: the export signing keys.
func keysCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const keysUsage = "keys: want `keys show|rotate --config FILE`"
	if len(args) == 0 || (args[0] != "show" && args[0] != "rotate") {
		return errors.New(keysUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("keys %s: --config is required", sub)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("keys %s: unexpected argument %q", sub, fs.Arg(0))
	}
	cfg, err := loadConfig(*path, configs.WithoutCameraSecrets())
	if err != nil {
		return err
	}
	keys, err := export.OpenKeys(export.KeyDir(cfg.DataDir))
	if err != nil {
		return err
	}
	if sub == "rotate" {
		newID, oldID, err := keys.Rotate()
		if err != nil {
			return fmt.Errorf("keys rotate: %w", err)
		}
		fmt.Fprintf(stdout, "new signing key %s; %s is retired (exports signed with it still verify)\n", newID, oldID)
		db, err := state.Open(ctx, statePath(cfg))
		if err != nil {
			return fmt.Errorf("keys rotate: done, but not recorded in the audit trail: %w", err)
		}
		defer db.Close()
		if err := recordCommand(ctx, cfg, db, audit.Event{Action: audit.ActionExportKeys,
			Detail: map[string]any{"key_id": newID, "retired": oldID}}); err != nil {
			return fmt.Errorf("keys rotate: done, but %w", err)
		}
		return nil
	}
	list, err := keys.List()
	if err != nil {
		return err
	}
	for _, k := range list {
		state := "retired"
		if k.Current {
			state = "current"
		}
		fmt.Fprintf(stdout, "%s %s (%s)\n%s", k.ID, state, k.Created.Format(time.RFC3339), k.PEM)
	}
	return nil
}

// verifyCommand runs `straja verify CLIP [--manifest M] [--key PEM | --config F]`.
// It trusts only keys it is given (--key) or the service's own keys (the data_dir of
// --config, or of the default configuration), never a key file lying beside the clip.
func verifyCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	manifest := fs.String("manifest", "", "the clip's manifest (default: beside the clip)")
	keyFile := fs.String("key", "", "trusted public key, PEM (default: the keys of the data_dir)")
	path := fs.String("config", "", "config file whose data_dir holds the export keys")
	clip, err := parseWithArg(fs, args)
	if err != nil {
		return err
	}
	if clip == "" {
		return errors.New("verify: want `verify CLIP.mp4 [--manifest FILE] [--key PEM | --config FILE]`")
	}
	var keys export.KeyLookup
	switch {
	case *keyFile != "":
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return fmt.Errorf("verify: --key: %w", err)
		}
		pub, err := export.ParsePublicPEM(b)
		if err != nil {
			return fmt.Errorf("verify: --key %s: %w", *keyFile, err)
		}
		keys = export.OneKey(pub)
	default:
		dataDir := configs.Default().DataDir
		if *path != "" {
			cfg, err := loadConfig(*path, configs.WithoutCameraSecrets())
			if err != nil {
				return err
			}
			dataDir = cfg.DataDir
		}
		keys = export.LoadKeys(export.KeyDir(dataDir)).Public
	}
	m, err := export.VerifyFiles(export.FilesFor(clip, *manifest), keys)
	if err != nil {
		return fmt.Errorf("verify %s: FAILED: %w", clip, err)
	}
	fmt.Fprintf(stdout, "OK %s: camera %s (%s), %s to %s, %d bytes, sha256 %s, signed by key %s for %s on %s\n",
		filepath.Base(clip), m.Camera.ID, m.Camera.Name, m.Actual.From.Format(time.RFC3339),
		m.Actual.To.Format(time.RFC3339), m.Clip.Size, m.Clip.SHA256, m.KeyID, m.User,
		m.Created.Format(time.RFC3339))
	return nil
}

// parseWithArg parses flags that may come before or after one positional argument.
func parseWithArg(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() == 0 {
		return "", nil
	}
	arg := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return arg, nil
}

// exportCommand runs `straja export`: the same export the service makes, on this
// machine, written beside -o. It reads the store and the catalog (which the service
// may be writing) and records the export in the audit trail.
func exportCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	camera := fs.String("camera", "", "camera id")
	fromS := fs.String("from", "", "start: RFC 3339, or YYYY-MM-DD HH:MM[:SS] in Europe/Bucharest")
	toS := fs.String("to", "", "end, as --from")
	out := fs.String("o", "", "clip file to write (.mp4); the manifest and signature go beside it")
	reason := fs.String("reason", "", "why the clip is exported (recorded in the manifest and the audit trail)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("export: unexpected argument %q", fs.Arg(0))
	}
	for _, f := range []struct{ name, v string }{{"config", *path}, {"camera", *camera}, {"from", *fromS},
		{"to", *toS}, {"o", *out}, {"reason", *reason}} {
		if strings.TrimSpace(f.v) == "" {
			return fmt.Errorf("export: --%s is required", f.name)
		}
	}
	cfg, err := loadConfig(*path, configs.WithoutCameraSecrets())
	if err != nil {
		return err
	}
	from, err := parseCLITime(*fromS)
	if err != nil {
		return fmt.Errorf("export: --from: %w", err)
	}
	to, err := parseCLITime(*toS)
	if err != nil {
		return fmt.Errorf("export: --to: %w", err)
	}
	if err := export.CheckRange(from, to, time.Duration(cfg.Export.MaxRange)); err != nil {
		return fmt.Errorf("export: --%w", err)
	}
	req := export.Request{Camera: *camera, From: from, To: to, Reason: strings.TrimSpace(*reason), User: localUser()}
	found := false
	sites := map[string]string{}
	for _, s := range cfg.Sites {
		sites[s.ID] = s.Name
	}
	for _, c := range cfg.Cameras {
		if c.ID == *camera {
			req.CameraName, req.Site, req.SiteName, found = c.Name, c.Site, sites[c.Site], true
		}
	}
	if !found {
		return fmt.Errorf("export: --camera: %q is not a configured camera", *camera)
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	cat, err := storage.OpenCatalog(catalogPath(cfg))
	if err != nil {
		return err
	}
	defer cat.Close()
	keys, err := export.OpenKeys(export.KeyDir(cfg.DataDir))
	if err != nil {
		return err
	}
	db, err := state.Open(ctx, statePath(cfg))
	if err != nil {
		return err
	}
	defer db.Close()
	if err := recordCommand(ctx, cfg, db, audit.Event{Action: audit.ActionExport, User: req.User, Camera: req.Camera,
		Detail: map[string]any{"from": from.UTC(), "to": to.UTC(), "reason": req.Reason, "file": *out}}); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	b := &export.Builder{Store: st, Catalog: cat, Keys: keys}
	var bar *progressbar.ProgressBar
	files := export.Files{Clip: *out, Manifest: export.ManifestPathFor(*out)}
	files.Signature = files.Manifest + ".sig"
	m, err := b.Build(ctx, req, files, func(done, total int64) {
		if bar == nil {
			bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(stderr),
				progressbar.OptionSetDescription("exporting"), progressbar.OptionShowBytes(true))
		}
		_ = bar.Set64(done)
	})
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(stdout, "exported %s (%d bytes, %d segments, %s to %s)\nmanifest %s\nsignature %s (key %s)\n",
		files.Clip, m.Clip.Size, len(m.Segments), m.Actual.From.Format(time.RFC3339), m.Actual.To.Format(time.RFC3339),
		files.Manifest, files.Signature, m.KeyID)
	return nil
}

// parseCLITime reads RFC 3339, or a wall-clock time in Europe/Bucharest.
func parseCLITime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	loc, err := time.LoadLocation("Europe/Bucharest")
	if err != nil {
		return time.Time{}, err
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339 (2026-11-25T14:05:00Z) or "+
		"2026-11-25 16:05 (Europe/Bucharest)", s)
}

// localUser names who ran a command on the server.
func localUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "local:" + u.Username
	}
	return "local"
}

// newExporter sets up the service's exports: the signing key (made at first start),
// and the queue over the recorder's catalog and store, with files in data_dir/exports.
func newExporter(ctx context.Context, cfg *configs.Config, rec *recorder.Recorder, db *state.State,
	bus *events.Bus, log *slog.Logger) (*export.Exporter, error) {
	keys, err := export.OpenKeys(export.KeyDir(cfg.DataDir))
	if err != nil {
		return nil, err
	}
	b := &export.Builder{Store: rec.Store(), Catalog: rec.Catalog(), Keys: keys,
		MinFree: int64(cfg.Export.MinFree)}
	return export.NewExporter(ctx, export.Options{Dir: filepath.Join(cfg.DataDir, "exports"), Builder: b, DB: db,
		Workers: cfg.Export.Workers, Queue: cfg.Export.Queue, MaxRange: time.Duration(cfg.Export.MaxRange),
		Keep:    time.Duration(cfg.Export.Keep),
		Footage: rec.Catalog(), OnProgress: func(req export.Request, st string, p float64) {
			// Only the export's requester sees its progress live.
			bus.Publish(events.Event{Type: events.TypeExportProgress, Camera: req.Camera, Site: req.Site, User: req.User,
				Data: map[string]any{"id": req.ID, "state": st, "progress": p}})
		}}, log.With("component", "export"))
}

// exportExpiryEvery is how often the service looks for exports past export.keep: a
// 24th of it, from a minute to an hour.
func exportExpiryEvery(keep time.Duration) time.Duration {
	return min(max(keep/24, time.Minute), time.Hour).Truncate(time.Second)
}

// scheduleExportExpiry adds to c the job that deletes the exports past export.keep
// (none with keep 0). Jobs run with ctx, the service's.
func scheduleExportExpiry(ctx context.Context, c *cron.Cron, cfg *configs.Config, ex *export.Exporter, al *audit.Log,
	log *slog.Logger) error {
	keep := time.Duration(cfg.Export.Keep)
	if keep <= 0 {
		return nil
	}
	log = log.With("component", "export")
	_, err := c.AddFunc("@every "+exportExpiryEvery(keep).String(), func() { expireExports(ctx, ex, al, log, time.Now()) })
	if err != nil {
		return fmt.Errorf("export.keep: %w", err)
	}
	return nil
}

// expireExports deletes the exports past export.keep at now, each recorded in the
// audit trail as done by the service.
func expireExports(ctx context.Context, ex *export.Exporter, al *audit.Log, log *slog.Logger, now time.Time) {
	gone, err := ex.Expire(ctx, now)
	if err != nil {
		log.Error("expired exports not all deleted", "err", err)
	}
	for _, st := range gone {
		log.Info("export deleted: export.keep passed", "export", st.ID, "camera", st.Camera, "created", st.Created)
		if err := al.Record(ctx, audit.Event{Actor: audit.ActorLocal, User: export.ServiceUser,
			Action: audit.ActionExportExpire, Camera: st.Camera, Detail: map[string]any{"export": st.ID,
				"reason": st.DeleteReason, "exported_by": st.User, "created": st.Created}}); err != nil {
			log.Error("audit: export expiry not recorded", "export", st.ID, "err", err)
		}
	}
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/recorder/alerts"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/holds"
	"github.com/straja-nvr/straja/storage/retention"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web"
	"github.com/straja-nvr/straja/web/audit"
	"github.com/straja-nvr/straja/web/auth"
	"github.com/straja-nvr/straja/web/events"
)

// retentionOptions wires the retention runner from cfg: the file's policies, the
// zone, the safety stop, the full-disk guard. cams lists the cameras as they are now.
func retentionOptions(cfg *configs.Config, cat *storage.Catalog, st storage.Store, sdb *state.State,
	cams func() []retention.Camera) retention.RunnerOptions {
	r := cfg.Retention
	o := retention.RunnerOptions{
		Catalog:      retention.CatalogDeleter{CatalogSource: retention.CatalogSource{Catalog: cat}},
		Store:        st,
		State:        sdb,
		Cameras:      cams,
		FilePolicies: cfg.RetentionPolicies(),
		Location:     r.Location(),
		SafetyShare:  float64(r.SafetyStopPercent) / 100,
		Guard:        retention.Guard{Interval: time.Duration(r.GuardInterval)},
	}
	o.Known = func() retention.Known {
		k := cfg.RetentionKnown()
		for _, c := range cams() { // with those added at runtime
			k.Cameras[c.ID] = c.Site
			if c.Site != "" {
				k.Sites[c.Site] = true
			}
		}
		return k
	}
	if cfg.Storage.Backend == configs.BackendDisk && !r.MinFree.IsZero() {
		o.Guard.Path, o.Guard.MinFreeBytes, o.Guard.MinFreePercent = cfg.Storage.Disk.Path, r.MinFree.Bytes, r.MinFree.Percent
	}
	if cfg.Storage.Backend == configs.BackendS3 {
		o.Guard.MaxBytes = int64(r.MaxBytes)
	}
	return o
}

// recorderCameras lists the recorder's cameras for retention, and the cameras deleted
// at runtime whose footage stays under their site's policy (retired, when set).
func recorderCameras(rec *recorder.Recorder, retired ...*cameraManager) func() []retention.Camera {
	return func() []retention.Camera {
		var out []retention.Camera
		for _, c := range rec.Cameras() {
			out = append(out, retention.Camera{ID: c.ID, Site: c.Site})
		}
		for _, m := range retired {
			out = append(out, m.retiredCameras()...)
		}
		return out
	}
}

// auditRuns notes every run for the health view, and records the service's own runs
// (scheduled and emergency) in the audit trail; a run through the API is recorded by
// the API with its user.
func auditRuns(al *audit.Log, runs *web.RunLog, log *slog.Logger) func(ctx context.Context, run retention.Run) {
	return func(ctx context.Context, run retention.Run) {
		deleted, bytes, errs, stops := run.Totals()
		detail := fmt.Sprintf("%s run %d: %d segments (%d bytes) deleted, %d errors, %d safety stops",
			run.Kind, run.ID, deleted, bytes, errs, stops)
		if run.Error != "" {
			detail += ": " + run.Error
		}
		runs.Record(web.RunRetention, web.RunInfo{At: run.Ended, OK: run.Error == "" && errs == 0, Detail: detail})
		if run.Kind == retention.KindManual {
			return
		}
		if err := al.Record(ctx, audit.Event{Actor: audit.ActorLocal, Action: audit.ActionRetentionRun,
			Detail: map[string]any{"run": run.ID, "kind": run.Kind, "policy": run.Policy, "deleted": deleted,
				"bytes": bytes, "errors": errs, "safety_stops": stops, "error": run.Error}}); err != nil {
			log.Error("audit: retention run not recorded", "run", run.ID, "err", err)
		}
	}
}

// retentionCommand runs `straja retention plan`: what a run would delete now, per
// camera, deleting nothing. It reads the catalog beside a running service.
func retentionCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "plan" {
		return errors.New("retention: want `retention plan --config FILE [--force]`")
	}
	fs := flag.NewFlagSet("retention plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	force := fs.Bool("force", false, "plan as a forced run would (no safety stop)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("retention plan: --config is required")
	}
	cfg, err := loadConfig(*path, configs.WithoutCameraSecrets())
	if err != nil {
		return err
	}
	cat, err := storage.OpenCatalog(catalogPath(cfg))
	if err != nil {
		return err
	}
	defer cat.Close()
	sdb, err := state.Open(ctx, statePath(cfg))
	if err != nil {
		return err
	}
	defer sdb.Close()
	var cams []retention.Camera
	for _, c := range cfg.Cameras {
		cams = append(cams, retention.Camera{ID: c.ID, Site: c.Site})
	}
	o := retentionOptions(cfg, cat, nil, sdb, func() []retention.Camera { return cams })
	o.Guard = retention.Guard{}
	o.Holds = holds.StateSource{State: sdb}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := retention.NewRunner(ctx, o, prometheus.NewRegistry(), log)
	if err != nil {
		return err
	}
	defer r.Close()
	plan, err := r.Plan(ctx, nil, *force)
	if err != nil {
		return err
	}
	printPlan(stdout, plan, cfg.Retention.Location())
	return nil
}

// printPlan writes plan as a table, times in loc.
func printPlan(w io.Writer, plan *retention.Plan, loc *time.Location) {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.In(loc).Format("2006-01-02 15:04:05")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "CAMERA\tPOLICY\tMAX AGE\tSEGMENTS\tDELETE\tBYTES\tFROM\tTO\tOLDEST KEPT\tHELD\tSAFETY STOP\n")
	for _, c := range plan.Cameras {
		stop := "-"
		if c.SafetyStop != "" {
			stop = c.SafetyStop
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t%s\n", c.Camera, c.Policy, c.MaxAgeText(), c.Segments,
			c.Delete, c.DeleteBytes, ts(c.From), ts(c.To), ts(c.OldestKept), c.Held, stop)
	}
	tw.Flush()
	n, b, stops := plan.Totals()
	fmt.Fprintf(w, "a run now would delete %d segments (%d bytes); %d cameras held back by the safety stop; times in %s; nothing was deleted\n",
		n, b, stops, loc)
}

// announceRun tells the live event bus (itc and admins) about a retention run, and
// alerting whether a policy stopped itself: the retention_stopped alert fires until a
// run ends with no safety stop.
func announceRun(bus *events.Bus, al *alerts.Engine, run retention.Run) {
	deleted, bytes, errs, stops := run.Totals()
	bus.Publish(events.Event{Type: events.TypeRetentionRun, Roles: []string{auth.RoleITC, auth.RoleAdmin}, At: run.Ended,
		Data: map[string]any{"run": run.ID, "kind": run.Kind, "policy": run.Policy, "deleted": deleted, "bytes": bytes,
			"errors": errs, "safety_stops": stops, "error": run.Error}})
	switch {
	case stops > 0:
		var cams []string
		for _, c := range run.Cameras {
			if c.SafetyStop != "" {
				cams = append(cams, c.Camera)
			}
		}
		al.RetentionStopped(fmt.Sprintf("retention run %d stopped itself for %d cameras (%s): it would have deleted far more than expected",
			run.ID, stops, strings.Join(cams, ", ")))
	case run.Error == "" && !run.Ended.IsZero():
		al.RetentionResumed()
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"
	_ "time/tzdata" // CRON_TZ= in a schedule works on hosts without a zoneinfo database

	"github.com/straja-nvr/straja/recorder"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/secrets"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web"
	"github.com/straja-nvr/straja/web/audit"
)

// statePath is the state database in cfg's data_dir.
func statePath(cfg *configs.Config) string { return filepath.Join(cfg.DataDir, "state.db") }

// startStateBackups schedules backups of db into st on the configured schedule, counted
// on reg. Jobs run with ctx, the service's; stop the returned scheduler and wait on the
// context its Stop returns before closing db.
func startStateBackups(ctx context.Context, cfg *configs.Config, db *state.State, al *audit.Log, st storage.Store,
	runs *web.RunLog, reg prometheus.Registerer, log *slog.Logger) (*cron.Cron, error) {
	log = log.With("component", "state")
	results := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "straja_state_backups_total", Help: "Scheduled state database backups, by result (ok, error)."},
		[]string{"result"})
	last := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "straja_state_backup_last_success_timestamp_seconds", Help: "When the state database was last backed up."})
	results.WithLabelValues("ok")
	results.WithLabelValues("error")
	if err := reg.Register(results); err != nil {
		return nil, err
	}
	if err := reg.Register(last); err != nil {
		return nil, err
	}
	c := newCron(log)
	b := state.Backups{Store: st, Keep: cfg.State.BackupKeep}
	_, err := c.AddFunc(cfg.State.BackupSchedule, func() {
		key, err := b.Save(ctx, db)
		if err != nil {
			results.WithLabelValues("error").Inc()
			log.Error("state backup failed", "err", err)
			runs.Record(web.RunStateBackup, web.RunInfo{At: time.Now(), Detail: "backup failed: see the service log"})
			return
		}
		results.WithLabelValues("ok").Inc()
		runs.Record(web.RunStateBackup, web.RunInfo{At: time.Now(), OK: true, Detail: key})
		last.SetToCurrentTime()
		log.Info("state backed up", "key", key)
		if err := al.Record(ctx, audit.Event{Actor: audit.ActorLocal, Action: audit.ActionStateBackup,
			Detail: map[string]any{"key": key}}); err != nil {
			log.Error("audit: state backup not recorded", "err", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("state.backup_schedule: %w", err)
	}
	c.Start()
	return c, nil
}

// newCron returns a scheduler for the service's periodic jobs, in UTC unless a spec
// says CRON_TZ=: a job that panics is logged and the others go on; a job still running
// when its next time comes is skipped, not stacked.
func newCron(log *slog.Logger) *cron.Cron {
	l := cronLogger{log}
	return cron.New(cron.WithLocation(time.UTC), cron.WithLogger(l),
		cron.WithChain(cron.Recover(l), cron.SkipIfStillRunning(l)))
}

// cronLogger adapts slog to cron.Logger. cron's own bookkeeping (start, wake, run,
// schedule) is debug noise; a skipped run is worth a warning.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) {
	level := slog.LevelDebug
	if msg == "skip" {
		level, msg = slog.LevelWarn, "job still running at its next time: skipped"
	}
	l.log.Log(context.Background(), level, "cron: "+msg, kv...)
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "err", err)...)
}

// stateCommand runs `straja state backup|restore|list`.
func stateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "backup" && args[0] != "restore" && args[0] != "list") {
		return errors.New("state: want `state backup|list --config FILE` or `state restore --config FILE [--from KEY]`")
	}
	sub := args[0]
	fs := flag.NewFlagSet("state "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	var from *string
	if sub == "restore" {
		from = fs.String("from", "", "backup key to restore, or its file name (default: the newest)")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("state %s: --config is required", sub)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("state %s: unexpected argument %q", sub, fs.Arg(0))
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	switch sub {
	case "backup":
		return backupState(ctx, cfg, stdout)
	case "list":
		return listStateBackups(ctx, cfg, stdout)
	default:
		return restoreState(ctx, cfg, *from, stdout)
	}
}

// backupState backs the state database up now. It needs no lock: SQLite lets it read
// a consistent copy while the service writes.
func backupState(ctx context.Context, cfg *configs.Config, stdout io.Writer) error {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	b := state.Backups{Store: st, Keep: cfg.State.BackupKeep}
	key, err := b.SaveFile(ctx, statePath(cfg))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "state database backed up to %s\n", key)
	return nil
}

func listStateBackups(ctx context.Context, cfg *configs.Config, stdout io.Writer) error {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	keys, err := state.Backups{Store: st}.List(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		fmt.Fprintln(stdout, k)
	}
	return nil
}

// restoreState replaces the state database with a backup, only while no service runs.
func restoreState(ctx context.Context, cfg *configs.Config, from string, stdout io.Writer) error {
	unlock, err := recorder.LockDataDir(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("state restore: %w; stop the service first", err)
	}
	defer unlock()
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	b := state.Backups{Store: st}
	key := from
	if key == "" {
		if key, err = b.Latest(ctx); err != nil {
			return fmt.Errorf("state restore: %w", err)
		}
	} else if !strings.Contains(key, "/") {
		key = state.BackupPrefix + key
	}
	path := statePath(cfg)
	kept, version, err := b.Restore(ctx, key, path)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s (schema version %d) into %s\n", key, version, path)
	if kept != "" {
		fmt.Fprintf(stdout, "the replaced database is kept as %s\n", kept)
	}
	return recordRestore(ctx, path, st, key, kept, stdout)
}

// unreadablePasswords counts the runtime cameras whose sealed password box cannot open.
func unreadablePasswords(ctx context.Context, db *state.State, box *secrets.Box) (int, error) {
	cams, err := db.Cameras(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, row := range cams {
		var c runtimeCamera
		if json.Unmarshal(row.Spec, &c) != nil || c.Deleted || c.PasswordSealed == "" {
			continue
		}
		if _, err := box.Open(row.ID, c.PasswordSealed); err != nil {
			n++
		}
	}
	return n, nil
}

// recordRestore carries the audit trail over and appends the restore to it. The
// service is stopped (the data dir is locked), so this is the only writer.
func recordRestore(ctx context.Context, path string, st storage.Store, key, kept string, stdout io.Writer) error {
	db, err := state.Open(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()
	// The audit trail is evidence, not state to roll back: the entries written since
	// the backup come over from the replaced database.
	if kept != "" {
		n, err := db.CarryAudit(ctx, kept)
		if err != nil {
			return fmt.Errorf("state restore: %w", err)
		}
		fmt.Fprintf(stdout, "audit trail kept: %d entries written since the backup carried over\n", n)
	}
	if n, err := unreadablePasswords(ctx, db, secrets.NewBox(secrets.Path(filepath.Dir(path)))); err != nil {
		return fmt.Errorf("state restore: %w", err)
	} else if n > 0 {
		fmt.Fprintf(stdout, "%d camera password(s) cannot be decrypted with %s: the backup was made with another "+
			"secrets key. Copy that key file here (mode 0600) before starting the service, or enter the passwords "+
			"again on the Cameras page; until then those cameras are not started.\n", n, secrets.Path(filepath.Dir(path)))
	}
	al, err := audit.New(ctx, db, audit.Options{Store: st}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	rerr := al.Record(ctx, audit.Event{Actor: audit.ActorLocal, Action: audit.ActionStateRestore,
		Detail: map[string]any{"backup": key, "replaced_kept_as": kept}})
	if err := errors.Join(rerr, al.Close()); err != nil {
		return fmt.Errorf("state restore: audit: %w", err)
	}
	return nil
}

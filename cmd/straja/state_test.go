package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/state"
)

func stateBackups(t *testing.T, st storage.Store) []string {
	t.Helper()
	keys, err := state.Backups{Store: st}.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), args, &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

func stateCameras(t *testing.T, path string) []string {
	t.Helper()
	s, err := state.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cams, err := s.Cameras(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cams {
		ids = append(ids, c.ID)
	}
	return ids
}

// TestStateBackupSchedule runs the service with backups every second: a backup appears
// in the store, and it is a copy of the service's state database. While the service
// runs, `state backup` works and `state restore` is refused.
func TestStateBackupSchedule(t *testing.T) {
	for _, backend := range []string{"disk", "s3"} {
		t.Run(backend, func(t *testing.T) {
			dir := t.TempDir()
			cfg := baseConfig(t, dir, nil, 0)
			if backend == "s3" {
				useS3(t, cfg)
			}
			cfg.State.BackupSchedule = "@every 1s"
			m := startMain(t, cfg)
			ctx := t.Context()
			if err := m.state.PutCamera(ctx, "roof-east", json.RawMessage(`{"name":"Acoperiș est"}`)); err != nil {
				t.Fatal(err)
			}
			st := testStore(t, cfg)
			var key string
			testutil.WaitFor(t, 20*time.Second, "a scheduled state backup with the camera added", func() bool {
				keys := stateBackups(t, st)
				if len(keys) == 0 {
					return false
				}
				key = keys[len(keys)-1]
				restored := filepath.Join(t.TempDir(), "state.db")
				if _, _, err := (state.Backups{Store: st}).Restore(ctx, key, restored); err != nil {
					t.Fatalf("restore the scheduled backup %s: %v", key, err)
				}
				return slices.Equal(stateCameras(t, restored), []string{"roof-east"})
			})

			testutil.WaitFor(t, 10*time.Second, "the backup counted in /metrics", func() bool {
				resp, err := http.Get("http://" + m.Addr() + "/metrics")
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				return regexp.MustCompile(`(?m)^straja_state_backups_total\{result="ok"\} [1-9]`).Match(body) &&
					regexp.MustCompile(`(?m)^straja_state_backup_last_success_timestamp_seconds 1\.`).Match(body)
			})

			path := writeConfig(t, cfg)
			out, err := runCmd(t, "state", "backup", "--config", path)
			if err != nil || !strings.Contains(out, state.BackupPrefix) {
				t.Errorf("state backup while the service runs = %v:\n%s", err, out)
			}
			out, err = runCmd(t, "state", "restore", "--config", path)
			if !errors.Is(err, recorder.ErrDataDirInUse) || !strings.Contains(err.Error(), "stop the service first") {
				t.Errorf("state restore while the service runs = %v (want ErrDataDirInUse and advice):\n%s", err, out)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestStateCommands backs up, changes and restores a state database with the CLI.
func TestStateCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig(t, dir, nil, 0)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, cfg)
	dbPath := filepath.Join(dir, "state.db")

	if out, err := runCmd(t, "state", "backup", "--config", path); err == nil {
		t.Fatalf("state backup without a state database succeeded:\n%s", out)
	}
	if out, err := runCmd(t, "state", "restore", "--config", path); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("state restore with no backup = %v, want ErrNotFound:\n%s", err, out)
	}

	s, err := state.Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	put := func(id string) {
		if err := s.PutCamera(t.Context(), id, json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	put("gate")
	s.Close()
	out, err := runCmd(t, "state", "backup", "--config", path)
	if err != nil {
		t.Fatalf("state backup: %v\n%s", err, out)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".state-*")); len(tmp) > 0 {
		t.Errorf("backup left temporary files: %q", tmp)
	}
	st := testStore(t, cfg)
	keys := stateBackups(t, st)
	if len(keys) != 1 || !strings.Contains(out, keys[0]) {
		t.Fatalf("backups = %q after `state backup` said:\n%s", keys, out)
	}
	if out, err := runCmd(t, "state", "list", "--config", path); err != nil || strings.TrimSpace(out) != keys[0] {
		t.Errorf("state list = %v:\n%s", err, out)
	}

	s, err = state.Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	put("lobby")
	s.Close()

	unlock, err := recorder.LockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, "state", "restore", "--config", path); !errors.Is(err, recorder.ErrDataDirInUse) {
		t.Fatalf("restore while the data_dir is locked = %v, want ErrDataDirInUse", err)
	}
	unlock()
	if got := stateCameras(t, dbPath); !slices.Equal(got, []string{"gate", "lobby"}) {
		t.Fatalf("a refused restore changed the database: cameras %q", got)
	}

	out, err = runCmd(t, "state", "restore", "--config", path, "--from", strings.TrimPrefix(keys[0], state.BackupPrefix))
	if err != nil {
		t.Fatalf("state restore: %v\n%s", err, out)
	}
	if got := stateCameras(t, dbPath); !slices.Equal(got, []string{"gate"}) {
		t.Errorf("cameras after restore = %q, want [gate] as backed up", got)
	}
	baks, _ := filepath.Glob(dbPath + ".bak-*")
	if len(baks) != 1 || !strings.Contains(out, baks[0]) {
		t.Fatalf("kept copies %q; restore said:\n%s", baks, out)
	}
	if got := stateCameras(t, baks[0]); !slices.Equal(got, []string{"gate", "lobby"}) {
		t.Errorf("kept copy's cameras = %q, want the replaced [gate lobby]", got)
	}
	if _, err := runCmd(t, "state", "restore", "--config", path, "--from", "cam/2026/11/30/x.mp4"); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("restore --from a camera key = %v, want ErrInvalidKey", err)
	}
}

// TestServiceRefusesNewerState checks that the service does not start on a state
// database from a newer Straja, and says why.
func TestServiceRefusesNewerState(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig(t, dir, nil, 0)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := state.Open(t.Context(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	setUserVersion(t, filepath.Join(dir, "state.db"), state.SchemaVersion()+1)
	m := &Main{Config: cfg, Log: testLogger(t)}
	err = m.Run(context.Background())
	if err == nil {
		m.Close()
		t.Fatal("the service started on a state database from a newer version")
	}
	if !errors.Is(err, storage.ErrNewerSchema) || !strings.Contains(err.Error(), "state.db") {
		t.Fatalf("error = %v; want ErrNewerSchema naming state.db", err)
	}
	// It let go of the data_dir on the way out.
	unlock, err := recorder.LockDataDir(dir)
	if err != nil {
		t.Fatalf("data_dir still locked after a failed start: %v", err)
	}
	unlock()
}

func setUserVersion(t *testing.T, path string, v int) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, v)); err != nil {
		t.Fatal(err)
	}
}

// TestNewerCatalog checks that the service refuses a catalog from a newer Straja and
// says how to get going again, and that `catalog rebuild` does.
func TestNewerCatalog(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig(t, dir, nil, 0)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	setUserVersion(t, catalogPath(cfg), 99)
	m := &Main{Config: cfg, Log: testLogger(t)}
	err := m.Run(context.Background())
	if err == nil {
		m.Close()
		t.Fatal("the service started on a catalog from a newer version")
	}
	if !errors.Is(err, storage.ErrNewerSchema) || !strings.Contains(err.Error(), "straja catalog rebuild") {
		t.Fatalf("error = %v; want ErrNewerSchema advising `straja catalog rebuild`", err)
	}
	if out, err := runCmd(t, "catalog", "rebuild", "--config", writeConfig(t, cfg)); err != nil {
		t.Fatalf("catalog rebuild over a newer catalog: %v\n%s", err, out)
	}
	startMain(t, cfg)
}

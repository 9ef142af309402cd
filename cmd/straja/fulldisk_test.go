package main

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage/retention"
	"github.com/straja-nvr/straja/storage/state"
)

// TestFullDiskGuard records two cameras onto a 1 MiB tmpfs holding both the disk
// store and the spool, with min_free 45 %: the guard deletes the oldest unheld
// footage (emergency runs) while recording goes on, and the held footage stays.
func TestFullDiskGuard(t *testing.T) {
	if testing.Short() {
		t.Skip("records until a small file system fills")
	}
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.Mkdir(small, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("the full-disk guard test needs a small file system, and mounting a tmpfs is not permitted here "+
			"(run as root, or in a container with CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(small, syscall.MNT_DETACH) })

	sim := startSim(t, 2, camsimOpts())
	cfg := baseConfig(t, dir, sim, 2)
	cfg.Storage.Disk.Path = filepath.Join(small, "segments")
	cfg.Spool.Dir = filepath.Join(small, "spool")
	cfg.Retention.MinFree = configs.FreeSpace{Percent: 45}
	cfg.Retention.GuardInterval = configs.Duration(time.Second)
	start := time.Now().UTC()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: cfg, Log: testLogger(t)}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	// Evidence: cam-1's first seconds.
	hold, err := m.holds.Create(t.Context(), state.Hold{Cameras: []string{"cam-1"}, From: start,
		To: start.Add(5 * time.Second), Reason: "incident at the gate", By: "admin"})
	if err != nil {
		t.Fatal(err)
	}

	var held []string
	testutil.WaitFor(t, 60*time.Second, "cam-1's held segments", func() bool {
		held = held[:0]
		for _, k := range catalogKeys(t, m, "cam-1") {
			if s := segmentOf(t, k); s.Start.Before(hold.To) && s.End().After(hold.From) {
				held = append(held, k)
			}
		}
		return len(held) >= 1 && len(catalogKeys(t, m, "cam-1")) > len(held)
	})
	var emergency retention.Run
	testutil.WaitFor(t, 120*time.Second, "an emergency run", func() bool {
		runs, err := m.ret.Runs(t.Context(), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if d, _, _, _ := r.Totals(); r.Kind == retention.KindEmergency && d > 0 {
				emergency = r
				return true
			}
		}
		return false
	})
	// Recording goes on after it: newer segments than any before the run.
	before := newest(t, m)
	testutil.WaitFor(t, 60*time.Second, "recording to go on after the emergency run", func() bool {
		return newest(t, m).After(before)
	})
	select {
	case <-m.Done():
		t.Fatalf("the recorder stopped: %v", m.runErr)
	default:
	}
	keys := catalogKeys(t, m, "cam-1")
	for _, k := range held {
		if !slices.Contains(keys, k) {
			t.Errorf("held segment %s was deleted", k)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	stored, rows := listKeys(t, testStore(t, cfg)), catalogKeysOf(t, cfg)
	if !slices.Equal(stored, rows) {
		t.Errorf("storage and catalog differ after the guard:\nstorage %q\ncatalog %q", stored, rows)
	}
	for _, k := range held {
		if !slices.Contains(stored, k) {
			t.Errorf("held segment %s is not stored", k)
		}
	}
	t.Logf("emergency run %d deleted %+v", emergency.ID, emergency.Cameras)
}

// newest is the end of the newest catalogued segment of any camera.
func newest(t *testing.T, m *Main) time.Time {
	var end time.Time
	for _, c := range []string{"cam-1", "cam-2"} {
		for _, k := range catalogKeys(t, m, c) {
			if e := segmentOf(t, k).End(); e.After(end) {
				end = e
			}
		}
	}
	return end
}

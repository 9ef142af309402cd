package recorder

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/recorder/spool"
)

// TestDataDirLocked: a second recorder on the same data_dir is refused, so two processes
// never write one spool and catalog; the lock is released by Close.
func TestDataDirLocked(t *testing.T) {
	dir := t.TempDir()
	opts := Options{DataDir: dir, Spool: spool.Options{Dir: filepath.Join(dir, "spool")}}
	log := slog.New(slog.DiscardHandler)
	r1, err := New(context.Background(), opts, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), opts, prometheus.NewRegistry(), log); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second recorder on %s: %v, want ErrDataDirInUse", dir, err)
	}
	if err := r1.Close(); err != nil {
		t.Fatal(err)
	}
	r2, err := New(context.Background(), opts, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	r2.Close()
}

package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/recorder/gaps"
	"github.com/straja-nvr/straja/recorder/ingest"
	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
	"github.com/straja-nvr/straja/storage/state"
)

// TestTimelineGapCause checks that a camera outage the gap ledger recorded shows in
// the playback timeline as a gap with its cause, as the service wires them.
func TestTimelineGapCause(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	db, err := state.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ledger := gaps.New(db, testLogger(t))
	if err := ledger.Start(ctx, []string{"gate"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); ledger.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// Footage at p0..p0+6 s and p0+12..p0+18 s; the camera was offline in between.
	p0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	st, cat := playbacktest.NewDisk(t)
	playbacktest.Record(t, st, cat, "gate", p0, 3, 6*time.Second, 1)
	ledger.Observe(recorder.Event{Camera: "gate", Record: true, At: p0.Add(6 * time.Second), State: ingest.StateOffline,
		LastFrame: p0.Add(6 * time.Second)})
	ledger.Observe(recorder.Event{Camera: "gate", Record: true, At: p0.Add(12 * time.Second), State: ingest.StateOnline})
	testutil.WaitFor(t, 10*time.Second, "the outage in the ledger", func() bool {
		g, err := ledger.Gaps(ctx, "gate", p0, p0.Add(time.Minute))
		return err == nil && len(g) == 1 && !g[0].End.IsZero()
	})

	tl, err := playback.New(cat, st, nil).Timeline(ctx, "gate", p0, p0.Add(18*time.Second), 18, timelineGaps{ledger})
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Gaps) != 1 || tl.Gaps[0].Cause != string(gaps.CauseOffline) ||
		tl.Gaps[0].Start.Sub(p0.Add(6*time.Second)).Abs() > 100*time.Millisecond {
		t.Fatalf("timeline gaps %+v, want one offline gap from %v", tl.Gaps, p0.Add(6*time.Second))
	}
}

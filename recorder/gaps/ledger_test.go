package gaps

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/recorder/ingest"
	"github.com/straja-nvr/straja/storage/state"
)

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// run starts l until the test ends, and returns a function that waits until n
// events in all have been written.
func run(t *testing.T, l *Ledger) func(n int) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { l.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return func(n int) {
		testutil.WaitFor(t, 5*time.Second, "events written", func() bool { return l.applied.Load() >= uint64(n) })
	}
}

// TestLedgerCauses: each way a recording stops is recorded with its cause, from the
// last frame to the first after; live-only cameras have none.
func TestLedgerCauses(t *testing.T) {
	st, err := state.Open(t.Context(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l := New(st, nil)
	if err := l.Start(t.Context(), []string{"gate", "yard", "roof"}, at(0)); err != nil {
		t.Fatal(err)
	}
	settle := run(t, l)
	state := func(cam string, s ingest.State, r ingest.Reason, sec, last int) recorder.Event {
		ev := recorder.Event{Camera: cam, Record: cam != "lobby", State: s, Reason: r, At: at(sec)}
		if last > 0 {
			ev.LastFrame = at(last)
		}
		return ev
	}
	events := []recorder.Event{
		state("gate", ingest.StateOnline, "", 1, 1),
		state("gate", ingest.StateStalled, ingest.ReasonStalled, 20, 10), // no video since 10 s
		state("gate", ingest.StateOffline, ingest.ReasonSessionLost, 21, 10),
		state("gate", ingest.StateOnline, "", 30, 30),
		state("yard", ingest.StateOnline, "", 1, 1),
		state("yard", ingest.StateOffline, ingest.ReasonAuthFailed, 40, 39),
		state("yard", ingest.StateOnline, "", 50, 50),
		{Camera: "roof", Record: true, Recording: "spool_full", At: at(60)},
		state("roof", ingest.StateOnline, "", 61, 61), // online does not end a spool gap
		{Camera: "roof", Record: true, Recording: recorder.RecordingResumed, At: at(70)},
		state("lobby", ingest.StateOffline, ingest.ReasonUnreachable, 80, 0), // live only
		state("gate", ingest.StateOffline, ingest.ReasonStopped, 90, 89),     // the service stops it
	}
	for _, ev := range events {
		l.Observe(ev)
	}
	settle(len(events))
	for _, tc := range []struct {
		cam        string
		want       Cause
		start, end int
	}{{"gate", CauseStalled, 10, 30}, {"yard", CauseAuthFailed, 39, 50}, {"roof", CauseSpoolFull, 60, 70}} {
		g, err := l.Gaps(t.Context(), tc.cam, t0, at(1000))
		if err != nil || len(g) != 1 || g[0].Cause != tc.want || !g[0].Start.Equal(at(tc.start)) || !g[0].End.Equal(at(tc.end)) {
			t.Errorf("%s gaps = %+v, %v; want one %s gap from %d s to %d s", tc.cam, g, err, tc.want, tc.start, tc.end)
		}
	}
	if g, _ := l.Gaps(t.Context(), "lobby", t0, at(1000)); len(g) != 0 {
		t.Errorf("a live-only camera has gaps: %+v", g)
	}
}

// TestLedgerRestart: a start after the service was down ends what was left open at the
// last heartbeat, and opens a service_stopped gap from there for each camera.
func TestLedgerRestart(t *testing.T) {
	st, err := state.Open(t.Context(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The last run: yard went offline at 100 s, the last heartbeat was at 120 s.
	if _, err := st.OpenGap(t.Context(), "yard", string(CauseOffline), at(100)); err != nil {
		t.Fatal(err)
	}
	if err := st.Heartbeat(t.Context(), at(120), false); err != nil {
		t.Fatal(err)
	}
	l := New(st, nil)
	if err := l.Start(t.Context(), []string{"gate", "yard"}, at(300)); err != nil {
		t.Fatal(err)
	}
	settle := run(t, l)
	l.Observe(recorder.Event{Camera: "gate", Record: true, State: ingest.StateOnline, At: at(302), LastFrame: at(302)})
	settle(1)
	g, _ := l.Gaps(t.Context(), "gate", t0, at(1000))
	if len(g) != 1 || g[0].Cause != CauseServiceStopped || !g[0].Start.Equal(at(120)) || !g[0].End.Equal(at(302)) {
		t.Errorf("gate gaps = %+v; want service_stopped from the last heartbeat (120 s) to its first frame (302 s)", g)
	}
	g, _ = l.Gaps(t.Context(), "yard", t0, at(1000))
	if len(g) != 2 || g[0].Cause != CauseOffline || !g[0].End.Equal(at(120)) || g[1].Cause != CauseServiceStopped ||
		!g[1].End.IsZero() {
		t.Errorf("yard gaps = %+v; want offline ended at 120 s, then service_stopped still open", g)
	}
	if hb, _, _ := st.LastHeartbeat(t.Context()); !hb.Equal(at(300)) {
		t.Errorf("heartbeat after start = %v, want the start", hb)
	}
}

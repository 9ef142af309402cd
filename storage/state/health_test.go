package state

import (
	"path/filepath"
	"testing"
	"time"
)

func TestGapLedgerRows(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	a, err := s.OpenGap(ctx, "cam1", "offline", t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenGap(ctx, "cam2", "stalled", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseGap(ctx, a, t0.Add(15*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Closing twice keeps the first end.
	if err := s.CloseGap(ctx, a, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	open, err := s.OpenGaps(ctx)
	if err != nil || len(open) != 1 || open[0].Camera != "cam2" {
		t.Fatalf("open gaps = %+v, %v; want cam2's", open, err)
	}
	for _, tc := range []struct {
		from, to time.Time
		want     int
	}{
		{t0.Add(-time.Hour), t0, 0},                      // ends before the gap
		{t0.Add(-time.Hour), t0.Add(time.Second), 1},     // overlaps its start
		{t0.Add(15 * time.Second), t0.Add(time.Hour), 0}, // starts at its end
		{t0.Add(10 * time.Second), t0.Add(11 * time.Second), 1},
	} {
		gaps, err := s.Gaps(ctx, "cam1", tc.from, tc.to, 100)
		if err != nil || len(gaps) != tc.want {
			t.Errorf("gaps [%v, %v) = %+v, %v; want %d", tc.from, tc.to, gaps, err, tc.want)
		}
	}
	gaps, _ := s.Gaps(ctx, "cam1", t0, t0.Add(time.Hour), 100)
	if len(gaps) != 1 || !gaps[0].End.Equal(t0.Add(15*time.Second)) || gaps[0].Cause != "offline" {
		t.Errorf("cam1 gap = %+v; want offline ending 15 s after it started", gaps)
	}
	// The open gap of cam2 reaches into any later range.
	gaps, _ = s.Gaps(ctx, "cam2", t0.Add(24*time.Hour), t0.Add(25*time.Hour), 100)
	if len(gaps) != 1 || !gaps[0].End.IsZero() {
		t.Errorf("cam2 gaps a day later = %+v; want the open gap", gaps)
	}

	if hb, _, err := s.LastHeartbeat(ctx); err != nil || !hb.IsZero() {
		t.Errorf("heartbeat of a new database = %v, %v; want none", hb, err)
	}
	if err := s.Heartbeat(ctx, t0, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Heartbeat(ctx, t0.Add(5*time.Second), true); err != nil {
		t.Fatal(err)
	}
	if hb, clean, err := s.LastHeartbeat(ctx); err != nil || !hb.Equal(t0.Add(5*time.Second)) || !clean {
		t.Errorf("heartbeat = %v clean %v, %v; want the last one, clean", hb, clean, err)
	}
}

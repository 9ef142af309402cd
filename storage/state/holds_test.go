package state

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestHolds(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)
	h := Hold{ID: "a1", Cameras: []string{"bastion-gate"}, From: t0, To: t0.Add(time.Hour), Reason: "furt",
		Expires: t0.Add(48 * time.Hour), Created: t0.Add(2 * time.Hour), By: "ana"}
	if err := s.AddHold(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := s.AddHold(ctx, h); !errors.Is(err, ErrExists) {
		t.Errorf("adding the same id again: %v, want ErrExists", err)
	}
	if err := s.AddHold(ctx, Hold{ID: "bad", Site: "palat", From: t0, To: t0, Reason: "x", Created: t0, By: "ana"}); err == nil {
		t.Error("a hold with to = from was stored")
	}
	site := Hold{ID: "b2", Site: "palat", From: t0, To: t0.Add(time.Minute), Reason: "incident", Created: t0.Add(3 * time.Hour), By: "ion"}
	if err := s.AddHold(ctx, site); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseHold(ctx, "a1", "ion", "caz închis", t0.Add(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseHold(ctx, "a1", "ion", "again", t0.Add(5*time.Hour)); !errors.Is(err, ErrReleased) {
		t.Errorf("second release: %v, want ErrReleased", err)
	}
	if err := s.ReleaseHold(ctx, "nope", "ion", "x", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("release of a missing hold: %v, want ErrNotFound", err)
	}
	hs, err := s.Holds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 2 || hs[0].ID != "b2" || hs[1].ID != "a1" {
		t.Fatalf("holds = %+v, want b2 then a1 (newest first)", hs)
	}
	got := hs[1]
	if !slices.Equal(got.Cameras, h.Cameras) || !got.Expires.Equal(h.Expires) || got.ReleasedBy != "ion" ||
		got.ReleaseReason != "caz închis" || !got.Released.Equal(t0.Add(4*time.Hour)) || got.By != "ana" {
		t.Errorf("released hold = %+v", got)
	}
	if len(hs[0].Cameras) != 0 || hs[0].Site != "palat" || !hs[0].Expires.IsZero() || !hs[0].Released.IsZero() {
		t.Errorf("site hold = %+v", hs[0])
	}
}

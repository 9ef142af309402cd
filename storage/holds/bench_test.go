package holds

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/state"
)

// BenchmarkHeld is what every Put and Delete pays for the hold check: with 100 holds
// in force over 20 cameras (10 of them site holds), for a key that none covers.
func BenchmarkHeld(b *testing.B) {
	ctx := b.Context()
	db, err := state.Open(ctx, filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	store, err := storage.NewDisk(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	var cams []Camera
	for i := range 20 {
		cams = append(cams, Camera{ID: fmt.Sprintf("cam-%d", i), Site: fmt.Sprintf("site-%d", i%2)})
	}
	r, err := Open(ctx, Options{State: db, Store: store, Cameras: func() []Camera { return cams },
		Now: func() time.Time { return t0.Add(365 * 24 * time.Hour) }}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for i := range 100 {
		h := state.Hold{Cameras: []string{cams[i%20].ID}, From: t0.Add(time.Duration(i) * time.Hour),
			To: t0.Add(time.Duration(i)*time.Hour + time.Minute), Reason: "bench", By: "ana"}
		if i%10 == 0 {
			h.Cameras, h.Site = nil, "site-1"
		}
		if _, err := r.Create(ctx, h); err != nil {
			b.Fatal(err)
		}
	}
	key := storage.SegmentKey{Camera: "cam-3", Start: t0.Add(30 * time.Minute), Duration: 2 * time.Second}.String()
	b.ReportAllocs()
	for b.Loop() {
		if r.Held(key) {
			b.Fatal("held")
		}
	}
}

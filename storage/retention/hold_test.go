package retention

import (
	"testing"
	"time"
)

func TestHoldCovers(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC)
	h := Hold{Cameras: []string{"bastion-gate"}, From: t0, To: t0.Add(10 * time.Minute), Expires: t0.Add(24 * time.Hour)}
	site := Hold{Site: "palat", From: t0, To: t0.Add(10 * time.Minute)}
	now := t0.Add(time.Hour)
	for _, tc := range []struct {
		name       string
		h          Hold
		camera     string
		site       string
		start, end time.Time
		now        time.Time
		want       bool
	}{
		{"inside", h, "bastion-gate", "bastion", t0.Add(time.Minute), t0.Add(2 * time.Minute), now, true},
		{"overlaps the start", h, "bastion-gate", "bastion", t0.Add(-time.Minute), t0.Add(time.Second), now, true},
		{"ends at From", h, "bastion-gate", "bastion", t0.Add(-time.Minute), t0, now, false},
		{"starts at To", h, "bastion-gate", "bastion", t0.Add(10 * time.Minute), t0.Add(11 * time.Minute), now, false},
		{"other camera", h, "bastion-yard", "bastion", t0, t0.Add(time.Minute), now, false},
		{"expired", h, "bastion-gate", "bastion", t0, t0.Add(time.Minute), t0.Add(25 * time.Hour), false},
		{"by site", site, "palat-hall", "palat", t0, t0.Add(time.Minute), now, true},
		{"site hold, other site", site, "bastion-gate", "bastion", t0, t0.Add(time.Minute), now, false},
		{"no expiry", site, "palat-hall", "palat", t0, t0.Add(time.Minute), t0.Add(1000 * time.Hour), true},
	} {
		if got := tc.h.Covers(tc.camera, tc.site, tc.start, tc.end, tc.now); got != tc.want {
			t.Errorf("%s: Covers = %v, want %v", tc.name, got, tc.want)
		}
	}
}

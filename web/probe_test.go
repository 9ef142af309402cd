package web

import (
	"testing"
	"time"
)

// A user gets probeBurst probes at once, then one per probeEvery; another user has
// their own allowance.
func TestProbeLimitsPerUser(t *testing.T) {
	l := newProbeLimits()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	for i := range probeBurst {
		if ok, _ := l.allow("itc"); !ok {
			t.Fatalf("probe %d of the burst refused", i+1)
		}
	}
	ok, wait := l.allow("itc")
	if ok || wait <= 0 || wait > probeEvery {
		t.Fatalf("probe beyond the burst: allowed %v, wait %v; want refused with a wait up to %v", ok, wait, probeEvery)
	}
	if ok, _ := l.allow("itc-2"); !ok {
		t.Error("another user's first probe refused")
	}
	now = now.Add(probeEvery)
	if ok, _ := l.allow("itc"); !ok {
		t.Error("probe after probeEvery refused")
	}
	if ok, _ := l.allow("itc"); ok {
		t.Error("second probe right after the refill allowed: a scan would go at full speed")
	}
}

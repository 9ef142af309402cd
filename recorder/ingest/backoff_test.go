package ingest

import (
	"testing"
	"time"
)

func TestCameraBackoffGrowsCapsAndResets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rand   float64
		expect []time.Duration
	}{
		// rand 1 gives the un-jittered ceiling, rand 0 half of it.
		{"ceiling", 1, []time.Duration{200, 400, 800, 1600, 3200, 5000, 5000}},
		{"floor", 0, []time.Duration{100, 200, 400, 800, 1600, 2500, 2500}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackoff(cameraBackoffMin, cameraBackoffMax)
			b.rand = func() float64 { return tc.rand }
			for i, want := range tc.expect {
				if got := b.Next(cameraBackoffMax); got != want*time.Millisecond {
					t.Fatalf("delay %d = %v, want %v", i, got, want*time.Millisecond)
				}
			}
			// An unreachable camera is probed at least every cameraBackoffDial.
			if got, want := b.Next(cameraBackoffDial), time.Duration(tc.rand*500+500)*time.Millisecond; got != want {
				t.Fatalf("dial-limited delay %v, want %v", got, want)
			}
			b.Reset()
			if got, want := b.Next(cameraBackoffMax), tc.expect[0]*time.Millisecond; got != want {
				t.Fatalf("after reset: %v, want %v", got, want)
			}
		})
	}
}

func TestCameraBackoffJitterSpreadsCameras(t *testing.T) {
	// Cameras that failed together must not all retry at the same instant.
	seen := map[time.Duration]bool{}
	for range 20 {
		b := newBackoff(cameraBackoffMin, cameraBackoffMax)
		d := b.Next(cameraBackoffMax)
		if d < cameraBackoffMin/2 || d > cameraBackoffMin {
			t.Fatalf("first delay %v outside [%v, %v]", d, cameraBackoffMin/2, cameraBackoffMin)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct delays among 20 cameras", len(seen))
	}
}

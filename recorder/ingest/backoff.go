package ingest

import (
	"math/rand/v2"
	"time"
)

// Reconnect pacing for camera sessions. A camera that drops out is retried quickly at
// first (most outages are a reboot or a network blip) and then no more often than every
// cameraBackoffMax, so dozens of dead cameras cannot flood the network or the logs.
const (
	cameraBackoffMin = 200 * time.Millisecond
	cameraBackoffMax = 5 * time.Second
	// cameraBackoffDial caps the delay while the camera does not accept a connection or
	// does not serve its stream (rebooting, unplugged): such a probe is cheap, and a
	// camera that comes back must be recorded again within a couple of seconds.
	cameraBackoffDial = time.Second
	// A session that delivered video for this long counts as healthy: the next failure
	// starts the backoff from cameraBackoffMin again.
	cameraBackoffReset = 5 * time.Second
)

// backoff yields jittered, exponentially growing, capped delays. Not safe for
// concurrent use; each camera supervisor owns one.
type backoff struct {
	min, max time.Duration
	next     time.Duration // un-jittered delay for the following Next
	rand     func() float64
}

func newBackoff(minDelay, maxDelay time.Duration) *backoff {
	return &backoff{min: minDelay, max: maxDelay, next: minDelay, rand: rand.Float64}
}

// Next returns the delay before the next attempt: a random value in [d/2, d] where d
// doubles on every call up to max, and is at most limit. The jitter keeps cameras
// that failed together (a switch reboot) from reconnecting in lockstep.
func (b *backoff) Next(limit time.Duration) time.Duration {
	d := min(b.next, limit)
	b.next = min(2*b.next, b.max)
	return d/2 + time.Duration(b.rand()*float64(d/2))
}

// Reset makes the next delay start from min again.
func (b *backoff) Reset() { b.next = b.min }

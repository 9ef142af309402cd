package webrtc

import (
	"testing"

	"github.com/straja-nvr/straja/streaming"
)

// A camera with a GOP longer than streaming.MaxGOP must not grow the cache without bound; a viewer
// joining then gets no truncated burst but waits for the next keyframe, and gets the
// new GOP from there.
func TestGOPCacheIsBounded(t *testing.T) {
	m, _ := newMetrics(nil)
	c := &camera{viewers: map[*viewer]struct{}{}, drops: m.drops.WithLabelValues("x"), viewerGauge: m.viewers.WithLabelValues("x")}
	c.publish(&unit{key: true}, false)
	for i := 0; i < 3*streaming.MaxGOP; i++ {
		c.publish(&unit{}, false)
		if len(c.gop.Units()) > streaming.MaxGOP {
			t.Fatalf("GOP cache holds %d units after %d frames, want at most %d", len(c.gop.Units()), i+2, streaming.MaxGOP)
		}
	}
	late := &viewer{queue: make(chan item, viewerQueue)}
	if !c.add(late) {
		t.Fatal("viewer refused")
	}
	if n := len(late.queue); n != 0 {
		it := <-late.queue
		t.Fatalf("late viewer got %d items (first a burst of %d units) from an over-long GOP, want none", n, len(it.units))
	}
	c.publish(&unit{key: true}, false)
	c.publish(&unit{}, false)
	if len(late.queue) != 2 {
		t.Fatalf("viewer got %d items after the next keyframe, want 2", len(late.queue))
	}
	if it := <-late.queue; !it.units[0].key {
		t.Fatal("viewer's first unit is not the keyframe")
	}
	next := &viewer{queue: make(chan item, viewerQueue)}
	c.add(next)
	if it := <-next.queue; !it.burst || len(it.units) != 2 || !it.units[0].key {
		t.Fatalf("viewer joining the new GOP got %+v, want a burst of its 2 units", it)
	}
}

package streaming

// MaxGOP bounds a GOP cache, so that a camera with a very long GOP cannot grow memory
// by its bitrate, and a new reader is never handed an endless burst.
const MaxGOP = 600

// GOP caches the latest group of pictures, from its keyframe on, so that a new reader
// can start decoding at once instead of waiting for the next keyframe. A GOP longer
// than MaxGOP is dropped whole: a truncated one followed by live units would not
// decode, so new readers wait for the next keyframe instead. The fan-out caches units,
// WebRTC its packetised units. Not safe for concurrent use: the owner guards it.
type GOP[T any] struct {
	units []T
}

// Add appends u; key says that u is a keyframe, which starts a new GOP. A slice
// returned by Units before is left untouched, so it may still be read.
func (g *GOP[T]) Add(u T, key bool) {
	if key {
		g.units = make([]T, 0, max(cap(g.units), 1))
	}
	if len(g.units) == MaxGOP {
		g.units = nil
	} else if len(g.units) > 0 || key {
		g.units = append(g.units, u)
	}
}

// Units returns the cached GOP, keyframe first, or nothing while waiting for one. The
// caller must not modify it.
func (g *GOP[T]) Units() []T { return g.units }

// Reset empties the cache until the next keyframe.
func (g *GOP[T]) Reset() { g.units = nil }

// KeyGate is the drop-to-keyframe rule of a bounded queue: once a unit could not be
// queued, the units after it are dropped too until a keyframe, so the reader resumes
// with a picture it can decode. Not safe for concurrent use: the queue's writer guards it.
type KeyGate struct {
	waiting bool
}

// WaitKey makes the gate refuse units until the next keyframe: after a loss, or for a
// reader that must start at a keyframe.
func (g *KeyGate) WaitKey() { g.waiting = true }

// Admit reports whether a unit may be queued; key says it is a keyframe.
func (g *KeyGate) Admit(key bool) bool {
	if g.waiting && !key {
		return false
	}
	g.waiting = false
	return true
}

// Waiting reports whether the gate refuses units until a keyframe.
func (g *KeyGate) Waiting() bool { return g.waiting }

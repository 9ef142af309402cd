// Package playback turns the catalog's fragment index into footage a browser can
// play and seek: a virtual MP4 over a time range of one camera, stitched across
// segments without re-encoding, whose bytes map to ranged reads of the segment
// objects (in the store, or still in the spool).
package playback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/straja-nvr/straja/storage"
)

// MaxRange is the longest range one movie covers.
const MaxRange = time.Hour

// ErrNoFootage is returned (wrapped) when nothing is recorded in a range.
var ErrNoFootage = errors.New("no footage in this range")

// RangeError is a bad time range; Field names the parameter ("from", "to", "at").
type RangeError struct {
	Field string
	Msg   string
}

func (e *RangeError) Error() string { return e.Field + ": " + e.Msg }

// Catalog is what playback reads of the segment catalog (*storage.Catalog).
type Catalog interface {
	// Segments returns camera's segments overlapping [from, to) ordered by start,
	// with their fragment lists.
	Segments(ctx context.Context, camera string, from, to time.Time) ([]storage.Segment, error)
	// SegmentsWithTables is Segments with each segment's recorded init section and
	// sample table where the catalog has them (storage.Segment's Init and Samples).
	SegmentsWithTables(ctx context.Context, camera string, from, to time.Time) ([]storage.Segment, error)
	// ListSegments pages through camera's segments without their fragment lists.
	ListSegments(ctx context.Context, q storage.SegmentQuery, fn func(storage.Segment) error) error
}

// ObjectReader reads byte ranges of stored segments (storage.Store has it).
type ObjectReader interface {
	// Get opens key for reading length bytes from off; an error matching
	// storage.ErrNotFound means the key does not exist.
	Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
}

// Spool is footage not yet in the catalog: closed segments waiting for upload and
// the segment being written. Implementations are safe for concurrent use.
type Spool interface {
	// Footage returns camera's spooled segments overlapping [from, to), ordered by
	// start, each with the fragments written so far (durable ones only). The Key of
	// a segment still being written names its start and its duration so far.
	Footage(camera string, from, to time.Time) []storage.Segment
	// Get reads a segment Footage returned, by its Key, like ObjectReader.Get. Once the
	// segment has left the spool (uploaded), it returns an error matching
	// storage.ErrNotFound.
	Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
}

// cacheSamples bounds the fragment cache: about 11 hours of 25 fps video, ~30 MB.
const cacheSamples = 1_000_000

// Player makes movies of recorded footage. Safe for concurrent use.
type Player struct {
	cat   Catalog
	store ObjectReader
	spool Spool // nil: catalogued footage only

	cache  *fragmentCache
	leads  leadCache   // picture types of leading samples (leading.go)
	movies *movieCache // recent movies (moviecache.go)
	builds atomic.Int64
	// now is the clock for near-live checks; tests replace it.
	now func() time.Time
}

// New returns a Player over the catalog and the store; spool may be nil.
func New(cat Catalog, store ObjectReader, spool Spool) *Player {
	return &Player{cat: cat, store: store, spool: spool, cache: newFragmentCache(cacheSamples),
		movies: newMovieCache(movieCacheBytes, movieCacheEntries), now: time.Now}
}

// CheckRange validates a [from, to) request: from before to, at most MaxRange long.
func CheckRange(from, to time.Time) error {
	switch {
	case from.IsZero():
		return &RangeError{Field: "from", Msg: "is required"}
	case to.IsZero():
		return &RangeError{Field: "to", Msg: "is required"}
	case !to.After(from):
		return &RangeError{Field: "to", Msg: "must be after from"}
	case to.Sub(from) > MaxRange:
		return &RangeError{Field: "to", Msg: fmt.Sprintf("range of %v is longer than the maximum of %v", to.Sub(from), MaxRange)}
	}
	return nil
}

// source is one segment a movie reads, and where its bytes are.
type source struct {
	seg     storage.Segment
	spooled bool
}

// segments returns camera's footage overlapping [from, to): catalogued segments and,
// where the catalog has none at that start, spooled ones; and the sum of all the
// segments it looked at (see footageNow).
func (p *Player) segments(ctx context.Context, camera string, from, to time.Time) ([]source, footageSum, error) {
	segs, err := p.cat.SegmentsWithTables(ctx, camera, from, to)
	if err != nil {
		return nil, footageSum{}, err
	}
	f := newFootageHash()
	out := make([]source, 0, len(segs))
	have := make(map[int64]bool, len(segs))
	for _, s := range segs {
		f.catalogued(s)
		if len(s.Fragments) == 0 {
			continue
		}
		out = append(out, source{seg: s})
		have[s.Start.UnixMilli()] = true
	}
	if p.spool != nil {
		for _, s := range p.spool.Footage(camera, from, to) {
			f.spooled(s)
			if len(s.Fragments) > 0 && !have[s.Start.UnixMilli()] {
				out = append(out, source{seg: s, spooled: true})
			}
		}
		slices.SortFunc(out, func(a, b source) int { return a.seg.Start.Compare(b.seg.Start) })
	}
	return out, f.sum(), nil
}

// get reads a range of src. A spooled segment that was uploaded in the meantime is
// read from the store instead.
func (p *Player) get(ctx context.Context, src source, off, n int64) (io.ReadCloser, error) {
	if !src.spooled {
		return p.store.Get(ctx, src.seg.Key, off, n)
	}
	rc, err := p.spool.Get(ctx, src.seg.Key, off, n)
	if !errors.Is(err, storage.ErrNotFound) {
		return rc, err
	}
	segs, cerr := p.cat.Segments(ctx, src.seg.Camera, src.seg.Start, src.seg.Start.Add(time.Millisecond))
	if cerr != nil {
		return nil, cerr
	}
	for _, s := range segs {
		if s.Start.Equal(src.seg.Start) {
			return p.store.Get(ctx, s.Key, off, n)
		}
	}
	return nil, err
}

// readAll reads exactly n bytes at off of src.
func (p *Player) readAll(ctx context.Context, src source, off, n int64) ([]byte, error) {
	rc, err := p.get(ctx, src, off, n)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", src.seg.Key, err)
	}
	defer rc.Close()
	buf := make([]byte, n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("read %s at %d: %w", src.seg.Key, off, err)
	}
	return buf, nil
}

// fragmentCache keeps parsed fragments and segment inits, which never change once
// written: a seek re-makes the movie without reading any moof again. Bounded by the
// number of samples held; the oldest entries go first.
type fragmentCache struct {
	mu      sync.Mutex
	max     int
	held    int
	entries map[cacheKey]cacheEntry
	order   []cacheKey
}

type cacheKey struct {
	camera string
	start  int64 // segment start, Unix ms: the same footage in spool and store
	offset int64 // fragment offset; 0 for the init
}

type cacheEntry struct {
	frag *fragment
	init *initInfo
}

func newFragmentCache(maxSamples int) *fragmentCache {
	return &fragmentCache{max: maxSamples, entries: make(map[cacheKey]cacheEntry)}
}

func (c *fragmentCache) get(k cacheKey) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	return e, ok
}

func (c *fragmentCache) put(k cacheKey, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[k]; ok {
		return
	}
	c.entries[k] = e
	c.order = append(c.order, k)
	c.held += e.weight()
	for c.held > c.max && len(c.order) > 1 {
		old := c.order[0]
		c.order = c.order[1:]
		c.held -= c.entries[old].weight()
		delete(c.entries, old)
	}
	if len(c.order) < cap(c.order)/4 { // let go of the evicted prefix now and then
		c.order = slices.Clone(c.order)
	}
}

func (e cacheEntry) weight() int {
	if e.frag != nil {
		return 1 + len(e.frag.samples)
	}
	return 1
}

package playback

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"sync"
	"time"

	"github.com/straja-nvr/straja/storage"
)

// A browser plays a movie with many Range requests (its own reads, every seek), and
// each asked Movie for the same hour: building one costs milliseconds and megabytes.
// The movie cache keeps recent movies by (camera, from, to) and the footage they were
// built from: the catalog's segments in the range (key and SHA-256: a key names its
// camera, start and duration, and its bytes never change once catalogued) and the
// spool's (key and fragment count: the segment being written grows one fragment at a
// time). A cached movie is served only while a look at that footage, one query of the
// catalog's index and the spool's list, finds it unchanged, so it is always what a
// fresh build would give: near-live footage that grew, a segment that moved from the
// spool to the store, one that retention deleted or a catalog rebuild changed all
// make a new movie, never stale bytes under an old ETag.

const (
	// movieCacheBytes bounds the memory the cached movies hold (headers and chunk
	// lists): an hour of 25 fps footage holds about 0.6 MB, so about 100 of them.
	movieCacheBytes = 64 << 20
	// movieCacheEntries bounds their number.
	movieCacheEntries = 256
	// listPage is how many segments one query of the footage look reads.
	listPage = 1000
)

// footageSum names the footage a movie is built from.
type footageSum [sha256.Size]byte

// movieKey is what a Movie call asks for.
type movieKey struct {
	camera   string
	from, to int64 // Unix ns
}

type movieEntry struct {
	key     movieKey
	footage footageSum
	m       *Movie
	weight  int64
}

// flight is one build that requests for the same movie and footage wait for.
type flight struct {
	done    chan struct{}
	m       *Movie
	err     error
	waiters int // under movieCache.mu; for tests
}

type flightKey struct {
	movieKey
	footage footageSum
}

// movieCache is an LRU of movies bounded by bytes held and entry count, building
// each missing one once however many ask for it at the same time.
type movieCache struct {
	maxBytes   int64
	maxEntries int

	mu      sync.Mutex
	held    int64
	lru     *list.List // of *movieEntry, most recently used first
	entries map[movieKey]*list.Element
	flights map[flightKey]*flight
}

func newMovieCache(maxBytes int64, maxEntries int) *movieCache {
	return &movieCache{maxBytes: maxBytes, maxEntries: maxEntries, lru: list.New(),
		entries: make(map[movieKey]*list.Element), flights: make(map[flightKey]*flight)}
}

// get returns the movie for k built from footage, from the cache, from a build in
// progress, or from build, which returns the movie and the footage it read.
func (c *movieCache) get(ctx context.Context, k movieKey, footage footageSum,
	build func(context.Context) (*Movie, footageSum, error)) (*Movie, error) {
	fk := flightKey{k, footage}
	for {
		c.mu.Lock()
		if el, ok := c.entries[k]; ok && el.Value.(*movieEntry).footage == footage {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return el.Value.(*movieEntry).m, nil
		}
		if f, ok := c.flights[fk]; ok {
			f.waiters++
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			// A build cut short by its own request's end is no answer to this one.
			if f.err != nil && ctx.Err() == nil &&
				(errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
				continue
			}
			return f.m, f.err
		}
		f := &flight{done: make(chan struct{})}
		c.flights[fk] = f
		c.mu.Unlock()

		m, built, err := build(ctx)
		f.m, f.err = m, err
		c.mu.Lock()
		delete(c.flights, fk)
		if err == nil {
			c.put(k, built, m)
		}
		c.mu.Unlock()
		close(f.done)
		return m, err
	}
}

// put caches m, built from footage, as k's movie, and evicts the least recently
// used movies beyond the bounds. c.mu is held.
func (c *movieCache) put(k movieKey, footage footageSum, m *Movie) {
	if el, ok := c.entries[k]; ok {
		c.remove(el)
	}
	e := &movieEntry{key: k, footage: footage, m: m, weight: m.weight()}
	if e.weight > c.maxBytes {
		return
	}
	c.entries[k] = c.lru.PushFront(e)
	c.held += e.weight
	for c.held > c.maxBytes || c.lru.Len() > c.maxEntries {
		c.remove(c.lru.Back())
	}
}

func (c *movieCache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*movieEntry)
	delete(c.entries, e.key)
	c.held -= e.weight
}

// stats returns the number of movies cached and the bytes they hold.
func (c *movieCache) stats() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.held
}

// weight is about the memory a movie holds: its header, its chunk list and its
// sources.
func (m *Movie) weight() int64 {
	const chunkBytes, sourceBytes = 32, 256
	return int64(cap(m.header)) + chunkBytes*int64(cap(m.chunks)) + sourceBytes*int64(len(m.srcs)+len(m.used))
}

// footageNow names camera's footage in [from, to) as it is now: the catalog's and
// the spool's segments there, as segments would find them.
func (p *Player) footageNow(ctx context.Context, camera string, from, to time.Time) (footageSum, error) {
	f := newFootageHash()
	q := storage.SegmentQuery{Camera: camera, From: from, To: to, Limit: listPage}
	for {
		n := 0
		err := p.cat.ListSegments(ctx, q, func(s storage.Segment) error {
			f.catalogued(s)
			q.After = s.Key
			n++
			return nil
		})
		if err != nil {
			return footageSum{}, err
		}
		if n < listPage {
			break
		}
	}
	if p.spool != nil {
		for _, s := range p.spool.Footage(camera, from, to) {
			f.spooled(s)
		}
	}
	return f.sum(), nil
}

// footageHash sums the segments a movie is made of, catalogued and spooled.
type footageHash struct{ h hash.Hash }

func newFootageHash() footageHash { return footageHash{sha256.New()} }

func (f footageHash) catalogued(s storage.Segment) { f.add('c', s.Key, s.SHA256[:]) }

func (f footageHash) spooled(s storage.Segment) {
	f.add('s', s.Key, binary.BigEndian.AppendUint64(nil, uint64(len(s.Fragments))))
}

func (f footageHash) add(kind byte, key string, b []byte) {
	var hdr [5]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(key)))
	f.h.Write(hdr[:])
	f.h.Write([]byte(key))
	f.h.Write(b)
}

func (f footageHash) sum() footageSum { return footageSum(f.h.Sum(nil)) }

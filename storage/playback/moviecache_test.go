package playback_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
)

// checkFresh fails unless m has the ETag and the bytes of a movie built afresh.
func checkFresh(t *testing.T, p *playback.Player, m *playback.Movie, from, to time.Time) {
	t.Helper()
	fresh, err := p.BuildMovie(t.Context(), "gate", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if m.ETag() != fresh.ETag() {
		t.Errorf("ETag %s, a fresh build has %s", m.ETag(), fresh.ETag())
	}
	if !bytes.Equal(movieBytes(t, m), movieBytes(t, fresh)) {
		t.Errorf("bytes differ from a fresh build's (%d and %d bytes)", m.Size(), fresh.Size())
	}
}

func TestMovieCache(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	playbacktest.Record(t, st, cat, "gate", t0, 3, time.Minute)
	p := playback.New(cat, st, nil)
	from, to := t0.Add(10*time.Second), t0.Add(2*time.Minute+50*time.Second)
	m1, err := p.Movie(t.Context(), "gate", from, to)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := p.Movie(t.Context(), "gate", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if n := p.Builds(); n != 1 || m1 != m2 {
		t.Errorf("two requests of one movie: %d builds, same movie %v; want 1 build", n, m1 == m2)
	}
	checkFresh(t, p, m2, from, to)
	if _, err := p.Movie(t.Context(), "gate", from, to.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if n := p.Builds(); n != 3 { // the fresh build, and the other range
		t.Errorf("another range: %d builds in all, want 3", n)
	}
}

// listGate lets no build read the catalog before n requests have looked at the
// footage, so that they all ask for the movie while it is being built.
type listGate struct {
	*storage.Catalog
	n      int32
	listed atomic.Int32
	all    chan struct{}
}

func (g *listGate) ListSegments(ctx context.Context, q storage.SegmentQuery, fn func(storage.Segment) error) error {
	err := g.Catalog.ListSegments(ctx, q, fn)
	if g.listed.Add(1) == g.n {
		close(g.all)
	}
	return err
}

func (g *listGate) SegmentsWithTables(ctx context.Context, camera string, from, to time.Time) ([]storage.Segment, error) {
	select {
	case <-g.all:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Catalog.SegmentsWithTables(ctx, camera, from, to)
}

func TestMovieCacheBuildsOnce(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	playbacktest.Record(t, st, cat, "gate", t0, 3, time.Minute)
	const n = 16
	p := playback.New(&listGate{Catalog: cat, n: n, all: make(chan struct{})}, st, nil)
	var wg sync.WaitGroup
	tags := make([]string, n)
	for i := range n {
		wg.Go(func() {
			m, err := p.Movie(t.Context(), "gate", t0, t0.Add(3*time.Minute))
			if err != nil {
				t.Error(err)
				return
			}
			tags[i] = m.ETag()
		})
	}
	wg.Wait()
	if b := p.Builds(); b != 1 {
		t.Errorf("%d requests at once built the movie %d times, want once", n, b)
	}
	for _, tag := range tags[1:] {
		if tag != tags[0] {
			t.Errorf("ETags %s and %s for one movie", tags[0], tag)
		}
	}
}

func TestMovieCacheBounded(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	playbacktest.Record(t, st, cat, "gate", t0, 3, time.Minute)
	p := playback.New(cat, st, nil)
	movie := func(i int) {
		t.Helper()
		from := t0.Add(time.Duration(i) * time.Second)
		if _, err := p.Movie(t.Context(), "gate", from, from.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	movie(0)
	_, weight := p.MovieCacheStats()
	if weight <= 0 {
		t.Fatalf("a cached movie weighs %d bytes", weight)
	}

	maxBytes := 2*weight + weight/2
	p.SetMovieCache(maxBytes, 100)
	for i := range 5 {
		movie(i)
	}
	if n, held := p.MovieCacheStats(); n > 2 || held > maxBytes {
		t.Errorf("%d movies of %d bytes held, bound %d bytes (room for 2)", n, held, maxBytes)
	}
	builds := p.Builds()
	movie(4) // the latest: cached
	movie(0) // the first: evicted
	if b := p.Builds() - builds; b != 1 {
		t.Errorf("the latest and the first movie again: %d builds, want 1 (the first)", b)
	}

	p.SetMovieCache(1<<30, 3)
	for i := range 5 {
		movie(i)
	}
	if n, _ := p.MovieCacheStats(); n != 3 {
		t.Errorf("%d movies held, bound 3", n)
	}
}

// A cached movie is served only while its footage is unchanged: after retention
// deletes a segment, or a segment is replaced under its key, a request gets what a
// fresh build gives, and the movie made before reads no other bytes: it fails.
func TestMovieCacheFootageChanges(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	segs := playbacktest.Record(t, st, cat, "gate", t0, 3, time.Minute)
	p := playback.New(cat, st, nil)
	from, to := t0, t0.Add(3*time.Minute)
	before, err := p.Movie(t.Context(), "gate", from, to)
	if err != nil {
		t.Fatal(err)
	}

	// Retention deletes the last segment.
	if err := st.Delete(t.Context(), segs[2].Key); err != nil {
		t.Fatal(err)
	}
	if err := cat.Delete(t.Context(), segs[2].Key); err != nil {
		t.Fatal(err)
	}
	after, err := p.Movie(t.Context(), "gate", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if after == before || after.ETag() == before.ETag() {
		t.Errorf("after a segment was deleted: the cached movie (ETag %s) was served", before.ETag())
	}
	if !after.End().Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("after a segment was deleted the movie ends at %v, want %v", after.End(), t0.Add(2*time.Minute))
	}
	checkFresh(t, p, after, from, to)
	if err := before.WriteRange(t.Context(), io.Discard, 0, before.Size()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the movie made before the deletion read its deleted footage: %v, want ErrNotFound", err)
	}

	// The first segment is replaced by other footage under the same key.
	data := playbacktest.SegmentBytes(t, 700, 60*25)
	other := playbacktest.Segment(t, "gate", t0, data)
	if other.Key != segs[0].Key || other.SHA256 == segs[0].SHA256 {
		t.Fatalf("replacement %s (same sum %v), want key %s and other bytes", other.Key, other.SHA256 == segs[0].SHA256, segs[0].Key)
	}
	if err := cat.Delete(t.Context(), segs[0].Key); err != nil {
		t.Fatal(err)
	}
	playbacktest.Store(t, st, cat, other, data)
	replaced, err := p.Movie(t.Context(), "gate", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if replaced.ETag() == after.ETag() {
		t.Errorf("after a segment was replaced: the cached movie (ETag %s) was served", after.ETag())
	}
	checkFresh(t, p, replaced, from, to)
}

// memSpool is a spool in memory: one segment being written, fragment by fragment,
// then uploaded.
type memSpool struct {
	mu   sync.Mutex
	seg  storage.Segment // Fragments: those written so far
	data []byte
	gone bool // uploaded
}

func (s *memSpool) Footage(camera string, from, to time.Time) []storage.Segment {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone || s.seg.Camera != camera || !s.seg.Start.Before(to) || !s.seg.End().After(from) {
		return nil
	}
	return []storage.Segment{s.seg}
}

func (s *memSpool) Get(_ context.Context, key string, off, length int64) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := storage.ParseSegmentKey(key)
	if err != nil || s.gone || !k.Start.Equal(s.seg.Start) {
		return nil, storage.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(s.data[off : off+length])), nil
}

// write publishes the first n fragments of full, as the recorder does after each.
func (s *memSpool) write(full storage.Segment, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := full.Fragments[n-1]
	s.seg = storage.Segment{Camera: full.Camera, Start: full.Start, Duration: last.Start + last.Duration,
		Fragments: full.Fragments[:n]}
	s.seg.Key = storage.SegmentKey{Camera: s.seg.Camera, Start: s.seg.Start, Duration: s.seg.Duration}.String()
}

// Near-live footage grows a fragment at a time: the next request after a fragment
// is written plays it, and the segment's move from the spool to the store makes the
// same movie.
func TestMovieCacheNearLive(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	data := playbacktest.SegmentBytes(t, 0, 60*25)
	full := playbacktest.Segment(t, "gate", t0, data)
	sp := &memSpool{data: data}
	p := playback.New(cat, st, sp)
	from, to := t0, t0.Add(time.Minute)

	sp.write(full, 10)
	m, err := p.Movie(t.Context(), "gate", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(10 * time.Second); !m.End().Equal(want) {
		t.Fatalf("10 fragments written: movie ends at %v, want %v", m.End(), want)
	}
	for n := 11; n <= len(full.Fragments); n++ {
		sp.write(full, n)
		if m, err = p.Movie(t.Context(), "gate", from, to); err != nil {
			t.Fatal(err)
		}
		if want := t0.Add(full.Fragments[n-1].Start + full.Fragments[n-1].Duration); !m.End().Equal(want) {
			t.Fatalf("%d fragments written: movie ends at %v, want %v", n, m.End(), want)
		}
	}
	checkFresh(t, p, m, from, to)
	spooled := m.ETag()

	// Uploaded: the store has it, the spool no longer.
	playbacktest.Store(t, st, cat, full, data)
	sp.mu.Lock()
	sp.gone = true
	sp.mu.Unlock()
	builds := p.Builds()
	if m, err = p.Movie(t.Context(), "gate", from, to); err != nil {
		t.Fatal(err)
	}
	if p.Builds() != builds+1 {
		t.Errorf("after the upload the movie was not made again")
	}
	if m.ETag() != spooled {
		t.Errorf("the same footage from the store has ETag %s, from the spool %s", m.ETag(), spooled)
	}
	checkFresh(t, p, m, from, to)
}

package spool

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage"
)

// flakyStore fails Put while fail is set.
type flakyStore struct {
	storage.Store
	fail atomic.Bool
	puts atomic.Int64
}

var errStoreDown = errors.New("store down")

func (f *flakyStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if f.fail.Load() {
		return errStoreDown
	}
	f.puts.Add(1)
	return f.Store.Put(ctx, key, r, size)
}

// flakyCatalog fails Add while fail is set.
type flakyCatalog struct {
	segmentCatalog
	fail atomic.Bool
}

func (f *flakyCatalog) Add(ctx context.Context, seg storage.Segment) error {
	if f.fail.Load() {
		return errors.New("catalog locked")
	}
	return f.segmentCatalog.Add(ctx, seg)
}

func TestUploaderRetriesUntilStoreRecovers(t *testing.T) {
	r := newRig(t, Options{})
	c := loadClip(t, "h265")
	r.store.fail.Store(true)
	r.startUploader()
	r.record(c.loop(2, 1, 0), nil)

	testutil.WaitFor(t, 10*time.Second, "failed retries", func() bool { return counterValue(t, r.m.UploadErrors) >= 3 })
	if n, size := r.up.Pending(); n != 8 || size != r.spool.Bytes() {
		t.Errorf("pending %d segments of %d bytes while the store is down, want 8 of %d", n, size, r.spool.Bytes())
	}
	if !errors.Is(r.up.LastError(), errStoreDown) || counterValue(t, r.m.StoreUp) != 0 {
		t.Errorf("health while down: last error %v, store up %v", r.up.LastError(), counterValue(t, r.m.StoreUp))
	}
	if segs := r.segments(); len(segs) != 0 {
		t.Errorf("%d segments catalogued while their bytes could not be stored", len(segs))
	}
	if got := len(spoolFiles(t, r.dir)); got != 8 {
		t.Errorf("spool holds %d files, want 8", got)
	}

	r.store.fail.Store(false)
	r.drain()
	segs := r.segments()
	if len(segs) != 8 || checkContiguous(t, segs) != 16*time.Second {
		t.Errorf("catalogued %d segments after the store came back, want 8 covering 16 s", len(segs))
	}
	if r.up.LastError() != nil || counterValue(t, r.m.StoreUp) != 1 {
		t.Errorf("health after recovery: last error %v, store up %v", r.up.LastError(), counterValue(t, r.m.StoreUp))
	}
	if puts := r.store.puts.Load(); puts != 8 {
		t.Errorf("%d puts for 8 segments", puts)
	}
}

func TestUploaderCataloguesOnlyStoredBytesAndPutsOnce(t *testing.T) {
	r := newRig(t, Options{})
	c := loadClip(t, "h264")
	cat := &flakyCatalog{segmentCatalog: r.cat}
	cat.fail.Store(true)
	r.up.cat = cat
	r.startUploader()
	r.record(c.loop(1, 1, 0), nil) // 4 segments

	// Every segment's bytes get stored once; their catalog entries keep failing, and
	// retrying them (each segment several times) stores nothing again.
	testutil.WaitFor(t, 10*time.Second, "catalog retries", func() bool {
		return r.store.puts.Load() >= 4 && counterValue(t, r.m.UploadErrors) >= 16
	})
	if n, _ := r.up.Pending(); n != 4 || r.store.puts.Load() != 4 {
		t.Errorf("pending %d segments after %d puts, want 4 pending, each put once", n, r.store.puts.Load())
	}
	cat.fail.Store(false)
	r.drain()
	if segs := r.segments(); len(segs) != 4 || checkContiguous(t, segs) != 8*time.Second {
		t.Errorf("catalogued %d segments, want 4 covering 8 s", len(segs))
	}
	if puts := r.store.puts.Load(); puts != 4 {
		t.Errorf("%d puts for 4 segments: a catalog failure must not upload again", puts)
	}
}

// badKeyCatalog refuses one key for good.
type badKeyCatalog struct {
	segmentCatalog
	bad atomic.Value // string
}

func (f *badKeyCatalog) Add(ctx context.Context, seg storage.Segment) error {
	if bad, _ := f.bad.Load().(string); bad == "" {
		f.bad.Store(seg.Key)
	}
	if seg.Key == f.bad.Load().(string) {
		return errors.New("refused")
	}
	return f.segmentCatalog.Add(ctx, seg)
}

// TestUploaderOneBadSegmentDoesNotBlockTheRest: a segment that can never be catalogued
// stays spooled, and every other segment is still stored and catalogued.
func TestUploaderOneBadSegmentDoesNotBlockTheRest(t *testing.T) {
	r := newRig(t, Options{})
	c := loadClip(t, "h264")
	cat := &badKeyCatalog{segmentCatalog: r.cat}
	r.up.cat = cat
	r.startUploader()
	r.record(c.loop(1, 1, 0), nil) // 4 segments
	// Catalogued first, then removed from the spool: wait for both.
	testutil.WaitFor(t, 10*time.Second, "the other segments stored, catalogued and unspooled", func() bool {
		n, _ := r.up.Pending()
		return len(r.segments()) == 3 && n == 1
	})
	for _, s := range r.segments() {
		if s.Key == cat.bad.Load().(string) {
			t.Errorf("refused segment %s catalogued", s.Key)
		}
	}
}

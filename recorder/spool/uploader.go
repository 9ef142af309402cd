package spool

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/straja-nvr/straja/recorder/internal/metrics"
	"github.com/straja-nvr/straja/storage"
)

// segmentCatalog is what the uploader needs of *storage.Catalog.
type segmentCatalog interface {
	// Add records a stored segment; adding the same key again is not an error.
	Add(ctx context.Context, seg storage.Segment) error
}

// Upload retry backoff bounds.
const (
	minUploadBackoff = 250 * time.Millisecond
	maxUploadBackoff = 10 * time.Second
)

// ErrCatalog marks an upload that stored the bytes but could not catalogue them.
var ErrCatalog = errors.New("catalogue")

// Uploader moves closed segments from the spool to the store, oldest first: bytes
// first (Put), then the catalog entry, then the spool file is deleted. On failure it
// retries the same segment with capped, jittered exponential backoff while recording
// goes on into the spool.
type Uploader struct {
	sp  *Spool
	st  storage.Store
	cat segmentCatalog
	m   *metrics.Metrics
	log *slog.Logger

	minBackoff, maxBackoff time.Duration

	mu      sync.Mutex
	lastErr error
}

// NewUploader returns an Uploader from sp to st and cat. m and log may be nil.
func NewUploader(sp *Spool, st storage.Store, cat segmentCatalog, m *metrics.Metrics, log *slog.Logger) *Uploader {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Uploader{sp: sp, st: st, cat: cat, m: metricsOrNop(m), log: log.With("component", "uploader"),
		minBackoff: minUploadBackoff, maxBackoff: maxUploadBackoff}
}

// uploadTriesBeforeRequeue is how often the oldest segment is tried before the others.
const uploadTriesBeforeRequeue = 3

// Run uploads segments as they close until ctx is done, then returns nil. A segment
// whose upload is interrupted stays in the spool for the next run.
func (u *Uploader) Run(ctx context.Context) error {
	backoff := u.minBackoff
	for {
		sp, ok := u.sp.next()
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-u.sp.wake:
				continue
			}
		}
		err := u.upload(ctx, sp)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			backoff = u.minBackoff
			continue
		}
		u.m.UploadErrors.Inc()
		u.m.StoreUp.Set(0)
		u.setErr(err)
		// A segment that keeps failing goes to the back of the queue, so one bad file
		// cannot hold up every camera's uploads until the spool fills.
		if sp.failures++; sp.failures >= uploadTriesBeforeRequeue {
			sp.failures = 0
			u.sp.requeue(sp)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		u.log.Warn("upload failed, retrying", "key", sp.seg.Key, "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, u.maxBackoff)
	}
}

// upload stores, catalogues and removes one segment.
func (u *Uploader) upload(ctx context.Context, sp *spooled) error {
	key := sp.seg.Key
	if !sp.stored {
		f, err := os.Open(sp.path)
		if errors.Is(err, fs.ErrNotExist) {
			// Retrying cannot help; drop it from the queue so the rest can go.
			u.log.Error("spooled segment vanished before upload", "key", key)
			return u.sp.remove(sp)
		}
		if err != nil {
			return fmt.Errorf("upload %s: %w", key, err)
		}
		t0 := time.Now()
		// The spool hashed the segment as it wrote it; the store need not again.
		err = storage.PutHashed(ctx, u.st, key, f, sp.seg.Size, sp.seg.SHA256)
		f.Close()
		if err != nil {
			return fmt.Errorf("upload %s: %w", key, err)
		}
		u.m.UploadSeconds.Observe(time.Since(t0).Seconds())
		sp.stored = true // only this goroutine reads it
	}
	if err := u.cat.Add(ctx, sp.seg); err != nil {
		return fmt.Errorf("%w %s: %w", ErrCatalog, key, err)
	}
	u.m.StoreUp.Set(1)
	u.setErr(nil)
	u.m.SegmentStored(sp.seg.Camera)
	if err := u.sp.remove(sp); err != nil {
		// Stored and catalogued: a leftover file is uploaded again after a restart, harmlessly.
		u.log.Error("uploaded segment not removed from spool", "key", key, "err", err)
	}
	return nil
}

func (u *Uploader) setErr(err error) {
	u.mu.Lock()
	u.lastErr = err
	u.mu.Unlock()
}

// LastError returns the error of the last failed upload, or nil once one succeeds.
func (u *Uploader) LastError() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lastErr
}

// Pending returns how many closed segments, and their bytes, wait for upload.
func (u *Uploader) Pending() (segments int, bytes int64) {
	return u.sp.pending()
}

package retention

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/straja-nvr/straja/storage"
)

// Guard keeps recording from failing for want of space: when free space on the disk
// store's file system falls below a threshold, or the footage in total grows beyond
// MaxBytes (an S3 bucket), the oldest unheld footage is deleted at once, whatever
// the policies say.
type Guard struct {
	// Path is on the file system to keep space free on (the disk store's root);
	// empty: no free-space check.
	Path string
	// MinFreeBytes or MinFreePercent (of the file system) is the free space to keep.
	MinFreeBytes   int64
	MinFreePercent float64
	// MaxBytes bounds the catalogued footage in total; 0: no bound.
	MaxBytes int64
	// Interval is how often space is checked (0: 10s).
	Interval time.Duration
	// Space reports free and total bytes of Path's file system (nil: statfs).
	Space func(path string) (free, total int64, err error)
}

func (g Guard) enabled() bool {
	return g.Path != "" && (g.MinFreeBytes > 0 || g.MinFreePercent > 0) || g.MaxBytes > 0
}

// DiskSpace reports the bytes free (to unprivileged writers) and in total on path's
// file system.
func DiskSpace(path string) (free, total int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("free space of %s: %w", path, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), int64(st.Blocks) * int64(st.Bsize), nil
}

// guard checks space every interval until ctx ends.
func (r *Runner) guard(ctx context.Context) {
	iv := r.opts.Guard.Interval
	if iv <= 0 {
		iv = 10 * time.Second
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		if _, err := r.Emergency(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("full-disk guard failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// need returns how many bytes must go to get back within the guard's limits, and why.
func (r *Runner) need(ctx context.Context) (int64, string, error) {
	g := r.opts.Guard
	var need int64
	var why string
	if g.Path != "" && (g.MinFreeBytes > 0 || g.MinFreePercent > 0) {
		space := g.Space
		if space == nil {
			space = DiskSpace
		}
		free, total, err := space(g.Path)
		if err != nil {
			return 0, "", err
		}
		want := g.MinFreeBytes
		if g.MinFreePercent > 0 {
			want = int64(g.MinFreePercent / 100 * float64(total))
		}
		if n := want - free; n > need {
			need, why = n, fmt.Sprintf("%d bytes free, min_free %d", free, want)
		}
	}
	if g.MaxBytes > 0 {
		cams, err := r.opts.Catalog.Cameras(ctx)
		if err != nil {
			return 0, "", err
		}
		var sum int64
		for _, c := range cams {
			st, err := r.opts.Catalog.Stats(ctx, c)
			if err != nil {
				return 0, "", err
			}
			sum += st.Bytes
		}
		if n := sum - g.MaxBytes; n > need {
			need, why = n, fmt.Sprintf("%d bytes of footage, max_bytes %d", sum, g.MaxBytes)
		}
	}
	return need, why, nil
}

// Emergency deletes the oldest unheld footage, of any camera, until the guard's
// limits are met again, and records it as a run of kind "emergency". It does nothing
// (and records nothing) when within limits. Holds win here too; the safety stop
// does not apply.
func (r *Runner) Emergency(ctx context.Context) (Run, error) {
	need, why, err := r.need(ctx)
	if err != nil || need <= 0 {
		return Run{}, err
	}
	r.mu.Lock()
	futile := r.opts.Now().Before(r.futileUntil)
	r.mu.Unlock()
	if futile {
		return Run{}, nil // the last one found nothing it could delete: not a run every check
	}
	if err := r.acquire(ctx); err != nil {
		return Run{}, err
	}
	defer r.release()
	r.metrics.emergencies.Inc()
	r.log.Warn("full-disk guard: deleting the oldest unheld footage", "need_bytes", need, "why", why)
	run := Run{Kind: KindEmergency, Started: r.opts.Now().UTC(), Cameras: []CameraRun{}}
	if run.ID, err = r.opts.State.StartRetentionRun(ctx, run.Kind, "", false, run.Started); err != nil {
		return run, err
	}
	runErr := r.emergency(ctx, &run, need)
	if d, _, _, _ := run.Totals(); d == 0 {
		r.mu.Lock()
		r.futileUntil = r.opts.Now().Add(futileWait)
		r.mu.Unlock()
	}
	return run, r.finish(ctx, &run, runErr)
}

// futileWait is how long the guard waits after an emergency run that could delete
// nothing (all held, or the store refusing) before it records another.
const futileWait = 5 * time.Minute

// errStop ends a walk over a camera's footage early.
var errStop = errors.New("stop")

func (r *Runner) emergency(ctx context.Context, run *Run, need int64) error {
	holds, err := r.opts.Holds.Holds(ctx)
	if err != nil {
		return fmt.Errorf("holds: %w", err)
	}
	sites := map[string]string{}
	for _, c := range r.opts.Cameras() {
		sites[c.ID] = c.Site
	}
	now := r.opts.Now()
	held := func(cam string, s storage.Segment) bool {
		for _, h := range holds {
			if h.Covers(cam, sites[cam], s.Start, s.End(), now) {
				return true
			}
		}
		return false
	}
	byCam := map[string]*CameraRun{}
	defer func() {
		for _, cr := range byCam {
			run.Cameras = append(run.Cameras, *cr)
		}
	}()
	for need > 0 {
		cams, err := r.opts.Catalog.Cameras(ctx)
		if err != nil {
			return err
		}
		// The oldest unheld segment of each camera: the oldest of them goes first.
		var first, second time.Time
		var pick string
		for _, c := range cams {
			var t time.Time
			err := r.opts.Catalog.Each(ctx, c, func(s storage.Segment) error {
				if held(c, s) {
					return nil
				}
				t = s.Start
				return errStop
			})
			if err != nil && !errors.Is(err, errStop) {
				return err
			}
			switch {
			case t.IsZero():
			case pick == "" || t.Before(first):
				second, first, pick = first, t, c
			case second.IsZero() || t.Before(second):
				second = t
			}
		}
		if pick == "" {
			return fmt.Errorf("still %d bytes short, and all footage left is held", need)
		}
		// Take that camera's oldest unheld segments up to what is needed, and no newer
		// than another camera's oldest, so footage goes oldest first across cameras.
		var batch []storage.Segment
		var bytes int64
		err = r.opts.Catalog.Each(ctx, pick, func(s storage.Segment) error {
			if held(pick, s) {
				return nil
			}
			if len(batch) > 0 && (bytes >= need || len(batch) >= r.opts.BatchSize ||
				!second.IsZero() && s.Start.After(second)) {
				return errStop
			}
			batch = append(batch, s)
			bytes += s.Size
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		cr := byCam[pick]
		if cr == nil {
			cr = &CameraRun{Camera: pick, Policy: "min_free"}
			byCam[pick] = cr
		}
		before := cr.Deleted
		if err := r.deleteBatch(ctx, pick, batch, cr, KindEmergency); err != nil {
			cr.Errors++
			cr.Error = err.Error()
			return err
		}
		if cr.Deleted == before {
			return fmt.Errorf("no object of %s could be deleted: %s", pick, cr.Error)
		}
		r.noteOldest(ctx, pick)
		if need, _, err = r.need(ctx); err != nil {
			return err
		}
	}
	return nil
}

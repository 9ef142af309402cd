// Package holds keeps evidence holds: footage that must not be deleted, whatever the
// retention policies say, until an administrator releases it. A hold lives in the
// state database and, as a small JSON object under the store's reserved prefix, next
// to the footage, so a lost state database or a catalog rebuild still knows it. The
// registry tells the store which objects are held (it then refuses to delete them),
// puts S3 legal holds on them when the bucket has Object Lock, and gives retention the
// holds in force (retention.HoldSource).
package holds

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/retention"
	"github.com/straja-nvr/straja/storage/state"
)

// Prefix is where holds are kept in the store, one object per hold: Prefix+ID+".json".
const Prefix = storage.ReservedPrefix + "holds/"

// Errors of the registry.
var (
	// ErrNotFound: no hold has that ID.
	ErrNotFound = state.ErrNotFound
	// ErrReleased: the hold was already released.
	ErrReleased = state.ErrReleased
)

// Camera is a camera and its site, as the registry needs them: a site hold covers
// every camera of the site.
type Camera struct {
	ID   string
	Site string
}

// LegalHolder is a store that can lock objects against deletion itself: an S3 bucket
// with Object Lock (*storage.S3).
type LegalHolder interface {
	ObjectLocking(ctx context.Context) (bool, error)
	SetLegalHold(ctx context.Context, key string, on bool) error
}

// Options configure a Registry.
type Options struct {
	State *state.State
	Store storage.Store
	// Cameras lists the cameras and their sites now (site holds, held keys).
	Cameras func() []Camera
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Registerer gets the held bytes and segments per camera (nil: none).
	Registerer prometheus.Registerer
	// Segments, when set, is where held footage is counted for the metrics (the
	// catalog's index); without it the store is listed.
	Segments SegmentLister
}

// SegmentLister pages through catalogued segments (*storage.Catalog).
type SegmentLister interface {
	ListSegments(ctx context.Context, q storage.SegmentQuery, fn func(storage.Segment) error) error
}

// Registry is the set of evidence holds. Safe for concurrent use.
type Registry struct {
	st      *state.State
	store   storage.Store
	cameras func() []Camera
	segs    SegmentLister
	now     func() time.Time
	log     *slog.Logger

	heldBytes, heldSegments *prometheus.GaugeVec
	sites                   atomic.Pointer[siteCache]

	write    sync.Mutex // one change (create, release, sweep) at a time
	imported bool       // the store's holds were imported; guarded by write
	// saved is, per hold, the release time of its copy in the store as this process
	// wrote or read it (zero: unreleased); guarded by write.
	saved   map[string]time.Time
	mu      sync.RWMutex
	inForce []retention.Hold // unreleased holds
}

var _ retention.HoldSource = (*Registry)(nil)

// Open loads the holds from the state database, first bringing back from the store
// any hold the database lacks (a lost or restored database): ones it has never seen,
// and releases it missed. It then tells the store which keys are held, when the store
// can enforce that (storage.HoldGuard).
func Open(ctx context.Context, opts Options, log *slog.Logger) (*Registry, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Cameras == nil {
		opts.Cameras = func() []Camera { return nil }
	}
	r := &Registry{st: opts.State, store: opts.Store, cameras: opts.Cameras, segs: opts.Segments, now: opts.Now, log: log,
		saved: map[string]time.Time{},
		heldBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "straja_held_bytes",
			Help: "Bytes of stored footage under evidence holds in force, per camera."}, []string{"camera"}),
		heldSegments: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "straja_held_segments",
			Help: "Stored segments under evidence holds in force, per camera."}, []string{"camera"})}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{r.heldBytes, r.heldSegments} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("holds metrics: %w", err)
			}
		}
	}
	// The store may be down at start (the spool holds the footage meanwhile): the
	// import then waits for a sweep.
	if _, err := Import(ctx, opts.State, opts.Store); err != nil {
		log.Warn("holds kept in the store not read yet; the next sweep retries", "err", err)
	} else {
		r.imported = true
	}
	if err := r.load(ctx); err != nil {
		return nil, err
	}
	if g, ok := opts.Store.(storage.HoldGuard); ok {
		g.SetHeld(r.Held)
	}
	if r.segs != nil { // a local index: counting now costs little
		r.refreshMetrics(ctx)
	}
	return r, nil
}

// Close stops the store enforcing this registry's holds.
func (r *Registry) Close() {
	if g, ok := r.store.(storage.HoldGuard); ok {
		g.SetHeld(nil)
	}
}

// load reads the unreleased holds into memory.
func (r *Registry) load(ctx context.Context) error {
	all, err := r.st.Holds(ctx)
	if err != nil {
		return err
	}
	var in []retention.Hold
	for _, h := range all {
		if h.Released.IsZero() {
			in = append(in, toRetention(h))
		}
	}
	r.mu.Lock()
	r.inForce = in
	r.mu.Unlock()
	return nil
}

func toRetention(h state.Hold) retention.Hold {
	return retention.Hold{ID: h.ID, Cameras: slices.Clone(h.Cameras), Site: h.Site, From: h.From, To: h.To,
		Reason: h.Reason, Expires: h.Expires, Created: h.Created, By: h.By}
}

// Holds returns the unreleased holds (an expired one covers nothing: Hold.Covers).
func (r *Registry) Holds(context.Context) ([]retention.Hold, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]retention.Hold, len(r.inForce))
	for i, h := range r.inForce {
		out[i] = h
		out[i].Cameras = slices.Clone(h.Cameras)
	}
	return out, nil
}

// Held reports whether a hold in force protects the segment at key now. Keys that
// are not segments (the reserved prefix) are never held.
func (r *Registry) Held(key string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.inForce) == 0 {
		return false
	}
	k, err := storage.ParseSegmentKey(key)
	if err != nil {
		return false
	}
	site := ""
	if slices.ContainsFunc(r.inForce, func(h retention.Hold) bool { return h.Site != "" }) {
		site = r.siteOf(k.Camera) // only site holds need it
	}
	return r.covered(k, site, r.now(), "")
}

// covered reports whether a hold in force other than except covers segment k. The
// caller holds mu.
func (r *Registry) covered(k storage.SegmentKey, site string, now time.Time, except string) bool {
	end := k.Start.Add(k.Duration)
	for _, h := range r.inForce {
		if h.ID != except && h.Covers(k.Camera, site, k.Start, end, now) {
			return true
		}
	}
	return false
}

// siteOf is camera's site, from a map of the cameras kept for a second: a batch of
// deletes asks for every key, and listing the cameras is not free.
func (r *Registry) siteOf(camera string) string {
	if c := r.sites.Load(); c != nil && time.Since(c.at) < time.Second {
		return c.site[camera]
	}
	c := &siteCache{at: time.Now(), site: map[string]string{}}
	for _, cam := range r.cameras() {
		c.site[cam.ID] = cam.Site
	}
	r.sites.Store(c)
	return c.site[camera]
}

type siteCache struct {
	at   time.Time
	site map[string]string // camera -> site
}

// HeldCameras says which cameras a hold in force covers (by camera or site), so a
// camera whose footage is held is not deleted by mistake.
func (r *Registry) HeldCameras(context.Context) (map[string]bool, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := r.now()
	out := map[string]bool{}
	var sites []string
	for _, h := range r.inForce {
		if !h.Active(now) {
			continue
		}
		for _, id := range h.Cameras {
			out[id] = true
		}
		if h.Site != "" {
			sites = append(sites, h.Site)
		}
	}
	if len(sites) > 0 {
		for _, c := range r.cameras() {
			if slices.Contains(sites, c.Site) {
				out[c.ID] = true
			}
		}
	}
	return out, nil
}

// List returns every hold, released ones too, newest first.
func (r *Registry) List(ctx context.Context) ([]state.Hold, error) { return r.st.Holds(ctx) }

// Get returns one hold.
func (r *Registry) Get(ctx context.Context, id string) (state.Hold, error) { return r.st.Hold(ctx, id) }

// Create stores a new hold (ID and Created are filled in here) in the state database
// and returns once it is in force: from then on the store refuses to delete what it
// covers. The copy beside the footage and the S3 legal holds follow; if the store
// fails them, the hold stays in force and Sweep completes them.
func (r *Registry) Create(ctx context.Context, h state.Hold) (state.Hold, error) {
	if !h.To.After(h.From) {
		return state.Hold{}, errors.New("hold: to must be after from")
	}
	if len(h.Cameras) == 0 && h.Site == "" {
		return state.Hold{}, errors.New("hold: cameras or site required")
	}
	if strings.TrimSpace(h.Reason) == "" {
		return state.Hold{}, errors.New("hold: reason required")
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return state.Hold{}, err
	}
	h.ID = hex.EncodeToString(b[:])
	h.From, h.To = h.From.UTC().Truncate(time.Millisecond), h.To.UTC().Truncate(time.Millisecond)
	if !h.Expires.IsZero() {
		h.Expires = h.Expires.UTC().Truncate(time.Millisecond)
	}
	h.Created = r.now().UTC().Truncate(time.Millisecond)
	h.Released, h.ReleasedBy, h.ReleaseReason, h.Locks = time.Time{}, "", "", state.LocksPending
	r.write.Lock()
	defer r.write.Unlock()
	if err := r.st.AddHold(ctx, h); err != nil {
		return state.Hold{}, err
	}
	r.mu.Lock()
	r.inForce = append(r.inForce, toRetention(h))
	r.mu.Unlock()
	_ = r.complete(ctx, h) // logged; Sweep retries
	r.refreshMetrics(ctx)
	return h, nil
}

// Release ends hold id, recording who and why, and lifts the storage locks of the
// footage no other hold covers (or leaves that to Sweep if the store fails).
func (r *Registry) Release(ctx context.Context, id, by, reason string) (state.Hold, error) {
	if strings.TrimSpace(reason) == "" {
		return state.Hold{}, errors.New("hold: release reason required")
	}
	r.write.Lock()
	defer r.write.Unlock()
	if err := r.st.ReleaseHold(ctx, id, by, reason, r.now().UTC().Truncate(time.Millisecond)); err != nil {
		return state.Hold{}, err
	}
	h, err := r.st.Hold(ctx, id)
	if err != nil {
		return state.Hold{}, err
	}
	r.mu.Lock()
	r.inForce = slices.DeleteFunc(r.inForce, func(x retention.Hold) bool { return x.ID == id })
	r.mu.Unlock()
	_ = r.complete(ctx, h) // logged; Sweep retries
	r.refreshMetrics(ctx)
	return h, nil
}

// complete brings the store's copy of h and its footage's locks up to date. Failures
// are logged and returned; Sweep tries again. The caller holds write.
func (r *Registry) complete(ctx context.Context, h state.Hold) error {
	var errs []error
	if err := r.save(ctx, h); err != nil {
		errs = append(errs, err)
	} else {
		r.saved[h.ID] = h.Released
	}
	inForce := r.inForceNow(h)
	switch {
	case inForce && h.Locks == state.LocksPending:
		if err := r.lock(ctx, toRetention(h), true); err != nil {
			errs = append(errs, err)
		} else if err := r.st.SetHoldLocks(ctx, h.ID, state.LocksOn); err != nil {
			errs = append(errs, err)
		}
	case !inForce && h.Locks != state.LocksOff:
		if err := r.lock(ctx, toRetention(h), false); err != nil {
			errs = append(errs, err)
		} else if err := r.st.SetHoldLocks(ctx, h.ID, state.LocksOff); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	if err != nil && ctx.Err() == nil {
		r.log.Warn("hold not yet complete in the store; the next sweep retries", "hold", h.ID, "err", err)
	}
	return err
}

// Sweep lifts the storage locks of holds that expired, and completes what the store
// failed before (copies beside the footage, locks); then it recounts the held
// footage. Run calls it periodically.
func (r *Registry) Sweep(ctx context.Context) error {
	r.write.Lock()
	defer r.write.Unlock()
	if !r.imported {
		if _, err := Import(ctx, r.st, r.store); err != nil {
			return err
		}
		r.imported = true
		if err := r.load(ctx); err != nil {
			return err
		}
	}
	all, err := r.st.Holds(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range all {
		copied, ok := r.saved[h.ID]
		if !ok || !copied.Equal(h.Released) {
			// Not yet seen by this process: read the copy back once.
			if stored, err := readHold(ctx, r.store, Prefix+h.ID+".json"); err == nil {
				copied, ok = stored.Released, true
				r.saved[h.ID] = copied
			}
		}
		if ok && copied.Equal(h.Released) {
			if inForce := r.inForceNow(h); inForce && h.Locks == state.LocksOn || !inForce && h.Locks == state.LocksOff {
				continue
			}
		}
		if err := r.complete(ctx, h); err != nil {
			errs = append(errs, err)
		}
	}
	r.refreshMetrics(ctx)
	return errors.Join(errs...)
}

func (r *Registry) inForceNow(h state.Hold) bool {
	return h.Released.IsZero() && toRetention(h).Active(r.now())
}

// Run sweeps every interval until ctx ends.
func (r *Registry) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("holds sweep failed; the next one retries", "err", err)
			}
		}
	}
}

// lock turns the legal holds of the stored segments h covers on or off (off only where
// no other hold in force covers the segment). A store without Object Lock has nothing
// to do: the registry's Held check protects its objects.
func (r *Registry) lock(ctx context.Context, h retention.Hold, on bool) error {
	lh, ok := r.store.(LegalHolder)
	if !ok {
		return nil
	}
	locking, err := lh.ObjectLocking(ctx)
	if err != nil {
		return fmt.Errorf("hold %s: %w", h.ID, err)
	}
	if !locking {
		return nil
	}
	now := r.now()
	return r.eachSegment(ctx, h, func(k storage.SegmentKey, site string, _ storage.ObjectInfo) error {
		if !on {
			r.mu.RLock()
			other := r.covered(k, site, now, h.ID)
			r.mu.RUnlock()
			if other {
				return nil
			}
		}
		err := lh.SetLegalHold(ctx, k.String(), on)
		if errors.Is(err, storage.ErrNotFound) {
			return nil // deleted meanwhile (not held, or a previous hold's release)
		}
		if err != nil {
			return fmt.Errorf("hold %s: %w", h.ID, err)
		}
		return nil
	})
}

// eachSegment calls fn for every stored segment h covers, whether or not h is in
// force, listing the store day by day for each of h's cameras.
func (r *Registry) eachSegment(ctx context.Context, h retention.Hold,
	fn func(k storage.SegmentKey, site string, info storage.ObjectInfo) error) error {
	cams := r.holdCameras(h)
	ids := make([]string, 0, len(cams))
	for id := range cams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	cover := h
	cover.Expires = time.Time{} // which footage, not whether in force
	// A segment starting the day before From may reach into the range.
	first := h.From.UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	for _, id := range ids {
		site := cams[id]
		for day := first; day.Before(h.To); day = day.Add(24 * time.Hour) {
			prefix := id + "/" + day.Format("2006/01/02") + "/"
			err := r.store.List(ctx, prefix, func(info storage.ObjectInfo) error {
				k, err := storage.ParseSegmentKey(info.Key)
				if err != nil || !cover.Covers(k.Camera, site, k.Start, k.Start.Add(k.Duration), h.From) {
					return nil
				}
				return fn(k, site, info)
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// listPage is the page size of catalog listings.
const listPage = 1000

// eachCatalogued is eachSegment over the catalog: one index range per camera and page.
func (r *Registry) eachCatalogued(ctx context.Context, h retention.Hold,
	fn func(k storage.SegmentKey, site string, info storage.ObjectInfo) error) error {
	for id, site := range r.holdCameras(h) {
		q := storage.SegmentQuery{Camera: id, From: h.From, To: h.To, Limit: listPage}
		for {
			n := 0
			err := r.segs.ListSegments(ctx, q, func(s storage.Segment) error {
				n++
				q.After = s.Key
				return fn(storage.SegmentKey{Camera: id, Start: s.Start, Duration: s.Duration}, site,
					storage.ObjectInfo{Key: s.Key, Size: s.Size})
			})
			if err != nil {
				return err
			}
			if n < listPage {
				break
			}
		}
	}
	return nil
}

// holdCameras maps the cameras h names, or its site's, to their sites.
func (r *Registry) holdCameras(h retention.Hold) map[string]string {
	cams := map[string]string{}
	for _, id := range h.Cameras {
		cams[id] = ""
	}
	for _, c := range r.cameras() {
		if _, ok := cams[c.ID]; ok || h.Site != "" && c.Site == h.Site {
			cams[c.ID] = c.Site
		}
	}
	return cams
}

// refreshMetrics recounts the held bytes and segments per camera. A failure leaves
// the previous figures (and is logged): metrics never fail a change.
func (r *Registry) refreshMetrics(ctx context.Context) {
	holds, _ := r.Holds(ctx)
	now := r.now()
	bytes, segs := map[string]float64{}, map[string]float64{}
	seen := map[string]bool{}
	for _, h := range holds {
		if !h.Active(now) {
			continue
		}
		count := func(k storage.SegmentKey, _ string, info storage.ObjectInfo) error {
			if !seen[info.Key] {
				seen[info.Key] = true
				bytes[k.Camera] += float64(info.Size)
				segs[k.Camera]++
			}
			return nil
		}
		var err error
		if r.segs != nil {
			err = r.eachCatalogued(ctx, h, count)
		} else {
			err = r.eachSegment(ctx, h, count)
		}
		if err != nil {
			r.log.Warn("held footage not counted", "hold", h.ID, "err", err)
			return
		}
	}
	r.heldBytes.Reset()
	r.heldSegments.Reset()
	for cam, n := range segs {
		r.heldSegments.WithLabelValues(cam).Set(n)
		r.heldBytes.WithLabelValues(cam).Set(bytes[cam])
	}
}

// save writes h to the store beside the footage.
func (r *Registry) save(ctx context.Context, h state.Hold) error {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	if err := r.store.Put(ctx, Prefix+h.ID+".json", bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("hold %s: store copy: %w", h.ID, err)
	}
	return nil
}

// StateSource gives retention the unreleased holds straight from the state database,
// for a command running beside the service (straja retention plan).
type StateSource struct{ State *state.State }

var _ retention.HoldSource = StateSource{}

// Holds returns the unreleased holds.
func (s StateSource) Holds(ctx context.Context) ([]retention.Hold, error) {
	all, err := s.State.Holds(ctx)
	if err != nil {
		return nil, err
	}
	var out []retention.Hold
	for _, h := range all {
		if h.Released.IsZero() {
			out = append(out, toRetention(h))
		}
	}
	return out, nil
}

// Import brings into the state database every hold stored beside the footage that the
// database lacks, and the releases it missed (a lost database, or a restored older
// backup). It returns how many holds it added or released.
func Import(ctx context.Context, st *state.State, store storage.Store) (int, error) {
	have, err := st.Holds(ctx)
	if err != nil {
		return 0, err
	}
	known := make(map[string]state.Hold, len(have))
	for _, h := range have {
		known[h.ID] = h
	}
	n := 0
	err = store.List(ctx, Prefix, func(info storage.ObjectInfo) error {
		id, ok := strings.CutSuffix(strings.TrimPrefix(info.Key, Prefix), ".json")
		if !ok || strings.Contains(id, "/") {
			return nil
		}
		h, err := readHold(ctx, store, info.Key)
		if err != nil {
			return err
		}
		if h.ID != id {
			return fmt.Errorf("hold object %s holds id %q", info.Key, h.ID)
		}
		old, ok := known[id]
		switch {
		case !ok:
			if err := st.AddHold(ctx, h); err != nil {
				return err
			}
			n++
		case old.Released.IsZero() && !h.Released.IsZero():
			if err := st.ReleaseHold(ctx, id, h.ReleasedBy, h.ReleaseReason, h.Released); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("import holds: %w", err)
	}
	return n, nil
}

// maxHoldObject bounds a hold object read back from the store.
const maxHoldObject = 1 << 20

func readHold(ctx context.Context, store storage.Store, key string) (state.Hold, error) {
	rc, err := store.Get(ctx, key, 0, -1)
	if err != nil {
		return state.Hold{}, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxHoldObject))
	if err != nil {
		return state.Hold{}, fmt.Errorf("read %s: %w", key, err)
	}
	var h state.Hold
	if err := json.Unmarshal(b, &h); err != nil {
		return state.Hold{}, fmt.Errorf("read %s: %w", key, err)
	}
	if !h.To.After(h.From) || h.Reason == "" || len(h.Cameras) == 0 && h.Site == "" {
		return state.Hold{}, fmt.Errorf("read %s: not a valid hold", key)
	}
	return h, nil
}

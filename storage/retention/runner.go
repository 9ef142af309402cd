package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/state"
)

// Kinds of run.
const (
	KindScheduled = "scheduled"
	KindManual    = "manual"
	KindEmergency = "emergency"
)

// Errors of the runner.
var (
	// ErrReadOnly is returned (wrapped) for a change to a policy of the
	// configuration file, which only the file changes.
	ErrReadOnly = errors.New("policy is set in the configuration file")
	// ErrNoPolicy is returned (wrapped) for a policy that does not exist.
	ErrNoPolicy = errors.New("no such policy")
)

// PolicyErrors is a policy refused for bad fields.
type PolicyErrors []*FieldError

func (e PolicyErrors) Error() string {
	msgs := make([]string, len(e))
	for i, fe := range e {
		msgs[i] = fe.Error()
	}
	return "invalid policy: " + fmt.Sprint(msgs)
}

// Catalog is what a run needs of the catalog: the footage and a way to forget it.
type Catalog interface {
	Source
	// DeleteMany forgets the segments with keys; absent keys are not an error.
	DeleteMany(ctx context.Context, keys []string) error
}

// CatalogDeleter is the catalog as a run uses it.
type CatalogDeleter struct{ CatalogSource }

// DeleteMany forgets the segments with keys.
func (c CatalogDeleter) DeleteMany(ctx context.Context, keys []string) error {
	return c.Catalog.DeleteMany(ctx, keys)
}

// Run is one run: what it deleted per camera.
type Run struct {
	ID      int64       `json:"id"`
	Kind    string      `json:"kind"`
	Policy  string      `json:"policy,omitempty"` // the scheduled policy; empty: every camera
	Forced  bool        `json:"forced"`
	Started time.Time   `json:"started"`
	Ended   time.Time   `json:"ended,omitzero"` // zero: running, or cut short
	Error   string      `json:"error,omitempty"`
	Cameras []CameraRun `json:"cameras"`
}

// CameraRun is what a run did to one camera's footage.
type CameraRun struct {
	Camera       string    `json:"camera"`
	Policy       string    `json:"policy"`
	Deleted      int       `json:"deleted"`
	DeletedBytes int64     `json:"deleted_bytes"`
	From         time.Time `json:"from,omitzero"`
	To           time.Time `json:"to,omitzero"`
	Held         int       `json:"held"`
	Errors       int       `json:"errors"`
	Error        string    `json:"error,omitempty"`
	SafetyStop   string    `json:"safety_stop,omitempty"`
}

// Totals sums the run over cameras.
func (r Run) Totals() (deleted int, bytes int64, errs int, stops int) {
	for _, c := range r.Cameras {
		deleted += c.Deleted
		bytes += c.DeletedBytes
		errs += c.Errors
		if c.SafetyStop != "" {
			stops++
		}
	}
	return
}

// RunnerOptions wire a Runner.
type RunnerOptions struct {
	Catalog Catalog
	Store   storage.Store
	State   *state.State
	// Holds gives the holds in force; nil: none.
	Holds HoldSource
	// Cameras returns the cameras now configured; Known what a policy may name.
	Cameras func() []Camera
	Known   func() Known
	// FilePolicies are the configuration file's, read-only through the API.
	FilePolicies []Policy
	// Location is the zone of cron schedules (nil: UTC).
	Location *time.Location
	// SafetyShare: see Options.SafetyShare.
	SafetyShare float64
	// Guard keeps space free; zero: no guard.
	Guard Guard
	// OnRun, if set, is called after each run (to audit it).
	OnRun func(ctx context.Context, r Run)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// BatchSize is how many objects one delete request takes (0: 1000, S3's most).
	BatchSize int
}

// Runner applies the retention policies: on their schedules, on demand, and in an
// emergency when space runs out. Safe for concurrent use; runs happen one at a time.
type Runner struct {
	opts    RunnerOptions
	log     *slog.Logger
	metrics *metrics

	mu     sync.Mutex // guards the fields below
	pols   *Policies
	api    []Policy // policies set through the API
	cron   *cron.Cron
	oldest map[string]time.Time // camera -> start of its oldest footage, after the last run
	// futileUntil: the last emergency run could delete nothing; the next waits.
	futileUntil time.Time
	stopped     bool
	guardEnd    context.CancelFunc
	guardWG     sync.WaitGroup
	retired     []context.Context // done when a replaced cron's jobs have returned
	// reschedule replaces the cron after a policy change; set by Start, it holds
	// the service's context for the jobs.
	reschedule func()

	running chan struct{} // a token: held by the run in progress
}

// NewRunner loads the policies set through the API and checks them with the file's.
// A stored policy that no longer fits (a camera removed since) is logged and left
// out rather than stopping the service.
func NewRunner(ctx context.Context, opts RunnerOptions, reg prometheus.Registerer, log *slog.Logger) (*Runner, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 1000
	}
	if opts.Holds == nil {
		opts.Holds = StaticHolds(nil)
	}
	if opts.Cameras == nil {
		opts.Cameras = func() []Camera { return nil }
	}
	if opts.Known == nil {
		opts.Known = func() Known { return Known{} }
	}
	r := &Runner{opts: opts, log: log, oldest: map[string]time.Time{}, running: make(chan struct{}, 1)}
	m, err := newMetrics(reg, r)
	if err != nil {
		return nil, err
	}
	r.metrics = m
	stored, err := opts.State.RetentionPolicies(ctx)
	if err != nil {
		return nil, err
	}
	for _, sp := range stored {
		var p Policy
		if err := json.Unmarshal(sp.Spec, &p); err != nil {
			log.Error("retention: stored policy unreadable, left out", "policy", sp.Name, "err", err)
			continue
		}
		p.Name, p.Source, p.Updated, p.UpdatedBy = sp.Name, SourceAPI, sp.Updated, sp.By
		if slices.ContainsFunc(opts.FilePolicies, func(f Policy) bool { return f.Name == p.Name }) {
			log.Warn("retention: stored policy has the name of one in the configuration file; the file's wins",
				"policy", p.Name)
			continue
		}
		r.api = append(r.api, p)
	}
	pols, errs := NewPolicies(r.all(r.api), opts.Known())
	for len(errs) > 0 {
		// Leave out the stored policies that fail, then check again.
		bad := map[string]bool{}
		all := r.all(r.api)
		for _, e := range errs {
			if all[e.Index].Source != SourceAPI {
				return nil, fmt.Errorf("retention policy %s: %w", all[e.Index].Name, e)
			}
			bad[all[e.Index].Name] = true
			log.Error("retention: stored policy no longer valid, left out until fixed", "policy", all[e.Index].Name,
				"err", e)
		}
		r.api = slices.DeleteFunc(r.api, func(p Policy) bool { return bad[p.Name] })
		pols, errs = NewPolicies(r.all(r.api), opts.Known())
	}
	r.pols = pols
	return r, nil
}

// all is the file's policies followed by api.
func (r *Runner) all(api []Policy) []Policy {
	return append(slices.Clone(r.opts.FilePolicies), api...)
}

// Start schedules each policy's runs and starts the full-disk guard. Jobs run with
// ctx, the service's; Close stops them.
func (r *Runner) Start(ctx context.Context) {
	// The age metric has figures from the start, not from the first run.
	if cams, err := r.opts.Catalog.Cameras(ctx); err == nil {
		for _, c := range cams {
			r.noteOldest(ctx, c)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reschedule = func() { r.scheduleLocked(ctx) }
	r.scheduleLocked(ctx)
	if r.opts.Guard.enabled() {
		gctx, cancel := context.WithCancel(ctx)
		r.guardEnd = cancel
		r.guardWG.Go(func() { r.guard(gctx) })
	}
}

// scheduleLocked replaces the cron with one holding every policy's schedule.
func (r *Runner) scheduleLocked(ctx context.Context) {
	if r.stopped {
		return
	}
	if r.cron != nil {
		// A run in progress finishes in the background; the new cron's first run
		// of the same policy waits for it (runs take turns). Close waits for it.
		r.retired = append(r.retired, r.cron.Stop())
	}
	l := cronLogger{log: r.log, skipped: r.metrics.skipped}
	c := cron.New(cron.WithLocation(r.opts.Location), cron.WithLogger(l),
		cron.WithChain(cron.Recover(l), cron.SkipIfStillRunning(l)))
	for _, p := range r.pols.List() {
		sched, err := ParseSchedule(p.Schedule, r.opts.Location)
		if err != nil { // checked when the policy was set
			r.log.Error("retention: bad schedule", "policy", p.Name, "err", err)
			continue
		}
		name := p.Name
		c.Schedule(sched, cron.FuncJob(func() {
			if _, err := r.Run(ctx, KindScheduled, name, false); err != nil && ctx.Err() == nil {
				r.log.Error("retention run failed", "policy", name, "err", err)
			}
		}))
	}
	c.Start()
	r.cron = c
}

// Close stops the schedules and the guard and waits for a run in progress.
func (r *Runner) Close() {
	r.mu.Lock()
	r.stopped = true
	c, end, retired := r.cron, r.guardEnd, r.retired
	r.mu.Unlock()
	if end != nil {
		end()
	}
	r.guardWG.Wait()
	if c != nil {
		<-c.Stop().Done()
	}
	for _, done := range retired {
		<-done.Done()
	}
}

// Policies returns every policy, by name.
func (r *Runner) Policies() []Policy {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pols.List()
}

// Resolve returns the effective policy of camera (of site).
func (r *Runner) Resolve(camera, site string) Policy {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pols.Resolve(camera, site)
}

// candidate returns the policy set with p put in (or, with remove, name taken out),
// or why that set is refused.
func (r *Runner) candidate(p *Policy, remove string) (*Policies, []Policy, error) {
	r.mu.Lock()
	api := slices.Clone(r.api)
	r.mu.Unlock()
	name := remove
	if p != nil {
		name = p.Name
	}
	if slices.ContainsFunc(r.opts.FilePolicies, func(f Policy) bool { return f.Name == name }) {
		return nil, nil, fmt.Errorf("%w: %s cannot be changed through the API; edit the file", ErrReadOnly, name)
	}
	i := slices.IndexFunc(api, func(a Policy) bool { return a.Name == name })
	if p == nil {
		if i < 0 {
			return nil, nil, fmt.Errorf("%w: %s", ErrNoPolicy, name)
		}
		api = slices.Delete(api, i, i+1)
	} else {
		p.Source = SourceAPI
		if errs := p.Check(r.opts.Known()); len(errs) > 0 {
			return nil, nil, PolicyErrors(errs)
		}
		if i >= 0 {
			api[i] = *p
		} else {
			api = append(api, *p)
		}
	}
	pols, errs := NewPolicies(r.all(api), r.opts.Known())
	if len(errs) > 0 {
		return nil, nil, PolicyErrors(errs)
	}
	return pols, api, nil
}

// PutPolicy adds or replaces a policy set through the API and reschedules.
func (r *Runner) PutPolicy(ctx context.Context, p Policy, by string) (Policy, error) {
	p.Updated, p.UpdatedBy = r.opts.Now().UTC().Truncate(time.Millisecond), by
	pols, api, err := r.candidate(&p, "")
	if err != nil {
		return p, err
	}
	spec, _ := json.Marshal(p)
	if err := r.opts.State.PutRetentionPolicy(ctx, p.Name, spec, by); err != nil {
		return p, err
	}
	r.mu.Lock()
	r.api, r.pols = api, pols
	if r.reschedule != nil {
		r.reschedule()
	}
	r.mu.Unlock()
	r.log.Info("retention policy set", "policy", p.Name, "max_age", FormatAge(p.MaxAge), "schedule", p.Schedule, "by", by)
	return p, nil
}

// DeletePolicy removes a policy set through the API; its cameras fall back to their
// site's policy or the default.
func (r *Runner) DeletePolicy(ctx context.Context, name, by string) error {
	pols, api, err := r.candidate(nil, name)
	if err != nil {
		return err
	}
	if err := r.opts.State.DeleteRetentionPolicy(ctx, name); err != nil && !errors.Is(err, state.ErrNotFound) {
		return err
	}
	r.mu.Lock()
	r.api, r.pols = api, pols
	if r.reschedule != nil {
		r.reschedule()
	}
	r.mu.Unlock()
	r.log.Info("retention policy removed", "policy", name, "by", by)
	return nil
}

// Plan is a dry run: what a run of every camera would delete now. With p, it plans as
// if p were set (the editor's preview); nothing is saved.
func (r *Runner) Plan(ctx context.Context, p *Policy, force bool) (*Plan, error) {
	r.mu.Lock()
	pols := r.pols
	r.mu.Unlock()
	if p != nil {
		var err error
		if pols, _, err = r.candidate(p, ""); err != nil {
			return nil, err
		}
	}
	holds, err := r.opts.Holds.Holds(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan: holds: %w", err)
	}
	return Make(ctx, r.opts.Catalog, r.opts.Cameras(), pols, holds, r.opts.Now(),
		Options{SafetyShare: r.opts.SafetyShare, Force: force})
}

// Runs returns up to limit recorded runs, the newest first.
func (r *Runner) Runs(ctx context.Context, limit int) ([]Run, error) {
	rows, err := r.opts.State.RetentionRuns(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Run, 0, len(rows))
	for _, row := range rows {
		run := Run{ID: row.ID, Kind: row.Kind, Policy: row.Policy, Forced: row.Forced, Started: row.Started,
			Ended: row.Ended, Error: row.Error, Cameras: []CameraRun{}}
		if len(row.Result) > 0 {
			_ = json.Unmarshal(row.Result, &run.Cameras)
		}
		out = append(out, run)
	}
	return out, nil
}

// acquire waits for the turn to run.
func (r *Runner) acquire(ctx context.Context) error {
	select {
	case r.running <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("retention run: waiting for the run in progress: %w", ctx.Err())
	}
}

func (r *Runner) release() { <-r.running }

// Run plans and deletes: for policy (empty: every camera), kind says why. Objects go
// first, then their catalog rows, a batch at a time: a run cut short leaves rows
// whose objects are gone, which the next run deletes again (a missing object is not
// an error) and then forgets, so storage and catalog end consistent.
func (r *Runner) Run(ctx context.Context, kind, policy string, force bool) (Run, error) {
	if err := r.acquire(ctx); err != nil {
		return Run{}, err
	}
	defer r.release()
	run := Run{Kind: kind, Policy: policy, Forced: force, Started: r.opts.Now().UTC(), Cameras: []CameraRun{}}
	var err error
	if run.ID, err = r.opts.State.StartRetentionRun(ctx, kind, policy, force, run.Started); err != nil {
		return run, err
	}
	runErr := r.run(ctx, &run)
	return run, r.finish(ctx, &run, runErr)
}

func (r *Runner) run(ctx context.Context, run *Run) error {
	r.mu.Lock()
	pols := r.pols
	r.mu.Unlock()
	holds, err := r.opts.Holds.Holds(ctx)
	if err != nil {
		return fmt.Errorf("holds: %w", err)
	}
	plan, err := Make(ctx, r.opts.Catalog, r.opts.Cameras(), pols, holds, r.opts.Now(),
		Options{SafetyShare: r.opts.SafetyShare, Force: run.Forced, Policy: run.Policy})
	if err != nil {
		return err
	}
	for i := range plan.Cameras {
		cp := &plan.Cameras[i]
		cr := CameraRun{Camera: cp.Camera, Policy: cp.Policy, Held: cp.Held, SafetyStop: cp.SafetyStop}
		if cp.SafetyStop != "" {
			r.metrics.safetyStops.WithLabelValues(cp.Camera).Inc()
			r.log.Warn("retention safety stop: nothing deleted for this camera", "camera", cp.Camera,
				"policy", cp.Policy, "reason", cp.SafetyStop)
		} else if cp.Delete > 0 {
			r.deleteCamera(ctx, cp, &cr, run.Kind)
		}
		if cr.Deleted > 0 || cr.Errors > 0 || cr.SafetyStop != "" {
			run.Cameras = append(run.Cameras, cr)
		}
		r.noteOldest(ctx, cp.Camera)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// deleteCamera streams cp's deletions in batches: objects, then rows.
func (r *Runner) deleteCamera(ctx context.Context, cp *CameraPlan, cr *CameraRun, kind string) {
	var batch []storage.Segment
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := r.deleteBatch(ctx, cp.Camera, batch, cr, kind)
		batch = batch[:0]
		return err
	}
	err := r.opts.Catalog.Each(ctx, cp.Camera, func(seg storage.Segment) error {
		if cp.Past(seg) {
			return errStop
		}
		if !cp.Deletes(seg) {
			return nil
		}
		batch = append(batch, seg)
		if len(batch) < r.opts.BatchSize {
			return nil
		}
		return flush()
	})
	if err == nil || errors.Is(err, errStop) {
		err = flush()
	}
	if err != nil {
		cr.Errors++
		cr.Error = err.Error()
		r.log.Error("retention: deleting footage failed", "camera", cp.Camera, "err", err)
	}
}

// deleteBatch deletes the objects of segs, then forgets those that went.
func (r *Runner) deleteBatch(ctx context.Context, camera string, segs []storage.Segment, cr *CameraRun, kind string) error {
	keys := make([]string, len(segs))
	for i, s := range segs {
		keys[i] = s.Key
	}
	failed, err := r.opts.Store.DeleteMany(ctx, keys)
	if err != nil {
		return fmt.Errorf("delete objects: %w", err)
	}
	done := keys[:0:0]
	var bytes int64
	for _, s := range segs {
		if ferr, bad := failed[s.Key]; bad {
			cr.Errors++
			cr.Error = ferr.Error()
			continue
		}
		done = append(done, s.Key)
		bytes += s.Size
		if cr.From.IsZero() || s.Start.Before(cr.From) {
			cr.From = s.Start
		}
		if s.End().After(cr.To) {
			cr.To = s.End()
		}
	}
	if len(failed) > 0 {
		r.log.Warn("retention: some objects could not be deleted; their catalog rows stay", "camera", camera,
			"failed", len(failed), "err", cr.Error)
	}
	if err := r.opts.Catalog.DeleteMany(ctx, done); err != nil {
		return fmt.Errorf("forget deleted segments: %w", err)
	}
	cr.Deleted += len(done)
	cr.DeletedBytes += bytes
	r.metrics.deletedSegments.WithLabelValues(kind).Add(float64(len(done)))
	r.metrics.deletedBytes.WithLabelValues(kind).Add(float64(bytes))
	return nil
}

// noteOldest remembers the start of camera's oldest footage, for the age metric.
func (r *Runner) noteOldest(ctx context.Context, camera string) {
	var oldest time.Time
	stop := errors.New("stop")
	_ = r.opts.Catalog.Each(ctx, camera, func(s storage.Segment) error { oldest = s.Start; return stop })
	r.mu.Lock()
	defer r.mu.Unlock()
	if oldest.IsZero() {
		delete(r.oldest, camera)
	} else {
		r.oldest[camera] = oldest
	}
}

// finish records the end of run, its metrics, log line and audit.
func (r *Runner) finish(ctx context.Context, run *Run, runErr error) error {
	run.Ended = r.opts.Now().UTC()
	if runErr != nil {
		run.Error = runErr.Error()
	}
	deleted, bytes, errs, stops := run.Totals()
	result, _ := json.Marshal(run.Cameras)
	// Recorded even when ctx ended the run: the record says how far it got.
	ferr := r.opts.State.FinishRetentionRun(context.WithoutCancel(ctx), run.ID, run.Ended, result, run.Error)
	outcome := "ok"
	if runErr != nil || errs > 0 {
		outcome = "error"
	} else if run.Policy != "" {
		r.metrics.lastSuccess.WithLabelValues(run.Policy).Set(float64(run.Ended.Unix()))
	} else {
		for _, p := range r.Policies() {
			r.metrics.lastSuccess.WithLabelValues(p.Name).Set(float64(run.Ended.Unix()))
		}
	}
	r.metrics.runs.WithLabelValues(run.Kind, outcome).Inc()
	lvl := slog.LevelInfo
	if outcome != "ok" || stops > 0 || run.Kind == KindEmergency {
		lvl = slog.LevelWarn
	}
	r.log.Log(ctx, lvl, "retention run", "id", run.ID, "kind", run.Kind, "policy", run.Policy, "forced", run.Forced,
		"deleted", deleted, "bytes", bytes, "errors", errs, "safety_stops", stops, "err", runErr,
		"took", run.Ended.Sub(run.Started))
	if r.opts.OnRun != nil {
		r.opts.OnRun(context.WithoutCancel(ctx), *run)
	}
	return errors.Join(runErr, ferr)
}

// cronLogger adapts slog to cron.Logger and counts skipped runs.
type cronLogger struct {
	log     *slog.Logger
	skipped prometheus.Counter
}

func (l cronLogger) Info(msg string, kv ...any) {
	level := slog.LevelDebug
	if msg == "skip" {
		l.skipped.Inc()
		level, msg = slog.LevelWarn, "retention run still running at its next time: skipped"
	}
	l.log.Log(context.Background(), level, "cron: "+msg, kv...)
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "err", err)...)
}

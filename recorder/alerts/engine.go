package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/storage/state"
)

// CameraFigures are what the rules read of one camera.
type CameraFigures struct {
	ID, Site string
	Record   bool
	Online   bool
	// Since is when the camera entered its current state.
	Since       time.Time
	BitrateBps  float64
	Lag         time.Duration
	LagKnown    bool
	ClockOffset time.Duration
	ClockKnown  bool
}

// ServiceFigures are what the rules read of the service.
type ServiceFigures struct {
	SpoolBytes, SpoolMaxBytes   int64
	StoreProbed, StoreReachable bool
}

// Source gives the figures the rules judge. Safe for concurrent use.
type Source interface {
	AlertCameras() []CameraFigures
	AlertService() ServiceFigures
}

// Store keeps API rules and the alerts' history (*state.State).
type Store interface {
	PutAlertRule(ctx context.Context, id string, spec json.RawMessage) error
	DeleteAlertRule(ctx context.Context, id string) error
	AlertRules(ctx context.Context) ([]state.AlertRule, error)
	AlertFired(ctx context.Context, a state.Alert) (int64, error)
	AlertResolved(ctx context.Context, id int64, at time.Time) error
	Alerts(ctx context.Context, limit int) ([]state.Alert, error)
}

var _ Store = (*state.State)(nil)

// Status is an alert's state.
type Status string

// Alert statuses.
const (
	StatusFiring   Status = "firing"
	StatusResolved Status = "resolved"
)

// Alert is one alert: a rule's condition holding for one target (a camera, or the
// service when Camera is "").
type Alert struct {
	Rule     string     `json:"rule"`
	Kind     Kind       `json:"kind"`
	Camera   string     `json:"camera,omitempty"`
	Site     string     `json:"site,omitempty"`
	Status   Status     `json:"status"`
	Started  time.Time  `json:"started"`
	Resolved *time.Time `json:"resolved,omitempty"`
	// Detail says what was seen, in figures (no camera address or secret).
	Detail string `json:"detail"`

	hook string // the rule's own webhook, if any

	id int64 // in the history
}

// Options configure an Engine.
type Options struct {
	// Rules are the configuration's rules, read only.
	Rules []Rule
	// Store keeps API rules and the history; nil keeps neither.
	Store Store
	// Webhook, if set, receives every transition.
	Webhook *Webhook
	// Publish, if set, hears every transition (the live event bus). It must not block.
	Publish func(Alert)
	// Interval is how often rules are judged (0: 1 s).
	Interval time.Duration
	// TamperSample and TamperWindow set the tamper rule's median: a bitrate sample
	// every TamperSample (0: 10 s) over the last TamperWindow (0: 1 h); it judges
	// once TamperMinSamples are held (0: those of a twelfth of the window, at most 30).
	TamperSample, TamperWindow time.Duration
	TamperMinSamples           int
}

// Engine judges rules and delivers transitions. Safe for concurrent use.
type Engine struct {
	opts   Options
	log    *slog.Logger
	firing *prometheus.GaugeVec

	mu        sync.Mutex
	config    []Rule
	api       []Rule
	pending   map[string]time.Time // alert key -> when its condition began to hold
	active    map[string]*Alert
	bitrates  map[string]*history // camera -> bitrate samples
	retention string              // why retention stopped; "" when running
	retAt     time.Time
}

// New checks the configuration's rules, loads the API's from opts.Store and
// registers the straja_alert_firing metric on reg.
func New(ctx context.Context, opts Options, reg prometheus.Registerer, log *slog.Logger) (*Engine, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.TamperSample <= 0 {
		opts.TamperSample = 10 * time.Second
	}
	if opts.TamperWindow <= 0 {
		opts.TamperWindow = time.Hour
	}
	if opts.TamperMinSamples <= 0 {
		// A twelfth of the window, in the samples actually taken (at most one per
		// Interval): 30 with the defaults.
		every := max(opts.TamperSample, opts.Interval)
		opts.TamperMinSamples = min(30, max(3, int(opts.TamperWindow/12/every)))
	}
	e := &Engine{opts: opts, log: log, pending: map[string]time.Time{}, active: map[string]*Alert{},
		bitrates: map[string]*history{}}
	e.firing = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "straja_alert_firing",
		Help: "1 while the alert of a rule fires for a camera (camera=\"\": the service), else 0."},
		[]string{"rule", "kind", "camera"})
	if reg != nil {
		if err := reg.Register(e.firing); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	for i, r := range opts.Rules {
		if err := r.Check(); err != nil {
			return nil, fmt.Errorf("alerts.rules[%d].%w", i, err)
		}
		if seen[r.ID] {
			return nil, fmt.Errorf("alerts.rules[%d].id: %q is used twice", i, r.ID)
		}
		if r.Webhook != "" && opts.Webhook == nil {
			return nil, fmt.Errorf("alerts.rules[%d].webhook: needs alerts.webhook.secret_env to sign with", i)
		}
		seen[r.ID] = true
		r.Source = SourceConfig
		e.config = append(e.config, r)
	}
	if opts.Store != nil {
		// Alerts the last run left firing are judged afresh: end them in the history.
		past, err := opts.Store.Alerts(ctx, 1000)
		if err != nil {
			return nil, err
		}
		for _, a := range past {
			if a.Resolved.IsZero() {
				if err := opts.Store.AlertResolved(ctx, a.ID, time.Now()); err != nil {
					return nil, err
				}
			}
		}
		rows, err := opts.Store.AlertRules(ctx)
		if err != nil {
			return nil, err
		}
		for _, row := range rows {
			var r Rule
			if err := json.Unmarshal(row.Spec, &r); err != nil || r.Check() != nil || seen[r.ID] {
				log.Warn("alert rule in the state database ignored: unreadable, invalid or shadowed by the configuration",
					"rule", row.ID)
				continue
			}
			r.ID, r.Source = row.ID, SourceAPI
			e.api = append(e.api, r)
		}
	}
	return e, nil
}

// Webhooks reports whether transitions can be sent to webhooks (a signing secret is
// configured).
func (e *Engine) Webhooks() bool { return e.opts.Webhook != nil }

// ErrReadOnly is returned when the API changes a rule of the configuration.
var ErrReadOnly = errors.New("the rule comes from the configuration file; change it there")

// ErrNotFound is returned for an unknown rule.
var ErrNotFound = errors.New("no such alert rule")

// Rules lists every rule, the configuration's first.
func (e *Engine) Rules() []Rule {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append(slices.Clone(e.config), e.api...)
}

// PutRule adds or replaces an API rule after checking it. It reports whether the
// rule is new.
func (e *Engine) PutRule(ctx context.Context, r Rule) (created bool, err error) {
	r.Source = SourceAPI
	if err := r.Check(); err != nil {
		return false, err
	}
	if r.Webhook != "" && e.opts.Webhook == nil {
		return false, &FieldError{"webhook", "no signing secret is configured (alerts.webhook.secret_env), so no webhook can be sent"}
	}
	spec, err := json.Marshal(r)
	if err != nil {
		return false, err
	}
	e.mu.Lock()
	var resolved []*Alert
	defer func() {
		e.mu.Unlock()
		e.deliver(ctx, resolved)
	}()
	if slices.ContainsFunc(e.config, func(c Rule) bool { return c.ID == r.ID }) {
		return false, ErrReadOnly
	}
	if e.opts.Store != nil {
		if err := e.opts.Store.PutAlertRule(ctx, r.ID, spec); err != nil {
			return false, err
		}
	}
	i := slices.IndexFunc(e.api, func(a Rule) bool { return a.ID == r.ID })
	if i < 0 {
		e.api = append(e.api, r)
		sort.Slice(e.api, func(i, j int) bool { return e.api[i].ID < e.api[j].ID })
		return true, nil
	}
	e.api[i] = r
	resolved = e.dropAlertsLocked(r.ID) // judged afresh under the new settings
	return false, nil
}

// DeleteRule deletes an API rule; its firing alerts resolve.
func (e *Engine) DeleteRule(ctx context.Context, id string) error {
	e.mu.Lock()
	var resolved []*Alert
	defer func() {
		e.mu.Unlock()
		e.deliver(ctx, resolved)
	}()
	if slices.ContainsFunc(e.config, func(c Rule) bool { return c.ID == id }) {
		return ErrReadOnly
	}
	i := slices.IndexFunc(e.api, func(a Rule) bool { return a.ID == id })
	if i < 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if e.opts.Store != nil {
		if err := e.opts.Store.DeleteAlertRule(ctx, id); err != nil && !errors.Is(err, state.ErrNotFound) {
			return err
		}
	}
	e.api = slices.Delete(e.api, i, i+1)
	resolved = e.dropAlertsLocked(id)
	return nil
}

// dropAlertsLocked resolves the alerts of rule id, for delivery, and forgets its
// pending ones.
func (e *Engine) dropAlertsLocked(id string) []*Alert {
	now := time.Now()
	var out []*Alert
	for key, a := range e.active {
		if a.Rule == id {
			out = append(out, e.resolveLocked(key, a, now))
		}
	}
	for key := range e.pending {
		if ruleOfKey(key) == id {
			delete(e.pending, key)
		}
	}
	e.firing.DeletePartialMatch(prometheus.Labels{"rule": id})
	return out
}

// deliver makes the transitions of alerts, in order.
func (e *Engine) deliver(ctx context.Context, alerts []*Alert) {
	for _, a := range alerts {
		e.transition(context.WithoutCancel(ctx), a)
	}
}

// Active lists the firing alerts, oldest first.
func (e *Engine) Active() []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Alert, 0, len(e.active))
	for _, a := range e.active {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out
}

// Recent lists the latest limit alerts of the history, newest first.
func (e *Engine) Recent(ctx context.Context, limit int) ([]Alert, error) {
	if e.opts.Store == nil {
		return nil, nil
	}
	rows, err := e.opts.Store.Alerts(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Alert, len(rows))
	for i, r := range rows {
		a := Alert{Rule: r.Rule, Kind: Kind(r.Kind), Camera: r.Camera, Status: StatusFiring, Started: r.Started,
			Detail: r.Detail}
		if !r.Resolved.IsZero() {
			t := r.Resolved
			a.Resolved, a.Status = &t, StatusResolved
		}
		out[i] = a
	}
	return out, nil
}

// RetentionStopped is the hook of retention's safety stop: a retention_stopped
// alert fires (by the rules of that kind) until RetentionResumed. why is shown to
// operators: no paths or secrets in it.
func (e *Engine) RetentionStopped(why string) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.retention == "" {
		e.retAt = time.Now()
	}
	e.retention = why
}

// RetentionResumed says retention ran without stopping; the alert resolves.
func (e *Engine) RetentionResumed() {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.retention = ""
}

// Run judges the rules every interval and delivers transitions to the webhook until
// ctx is done; the deliveries in progress are given up to a few seconds.
func (e *Engine) Run(ctx context.Context, src Source) {
	var wg sync.WaitGroup
	if e.opts.Webhook != nil {
		wg.Go(func() { e.opts.Webhook.run(ctx) })
	}
	defer wg.Wait()
	t := time.NewTicker(e.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			e.evaluate(ctx, now, src.AlertCameras(), src.AlertService())
		}
	}
}

// key names an alert: rule and camera.
func key(rule, camera string) string { return rule + "\x00" + camera }

func ruleOfKey(k string) string {
	for i := 0; i < len(k); i++ {
		if k[i] == 0 {
			return k[:i]
		}
	}
	return k
}

// verdict is a rule's judgement of one target: whether its condition holds, since
// when if the figures say (zero: since the engine first saw it), and what was seen.
type verdict struct {
	holds  bool
	since  time.Time
	detail string
}

// evaluate judges every rule against the figures at now and makes the transitions.
func (e *Engine) evaluate(ctx context.Context, now time.Time, cams []CameraFigures, svc ServiceFigures) {
	e.mu.Lock()
	var fired, resolved []*Alert
	e.sampleLocked(now, cams)
	seen := map[string]bool{}
	rules := append(slices.Clone(e.config), e.api...)
	for _, r := range rules {
		judge := func(camera, site string, v verdict) {
			k := key(r.ID, camera)
			seen[k] = true
			if !v.holds {
				delete(e.pending, k)
				if a, ok := e.active[k]; ok {
					resolved = append(resolved, e.resolveLocked(k, a, now))
				}
				return
			}
			since, ok := e.pending[k]
			if !ok {
				since = now
				if !v.since.IsZero() && v.since.Before(now) {
					since = v.since
				}
				e.pending[k] = since
			}
			if a, ok := e.active[k]; ok {
				a.Detail = v.detail
				return
			}
			if now.Sub(since) < r.For() {
				return
			}
			a := &Alert{Rule: r.ID, Kind: r.Kind, Camera: camera, Site: site, Status: StatusFiring, Started: now.UTC(),
				Detail: v.detail, hook: r.Webhook}
			e.active[k] = a
			e.firing.WithLabelValues(r.ID, string(r.Kind), camera).Set(1)
			cp := *a
			fired = append(fired, &cp)
		}
		if r.Kind.perCamera() {
			for _, c := range cams {
				if r.Camera == "" || r.Camera == c.ID {
					judge(c.ID, c.Site, e.judgeCamera(r, c, now))
				}
			}
		} else {
			judge("", "", e.judgeService(r, svc))
		}
	}
	// A camera removed, or a rule changed to watch another: its alerts resolve.
	for k, a := range e.active {
		if !seen[k] {
			resolved = append(resolved, e.resolveLocked(k, a, now))
		}
	}
	for k := range e.pending {
		if !seen[k] {
			delete(e.pending, k)
		}
	}
	e.mu.Unlock()
	e.deliver(ctx, fired)
	e.deliver(ctx, resolved)
}

// resolveLocked ends alert a (key k) at now and returns a copy to deliver.
func (e *Engine) resolveLocked(k string, a *Alert, now time.Time) *Alert {
	delete(e.active, k)
	t := now.UTC()
	a.Resolved, a.Status = &t, StatusResolved
	e.firing.WithLabelValues(a.Rule, string(a.Kind), a.Camera).Set(0)
	cp := *a
	return &cp
}

// transition records and delivers one firing or resolution.
func (e *Engine) transition(ctx context.Context, a *Alert) {
	e.log.Info("alert "+string(a.Status), "rule", a.Rule, "kind", a.Kind, "camera", a.Camera, "detail", a.Detail)
	if st := e.opts.Store; st != nil {
		if a.Status == StatusFiring {
			id, err := st.AlertFired(ctx, state.Alert{Rule: a.Rule, Camera: a.Camera, Kind: string(a.Kind),
				Started: a.Started, Detail: a.Detail})
			if err != nil {
				e.log.Error("alert not recorded", "rule", a.Rule, "err", err)
			}
			e.mu.Lock()
			if cur, ok := e.active[key(a.Rule, a.Camera)]; ok && cur.Started.Equal(a.Started) {
				cur.id = id
			}
			e.mu.Unlock()
		} else if a.id != 0 {
			if err := st.AlertResolved(ctx, a.id, *a.Resolved); err != nil {
				e.log.Error("alert resolution not recorded", "rule", a.Rule, "err", err)
			}
		}
	}
	if e.opts.Publish != nil {
		e.opts.Publish(*a)
	}
	if e.opts.Webhook != nil {
		e.opts.Webhook.enqueue(*a)
	}
}

func (e *Engine) judgeCamera(r Rule, c CameraFigures, now time.Time) verdict {
	switch r.Kind {
	case KindCameraOffline:
		return verdict{holds: !c.Online, since: c.Since, detail: "camera not online"}
	case KindRecordingLag:
		if c.Record && c.LagKnown && c.Lag.Seconds() > r.Threshold {
			return verdict{holds: true, detail: fmt.Sprintf("recording lag %.1f s, above %.1f s", c.Lag.Seconds(), r.Threshold)}
		}
	case KindClockOffset:
		if c.ClockKnown && math.Abs(c.ClockOffset.Seconds()) > r.Threshold {
			return verdict{holds: true, detail: fmt.Sprintf("camera clock %+.1f s off the service's, more than %.1f s",
				c.ClockOffset.Seconds(), r.Threshold)}
		}
	case KindTamper:
		h := e.bitrates[c.ID]
		if !c.Online || h == nil || h.len() < e.opts.TamperMinSamples {
			return verdict{}
		}
		med := h.median()
		if med <= 0 {
			return verdict{}
		}
		share := c.BitrateBps / med
		if share < r.Threshold || (r.High > 0 && share > r.High) {
			return verdict{holds: true, detail: fmt.Sprintf("bitrate %.0f kbit/s is %.0f%% of its median %.0f kbit/s over the last %s",
				c.BitrateBps/1000, share*100, med/1000, e.opts.TamperWindow)}
		}
	}
	return verdict{}
}

func (e *Engine) judgeService(r Rule, s ServiceFigures) verdict {
	switch r.Kind {
	case KindSpoolUsage:
		if s.SpoolMaxBytes > 0 {
			if share := float64(s.SpoolBytes) / float64(s.SpoolMaxBytes); share > r.Threshold {
				return verdict{holds: true, detail: fmt.Sprintf("spool %.0f%% full, above %.0f%%", share*100, r.Threshold*100)}
			}
		}
	case KindStoreUnreachable:
		if s.StoreProbed && !s.StoreReachable {
			return verdict{holds: true, detail: "the store fails probes or uploads"}
		}
	case KindRetentionStopped:
		if e.retention != "" {
			return verdict{holds: true, since: e.retAt, detail: e.retention}
		}
	}
	return verdict{}
}

// sampleLocked adds each online camera's bitrate to its history every TamperSample,
// except while a tamper rule judges it tampered with: the median stays the camera's
// normal picture.
func (e *Engine) sampleLocked(now time.Time, cams []CameraFigures) {
	live := map[string]bool{}
	for _, c := range cams {
		live[c.ID] = true
		h := e.bitrates[c.ID]
		if h == nil {
			h = &history{}
			e.bitrates[c.ID] = h
		}
		if !c.Online || c.BitrateBps <= 0 || now.Sub(h.last) < e.opts.TamperSample || e.tamperedLocked(c.ID) {
			continue
		}
		h.add(now, c.BitrateBps, e.opts.TamperWindow)
	}
	for id := range e.bitrates {
		if !live[id] {
			delete(e.bitrates, id)
		}
	}
}

// tamperedLocked reports whether a tamper rule's condition holds for camera now.
func (e *Engine) tamperedLocked(camera string) bool {
	for k := range e.pending {
		if _, cam := splitKey(k); cam == camera && e.kindOfLocked(ruleOfKey(k)) == KindTamper {
			return true
		}
	}
	return false
}

func splitKey(k string) (string, string) {
	r := ruleOfKey(k)
	if len(r) == len(k) {
		return r, ""
	}
	return r, k[len(r)+1:]
}

func (e *Engine) kindOfLocked(id string) Kind {
	for _, r := range e.config {
		if r.ID == id {
			return r.Kind
		}
	}
	for _, r := range e.api {
		if r.ID == id {
			return r.Kind
		}
	}
	return ""
}

// history is a camera's bitrate samples over a window, oldest first.
type history struct {
	at   []time.Time
	bps  []float64
	last time.Time
}

func (h *history) add(now time.Time, bps float64, window time.Duration) {
	i := 0
	for i < len(h.at) && now.Sub(h.at[i]) > window {
		i++
	}
	h.at, h.bps = append(h.at[i:], now), append(h.bps[i:], bps)
	h.last = now
}

func (h *history) len() int { return len(h.bps) }

func (h *history) median() float64 {
	s := slices.Clone(h.bps)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

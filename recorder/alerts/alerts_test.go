package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/straja-nvr/straja/storage/state"
)

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func newEngine(t *testing.T, opts Options) *Engine {
	t.Helper()
	e, err := New(t.Context(), opts, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// receiver is a webhook endpoint that checks signatures and fails the first
// failFirst requests with 500.
type receiver struct {
	mu        sync.Mutex
	failFirst int
	calls     int
	got       []Payload
	badSig    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.calls++
	if r.Header.Get(SignatureHeader) != Sign([]byte("s3cret"), body) {
		rc.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if rc.calls <= rc.failFirst {
		http.Error(w, "busy", http.StatusInternalServerError)
		return
	}
	var p Payload
	_ = json.Unmarshal(body, &p)
	rc.got = append(rc.got, p)
}

func (rc *receiver) payloads() []Payload {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Payload(nil), rc.got...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOfflineAlertWebhook: a camera offline longer than the rule's 5 s fires once,
// delivered (after a 500, retried) with a valid signature; its return resolves it.
func TestOfflineAlertWebhook(t *testing.T) {
	rc := &receiver{failFirst: 1}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	wh, err := NewWebhook(WebhookOptions{URL: srv.URL + "/hook", Secret: []byte("s3cret"), Backoff: 10 * time.Millisecond},
		prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var published []Alert
	e, err := New(t.Context(), Options{Rules: []Rule{{ID: "dark", Kind: KindCameraOffline, ForS: 5}}, Webhook: wh,
		Publish: func(a Alert) { published = append(published, a) }}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); wh.run(ctx) }()
	defer func() { cancel(); <-done }()

	online := CameraFigures{ID: "gate", Site: "bastion", Online: true, Since: t0}
	offline := CameraFigures{ID: "gate", Site: "bastion", Since: t0.Add(10 * time.Second)}
	other := CameraFigures{ID: "yard", Online: true, Since: t0}
	e.evaluate(ctx, t0.Add(9*time.Second), []CameraFigures{online, other}, ServiceFigures{})
	for s := 11; s <= 25; s++ { // offline from 10 s to 25 s
		e.evaluate(ctx, t0.Add(time.Duration(s)*time.Second), []CameraFigures{offline, other}, ServiceFigures{})
		if fired := len(e.Active()) == 1; fired != (s >= 15) {
			t.Fatalf("at %d s (offline since 10 s): firing %v", s, fired)
		}
	}
	if v := testutil.ToFloat64(e.firing.WithLabelValues("dark", "camera_offline", "gate")); v != 1 {
		t.Errorf("straja_alert_firing = %v while firing, want 1", v)
	}
	back := online
	back.Since = t0.Add(26 * time.Second)
	e.evaluate(ctx, t0.Add(26*time.Second), []CameraFigures{back, other}, ServiceFigures{})
	e.evaluate(ctx, t0.Add(27*time.Second), []CameraFigures{back, other}, ServiceFigures{})
	waitFor(t, "two deliveries", func() bool { return len(rc.payloads()) >= 2 })
	got := rc.payloads()
	if len(got) != 2 || got[0].Status != StatusFiring || got[1].Status != StatusResolved ||
		got[0].Alert.Camera != "gate" || got[1].Alert.Resolved == nil {
		t.Errorf("webhook got %+v; want gate firing, then resolved", got)
	}
	rc.mu.Lock()
	if rc.calls != 3 || rc.badSig != 0 {
		t.Errorf("receiver saw %d calls (%d badly signed); want 3: the firing, its retry after the 500, the resolution",
			rc.calls, rc.badSig)
	}
	rc.mu.Unlock()
	if len(published) != 2 {
		t.Errorf("published %d transitions, want 2", len(published))
	}
	if v := testutil.ToFloat64(e.firing.WithLabelValues("dark", "camera_offline", "gate")); v != 0 {
		t.Errorf("straja_alert_firing = %v after resolving, want 0", v)
	}
}

// TestTamperRule: a bitrate that collapses to a tenth of the camera's median fires
// the tamper rule after its For; one far above fires it too; normal resolves it.
func TestTamperRule(t *testing.T) {
	e := newEngine(t, Options{Rules: []Rule{{ID: "tamper", Kind: KindTamper, ForS: 10, Threshold: 0.3, High: 4}},
		TamperSample: 10 * time.Second, TamperMinSamples: 6})
	ctx := t.Context()
	cam := func(bps float64) []CameraFigures {
		return []CameraFigures{{ID: "gate", Online: true, Since: t0, BitrateBps: bps}}
	}
	now := t0
	step := func(bps float64, d time.Duration) {
		for end := now.Add(d); now.Before(end); now = now.Add(time.Second) {
			e.evaluate(ctx, now, cam(bps), ServiceFigures{})
		}
	}
	step(0, 0)
	// Before the history holds enough samples nothing is judged, however odd.
	step(2e6, 30*time.Second)
	step(1e5, 20*time.Second)
	if len(e.Active()) != 0 {
		t.Fatalf("tamper fired with too little history: %+v", e.Active())
	}
	step(2e6, 2*time.Minute)
	step(1.5e5, 9*time.Second)
	if len(e.Active()) != 0 {
		t.Fatalf("tamper fired before its 10 s: %+v", e.Active())
	}
	step(1.5e5, 3*time.Second)
	a := e.Active()
	if len(a) != 1 || a[0].Kind != KindTamper || !strings.Contains(a[0].Detail, "8%") {
		t.Fatalf("after 12 s at 150 kbit/s against a 2 Mbit/s median: %+v; want tamper firing, detail saying 8%%", a)
	}
	// Ten minutes covered: the median stays the normal picture's.
	step(1.5e5, 10*time.Minute)
	if len(e.Active()) != 1 {
		t.Fatal("tamper resolved while the lens stays covered")
	}
	step(2e6, 2*time.Second)
	if len(e.Active()) != 0 {
		t.Fatalf("tamper still firing at the normal bitrate: %+v", e.Active())
	}
	step(9e6, 12*time.Second)
	if a := e.Active(); len(a) != 1 {
		t.Fatalf("at 4.5 times the median: %+v; want tamper firing", a)
	}
}

func TestRuleCheckNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		r     Rule
		field string
	}{
		{Rule{ID: "Bad ID", Kind: KindCameraOffline}, "id"},
		{Rule{ID: "x", Kind: "camera_gone"}, "kind"},
		{Rule{ID: "x", Kind: KindCameraOffline, Camera: "../etc"}, "camera"},
		{Rule{ID: "x", Kind: KindSpoolUsage, Camera: "gate", Threshold: 0.8}, "camera"},
		{Rule{ID: "x", Kind: KindCameraOffline, ForS: -1}, "for_s"},
		{Rule{ID: "x", Kind: KindSpoolUsage, Threshold: 80}, "threshold"},
		{Rule{ID: "x", Kind: KindRecordingLag}, "threshold"},
		{Rule{ID: "x", Kind: KindTamper, Threshold: 0.3, High: 0.5}, "high"},
		{Rule{ID: "x", Kind: KindClockOffset, Threshold: 60, High: 2}, "high"},
	} {
		var fe *FieldError
		if err := tc.r.Check(); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: %v; want an error naming %s", tc.r, err, tc.field)
		}
	}
	if err := (Rule{ID: "lag", Kind: KindRecordingLag, Threshold: 5, ForS: 30}).Check(); err != nil {
		t.Errorf("a good rule: %v", err)
	}
}

// TestRulesPersist: API rules survive a restart; configuration rules are read only;
// the history records firing and resolution.
func TestRulesPersist(t *testing.T) {
	st, err := state.Open(t.Context(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := []Rule{{ID: "dark", Kind: KindCameraOffline, ForS: 5}}
	e := newEngine(t, Options{Rules: cfg, Store: st})
	if _, err := e.PutRule(t.Context(), Rule{ID: "dark", Kind: KindCameraOffline}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("put over a config rule: %v, want ErrReadOnly", err)
	}
	if created, err := e.PutRule(t.Context(), Rule{ID: "spool", Kind: KindSpoolUsage, Threshold: 0.9}); err != nil || !created {
		t.Fatalf("put: %v %v", created, err)
	}
	e.evaluate(t.Context(), t0, nil, ServiceFigures{SpoolBytes: 95, SpoolMaxBytes: 100})
	e.evaluate(t.Context(), t0.Add(time.Second), nil, ServiceFigures{SpoolBytes: 50, SpoolMaxBytes: 100})
	// One left firing when the service stops is ended in the history at the next start.
	e.evaluate(t.Context(), t0.Add(2*time.Second), nil, ServiceFigures{SpoolBytes: 99, SpoolMaxBytes: 100})
	e2 := newEngine(t, Options{Rules: cfg, Store: st})
	rules := e2.Rules()
	if len(rules) != 2 || rules[1].ID != "spool" || rules[1].Source != SourceAPI || rules[0].Source != SourceConfig {
		t.Errorf("rules after restart = %+v", rules)
	}
	recent, err := e2.Recent(t.Context(), 10)
	if err != nil || len(recent) != 2 || recent[0].Status != StatusResolved || recent[1].Status != StatusResolved ||
		recent[0].Kind != KindSpoolUsage {
		t.Errorf("history = %+v, %v; want both spool alerts, resolved", recent, err)
	}
	if err := e2.DeleteRule(t.Context(), "spool"); err != nil {
		t.Fatal(err)
	}
	if err := e2.DeleteRule(t.Context(), "spool"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
}

// TestRetentionStoppedHook: retention's safety stop fires the rule until a run
// ends without one.
func TestRetentionStoppedHook(t *testing.T) {
	e := newEngine(t, Options{Rules: []Rule{{ID: "ret", Kind: KindRetentionStopped}}})
	e.evaluate(t.Context(), t0, nil, ServiceFigures{})
	if len(e.Active()) != 0 {
		t.Fatal("fired before any stop")
	}
	e.RetentionStopped("retention run 7 stopped itself for 1 cameras (gate)")
	e.evaluate(t.Context(), t0.Add(time.Second), nil, ServiceFigures{})
	if a := e.Active(); len(a) != 1 || !strings.Contains(a[0].Detail, "run 7") {
		t.Fatalf("after a safety stop: %+v; want the alert, saying which run", a)
	}
	e.RetentionResumed()
	e.evaluate(t.Context(), t0.Add(2*time.Second), nil, ServiceFigures{})
	if len(e.Active()) != 0 {
		t.Error("still firing after a clean run")
	}
	var nilEngine *Engine
	nilEngine.RetentionStopped("no alerting wired") // a service without alerting ignores it
}

// TestRuleWebhook: a rule naming its own webhook sends its transitions there, signed
// with the same secret; the others go to the default one.
func TestRuleWebhook(t *testing.T) {
	def, own := &receiver{}, &receiver{}
	ds, os := httptest.NewServer(def), httptest.NewServer(own)
	defer ds.Close()
	defer os.Close()
	wh, err := NewWebhook(WebhookOptions{URL: ds.URL, Secret: []byte("s3cret")}, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, Options{Webhook: wh, Rules: []Rule{
		{ID: "dark", Kind: KindCameraOffline},
		{ID: "dark-desk", Kind: KindCameraOffline, Camera: "gate", Webhook: os.URL + "/desk"},
	}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); wh.run(ctx) }()
	defer func() { cancel(); <-done }()
	e.evaluate(ctx, t0, []CameraFigures{{ID: "gate", Since: t0}}, ServiceFigures{})
	waitFor(t, "both deliveries", func() bool { return len(def.payloads()) == 1 && len(own.payloads()) == 1 })
	if d, o := def.payloads()[0].Alert.Rule, own.payloads()[0].Alert.Rule; d != "dark" || o != "dark-desk" {
		t.Errorf("default webhook got %s, the rule's own got %s", d, o)
	}
	if _, err := e.PutRule(t.Context(), Rule{ID: "x", Kind: KindTamper, Threshold: 0.3, Webhook: "file:///etc/passwd"}); err == nil {
		t.Error("a file: webhook was accepted")
	}
}

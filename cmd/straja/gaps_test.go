package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder/alerts"
	"github.com/straja-nvr/straja/recorder/camsim"
)

type apiGap struct {
	Start time.Time  `json:"start"`
	End   *time.Time `json:"end"`
	Cause string     `json:"cause"`
}

// gapsOfCamera reads a camera's gap ledger over the last hour.
func gapsOfCamera(t *testing.T, addr, camera string) []apiGap {
	t.Helper()
	var out struct {
		Gaps []apiGap `json:"gaps"`
	}
	url := fmt.Sprintf("http://%s/api/v1/cameras/%s/gaps?from=%s", addr, camera,
		time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	if code := getJSON(t, url, &out); code != http.StatusOK {
		t.Fatalf("gaps of %s: status %d", camera, code)
	}
	return out.Gaps
}

// hookReceiver is an alert webhook endpoint that checks each body's signature.
type hookReceiver struct {
	secret string
	mu     sync.Mutex
	got    []alerts.Payload
	bad    int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Header.Get(alerts.SignatureHeader) != alerts.Sign([]byte(h.secret), body) {
		h.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p alerts.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.got = append(h.got, p)
}

func (h *hookReceiver) payloads() ([]alerts.Payload, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]alerts.Payload(nil), h.got...), h.bad
}

// TestCameraCutOff cuts a camera off for 15 s with an offline rule of 5 s: exactly
// one firing and one resolved webhook reach the receiver, signed; the ledger holds one
// gap of about 15 s with cause offline, ended when the camera is back; the other
// camera has neither.
func TestCameraCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: ~25 s")
	}
	hook := &hookReceiver{secret: "webhook-secret-of-the-test"}
	hsrv := httptest.NewServer(hook)
	defer hsrv.Close()
	t.Setenv("STRAJA_TEST_ALERT_SECRET", hook.secret)
	sim := startSim(t, 2, camsim.Options{})
	cfg := baseConfig(t, t.TempDir(), sim, 2)
	cfg.Alerts.Webhook = configs.AlertWebhook{URL: hsrv.URL + "/straja", SecretEnv: "STRAJA_TEST_ALERT_SECRET"}
	cfg.Alerts.Rules = []configs.AlertRule{{ID: "dark", Kind: "camera_offline", For: configs.Duration(5 * time.Second)}}
	m := startMain(t, cfg)
	testutil.WaitFor(t, 20*time.Second, "cameras online", func() bool {
		return cameraOf(t, m.Addr(), "cam-1").State == "online" && cameraOf(t, m.Addr(), "cam-2").State == "online"
	})
	if g := gapsOfCamera(t, m.Addr(), "cam-1"); len(g) != 0 {
		t.Fatalf("gaps before any outage: %+v", g)
	}
	if err := sim.StopCamera(1); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	testutil.WaitFor(t, 15*time.Second, "the outage in the ledger", func() bool { return len(gapsOfCamera(t, m.Addr(), "cam-1")) == 1 })
	g := gapsOfCamera(t, m.Addr(), "cam-1")[0]
	if g.End != nil || g.Cause != "offline" {
		t.Errorf("gap during the outage = %+v; want an open gap with cause offline", g)
	}
	time.Sleep(15*time.Second - time.Since(stopped)) // the outage itself, not a wait for a condition
	if got, bad := hook.payloads(); len(got) != 1 || got[0].Status != alerts.StatusFiring || got[0].Alert.Camera != "cam-1" || bad != 0 {
		t.Errorf("webhooks during the outage: %+v (%d badly signed); want cam-1 firing once", got, bad)
	}
	if err := sim.StartCamera(1); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	testutil.WaitFor(t, 15*time.Second, "the gap to end", func() bool {
		g := gapsOfCamera(t, m.Addr(), "cam-1")
		return len(g) == 1 && g[0].End != nil
	})
	g = gapsOfCamera(t, m.Addr(), "cam-1")[0]
	t.Logf("gap %v .. %v (%v), camera stopped %v, back %v", g.Start, *g.End, g.End.Sub(g.Start), stopped, back)
	if g.Cause != "offline" {
		t.Errorf("cause = %q, want offline", g.Cause)
	}
	// It starts at the last frame before the cut and ends at the first after it.
	if g.Start.After(stopped.Add(time.Second)) || g.Start.Before(stopped.Add(-2*time.Second)) {
		t.Errorf("gap starts at %v, the camera stopped at %v", g.Start, stopped)
	}
	if g.End.Before(back) || g.End.After(back.Add(10*time.Second)) {
		t.Errorf("gap ends at %v, the camera came back at %v", g.End, back)
	}
	if d := g.End.Sub(g.Start); d < 14*time.Second || d > 20*time.Second {
		t.Errorf("gap of %v, want about 15 s", d)
	}
	if other := gapsOfCamera(t, m.Addr(), "cam-2"); len(other) != 0 {
		t.Errorf("cam-2 gaps = %+v, want none", other)
	}
	testutil.WaitFor(t, 10*time.Second, "the resolved webhook", func() bool { got, _ := hook.payloads(); return len(got) >= 2 })
	got, bad := hook.payloads()
	if len(got) != 2 || got[1].Status != alerts.StatusResolved || got[1].Alert.Camera != "cam-1" || bad != 0 {
		t.Errorf("webhooks: %+v (%d badly signed); want cam-1 firing, then resolved", got, bad)
	}

	// The camera's figures, for whoever may view it.
	var h struct {
		State      string   `json:"state"`
		GOP        int      `json:"gop"`
		FPS        float64  `json:"fps"`
		Reconnects uint64   `json:"reconnects"`
		LagS       *float64 `json:"recording_lag_s"`
	}
	testutil.WaitFor(t, 10*time.Second, "cam-1 figures", func() bool {
		getJSON(t, "http://"+m.Addr()+"/api/v1/cameras/cam-1/health", &h)
		return h.State == "online" && h.GOP > 0 && h.LagS != nil
	})
	if h.Reconnects == 0 || h.GOP != 50 {
		t.Errorf("cam-1 health = %+v; want reconnects counted and the simulator's GOP of 50 frames", h)
	}
	// Bad input names the field; the service summary is for itc only.
	resp, err := http.Get("http://" + m.Addr() + "/api/v1/cameras/cam-1/gaps?from=yesterday")
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Field string `json:"field"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || e.Field != "from" {
		t.Errorf("gaps?from=yesterday: %d field %q, want 400 naming from", resp.StatusCode, e.Field)
	}
	if code := getJSON(t, "http://"+m.Addr()+"/api/v1/health", &struct{}{}); code != http.StatusForbidden {
		t.Errorf("a guard's GET /api/v1/health: %d, want 403", code)
	}
}

// TestGapLedgerServiceKilled kills the service: the next start records the time it
// was down as a "service_stopped" gap of each camera, ending when it records again.
func TestGapLedgerServiceKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: ~20 s")
	}
	sim := startSim(t, 1, camsim.Options{})
	cfg := baseConfig(t, t.TempDir(), sim, 1)
	cfg.Listen = testutil.FreeAddr(t, "tcp")
	path := writeConfig(t, cfg)
	logs := &testutil.Buffer{}
	p := startBinary(t, path, logs)
	testutil.WaitFor(t, 20*time.Second, "cam-1 online", func() bool { return cameraOf(t, cfg.Listen, "cam-1").State == "online" })
	// Let a heartbeat or two be written.
	time.Sleep(6 * time.Second)
	killed := time.Now()
	if err := p.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.Wait()
	time.Sleep(3 * time.Second) // the downtime itself
	p = startBinary(t, path, logs)
	restarted := time.Now()
	testutil.WaitFor(t, 20*time.Second, "cam-1 online again", func() bool { return cameraOf(t, cfg.Listen, "cam-1").State == "online" })
	var g []apiGap
	testutil.WaitFor(t, 10*time.Second, "the downtime gap to end", func() bool {
		g = gapsOfCamera(t, cfg.Listen, "cam-1")
		return len(g) == 1 && g[0].End != nil
	})
	stopBinary(t, p)
	t.Logf("gap %+v..%v, killed %v, restarted %v", g[0], *g[0].End, killed, restarted)
	if g[0].Cause != "service_stopped" {
		t.Errorf("cause = %q, want service_stopped", g[0].Cause)
	}
	// From the last heartbeat (at most 5 s before the kill) to the first frame after.
	if g[0].Start.After(killed) || g[0].Start.Before(killed.Add(-6*time.Second)) {
		t.Errorf("gap starts %v, killed at %v: want the last heartbeat before the kill", g[0].Start, killed)
	}
	if g[0].End.Before(restarted) {
		t.Errorf("gap ends %v, before the restart at %v", g[0].End, restarted)
	}
}

// TestGapLedgerCameraRemoved: a runtime camera deleted through the API leaves a
// camera_removed gap that lasts; its footage's gaps stay listed.
func TestGapLedgerCameraRemoved(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: ~15 s")
	}
	sim := startSim(t, 2, camsim.Options{})
	cfg := baseConfig(t, t.TempDir(), sim, 1)
	m := startMain(t, cfg)
	itc := itcToken(t, m)
	base := m.URL() + "/api/v1"
	if code, body := call(t, "POST", base+"/cameras", itc, map[string]any{"id": "cam-extra", "name": "Extra",
		"site": "bastion", "url": sim.URL(2), "transport": "tcp"}); code != http.StatusCreated {
		t.Fatalf("add camera: %d %s", code, body)
	}
	testutil.WaitFor(t, 20*time.Second, "cam-extra footage stored", func() bool {
		segs, err := m.rec.Segments(t.Context(), "cam-extra", time.Now().Add(-time.Hour), time.Now())
		return err == nil && len(segs) > 0
	})
	removed := time.Now()
	if code, body := call(t, "DELETE", base+"/cameras/cam-extra", itc, nil); code != http.StatusNoContent {
		t.Fatalf("delete camera: %d %s", code, body)
	}
	var g []apiGap
	testutil.WaitFor(t, 10*time.Second, "the removal in the ledger", func() bool {
		code, body := call(t, "GET", base+"/cameras/cam-extra/gaps?from="+removed.Add(-time.Hour).UTC().Format(time.RFC3339), itc, nil)
		if code != http.StatusOK {
			return false
		}
		var out struct {
			Gaps []apiGap `json:"gaps"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		g = out.Gaps
		return len(g) > 0
	})
	if len(g) != 1 || g[0].Cause != "camera_removed" || g[0].End != nil ||
		g[0].Start.Before(removed.Add(-2*time.Second)) || g[0].Start.After(time.Now()) {
		t.Errorf("cam-extra gaps after its removal: %+v; want one lasting camera_removed gap from about %v", g, removed)
	}
}

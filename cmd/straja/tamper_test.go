package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder/alerts"
	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/streaming/clip"
)

// TestTamperAlert: a camera whose picture turns to a clip of a twentieth of its
// bitrate (a covered lens) fires the tamper alert; the other camera does not.
func TestTamperAlert(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: ~25 s")
	}
	testutil.NeedTool(t, "ffmpeg")
	low := filepath.Join(t.TempDir(), "covered.mp4")
	if err := (camsim.ClipSpec{BitrateKbps: 40}).Make(t.Context(), low); err != nil {
		t.Fatal(err)
	}
	covered, err := clip.Load(low)
	if err != nil {
		t.Fatal(err)
	}
	sim := startSim(t, 2, camsim.Options{})
	cfg := baseConfig(t, t.TempDir(), sim, 2)
	// A minute's median, judged after 5 s of it: the test's hour.
	cfg.Alerts.TamperWindow = configs.Duration(time.Minute)
	cfg.Alerts.Rules = []configs.AlertRule{{ID: "tamper", Kind: "tamper", For: configs.Duration(2 * time.Second),
		Threshold: 0.3, High: 4}}
	m := startMain(t, cfg)
	itc := itcToken(t, m)
	testutil.WaitFor(t, 20*time.Second, "cameras online", func() bool {
		return cameraOf(t, m.Addr(), "cam-1").State == "online" && cameraOf(t, m.Addr(), "cam-2").State == "online"
	})
	// The median needs 30 samples, one every 1/360 of the window.
	onlineAt := time.Now()
	testutil.WaitFor(t, 20*time.Second, "the median's history", func() bool { return time.Since(onlineAt) > 8*time.Second })
	if a := activeAlerts(t, m, itc); len(a) != 0 {
		t.Fatalf("alerts before any tampering: %+v", a)
	}
	if err := sim.SetClip(1, covered); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "the tamper alert", func() bool { return len(activeAlerts(t, m, itc)) > 0 })
	a := activeAlerts(t, m, itc)
	t.Logf("alert: %+v", a)
	if len(a) != 1 || a[0].Camera != "cam-1" || a[0].Kind != alerts.KindTamper {
		t.Errorf("active alerts %+v; want tamper on cam-1 only", a)
	}
}

// activeAlerts reads the firing alerts with an itc token.
func activeAlerts(t *testing.T, m *Main, token string) []alerts.Alert {
	t.Helper()
	var out struct {
		Active []alerts.Alert `json:"active"`
	}
	code, body := call(t, "GET", m.URL()+"/api/v1/alerts", token, nil)
	if code != http.StatusOK {
		t.Fatalf("alerts: %d %s", code, body)
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Active
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/streaming"
)

func camsimOpts() camsim.Options { return camsim.Options{} }

type apiCamera struct {
	ID         string     `json:"id"`
	State      string     `json:"state"`
	LastFrame  *time.Time `json:"last_frame"`
	Reconnects uint64     `json:"reconnects"`
	LastError  string     `json:"last_error"`
}

// cameraOf reads one camera from the API; while the service is not up yet it returns
// a zero apiCamera, so testutil.WaitFor conditions can poll through start-up.
func cameraOf(t *testing.T, addr, id string) apiCamera {
	t.Helper()
	var c apiCamera
	resp, err := http.Get(fmt.Sprintf("http://%s/api/v1/cameras/%s", addr, id))
	if err != nil {
		return c
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("camera %s: status %d", id, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatalf("camera %s: %v", id, err)
	}
	return c
}

// TestCameraRestart stops a camera for 5 s: the recorder reconnects within 2 s of its
// return, the outage is a hole in its segment list, and nothing else is lost.
func TestCameraRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: ~20 s")
	}
	sim := startSim(t, 2, camsim.Options{Codecs: map[int]streaming.Codec{}})
	cfg := baseConfig(t, t.TempDir(), sim, 2)
	m := startMain(t, cfg)
	testutil.WaitFor(t, 20*time.Second, "cam-1 segments", func() bool { return len(segmentsOf(t, m.Addr(), "cam-1")) >= 2 })

	if err := sim.StopCamera(1); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	testutil.WaitFor(t, 15*time.Second, "cam-1 to notice the outage", func() bool { return cameraOf(t, m.Addr(), "cam-1").State != "online" })
	time.Sleep(5*time.Second - time.Since(stopped)) // the outage itself, not a wait for a condition
	if err := sim.StartCamera(1); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	testutil.WaitFor(t, 10*time.Second, "cam-1 frames after restart", func() bool {
		c := cameraOf(t, m.Addr(), "cam-1")
		return c.State == "online" && c.LastFrame != nil && c.LastFrame.After(back)
	})
	// The first frame after restart comes at the camera's next keyframe (GOP 2 s), so
	// the session itself must be up well within 2 s of the camera's return.
	if took := time.Since(back); took > 2*time.Second+2500*time.Millisecond {
		t.Errorf("first frame %v after the camera came back", took)
	}
	testutil.WaitFor(t, 20*time.Second, "segments after restart", func() bool {
		segs := segmentsOf(t, m.Addr(), "cam-1")
		return len(segs) > 0 && segs[len(segs)-1].Start.After(back)
	})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	holes := func(id string) []time.Duration {
		segs := recorded(t, cfg, id)
		var hs []time.Duration
		for i := 1; i < len(segs); i++ {
			if h := segs[i].Start.Sub(segs[i-1].End()); h > frame {
				hs = append(hs, h)
			}
		}
		return hs
	}
	h1 := holes("cam-1")
	if len(h1) != 1 || h1[0] < 4*time.Second || h1[0] > 10*time.Second {
		t.Errorf("cam-1 holes %v, want one of about the 5 s outage (plus up to a GOP)", h1)
	}
	if h2 := holes("cam-2"); len(h2) != 0 {
		t.Errorf("cam-2 holes %v, want none", h2)
	}
}

// TestNoGoroutineLeft runs the whole service and checks that Close stops everything.
func TestNoGoroutineLeft(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	sim := startSim(t, 2, camsim.Options{Codecs: map[int]streaming.Codec{}})
	checkGoroutines := testutil.CheckGoroutines(t)
	cfg := baseConfig(t, t.TempDir(), sim, 2)
	m := startMain(t, cfg)
	testutil.WaitFor(t, 20*time.Second, "cameras online", func() bool {
		return cameraOf(t, m.Addr(), "cam-1").State == "online" && cameraOf(t, m.Addr(), "cam-2").State == "online"
	})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
	checkGoroutines()
}

// TestCredentialsNeverShown runs the binary with password-bearing camera URLs (one right,
// one wrong) and checks the passwords appear nowhere: logs, API, metrics.
func TestCredentialsNeverShown(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const user, pass, wrong = "operator", "Sup3r-Secret-Pa55", "Wr0ng-Secret-Pa55"
	sim := startSim(t, 2, camsim.Options{Codecs: map[int]streaming.Codec{}, Username: user, Password: pass})
	cfg := baseConfig(t, t.TempDir(), sim, 2)
	cfg.Cameras[0].URL = strings.Replace(sim.URL(1), "rtsp://", "rtsp://"+user+":"+pass+"@", 1)
	// A "@" in the query must not hide the password from redaction.
	cfg.Cameras[1].URL = strings.Replace(sim.URL(2), "rtsp://", "rtsp://"+user+":"+wrong+"@", 1) + "?owner=ops@example"
	cfg.Listen = testutil.FreeAddr(t, "tcp")
	logs := &testutil.Buffer{}
	p := startBinary(t, writeConfig(t, cfg), logs)
	addr := cfg.Listen
	testutil.WaitFor(t, 20*time.Second, "cam-1 online, cam-2 offline with an error", func() bool {
		c1, c2 := cameraOf(t, addr, "cam-1"), cameraOf(t, addr, "cam-2")
		return c1.State == "online" && c2.State == "offline" && c2.LastError != ""
	})
	c2 := cameraOf(t, addr, "cam-2")
	if !strings.Contains(strings.ToLower(c2.LastError), "401") && !strings.Contains(strings.ToLower(c2.LastError), "auth") {
		t.Errorf("cam-2 error %q does not say authentication failed", c2.LastError)
	}
	var seen []string
	for _, path := range []string{"/api/v1/cameras", "/api/v1/cameras/cam-2", "/metrics", "/healthz"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen = append(seen, path+": "+string(b))
	}
	stopBinary(t, p)
	seen = append(seen, "logs: "+logs.String())
	for _, s := range seen {
		for _, secret := range []string{pass, wrong} {
			if strings.Contains(s, secret) {
				t.Errorf("password %q shown in %s", secret, s[:min(len(s), 200)])
			}
		}
	}
	if !strings.Contains(logs.String(), "cam-2") {
		t.Errorf("logs never mention the failing camera:\n%s", logs.String())
	}
}

// TestKillMidSegment kills the service with SIGKILL in the middle of a segment: after
// restart the partial segment is recovered and uploaded, losing at most one fragment.
func TestKillMidSegment(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: ~25 s")
	}
	testutil.NeedTool(t, "ffprobe")
	sim := startSim(t, 1, camsim.Options{})
	cfg := baseConfig(t, t.TempDir(), sim, 1)
	cfg.Recording.SegmentDuration = configs.Duration(20 * time.Second)
	cfg.Listen = testutil.FreeAddr(t, "tcp")
	path := writeConfig(t, cfg)
	logs := &testutil.Buffer{}
	p := startBinary(t, path, logs)
	testutil.WaitFor(t, 20*time.Second, "cam-1 online", func() bool { return cameraOf(t, cfg.Listen, "cam-1").State == "online" })
	time.Sleep(7 * time.Second) // record into the first (20 s) segment, then crash mid-way
	killed := time.Now()
	if err := p.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.Wait()
	parts, _ := filepath.Glob(filepath.Join(cfg.Spool.Dir, "*", "*"))
	if len(parts) == 0 {
		t.Fatalf("nothing in the spool after the crash; logs:\n%s", logs.String())
	}

	p = startBinary(t, path, logs)
	testutil.WaitFor(t, 20*time.Second, "recovered segment catalogued", func() bool { return len(segmentsOf(t, cfg.Listen, "cam-1")) >= 1 })
	stopBinary(t, p)

	segs := recorded(t, cfg, "cam-1")
	if len(segs) == 0 {
		t.Fatal("no segment recovered")
	}
	first := segs[0] // the one being written when the process was killed
	lost := killed.Sub(first.End())
	t.Logf("recovered %s: %v of footage, %v lost before the kill", first.Key, first.Duration, lost)
	// One fragment (1 s) plus the camera's own delivery latency.
	if lost > time.Duration(cfg.Recording.FragmentDuration)+500*time.Millisecond {
		t.Errorf("lost %v of footage before the kill, want at most one fragment", lost)
	}
	if pr := testutil.FFprobe(t, fetch(t, testStore(t, cfg), first.Key)); !pr.FirstKey || pr.Codec != "h264" {
		t.Errorf("recovered segment does not play: %+v", pr)
	}
	if left, _ := filepath.Glob(filepath.Join(cfg.Spool.Dir, "*", "*.part")); len(left) != 0 {
		t.Errorf("spool still holds %v", left)
	}
}

func startBinary(t *testing.T, config string, out *testutil.Buffer) *exec.Cmd {
	t.Helper()
	signInBinary(t, config)
	cmd := exec.Command(strajaBinary(t), "serve", "--config", config)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

func stopBinary(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("straja exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("straja did not stop within 20 s of SIGTERM")
	}
}

// TestLiveSubstream: an H.265 camera with an H.264 live_url is shown live from the
// substream while it records H.265; without live_url it says why it cannot be shown.
func TestLiveSubstream(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	sim := startSim(t, 3, camsim.Options{Codecs: map[int]streaming.Codec{1: "h265", 3: "h265"}})
	cfg := baseConfig(t, t.TempDir(), sim, 3)
	cfg.Cameras[0].LiveURL = sim.URL(2)
	m := startMain(t, cfg)
	type liveInfo struct {
		State      string `json:"state"`
		Codec      string `json:"codec"`
		Live       bool   `json:"live"`
		LiveCodec  string `json:"live_codec"`
		LiveReason string `json:"live_reason"`
	}
	var c1, c3 liveInfo
	testutil.WaitFor(t, 20*time.Second, "cameras online", func() bool {
		getJSON(t, "http://"+m.Addr()+"/api/v1/cameras/cam-1", &c1)
		getJSON(t, "http://"+m.Addr()+"/api/v1/cameras/cam-3", &c3)
		return c1.State == "online" && c1.LiveCodec != "" && c3.State == "online"
	})
	if c1.Codec != "h265" || !c1.Live || c1.LiveCodec != "h264" {
		t.Errorf("cam-1 with live_url: %+v, want recorded h265, live from h264", c1)
	}
	if c3.Live || !strings.Contains(c3.LiveReason, "live_url") {
		t.Errorf("cam-3 without live_url: %+v, want not live with a reason naming live_url", c3)
	}
	resp, err := http.Post("http://"+m.Addr()+"/api/v1/cameras/cam-3/whep", "application/sdp", strings.NewReader("v=0\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("WHEP offer to an H.265 camera: status %d, want 409", resp.StatusCode)
	}
}

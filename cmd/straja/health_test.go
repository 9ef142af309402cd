package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/internal/testutil"
)

// health is GET /healthz: the status code and the body's fields.
func health(t *testing.T, addr string) (int, map[string]string, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]string
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("/healthz body %q: %v", b, err)
	}
	return resp.StatusCode, body, string(b)
}

// metric returns an unlabelled metric's value from /metrics, or -1 when absent.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	return -1
}

// TestHealthStoreDownFromStart: with the store down from the start and nothing
// uploaded yet, /healthz and straja_store_up say so within one probe, not a segment
// later.
func TestHealthStoreDownFromStart(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	sim := startSim(t, 1, camsimOpts())
	cfg := baseConfig(t, t.TempDir(), sim, 1)
	cfg.Recording.SegmentDuration = configs.Duration(time.Minute) // no upload is tried during the test
	cfg.Storage.Backend = configs.BackendS3
	cfg.Storage.S3 = configs.S3Storage{Endpoint: testutil.FreeAddr(t, "tcp"), Bucket: "down", AccessKey: "ak", SecretKey: "sk-down-123"}
	m := startMain(t, cfg)

	var body map[string]string
	var raw string
	testutil.WaitFor(t, 10*time.Second, "healthz to report the store down", func() bool {
		var code int
		code, body, raw = health(t, m.Addr())
		return code == http.StatusServiceUnavailable && body["cause"] != "starting"
	})
	if body["status"] != "degraded" || body["cause"] != "store_unreachable" {
		t.Errorf("/healthz = %s, want status degraded, cause store_unreachable", raw)
	}
	if strings.Contains(raw, cfg.Storage.S3.Endpoint) || strings.Contains(raw, "sk-down-123") {
		t.Errorf("/healthz shows details: %s", raw)
	}
	if v := metric(t, m.Addr(), "straja_store_up"); v != 0 {
		t.Errorf("straja_store_up = %v with the store down, want 0", v)
	}
}

// TestHealthStoreUpBeforeFirstUpload: a reachable store shows as up before the first
// segment is uploaded.
func TestHealthStoreUpBeforeFirstUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	sim := startSim(t, 1, camsimOpts())
	cfg := baseConfig(t, t.TempDir(), sim, 1)
	cfg.Recording.SegmentDuration = configs.Duration(time.Minute)
	m := startMain(t, cfg)
	testutil.WaitFor(t, 10*time.Second, "straja_store_up 1", func() bool { return metric(t, m.Addr(), "straja_store_up") == 1 })
	if code, _, raw := health(t, m.Addr()); code != http.StatusOK || raw != `{"status":"ok"}`+"\n" {
		t.Errorf("/healthz = %d %s, want 200 ok", code, raw)
	}
	if segs := segmentsOf(t, m.Addr(), "cam-1"); len(segs) != 0 {
		t.Fatalf("%d segments already uploaded: the test shows nothing", len(segs))
	}
}

// TestHealthDiskFull: a store on a full disk is reported as disk_full, not as
// unreachable, and /healthz shows no path.
func TestHealthDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	full := filepath.Join(t.TempDir(), "full")
	if err := os.Mkdir(full, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", full).CombinedOutput(); err != nil {
		t.Skipf("a small tmpfs cannot be mounted here (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", full).Run() }) // after Main is closed
	sim := startSim(t, 2, camsimOpts())
	cfg := baseConfig(t, t.TempDir(), sim, 2)
	cfg.Storage.Disk.Path = full
	m := startMain(t, cfg)

	var body map[string]string
	var raw string
	testutil.WaitFor(t, 30*time.Second, "healthz to report the full disk", func() bool {
		var code int
		code, body, raw = health(t, m.Addr())
		return code == http.StatusServiceUnavailable && body["cause"] != "starting"
	})
	if body["status"] != "degraded" || body["cause"] != "disk_full" {
		t.Errorf("/healthz = %s, want status degraded, cause disk_full", raw)
	}
	if strings.Contains(raw, "/") {
		t.Errorf("/healthz shows a path: %s", raw)
	}
}

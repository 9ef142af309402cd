package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/internal/testutil"
)

// privateMinIO is a MinIO server this test may stop and restart.
type privateMinIO struct {
	dir, addr string
	cmd       *exec.Cmd
}

func (m *privateMinIO) start(t *testing.T) {
	t.Helper()
	m.cmd = exec.Command("minio", "server", filepath.Join(m.dir, "data"), "--quiet", "--address", m.addr,
		"--console-address", testutil.FreeAddr(t, "tcp"))
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER=outage-test", "MINIO_ROOT_PASSWORD=outage-test-secret")
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "MinIO ready", func() bool {
		resp, err := http.Get("http://" + m.addr + "/minio/health/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func (m *privateMinIO) stop() {
	if m.cmd != nil && m.cmd.ProcessState == nil {
		_ = m.cmd.Process.Kill()
		_ = m.cmd.Wait()
	}
}

// TestStoreOutage stops MinIO for 20 s while recording: footage goes on into the spool
// and, once MinIO is back, every second of it is uploaded and the spool empties.
func TestStoreOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: ~40 s")
	}
	testutil.NeedTool(t, "minio")
	mio := &privateMinIO{dir: t.TempDir(), addr: testutil.FreeAddr(t, "tcp")}
	mio.start(t)
	t.Cleanup(mio.stop)

	sim := startSim(t, 2, camsimOpts())
	cfg := baseConfig(t, t.TempDir(), sim, 2)
	cfg.Storage.Backend = configs.BackendS3
	cfg.Storage.S3 = configs.S3Storage{Endpoint: mio.addr, Bucket: "outage", AccessKey: "outage-test", SecretKey: "outage-test-secret"}
	m := startMain(t, cfg)
	testutil.WaitFor(t, 20*time.Second, "segments stored", func() bool { return len(segmentsOf(t, m.Addr(), "cam-1")) >= 2 })

	mio.stop()
	down := time.Now()
	testutil.WaitFor(t, 15*time.Second, "health to report the outage", func() bool {
		resp, err := http.Get("http://" + m.Addr() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	time.Sleep(20*time.Second - time.Since(down)) // the outage itself
	mio.start(t)
	back := time.Now()
	testutil.WaitFor(t, 60*time.Second, "segments recorded during the outage stored", func() bool {
		segs := segmentsOf(t, m.Addr(), "cam-2")
		return len(segs) > 0 && segs[len(segs)-1].Start.After(back)
	})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// Close finalises open segments and drains them into MinIO.
	if left, _ := filepath.Glob(filepath.Join(cfg.Spool.Dir, "*", "*", "*", "*", "*")); len(left) != 0 {
		t.Errorf("spool not empty after shutdown: %v", left)
	}
	if parts, _ := filepath.Glob(filepath.Join(cfg.Spool.Dir, "*", "*.part")); len(parts) != 0 {
		t.Errorf("open segments left in the spool: %v", parts)
	}
	stored := map[string]bool{}
	for _, k := range listKeys(t, testStore(t, cfg)) {
		stored[k] = true
	}
	for _, c := range cfg.Cameras {
		segs := recorded(t, cfg, c.ID)
		if len(segs) == 0 || segs[0].Start.After(down) || segs[len(segs)-1].End().Before(back) {
			t.Fatalf("%s: catalogued footage does not span the outage", c.ID)
		}
		for i, s := range segs {
			if !stored[s.Key] {
				t.Errorf("%s catalogued but not in MinIO", s.Key)
			}
			if i > 0 {
				if h := s.Start.Sub(segs[i-1].End()); h > frame || h < -frame {
					t.Errorf("%s: %v hole before %s", c.ID, h, s.Key)
				}
			}
		}
	}
}

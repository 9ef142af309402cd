package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/storetest"
	"github.com/straja-nvr/straja/streaming"
)

// frame is one frame interval of the simulated cameras (25 fps).
const frame = 40 * time.Millisecond

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// strajaBinary builds the service once per test run.
func strajaBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "straja-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "straja")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startSim serves n cameras; camera 4 (when present) sends H.265.
func startSim(t *testing.T, n int, opts camsim.Options) *camsim.Server {
	t.Helper()
	opts.Listen, opts.Cameras = "127.0.0.1:0", n
	if opts.Codecs == nil && n >= 4 {
		opts.Codecs = map[int]streaming.Codec{4: "h265"}
	}
	sim, err := camsim.New(opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return sim
}

// baseConfig records every simulator camera with 2 s segments into a disk store under dir.
func baseConfig(t *testing.T, dir string, sim *camsim.Server, n int) *configs.Config {
	t.Helper()
	cfg := configs.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.Storage.Disk.Path = filepath.Join(dir, "segments")
	cfg.Spool.Dir = filepath.Join(dir, "spool")
	cfg.Recording.SegmentDuration = configs.Duration(2 * time.Second)
	cfg.WebRTC.UDPPort, cfg.WebRTC.TCPPort = 0, -1
	cfg.Metrics.Token = testMetricsToken
	cfg.Sites = []configs.Site{{ID: "bastion", Name: "Bastionul Theresia"}, {ID: "palat", Name: "Palatul Administrativ"}}
	for i := 1; i <= n; i++ {
		site := "bastion"
		if i%2 == 0 {
			site = "palat"
		}
		cfg.Cameras = append(cfg.Cameras, configs.Camera{ID: fmt.Sprintf("cam-%d", i), Name: fmt.Sprintf("Camera %d", i),
			Site: site, URL: sim.URL(i), Transport: configs.TransportTCP})
	}
	return &cfg
}

func useS3(t *testing.T, cfg *configs.Config) storage.S3Options {
	t.Helper()
	o := storetest.S3FromEnv(t)
	cfg.Storage.Backend = configs.BackendS3
	cfg.Storage.S3 = configs.S3Storage{Endpoint: o.Endpoint, Bucket: o.Bucket, AccessKey: o.AccessKey,
		SecretKey: o.SecretKey, Region: o.Region, TLS: o.TLS}
	return o
}

func startMain(t *testing.T, cfg *configs.Config) *Main {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: cfg, Log: testLogger(t)}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	signInTests(t, m)
	return m
}

type apiSegment struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Duration float64   `json:"duration_s"`
	Size     int64     `json:"size"`
	SHA256   string    `json:"sha256"`
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v: %s", url, err, body)
		}
	}
	return resp.StatusCode
}

func segmentsOf(t *testing.T, addr, cam string) []apiSegment {
	t.Helper()
	var out struct {
		Segments []apiSegment `json:"segments"`
	}
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	resp, err := http.Get(fmt.Sprintf("http://%s/api/v1/cameras/%s/segments?from=%s&to=%s", addr, cam, from, to))
	if err != nil {
		return nil // not up yet
	}
	resp.Body.Close()
	if code := getJSON(t, fmt.Sprintf("http://%s/api/v1/cameras/%s/segments?from=%s&to=%s", addr, cam, from, to), &out); code != 200 {
		t.Fatalf("segments of %s: status %d", cam, code)
	}
	return out.Segments
}

// fetch copies an object out of the store into a temp file for ffprobe.
func fetch(t *testing.T, st storage.Store, key string) string {
	t.Helper()
	rc, err := st.Get(context.Background(), key, 0, -1)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	p := filepath.Join(t.TempDir(), "seg.mp4")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// listKeys lists the segment keys in st, leaving out what Straja keeps under the reserved prefix.
func listKeys(t *testing.T, st storage.Store) []string {
	t.Helper()
	var keys []string
	if err := st.List(context.Background(), "", func(o storage.ObjectInfo) error {
		if strings.HasPrefix(o.Key, storage.ReservedPrefix) {
			return nil // Straja's own objects (state backups, audit heads), not segments
		}
		keys = append(keys, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// catalogRows reads the whole catalog as comparable rows.
func catalogRows(t *testing.T, cfg *configs.Config) []string {
	t.Helper()
	var rows []string
	for _, c := range cfg.Cameras {
		for _, s := range recorded(t, cfg, c.ID) {
			if s.Init == nil || s.Samples == nil {
				t.Errorf("%s catalogued without its init section or sample table", s.Key)
			}
			// The init section and sample table too, as hashes: written live and
			// rebuilt from the store they must be the same.
			rows = append(rows, fmt.Sprintf("%s %s %v %d %x %d init %x samples %x", s.Key, s.Start.UTC().Format(time.RFC3339Nano),
				s.Duration, s.Size, s.SHA256, len(s.Fragments), sha256.Sum256(s.Init), sha256.Sum256(s.Samples)))
		}
	}
	sort.Strings(rows)
	return rows
}

func writeConfig(t *testing.T, cfg *configs.Config) string {
	t.Helper()
	b, err := configs.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "straja.yaml")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var _ = bytes.NewReader

// recorded returns a camera's catalogued segments (all of them), reading the catalog
// of a stopped service.
func recorded(t *testing.T, cfg *configs.Config, camera string) []storage.Segment {
	t.Helper()
	cat, err := storage.OpenCatalog(catalogPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	segs, err := cat.SegmentsWithTables(context.Background(), camera, time.Unix(0, 0), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// testStore opens the store cfg names.
func testStore(t *testing.T, cfg *configs.Config) storage.Store {
	t.Helper()
	st, err := openStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

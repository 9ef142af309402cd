package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/recorder/camsim"
)

// target is the recorder under measurement: straja, or one ffmpeg per camera.
type target interface {
	// pids are the processes whose CPU and memory are the recorder's.
	pids() []string
	// check returns an error once any of its processes has exited.
	check() error
	stop()
}

// strajaTarget is `straja serve` as a child process.
type strajaTarget struct {
	*child
	addr string // HTTP host:port
	ids  []string
}

func (s *strajaTarget) pids() []string { return []string{s.pid()} }

func (s *strajaTarget) check() error {
	if done, err := s.exited(); done {
		return fmt.Errorf("%w: %s", err, s.logTail())
	}
	return nil
}

// stop gives straja time to finalise open segments and upload them.
func (s *strajaTarget) stop() { s.child.stop(20 * time.Second) }

// cameraID is the ID of simulated camera i (1-based).
func cameraID(i int) string { return fmt.Sprintf("cam-%d", i) }

// strajaConfig records every simulated camera into the chosen store.
func strajaConfig(o options, dir, listen, bucket string, sim *camsim.Server, mio *minioServer) (*configs.Config, error) {
	cfg := configs.Default()
	cfg.Listen = listen
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Recording.SegmentDuration = configs.Duration(o.segmentDuration)
	cfg.WebRTC.UDPPort, cfg.WebRTC.TCPPort = 0, -1
	cfg.Sites = []configs.Site{{ID: "load", Name: "Load test"}}
	var b [16]byte
	_, _ = rand.Read(b[:])
	cfg.Metrics.Token = "strajaload-" + hex.EncodeToString(b[:])
	for i := 1; i <= o.cameras; i++ {
		cfg.Cameras = append(cfg.Cameras, configs.Camera{ID: cameraID(i), Name: fmt.Sprintf("Camera %d", i),
			Site: "load", URL: sim.URL(i), Transport: configs.TransportTCP})
	}
	if o.store == storeMinio {
		cfg.Storage.Backend = configs.BackendS3
		cfg.Storage.S3 = configs.S3Storage{Endpoint: mio.endpoint, Bucket: bucket,
			AccessKey: mio.accessKey, SecretKey: mio.secretKey}
	} else {
		cfg.Storage.Backend = configs.BackendDisk
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("straja config: %w", err)
	}
	return &cfg, nil
}

// buildStraja builds ./cmd/straja of the module strajaload runs in.
func buildStraja(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "straja")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/straja-nvr/straja/cmd/straja").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build straja (run strajaload inside the straja module, or pass --straja-bin): %w\n%s", err, out)
	}
	return bin, nil
}

// startStraja runs bin (built when "") with its files under dir, storing into bucket.
func startStraja(ctx context.Context, o options, bin, dir, bucket string, sim *camsim.Server, mio *minioServer, log *slog.Logger) (*strajaTarget, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("straja dir: %w", err)
	}
	if bin == "" {
		log.Info("building straja")
		var err error
		if bin, err = buildStraja(ctx, dir); err != nil {
			return nil, err
		}
	}
	listen, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg, err := strajaConfig(o, dir, listen, bucket, sim, mio)
	if err != nil {
		return nil, err
	}
	b, err := configs.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "straja.yaml")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, fmt.Errorf("write straja config: %w", err)
	}
	// The environment must not override the generated config.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STRAJA_") {
			env = append(env, kv)
		}
	}
	apiToken, err := loadUser(ctx, bin, cfgPath, env)
	if err != nil {
		return nil, err
	}
	signRequests(listen, apiToken, cfg.Metrics.Token)
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Env = env
	c, err := startChild("straja", cmd, filepath.Join(dir, "straja.log"), syscall.SIGTERM)
	if err != nil {
		return nil, err
	}
	s := &strajaTarget{child: c, addr: listen}
	for i := 1; i <= o.cameras; i++ {
		s.ids = append(s.ids, cameraID(i))
	}
	log.Info("started straja", "pid", c.pid(), "http", listen, "log", c.logPath)
	return s, nil
}

// loadUser makes user "load", a guard granted the load site, with an API token, through
// straja's own commands, and returns the token.
func loadUser(ctx context.Context, bin, cfgPath string, env []string) (string, error) {
	var token string
	for _, args := range [][]string{
		{"user", "add", "--config", cfgPath, "--username", "load", "--role", "guard"},
		{"user", "grant", "--config", cfgPath, "--username", "load", "--site", "load"},
		{"token", "create", "--config", cfgPath, "--user", "load", "--name", "strajaload"},
	} {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("straja %s %s: %w", args[0], args[1], err)
		}
		for _, f := range strings.Fields(string(out)) {
			if strings.HasPrefix(f, "straja_") {
				token = f
			}
		}
	}
	if token == "" {
		return "", errors.New("straja token create printed no token")
	}
	return token, nil
}

// signRequests makes http.DefaultClient send the API token with every request to
// straja at addr, and the metrics token with its scrapes. Each straja (two with
// --versus-straja) has its own tokens.
func signRequests(addr, apiToken, metricsToken string) {
	signMu.Lock()
	defer signMu.Unlock()
	next := bearerTransport{addr: {api: apiToken, metrics: metricsToken}}
	if prev, ok := http.DefaultClient.Transport.(bearerTransport); ok {
		for a, t := range prev {
			next[a] = t
		}
	}
	http.DefaultClient.Transport = next
}

var signMu sync.Mutex

type tokens struct{ api, metrics string }

// bearerTransport signs requests by the address they go to.
type bearerTransport map[string]tokens

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t, ok := b[r.URL.Host]; ok {
		r = r.Clone(r.Context())
		tok := t.api
		if r.URL.Path == "/metrics" {
			tok = t.metrics
		}
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// waitOnline polls the camera list until every camera is online.
func (s *strajaTarget) waitOnline(ctx context.Context, timeout time.Duration) error {
	var last string
	err := poll(ctx, timeout, "every camera to be online", func() (bool, error) {
		if err := s.check(); err != nil {
			return false, err
		}
		var cams []struct {
			ID        string `json:"id"`
			State     string `json:"state"`
			LastError string `json:"last_error"`
		}
		if err := getJSON("http://"+s.addr+"/api/v1/cameras", &cams); err != nil {
			return false, nil // not listening yet
		}
		online := 0
		for _, c := range cams {
			if c.State == "online" {
				online++
			} else {
				last = fmt.Sprintf("%s is %s %s", c.ID, c.State, c.LastError)
			}
		}
		return online == len(s.ids) && len(cams) == len(s.ids), nil
	})
	if err != nil && last != "" {
		return fmt.Errorf("%w (%s)", err, strings.TrimSpace(last))
	}
	return err
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// metrics are the sums over all label sets of straja's counters at one moment.
type metrics map[string]float64

// scrape reads straja's /metrics.
func (s *strajaTarget) scrape() (metrics, error) {
	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// waitStored waits until every segment written by the time of at (a scrape) is stored,
// and records what was written and stored in s.
func (s *strajaTarget) waitStored(ctx context.Context, at metrics, timeout time.Duration, st *strajaStats) error {
	st.SegmentsWrittenTotal = at["straja_segments_written_total"]
	err := poll(ctx, timeout, "the segments written to be stored", func() (bool, error) {
		if err := s.check(); err != nil {
			return false, err
		}
		m, err := s.scrape()
		if err != nil {
			return false, err
		}
		st.SegmentsStoredAfter = m["straja_segments_stored_total"]
		return st.SegmentsStoredAfter >= st.SegmentsWrittenTotal, nil
	})
	if errors.Is(err, errTimedOut) {
		return nil // judged as segments not stored
	}
	return err
}

// parseMetrics sums every sample of each metric family in the Prometheus text format
// (name{labels} value [timestamp]), ignoring comments. A histogram's buckets are also
// kept one by one, as name{le="bound"}.
func parseMetrics(r io.Reader) (metrics, error) {
	m := metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, le := line, "", ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				return nil, fmt.Errorf("metrics line %q: unterminated labels", line)
			}
			if strings.HasSuffix(name, "_bucket") {
				le = labelValue(rest[:j+1], "le")
			}
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		m[name] += v
		if le != "" {
			m[name+`{le="`+le+`"}`] += v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return m, nil
}

// ffmpegTarget is one `ffmpeg -c copy -f segment` recorder per camera: what a
// minimal recorder built from ffmpeg costs.
type ffmpegTarget struct {
	procs []*child
	outs  []string // each camera's first output file
}

func startFFmpeg(o options, dir string, sim *camsim.Server, log *slog.Logger) (*ffmpegTarget, error) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return nil, errors.New("--ffmpeg-baseline needs ffmpeg on PATH")
	}
	f := &ffmpegTarget{}
	for i := 1; i <= o.cameras; i++ {
		out := filepath.Join(dir, "ffmpeg", cameraID(i))
		if err := os.MkdirAll(out, 0o750); err != nil {
			f.stop()
			return nil, fmt.Errorf("ffmpeg output dir: %w", err)
		}
		cmd := exec.Command("ffmpeg", ffmpegArgs(sim.URL(i), out, o.segmentDuration)...)
		c, err := startChild(fmt.Sprintf("ffmpeg %s", cameraID(i)), cmd, filepath.Join(out, "ffmpeg.log"), syscall.SIGINT)
		if err != nil {
			f.stop()
			return nil, err
		}
		f.procs = append(f.procs, c)
		f.outs = append(f.outs, filepath.Join(out, "out000.mp4"))
	}
	log.Info("started ffmpeg recorders", "count", len(f.procs), "dir", filepath.Join(dir, "ffmpeg"))
	return f, nil
}

// ffmpegArgs records url into fragmented MP4 segments of segDur under out, copying
// the stream as straja does.
func ffmpegArgs(url, out string, segDur time.Duration) []string {
	return []string{"-hide_banner", "-loglevel", "error", "-nostdin",
		"-rtsp_transport", "tcp", "-i", url,
		"-c", "copy", "-f", "segment", "-segment_time", strconv.FormatFloat(segDur.Seconds(), 'f', -1, 64),
		"-segment_format", "mp4", "-segment_format_options", "movflags=frag_keyframe+empty_moov",
		"-reset_timestamps", "1", filepath.Join(out, "out%03d.mp4")}
}

func (f *ffmpegTarget) pids() []string {
	p := make([]string, len(f.procs))
	for i, c := range f.procs {
		p[i] = c.pid()
	}
	return p
}

func (f *ffmpegTarget) check() error {
	for _, c := range f.procs {
		if done, err := c.exited(); done {
			return fmt.Errorf("%w: %s", err, c.logTail())
		}
	}
	return nil
}

func (f *ffmpegTarget) stop() {
	for _, c := range f.procs {
		_ = c.cmd.Process.Signal(c.stopSig)
	}
	for _, c := range f.procs {
		c.stop(10 * time.Second)
	}
}

// waitRecording waits until every ffmpeg has written its first fragment (a keyframe
// arrived), the equivalent of straja's cameras being online.
func (f *ffmpegTarget) waitRecording(ctx context.Context, timeout time.Duration) error {
	return poll(ctx, timeout, "every ffmpeg to write video", func() (bool, error) {
		if err := f.check(); err != nil {
			return false, err
		}
		for _, p := range f.outs {
			// A first file of 64 KiB holds a fragment; so does one that ffmpeg
			// closed for the next (a low-bitrate camera's short segment stays smaller).
			fi, err := os.Stat(p)
			if err != nil || fi.Size() < 64<<10 {
				if _, err := os.Stat(strings.Replace(p, "out000", "out001", 1)); err != nil {
					return false, nil
				}
			}
		}
		return true, nil
	})
}

// labelValue returns the value of label name in {a="x",name="y"}, or "" if absent.
// Bucket bounds hold no quotes or escapes, which is all this is used for.
func labelValue(labels, name string) string {
	i := strings.Index(labels, name+`="`)
	if i < 0 || (i > 0 && labels[i-1] != '{' && labels[i-1] != ',') {
		return ""
	}
	v := labels[i+len(name)+2:]
	j := strings.IndexByte(v, '"')
	if j < 0 {
		return ""
	}
	return v[:j]
}

// histogramQuantile estimates quantile q of histogram name from its bucket counts
// between two scrapes, interpolating linearly inside a bucket as Prometheus's
// histogram_quantile does. ok is false when no observation fell in between; a quantile
// in the +Inf bucket is reported as the highest finite bound.
func histogramQuantile(m0, m1 metrics, name string, q float64) (v float64, n float64, ok bool) {
	type bucket struct{ le, count float64 }
	var bs []bucket
	prefix := name + `_bucket{le="`
	for k, c1 := range m1 {
		bound, found := strings.CutPrefix(k, prefix)
		if !found {
			continue
		}
		le, err := strconv.ParseFloat(strings.TrimSuffix(bound, `"}`), 64)
		if err != nil {
			continue
		}
		bs = append(bs, bucket{le, c1 - m0[k]})
	}
	slices.SortFunc(bs, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
	if len(bs) == 0 || bs[len(bs)-1].count <= 0 {
		return 0, 0, false
	}
	n = bs[len(bs)-1].count
	rank := q * n
	lower, below := 0.0, 0.0
	for _, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return lower, n, true
			}
			if b.count == below {
				return b.le, n, true
			}
			return lower + (b.le-lower)*(rank-below)/(b.count-below), n, true
		}
		lower, below = b.le, b.count
	}
	return lower, n, true
}

package recorder

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/recorder/ingest"
	"github.com/straja-nvr/straja/recorder/internal/metrics"
	"github.com/straja-nvr/straja/recorder/spool"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/streaming"
)

// superviseFrame is one frame of the simulator's 25 fps clips.
const superviseFrame = 40 * time.Millisecond

// superviseOptions records cameras of site bastion with 2 s segments into a disk store
// under dir.
func superviseOptions(t testing.TB, dir string, cams ...CameraConfig) Options {
	t.Helper()
	st, err := storage.NewDisk(filepath.Join(dir, "segments"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range cams {
		cams[i].Site, cams[i].SiteName = "bastion", "Bastionul Theresia"
	}
	return Options{DataDir: dir, Store: st, Cameras: cams,
		Spool: spool.Options{Dir: filepath.Join(dir, "spool"), SegmentDuration: 2 * time.Second}}
}

func superviseSegments(t *testing.T, r *Recorder, cam string) []storage.Segment {
	t.Helper()
	segs, err := r.Segments(context.Background(), cam, time.Unix(0, 0), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// openPart returns the start (unix ms) of cam's open spool segment once it holds a
// complete fragment.
func openPart(t *testing.T, spoolDir, cam string) (int64, bool) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(spoolDir, cam))
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".part")
		if !ok {
			continue
		}
		f, err := os.Open(filepath.Join(spoolDir, cam, e.Name()))
		if err != nil {
			continue
		}
		idx, _ := storage.ScanSegment(f)
		f.Close()
		ms, err := strconv.ParseInt(name, 10, 64)
		if err == nil && len(idx.Fragments) > 0 {
			return ms, true
		}
	}
	return 0, false
}

// cameraSpoolFiles lists what the spool holds for cam.
func cameraSpoolFiles(spoolDir, cam string) []string {
	var out []string
	_ = filepath.WalkDir(filepath.Join(spoolDir, cam), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, path)
		}
		return nil
	})
	return out
}

// TestApplyWhileRecording changes the camera set while 4 cameras record: the untouched
// and the renamed camera record on with no hole, the removed camera's open segment is
// stored and its metrics and stream are gone, the changed camera reconnects to its new
// URL on the same stream, and the added camera records. Close leaves no goroutine.
func TestApplyWhileRecording(t *testing.T) {
	if testing.Short() {
		t.Skip("records for ~15 s")
	}
	leaks := goleak.IgnoreCurrent()
	// cam5 sends H.265, so the changed camera's reconnect to it is visible in its codec.
	sim, err := camsim.New(camsim.Options{Listen: "127.0.0.1:0", Cameras: 6, Codecs: map[int]streaming.Codec{5: streaming.H265}},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	var cams []CameraConfig
	for i := 1; i <= 4; i++ {
		cams = append(cams, CameraConfig{ID: "cam-" + strconv.Itoa(i), Name: "Camera " + strconv.Itoa(i), Record: true,
			Site: "bastion", URL: sim.URL(i), Transport: ingest.TransportTCP})
	}
	opts := superviseOptions(t, t.TempDir(), cams...)
	reg := prometheus.NewRegistry()
	r, err := New(context.Background(), opts, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(ctx) }()

	testutil.WaitFor(t, 30*time.Second, "2 stored segments of every camera", func() bool {
		for _, c := range cams {
			if len(superviseSegments(t, r, c.ID)) < 2 {
				return false
			}
		}
		return true
	})
	if c, _ := r.Camera("cam-1"); c.SiteName != "Bastionul Theresia" || !c.Record {
		t.Errorf("cam-1 shows site %q, record %v", c.SiteName, c.Record)
	}
	cam1Before, _ := r.sup.get("cam-1")
	cam3Before, _ := r.Camera("cam-3")
	live3, _ := r.LiveStream("cam-3")
	view3 := live3.Subscribe(64, false)
	defer view3.Close()
	live4, _ := r.LiveStream("cam-4")
	view4 := live4.Subscribe(64, false)
	defer view4.Close()
	var part int64
	testutil.WaitFor(t, 10*time.Second, "cam-4's open segment to hold a fragment", func() bool {
		var ok bool
		part, ok = openPart(t, opts.Spool.Dir, "cam-4")
		return ok
	})

	want := slices.Clone(opts.Cameras)
	want[1].Name = "Poarta"  // cam-2: renamed only
	want[2].URL = sim.URL(5) // cam-3: another camera
	want[3] = CameraConfig{ID: "cam-5", Name: "Camera 5", Site: "bastion", SiteName: "Bastionul Theresia",
		URL: sim.URL(6), Transport: "tcp", Record: true} // cam-4 removed, cam-5 added
	applied := time.Now()
	if err := r.Apply(context.Background(), want); err != nil {
		t.Fatal(err)
	}

	// The removed camera is gone at once, its viewers are disconnected, and its open
	// segment is already closed in the spool.
	if _, ok := r.Camera("cam-4"); ok {
		t.Error("cam-4 still listed after its removal")
	}
	if _, ok := r.LiveStream("cam-4"); ok {
		t.Error("cam-4 still served live after its removal")
	}
	testutil.WaitFor(t, 5*time.Second, "cam-4's viewer to be disconnected", func() bool {
		select {
		case _, ok := <-view4.C():
			return !ok
		default:
			return false
		}
	})
	for _, f := range cameraSpoolFiles(opts.Spool.Dir, "cam-4") {
		if strings.HasSuffix(f, ".part") {
			t.Errorf("cam-4's open segment left unfinished: %s", f)
		}
	}
	var last storage.Segment
	testutil.WaitFor(t, 15*time.Second, "cam-4's last segment in the catalog", func() bool {
		for _, s := range superviseSegments(t, r, "cam-4") {
			if s.Start.UnixMilli() == part {
				last = s
				return true
			}
		}
		return false
	})
	if info, err := r.Store().Stat(context.Background(), last.Key); err != nil || info.Size != last.Size {
		t.Errorf("cam-4's last segment %s in the store: %+v, %v; catalogued size %d", last.Key, info, err, last.Size)
	}
	testutil.WaitFor(t, 10*time.Second, "cam-4's spool emptied", func() bool { return len(cameraSpoolFiles(opts.Spool.Dir, "cam-4")) == 0 })
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "camera" && strings.HasPrefix(l.GetValue(), "cam-4") {
					t.Errorf("metric %s still has a series for the removed camera", mf.GetName())
				}
			}
		}
	}

	// The changed camera reconnects to its new URL, on the stream its viewers hold.
	testutil.WaitFor(t, 15*time.Second, "cam-3 online from its new URL", func() bool {
		c, _ := r.Camera("cam-3")
		return c.Stream.State == ingest.StateOnline && c.Stream.Codec == streaming.H265
	})
	if c, _ := r.Camera("cam-3"); c.Stream.Reconnects <= cam3Before.Stream.Reconnects {
		t.Errorf("cam-3 shows %d reconnects after its restart, %d before: live view would not start over",
			c.Stream.Reconnects, cam3Before.Stream.Reconnects)
	}
	testutil.WaitFor(t, 10*time.Second, "cam-3's viewer to get the new camera's video", func() bool {
		for {
			select {
			case d, ok := <-view3.C():
				if !ok {
					t.Fatal("cam-3's viewer was disconnected by the restart")
				}
				if d.Unit.Params.Codec == streaming.H265 {
					return true
				}
			default:
				return false
			}
		}
	})
	if c, _ := r.Camera("cam-2"); c.Name != "Poarta" {
		t.Errorf("cam-2's name is %q after the rename", c.Name)
	}
	if cam1After, _ := r.sup.get("cam-1"); cam1After != cam1Before || cam1After.cam != cam1Before.cam {
		t.Error("cam-1 was restarted though its configuration did not change")
	}
	testutil.WaitFor(t, 30*time.Second, "segments after the change", func() bool {
		for _, id := range []string{"cam-1", "cam-2", "cam-3", "cam-5"} {
			n := 0
			for _, s := range superviseSegments(t, r, id) {
				if s.Start.After(applied) {
					n++
				}
			}
			if n < 2 {
				return false
			}
		}
		return true
	})

	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"cam-1", "cam-2"} {
		segs := superviseSegments(t, r, id)
		if !segs[0].Start.Before(applied) || !segs[len(segs)-1].Start.After(applied) {
			t.Fatalf("%s: segments from %v to %v do not span the change at %v", id, segs[0].Start, segs[len(segs)-1].Start, applied)
		}
		for i := 1; i < len(segs); i++ {
			if d := segs[i].Start.Sub(segs[i-1].End()); d.Abs() > superviseFrame {
				t.Errorf("%s: segment at %v starts %v after the previous one ends", id, segs[i].Start, d)
			}
		}
	}
	// The changed camera's footage goes on after its old footage, never over it, and
	// the hole between them is a counted gap.
	segs := superviseSegments(t, r, "cam-3")
	for i := 1; i < len(segs); i++ {
		if d := segs[i].Start.Sub(segs[i-1].End()); d < -time.Millisecond {
			t.Errorf("cam-3: segment %s overlaps the previous one by %v", segs[i].Key, -d)
		}
	}
	if n := gapsCounted(t, r.metrics.Gaps.WithLabelValues("cam-3", metrics.GapReconnect)); n < 1 {
		t.Errorf("cam-3: %v reconnect gaps counted across its restart, want at least 1", n)
	}
	if err := r.Apply(context.Background(), want); !errors.Is(err, ErrStopped) {
		t.Errorf("Apply after Run returned: %v, want ErrStopped", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	sim.Close()
	goleak.VerifyNone(t, leaks)
}

// TestApplyRejectsBadSets: a wrong entry names its field and changes nothing, and a
// URL's password never appears in the error.
func TestApplyRejectsBadSets(t *testing.T) {
	opts := superviseOptions(t, t.TempDir(), CameraConfig{ID: "gate", Name: "Gate", URL: "rtsp://127.0.0.1:1/a", Record: true})
	r, err := New(context.Background(), opts, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ok := CameraConfig{ID: "door", URL: "rtsp://u:s3cret@127.0.0.1:1/b"}
	for _, tc := range []struct {
		name string
		cams []CameraConfig
		want string
	}{
		{"bad id", []CameraConfig{ok, {ID: "Door 2", URL: ok.URL}}, "cameras[1].id: "},
		{"same id twice", []CameraConfig{ok, ok}, `cameras[1].id: "door" is also cameras[0]`},
		{"no url", []CameraConfig{{ID: "door"}}, "cameras[0].url: required"},
		{"http url", []CameraConfig{{ID: "door", URL: "http://u:s3cret@127.0.0.1/b"}}, "cameras[0].url: scheme must be rtsp or rtsps"},
		{"bad live url", []CameraConfig{{ID: "door", URL: ok.URL, LiveURL: "rtsp://u:s3cret@/x"}}, "cameras[0].live_url: host is required"},
		{"bad transport", []CameraConfig{{ID: "door", URL: ok.URL, Transport: "quic"}}, `cameras[0].transport: "quic" is not auto, tcp or udp`},
		{"negative read timeout", []CameraConfig{{ID: "door", URL: ok.URL, ReadTimeout: -time.Second}}, "cameras[0].read_timeout: negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Apply(context.Background(), tc.cams)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply: %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows the password: %v", err)
			}
			if got := r.Cameras(); len(got) != 1 || got[0].ID != "gate" {
				t.Errorf("cameras after a refused Apply: %+v", got)
			}
		})
	}
	// Before Run, Apply only records the set: listed, not started.
	if err := r.Apply(context.Background(), []CameraConfig{ok}); err != nil {
		t.Fatal(err)
	}
	if got := r.Cameras(); len(got) != 1 || got[0].ID != "door" || got[0].Stream.State != ingest.StateConnecting {
		t.Errorf("cameras after Apply before Run: %+v", got)
	}
	if _, ok := r.Stream("gate"); ok {
		t.Error("gate still has a stream after it was removed")
	}
}

// TestApplyLiveSubstream adds and then removes a camera's live_url while readers poll
// the recorder: live view moves to the substream and back, the recorded stream's
// viewers stay connected throughout, and a removed substream's viewers are ended.
func TestApplyLiveSubstream(t *testing.T) {
	if testing.Short() {
		t.Skip("runs cameras for a few seconds")
	}
	leaks := goleak.IgnoreCurrent()
	sim, err := camsim.New(camsim.Options{Listen: "127.0.0.1:0", Cameras: 2}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	opts := superviseOptions(t, t.TempDir(), CameraConfig{ID: "gate", Name: "Gate", URL: sim.URL(1),
		Transport: ingest.TransportTCP}) // not recorded
	r, err := New(context.Background(), opts, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(ctx) }()
	// What the API and live view do meanwhile; the race detector watches.
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		for ctx.Err() == nil {
			r.Cameras()
			r.Camera("gate")
			r.LiveStream("gate")
			time.Sleep(time.Millisecond)
		}
	}()
	online := func() bool {
		c, _ := r.Camera("gate")
		return c.Stream.State == ingest.StateOnline && c.Live.State == ingest.StateOnline && !c.LiveSubstream
	}
	testutil.WaitFor(t, 15*time.Second, "gate online", online)
	main, _ := r.Stream("gate")
	viewMain := main.Subscribe(64, false)
	defer viewMain.Close()

	want := slices.Clone(opts.Cameras)
	want[0].LiveURL = sim.URL(2)
	if err := r.Apply(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	sub, _ := r.LiveStream("gate")
	if sub == main {
		t.Fatal("live view still on the recorded stream after live_url was added")
	}
	viewSub := sub.Subscribe(64, false)
	defer viewSub.Close()
	testutil.WaitFor(t, 15*time.Second, "gate's substream live", func() bool {
		c, _ := r.Camera("gate")
		return c.LiveSubstream && c.Live.State == ingest.StateOnline && c.Live.Codec == streaming.H264
	})
	gets := func(rd *streaming.Reader, what string) {
		t.Helper()
		testutil.WaitFor(t, 10*time.Second, what, func() bool {
			select {
			case _, ok := <-rd.C():
				if !ok {
					t.Fatalf("%s: reader closed", what)
				}
				return true
			default:
				return false
			}
		})
	}
	gets(viewSub, "video on the substream")

	want[0].LiveURL = ""
	if err := r.Apply(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.LiveStream("gate"); st != main {
		t.Error("live view not back on the recorded stream after live_url was removed")
	}
	testutil.WaitFor(t, 5*time.Second, "the substream's viewer ended", func() bool {
		for {
			select {
			case _, ok := <-viewSub.C():
				if !ok {
					return true
				}
			default:
				return false
			}
		}
	})
	testutil.WaitFor(t, 15*time.Second, "gate online again", online)
	for len(viewMain.C()) > 0 {
		<-viewMain.C()
	}
	gets(viewMain, "video on the recorded stream after two restarts")

	cancel()
	<-pollDone
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	sim.Close()
	goleak.VerifyNone(t, leaks)
}

// TestSameIngest: which changes restart a camera. Names and sites are only shown;
// everything that reaches the camera or the spool restarts it.
func TestSameIngest(t *testing.T) {
	base := CameraConfig{ID: "gate", Name: "Gate", Site: "bastion", SiteName: "Bastionul Theresia",
		URL: "rtsp://127.0.0.1/a", Transport: "tcp", ReadTimeout: 10 * time.Second, Record: true}
	for _, tc := range []struct {
		name    string
		change  func(*CameraConfig)
		restart bool
	}{
		{"nothing", func(*CameraConfig) {}, false},
		{"name", func(c *CameraConfig) { c.Name = "Poarta" }, false},
		{"site", func(c *CameraConfig) { c.Site, c.SiteName = "palat", "Palatul Administrativ" }, false},
		{"url", func(c *CameraConfig) { c.URL = "rtsp://127.0.0.1/b" }, true},
		{"password", func(c *CameraConfig) { c.URL = "rtsp://u:new@127.0.0.1/a" }, true},
		{"live_url", func(c *CameraConfig) { c.LiveURL = "rtsp://127.0.0.1/sub" }, true},
		{"transport", func(c *CameraConfig) { c.Transport = "udp" }, true},
		{"read_timeout", func(c *CameraConfig) { c.ReadTimeout = 20 * time.Second }, true},
		{"record", func(c *CameraConfig) { c.Record = false }, true},
	} {
		c := base
		tc.change(&c)
		if got := !sameIngest(base, c); got != tc.restart {
			t.Errorf("%s changed: restart %v, want %v", tc.name, got, tc.restart)
		}
	}
}

// TestStartContinuesAfterFootageAhead: the catalog holds footage of cam-1 that ends
// 20 s from now (the previous run's timeline ran ahead, or the clock went back while
// the service was down). The camera's new footage goes on after it, never over it.
func TestStartContinuesAfterFootageAhead(t *testing.T) {
	if testing.Short() {
		t.Skip("records for ~5 s")
	}
	sim, err := camsim.New(camsim.Options{Listen: "127.0.0.1:0", Cameras: 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	opts := superviseOptions(t, t.TempDir(), CameraConfig{ID: "cam-1", Name: "Camera 1", URL: sim.URL(1),
		Transport: ingest.TransportTCP, Record: true})
	r, err := New(context.Background(), opts, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ahead := storage.Segment{Camera: "cam-1", Start: time.Now().Add(18 * time.Second).Truncate(time.Millisecond).UTC(),
		Duration: 2 * time.Second, Size: 1}
	ahead.Key = storage.SegmentKey{Camera: ahead.Camera, Start: ahead.Start, Duration: ahead.Duration}.String()
	if err := r.catalog.Add(context.Background(), ahead); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(ctx) }()
	testutil.WaitFor(t, 30*time.Second, "2 new segments", func() bool { return len(superviseSegments(t, r, "cam-1")) >= 3 })
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	segs := superviseSegments(t, r, "cam-1")
	for _, s := range segs {
		if s.Key != ahead.Key && s.Start.Before(ahead.End()) {
			t.Errorf("new segment %s starts before the stored footage ends at %s", s.Key, ahead.End().Format(time.StampMilli))
		}
	}
	for i := 1; i < len(segs); i++ {
		if d := segs[i].Start.Sub(segs[i-1].End()); d < -time.Millisecond {
			t.Errorf("segment %s overlaps the previous one by %v", segs[i].Key, -d)
		}
	}
}

// gapsCounted reads a gap counter.
func gapsCounted(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

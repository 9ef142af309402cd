package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder/internal/metrics"
	"github.com/straja-nvr/straja/streaming"
)

// logBuffer keeps everything the cameras logged, to check no credential got out.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	out io.Writer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	return l.out.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// metricValue reads a counter or gauge (testutil would need another go.sum entry).
func metricValue(m prometheus.Metric) float64 {
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		panic(err)
	}
	if c := out.GetCounter(); c != nil {
		return c.GetValue()
	}
	return out.GetGauge().GetValue()
}

// cameraRun is one Camera.Run under test, stopped when the test ends.
type cameraRun struct {
	cam    *Camera
	stream *streaming.Stream
	reader *streaming.Reader
	m      *metrics.Metrics
	logs   *logBuffer
	cancel context.CancelFunc
	done   chan struct{}
}

func startCamera(t *testing.T, spec Spec, m *metrics.Metrics) *cameraRun {
	t.Helper()
	if m == nil {
		m = metrics.New(prometheus.NewRegistry())
	}
	logs := &logBuffer{out: t.Output()}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("camera", spec.ID)
	r := &cameraRun{stream: streaming.New(), m: m, logs: logs, done: make(chan struct{})}
	r.reader = r.stream.Subscribe(1024, false)
	r.cam = NewCamera(spec, r.stream, m, log)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.cam.Run(ctx)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and fails the test if it does not return promptly.
func (r *cameraRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		t.Fatal("Camera.Run did not return within 5 s of cancel")
	}
}

// next returns the next unit delivered to the stream, failing after timeout.
func (r *cameraRun) next(t *testing.T, timeout time.Duration) *streaming.Unit {
	t.Helper()
	select {
	case d := <-r.reader.C():
		if d.Lost != 0 {
			t.Fatalf("test reader lost %d units", d.Lost)
		}
		return d.Unit
	case <-time.After(timeout):
		t.Fatalf("no unit within %v; status %+v", timeout, r.cam.Status())
		return nil
	}
}

// waitState polls the camera's status until it is in state.
func waitState(t *testing.T, cam *Camera, state State, timeout time.Duration) Status {
	t.Helper()
	var st Status
	testutil.WaitFor(t, timeout, fmt.Sprintf("camera %s to be %s", cam.Status().ID, state), func() bool {
		st = cam.Status()
		return st.State == state
	})
	return st
}

// checkUnits checks what a recorder or viewer relies on: a run of units from
// one session starts with a key unit carrying its parameters, DTS only increases and
// Time follows PTS.
func checkUnits(t *testing.T, units []*streaming.Unit, codec streaming.Codec) {
	t.Helper()
	first := units[0]
	if !first.Key {
		t.Fatal("first unit is not a key unit")
	}
	keys := 0
	for i, u := range units {
		p := u.Params
		if p == nil || p.Codec != codec || p.Width != 640 || p.Height != 360 {
			t.Fatalf("unit %d params %+v, want %s 640x360", i, p, codec)
		}
		if u.Epoch != first.Epoch {
			t.Fatalf("unit %d epoch %d, first %d: epoch changed within a healthy session", i, u.Epoch, first.Epoch)
		}
		if u.Key {
			keys++
			want := [][]byte{p.SPS, p.PPS}
			if codec == streaming.H265 {
				want = [][]byte{p.VPS, p.SPS, p.PPS}
			}
			for j, w := range want {
				if !bytes.Equal(u.NALUs[j], w) {
					t.Fatalf("key unit %d does not start with its parameter sets", i)
				}
			}
		}
		if i == 0 {
			continue
		}
		prev := units[i-1]
		if u.DTS <= prev.DTS {
			t.Fatalf("unit %d DTS %d after %d", i, u.DTS, prev.DTS)
		}
		if u.PTS < u.DTS {
			t.Fatalf("unit %d PTS %d before DTS %d", i, u.PTS, u.DTS)
		}
		if got, want := u.Time.Sub(first.Time), ticksToDuration(u.PTS-first.PTS); got != want {
			t.Fatalf("unit %d Time is %v after the first, PTS %v", i, got, want)
		}
	}
	if keys < 2 {
		t.Fatalf("%d key units in %d units; the clip has one every 2 s", keys, len(units))
	}
}

func TestCameraIngestsH264AndH265(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 3 s of real video per codec")
	}
	for _, codec := range []streaming.Codec{streaming.H264, streaming.H265} {
		t.Run(string(codec), func(t *testing.T) {
			t.Parallel()
			// The audio media comes first in the SDP: ingest must skip it, not choke on it.
			srv := newTestCam(t, codec, withAudio())
			r := startCamera(t, Spec{ID: "gate-" + string(codec), URL: srv.URL(), Transport: "tcp"}, nil)

			first := r.next(t, 5*time.Second)
			if d := time.Since(first.Time).Abs(); d > time.Second {
				t.Fatalf("first unit Time %v is %v away from now", first.Time, d)
			}
			units := []*streaming.Unit{first}
			for len(units) < 3*25 {
				units = append(units, r.next(t, 2*time.Second))
			}
			checkUnits(t, units, codec)

			st := r.cam.Status()
			if st.State != StateOnline || st.Codec != codec || st.Width != 640 || st.Height != 360 {
				t.Fatalf("status %+v", st)
			}
			if st.FPS < 20 || st.FPS > 30 {
				t.Errorf("FPS %.1f, the clip has 25", st.FPS)
			}
			if st.BitrateBps <= 10_000 {
				t.Errorf("bitrate %.0f bit/s", st.BitrateBps)
			}
			if time.Since(st.LastFrame) > time.Second {
				t.Errorf("last frame %v ago", time.Since(st.LastFrame))
			}
			id := st.ID
			if n := metricValue(r.m.Frames.WithLabelValues(id)); n < float64(len(units)) {
				t.Errorf("frames metric %v, delivered %d", n, len(units))
			}
			if n := metricValue(r.m.Bytes.WithLabelValues(id)); n <= 0 {
				t.Errorf("bytes metric %v", n)
			}
			for _, s := range states {
				want := 0.0
				if s == StateOnline {
					want = 1
				}
				if got := metricValue(r.m.CameraState.WithLabelValues(id, string(s))); got != want {
					t.Errorf("state metric %s = %v, want %v", s, got, want)
				}
			}
		})
	}
}

func TestCameraIngestTransports(t *testing.T) {
	if testing.Short() {
		t.Skip("streams real video")
	}
	for _, tc := range []struct {
		transport Transport
		serverUDP bool
		want      gortsplib.Transport // as the camera saw it
	}{
		{"tcp", true, gortsplib.TransportTCP},
		{"udp", true, gortsplib.TransportUDP},
		{"auto", true, gortsplib.TransportUDP},  // UDP first
		{"auto", false, gortsplib.TransportTCP}, // UDP refused by the camera: falls back to TCP
	} {
		t.Run(fmt.Sprintf("%s/server-udp=%v", tc.transport, tc.serverUDP), func(t *testing.T) {
			var opts []camOpt
			if tc.serverUDP {
				opts = append(opts, withUDP())
			}
			srv := newTestCam(t, streaming.H264, opts...)
			r := startCamera(t, Spec{ID: "yard", URL: srv.URL(), Transport: tc.transport}, nil)
			units := []*streaming.Unit{r.next(t, 8*time.Second)}
			for len(units) < 2*25+5 {
				units = append(units, r.next(t, 2*time.Second))
			}
			checkUnits(t, units, streaming.H264)
			if got := srv.PlayTransports(); len(got) != 1 || got[0] != tc.want {
				t.Errorf("the camera played over %v, want one session over %v", got, tc.want)
			}
		})
	}
}

func TestCameraUsesInbandParameterSets(t *testing.T) {
	if testing.Short() {
		t.Skip("streams real video")
	}
	for _, codec := range []streaming.Codec{streaming.H264, streaming.H265} {
		t.Run(string(codec), func(t *testing.T) {
			t.Parallel()
			srv := newTestCam(t, codec, withInbandParams())
			r := startCamera(t, Spec{ID: "hall", URL: srv.URL(), Transport: "tcp"}, nil)
			units := []*streaming.Unit{r.next(t, 5*time.Second)}
			for len(units) < 2*25+5 {
				units = append(units, r.next(t, 2*time.Second))
			}
			checkUnits(t, units, codec)
		})
	}
}

func TestCameraReconnectsAfterCameraRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a camera")
	}
	srv := newTestCam(t, streaming.H264)
	r := startCamera(t, Spec{ID: "door", URL: srv.URL(), Transport: "tcp"}, nil)
	before := r.next(t, 5*time.Second)

	srv.Stop()
	st := waitState(t, r.cam, StateOffline, 5*time.Second)
	if st.LastError == "" {
		t.Fatal("offline without an error")
	}
	// The camera stays off for a while, and the supervisor keeps retrying, backing off.
	testutil.WaitFor(t, 5*time.Second, "4 reconnect attempts to the camera that is off", func() bool {
		return r.cam.Status().Reconnects >= 4
	})
	if st := r.cam.Status(); st.State != StateOffline {
		t.Fatalf("camera off, state %s", st.State)
	}

	srv.Start()
	back := time.Now()
	var u *streaming.Unit
	for u == nil || u.Epoch == before.Epoch {
		u = r.next(t, 3*time.Second) // drains units queued before the stop
	}
	if took := time.Since(back); took > 2*time.Second {
		t.Fatalf("first unit %v after the camera came back, want < 2 s", took)
	}
	if !u.Key || u.Params == nil {
		t.Fatalf("first unit after reconnect: key=%v params=%v", u.Key, u.Params)
	}
	if u.DTS < 0 || u.Time.Before(before.Time) {
		t.Fatalf("unit after reconnect goes back in time: %v before %v", u.Time, before.Time)
	}
	st = r.cam.Status()
	if st.State != StateOnline || st.Reconnects < 1 {
		t.Fatalf("after reconnect: %+v", st)
	}
	if n := metricValue(r.m.Reconnects.WithLabelValues("door")); n != float64(st.Reconnects) {
		t.Fatalf("reconnects metric %v, status %d", n, st.Reconnects)
	}
}

func TestCameraOfflineCamerasDoNotDisturbOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("streams real video")
	}
	const user, pass, wrong = "admin", "Corect-Cal-7931", "Gresit-Cal-4417"
	srv := newTestCam(t, streaming.H264, withAuth(user, pass))
	m := metrics.New(prometheus.NewRegistry()) // shared, as in the service
	good := startCamera(t, Spec{ID: "good", URL: srv.URL(), Transport: "tcp"}, m)
	refused := startCamera(t, Spec{ID: "refused", URL: "rtsp://" + user + ":" + pass + "@" + testutil.FreeAddr(t, "tcp") + "/stream", Transport: "tcp"}, m)
	badAuth := startCamera(t, Spec{ID: "bad-auth", URL: strings.Replace(srv.URL(), pass, wrong, 1), Transport: "tcp"}, m)

	good.next(t, 5*time.Second)
	for _, tc := range []struct {
		r    *cameraRun
		want string
	}{{refused, "connection refused"}, {badAuth, "401"}} {
		st := waitState(t, tc.r.cam, StateOffline, 5*time.Second)
		testutil.WaitFor(t, 5*time.Second, st.ID+" to keep retrying (2 reconnect attempts)", func() bool {
			st = tc.r.cam.Status()
			return st.Reconnects >= 2
		})
		if !strings.Contains(st.LastError, tc.want) {
			t.Errorf("%s: LastError %q does not say %q", st.ID, st.LastError, tc.want)
		}
		if metricValue(m.CameraState.WithLabelValues(st.ID, string(StateOnline))) != 0 {
			t.Errorf("%s: online metric set", st.ID)
		}
	}

	// Meanwhile the good camera kept streaming, without a gap.
	prev := good.next(t, time.Second)
	for range 25 {
		u := good.next(t, time.Second)
		if u.Epoch != prev.Epoch || u.DTS-prev.DTS > streaming.ClockRate/10 {
			t.Fatalf("good camera interrupted: epoch %d->%d, DTS step %d", prev.Epoch, u.Epoch, u.DTS-prev.DTS)
		}
		prev = u
	}
	if st := good.cam.Status(); st.State != StateOnline || st.Reconnects != 0 {
		t.Fatalf("good camera: %+v", st)
	}

	for _, r := range []*cameraRun{good, refused, badAuth} {
		st := r.cam.Status()
		logs := r.logs.String()
		for _, secret := range []string{pass, wrong} {
			if strings.Contains(st.LastError, secret) || strings.Contains(logs, secret) {
				t.Errorf("%s: password in LastError %q or logs", st.ID, st.LastError)
			}
		}
	}
}

func TestCameraStallIsDetectedAndRecovered(t *testing.T) {
	if testing.Short() {
		t.Skip("streams real video")
	}
	const timeout = time.Second
	srv := newTestCam(t, streaming.H264)
	r := startCamera(t, Spec{ID: "lobby", URL: srv.URL(), Transport: "tcp", ReadTimeout: timeout}, nil)
	before := r.next(t, 5*time.Second)

	// The camera keeps the RTSP session open but sends no more video.
	srv.paused.Store(true)
	paused := time.Now()
	st := waitState(t, r.cam, StateStalled, 3*timeout)
	took := time.Since(paused)
	if took < timeout-100*time.Millisecond || took > timeout+500*time.Millisecond {
		t.Fatalf("stall reported %v after the video stopped, read timeout %v", took, timeout)
	}
	if !strings.Contains(st.LastError, "no video") {
		t.Fatalf("LastError %q", st.LastError)
	}

	srv.paused.Store(false)
	var u *streaming.Unit
	for u == nil || u.Epoch == before.Epoch {
		u = r.next(t, 5*time.Second)
	}
	if !u.Key {
		t.Fatal("resumed without a key unit")
	}
	if n := srv.plays.Load(); n < 2 {
		t.Fatalf("camera saw %d PLAY requests: the stalled session was not replaced", n)
	}
	if st := waitState(t, r.cam, StateOnline, time.Second); st.Reconnects < 1 {
		t.Fatalf("status after recovery %+v", st)
	}
}

func TestCameraRunStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("streams real video")
	}
	checkGoroutines := testutil.CheckGoroutines(t)
	tcp := newTestCam(t, streaming.H264)
	udp := newTestCam(t, streaming.H265, withUDP())
	runs := []*cameraRun{
		startCamera(t, Spec{ID: "tcp", URL: tcp.URL(), Transport: "tcp"}, nil),
		startCamera(t, Spec{ID: "udp", URL: udp.URL(), Transport: "udp"}, nil),
		// Stopped while waiting out its backoff.
		startCamera(t, Spec{ID: "dead", URL: "rtsp://" + testutil.FreeAddr(t, "tcp") + "/", Transport: "tcp"}, nil),
	}
	runs[0].next(t, 5*time.Second)
	runs[1].next(t, 5*time.Second)
	waitState(t, runs[2].cam, StateOffline, 5*time.Second)

	for _, r := range runs {
		r.stop(t)
	}
	tcp.Stop()
	udp.Stop()
	checkGoroutines()
	for _, r := range runs {
		if st := r.cam.Status(); st.State != StateOffline {
			t.Errorf("%s: state %s after Run returned", st.ID, st.State)
		}
	}
}

// TestAudioNotRecordedIsShown: a camera that offers an audio track (G.711 here)
// records video only, and says so: its status lists the audio it offers (the API shows
// "audio": "not_recorded" from it) and the log says it once per session. A camera
// without audio lists none.
func TestAudioNotRecordedIsShown(t *testing.T) {
	if testing.Short() {
		t.Skip("streams real video")
	}
	withAudio := newTestCam(t, streaming.H264, withAudio())
	videoOnly := newTestCam(t, streaming.H264)
	gate := startCamera(t, Spec{ID: "gate", URL: withAudio.URL(), Transport: TransportTCP}, nil)
	yard := startCamera(t, Spec{ID: "yard", URL: videoOnly.URL(), Transport: TransportTCP}, nil)
	a := waitState(t, gate.cam, StateOnline, 10*time.Second)
	b := waitState(t, yard.cam, StateOnline, 10*time.Second)
	if len(a.Audio) != 1 || a.Audio[0] != "G711" {
		t.Errorf("camera with audio: status audio %q, want [G711]", a.Audio)
	}
	if len(b.Audio) != 0 {
		t.Errorf("camera without audio: status audio %q, want none", b.Audio)
	}
	var lines []string
	for _, l := range strings.Split(gate.logs.String()+yard.logs.String(), "\n") {
		if strings.Contains(l, "not recorded") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "level=INFO") || !strings.Contains(lines[0], "camera=gate") ||
		!strings.Contains(lines[0], "audio=G711") {
		t.Errorf("log lines about audio not recorded: %q, want one INFO line for gate naming G711", lines)
	}
}

package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/recorder/ingest"
	"github.com/straja-nvr/straja/recorder/spool"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/webrtc"
	"github.com/straja-nvr/straja/web"
)

// The camera simulator's clips are 640x360.
const simWidth, simHeight = 640, 360

func TestUIServesEmbeddedPage(t *testing.T) {
	srv := httptest.NewServer(web.New(web.WithTestUsers(t, web.Options{Cameras: noCameras{}, Auditor: web.NewAuditLog(t)}), slog.New(slog.DiscardHandler)))
	defer srv.Close()

	for _, tc := range []struct{ path, ctype, contains string }{
		{"/", "text/html; charset=utf-8", `<script type="module" src="/ui/live.js">`},
		{"/ui/live.js", "text/javascript; charset=utf-8", "window.strajaPlayers"},
		{"/ui/whep.js", "text/javascript; charset=utf-8", "export class WHEPClient"},
		{"/ui/strings.js", "text/javascript; charset=utf-8", "Europe/Bucharest"},
		{"/ui/i18n/en.js", "text/javascript; charset=utf-8", "cannot be shown live"},
		{"/ui/i18n/ro.js", "text/javascript; charset=utf-8", "nu poate fi afișată în direct"},
		{"/ui/login.html", "text/html; charset=utf-8", `src="/ui/login.js"`},
		{"/ui/users.html", "text/html; charset=utf-8", `src="/ui/users.js"`},
		{"/ui/audit.html", "text/html; charset=utf-8", `src="/ui/audit.js"`},
		{"/ui/retention.html", "text/html; charset=utf-8", `src="/ui/retention.js"`},
		{"/ui/style.css", "text/css; charset=utf-8", ".tile"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", tc.path, resp.Status)
		}
		if got := resp.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", tc.path, got)
		}
		if !strings.Contains(string(body), tc.contains) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
		}
		// A browser revalidating an unchanged asset gets a 304 with no body.
		etag := resp.Header.Get("ETag")
		req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
		req.Header.Set("If-None-Match", etag)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if etag == "" || resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %q: %s, want 304", tc.path, etag, resp.Status)
		}
	}
	for _, p := range []string{"/ui/", "/ui/nope.js", "/ui/../live.go", "/index.html"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", p, resp.Status)
		}
	}
	// The API still answers JSON under the catch-all page route.
	resp, err := http.Get(srv.URL + "/api/v1/cameras")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET /api/v1/cameras: Content-Type %q", ct)
	}
}

type noCameras struct{}

func (noCameras) Cameras() []recorder.CameraStatus            { return nil }
func (noCameras) Camera(string) (recorder.CameraStatus, bool) { return recorder.CameraStatus{}, false }

// TestLiveBrowser drives the live page in headless Chromium against the real stack:
// camera simulator -> recorder -> WebRTC -> web server.
func TestLiveBrowser(t *testing.T) {
	needChromium(t)
	// cam-1..4 send H.264, cam-5 H.265 (not viewable live).
	st := startStack(t, 5, map[int]streaming.Codec{5: "h265"})
	ctx := newBrowser(t)
	signInBrowser(t, ctx, st.url, "guard")
	h264 := []string{"cam-1", "cam-2", "cam-3", "cam-4"}

	run(t, ctx, chromedp.Navigate(st.url+"/?layout=9&lang=en"))

	t.Run("grid plays every H.264 camera", func(t *testing.T) {
		for _, id := range h264 {
			s1 := waitStats(t, ctx, id, 30*time.Second, "first decoded frame", func(s stats) bool { return s.Frames > 0 })
			s2 := waitStats(t, ctx, id, 10*time.Second, "a second sample 1 s later", func(s stats) bool { return s.Now-s1.Now >= 1000 })
			rate := float64(s2.Frames-s1.Frames) / (s2.Now - s1.Now) * 1000
			t.Logf("%s: framesDecoded %d -> %d in %.0f ms (%.1f fps), video %dx%d", id, s1.Frames, s2.Frames,
				s2.Now-s1.Now, rate, s2.Width, s2.Height)
			if rate < 15 { // the simulator sends 25 fps
				t.Errorf("%s: decoding %.1f frames/s, want about 25", id, rate)
			}
			if s2.Width != simWidth || s2.Height != simHeight {
				t.Errorf("%s: video is %dx%d, want %dx%d", id, s2.Width, s2.Height, simWidth, simHeight)
			}
		}
		// Tiles are grouped by site, each with its name, site and a live badge.
		got := eval[[]string](t, ctx, `[...document.querySelectorAll('section.site')].map(s =>
			s.querySelector('h2').textContent + ': ' + [...s.querySelectorAll('.tile')].map(e => e.dataset.camera).join(','))`)
		want := []string{"Bastionul Theresia: cam-1,cam-3,cam-5", "Palatul Administrativ: cam-2,cam-4"}
		if !slices.Equal(got, want) {
			t.Errorf("sites and tiles: %q, want %q", got, want)
		}
		waitJS(t, ctx, 10*time.Second, "every H.264 tile shows Live",
			`['cam-1','cam-2','cam-3','cam-4'].every(id => document.querySelector('.tile[data-camera="'+id+'"]').innerText.includes('Live'))`)
		overlay := tileText(t, ctx, "cam-2")
		if !strings.Contains(overlay, "Camera 2") || !strings.Contains(overlay, "Palatul Administrativ") {
			t.Errorf("cam-2 overlay %q lacks the camera or site name", overlay)
		}
		screenshot(t, ctx, "live-grid.png")
	})

	t.Run("H.265 camera says it cannot be shown live", func(t *testing.T) {
		waitJS(t, ctx, 20*time.Second, "cam-5 message",
			`document.querySelector('.tile[data-camera="cam-5"]').innerText.includes('cannot be shown live in a browser')`)
		txt := tileText(t, ctx, "cam-5")
		if !strings.Contains(txt, "H.265") {
			t.Errorf("cam-5 tile %q does not say why (H.265)", txt)
		}
		if eval[bool](t, ctx, `window.strajaPlayers.get('cam-5').pc !== null`) {
			t.Error("cam-5 has a peer connection; it should not try to play")
		}
	})

	t.Run("click shows one camera full size, Esc returns", func(t *testing.T) {
		eval[bool](t, ctx, `document.querySelector('.tile[data-camera="cam-3"]').click(), true`)
		full := eval[bool](t, ctx, `(() => { const r = document.querySelector('.tile[data-camera="cam-3"]').getBoundingClientRect();
			return r.width === innerWidth && r.height === innerHeight })()`)
		if !full {
			t.Error("cam-3 is not full size after a click")
		}
		screenshot(t, ctx, "live-focus.png")
		eval[bool](t, ctx, `document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'})), true`)
		if eval[bool](t, ctx, `document.querySelector('.tile.focused') !== null`) {
			t.Error("a tile is still full size after Esc")
		}
		// The camera kept playing through both changes.
		s1 := stat(t, ctx, "cam-3")
		waitStats(t, ctx, "cam-3", 5*time.Second, "cam-3 still decoding", func(s stats) bool { return s.Frames > s1.Frames+5 })
	})

	t.Run("camera outage shows offline, then the picture returns", func(t *testing.T) {
		if err := st.sim.StopCamera(1); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, 20*time.Second, "cam-1 offline message",
			`document.querySelector('.tile[data-camera="cam-1"]').innerText.includes('Camera offline')`)
		screenshot(t, ctx, "live-offline.png")
		if err := st.sim.StartCamera(1); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, 30*time.Second, "cam-1 back live",
			`document.querySelector('.tile[data-camera="cam-1"]').dataset.state === 'live'`)
		s1 := stat(t, ctx, "cam-1")
		waitStats(t, ctx, "cam-1", 5*time.Second, "cam-1 decoding again", func(s stats) bool { return s.Frames > s1.Frames+5 })
	})

	t.Run("a camera changed at runtime plays again", func(t *testing.T) {
		eval[bool](t, ctx, `window.oldPC = window.strajaPlayers.get('cam-2').pc, true`)
		before, _ := st.rec.Camera("cam-2")
		cams := slices.Clone(st.cams)
		cams[1].URL = st.sim.URL(4) // another camera: a new RTSP session, timestamps start over
		if err := st.rec.Apply(context.Background(), cams); err != nil {
			t.Fatal(err)
		}
		if after, _ := st.rec.Camera("cam-2"); after.Stream.Reconnects <= before.Stream.Reconnects {
			t.Errorf("cam-2 reconnects %d after the change, %d before", after.Stream.Reconnects, before.Stream.Reconnects)
		}
		waitJS(t, ctx, 30*time.Second, "cam-2 on a new session",
			`(() => { const p = window.strajaPlayers.get('cam-2'); return p.pc !== null && p.pc !== window.oldPC && p.firstFrameMs !== null })()`)
		s1 := stat(t, ctx, "cam-2")
		waitStats(t, ctx, "cam-2", 5*time.Second, "cam-2 decoding after the change", func(s stats) bool { return s.Frames > s1.Frames+5 })
	})

	t.Run("live service restart: sessions come back by themselves", func(t *testing.T) {
		eval[bool](t, ctx, `window.oldPCs = new Map([...window.strajaPlayers].map(([id, p]) => [id, p.pc])), true`)
		st.restartLive(t)
		for _, id := range h264 {
			waitJS(t, ctx, 30*time.Second, id+" on a new session", fmt.Sprintf(
				`(() => { const p = window.strajaPlayers.get(%q); return p.pc !== null && p.pc !== window.oldPCs.get(%[1]q) && p.firstFrameMs !== null })()`, id))
			s1 := stat(t, ctx, id)
			waitStats(t, ctx, id, 5*time.Second, id+" decoding after restart", func(s stats) bool { return s.Frames > s1.Frames+5 })
		}
	})

	t.Run("leaving the page ends its sessions", func(t *testing.T) {
		// One session per H.264 tile. A tile that has just started over may briefly hold
		// none or two (its old session's DELETE still in flight), so wait for the count.
		testutil.WaitFor(t, 20*time.Second, "one live session per H.264 camera", func() bool { return st.live().Sessions() == len(h264) })
		// The page closes its peer connections and sends a WHEP DELETE per session as it
		// unloads; the browser may drop some of those requests. Every session must end.
		before := st.deletes.Load()
		run(t, ctx, chromedp.Navigate("about:blank"))
		testutil.WaitFor(t, 20*time.Second, "every live session to end", func() bool { return st.live().Sessions() == 0 })
		t.Logf("%d WHEP DELETEs for %d sessions", st.deletes.Load()-before, len(h264))
	})

	t.Run("too many live views from one computer says so, and plays again when allowed", func(t *testing.T) {
		st.maxPerClient = 2
		st.restartLive(t)
		run(t, ctx, chromedp.Navigate(st.url+"/?layout=9&lang=en"))
		waitJS(t, ctx, 30*time.Second, "two tiles say too many live views are open",
			`[...document.querySelectorAll('.tile')].filter(e => e.innerText.includes('Too many live views are open')).length === 2`)
		if n := st.live().Sessions(); n > 2 {
			t.Errorf("%d live sessions from one client, cap 2", n)
		}
		st.maxPerClient = 0
		st.restartLive(t)
		for _, id := range h264 {
			waitStats(t, ctx, id, 60*time.Second, "decoding again once allowed", func(s stats) bool { return s.Frames > 0 })
		}
	})

	// Last, as it kills the browser.
	t.Run("a vanished browser's sessions end by ICE timeout", func(t *testing.T) {
		run(t, ctx, chromedp.Navigate(st.url+"/?layout=9&lang=en"))
		for _, id := range h264 {
			waitStats(t, ctx, id, 30*time.Second, "first decoded frame", func(s stats) bool { return s.Frames > 0 })
		}
		testutil.WaitFor(t, 20*time.Second, "one live session per H.264 camera", func() bool { return st.live().Sessions() == len(h264) })
		// A crashed browser or a viewer gone off the network says nothing: no DELETE,
		// no DTLS close. ICE notices the silence (pion's disconnected timeout, 5 s);
		// the bound leaves room for a loaded machine.
		before := st.deletes.Load()
		if err := chromedp.FromContext(ctx).Browser.Process().Kill(); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 20*time.Second, "every live session to end", func() bool { return st.live().Sessions() == 0 })
		if n := st.deletes.Load() - before; n != 0 {
			t.Errorf("%d WHEP DELETEs from a killed browser; the sessions did not end by ICE timeout", n)
		}
	})
}

// BenchmarkChromiumFirstFrame measures the time from new RTCPeerConnection to the first
// decoded frame in Chromium, one start per iteration (run with -benchtime=20x):
//
//	go test ./web -run '^$' -bench ChromiumFirstFrame -benchtime=20x
func BenchmarkChromiumFirstFrame(b *testing.B) {
	needChromium(b)
	st := startStack(b, 1, nil)
	ctx := newBrowser(b)
	signInBrowser(b, ctx, st.url, "guard")
	run(b, ctx, chromedp.Navigate(st.url+"/?layout=1&lang=en"))
	waitStats(b, ctx, "cam-1", 30*time.Second, "first decoded frame", func(s stats) bool { return s.Frames > 0 })

	var ms []float64
	steps := map[string][]float64{}
	for b.Loop() {
		v := eval[float64](b, ctx, `window.strajaPlayers.get('cam-1').restart()`)
		ms = append(ms, v)
		for k, t := range eval[map[string]float64](b, ctx, `window.strajaPlayers.get('cam-1').marks`) {
			steps[k] = append(steps[k], t)
		}
	}
	b.StopTimer()
	slices.Sort(ms)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(pct(ms, 50), "ms-median")
	b.ReportMetric(pct(ms, 90), "ms-p90")
	b.Logf("time to first decoded frame over %d starts (ms): %v", len(ms), roundAll(ms))
	for _, k := range []string{"gathered", "answered", "connecting", "connected", "decoded"} {
		v := steps[k]
		slices.Sort(v)
		b.Logf("  step %-10s median %4.0f ms, p90 %4.0f ms (since new RTCPeerConnection)", k, pct(v, 50), pct(v, 90))
	}

	// Is the picture live after the fast-start burst, or a GOP behind? The burst (the
	// cached GOP up to the newest frame) must be decoded at once, not played out at
	// 25 fps: 300 ms after the first frame nothing received should wait undecoded,
	// and the jitter buffer should hold frames for milliseconds, not a GOP.
	var maxBacklog, maxJB float64
	for i := range 5 {
		first := eval[float64](b, ctx, `window.strajaPlayers.get('cam-1').restart()`)
		s0 := stat(b, ctx, "cam-1")
		s1 := waitStats(b, ctx, "cam-1", 5*time.Second, "+300 ms", func(s stats) bool { return s.Now >= s0.Now+300 })
		s2 := waitStats(b, ctx, "cam-1", 5*time.Second, "+1 s", func(s stats) bool { return s.Now >= s0.Now+1000 })
		b.Logf("start %d: first frame %3.0f ms; received/decoded at first frame %2d/%2d, +300 ms %2d/%2d, +1 s %2d/%2d; "+
			"jitter buffer delay avg %.0f ms (target %.0f ms); <video> currentTime +1 s %.2f s",
			i+1, first, s0.Received, s0.Frames, s1.Received, s1.Frames, s2.Received, s2.Frames, s2.JBAvgMs, s2.JBTargetMs, s2.CurrentTime)
		maxBacklog = max(maxBacklog, float64(s1.Received-s1.Frames), float64(s2.Received-s2.Frames))
		maxJB = max(maxJB, s2.JBAvgMs)
	}
	b.ReportMetric(maxBacklog, "max-undecoded-frames")
	b.ReportMetric(maxJB, "max-jb-avg-ms")
}

func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func roundAll(v []float64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x + 0.5)
	}
	return out
}

// stack is the service assembled from its packages, as cmd/straja wires it.
type stack struct {
	sim     *camsim.Server
	rec     *recorder.Recorder
	cams    []recorder.CameraConfig // as started
	url     string
	deletes atomic.Int64 // WHEP DELETE requests

	mu           sync.Mutex
	liveSv       *webrtc.Server
	maxPerClient int // webrtc.Options.MaxSessionsPerClient of the next startLive; 0: default
	reg          *prometheus.Registry
}

func (s *stack) live() *webrtc.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.liveSv
}

// The stack is the web server's web.LiveServer: it forwards to the current live
// server, so that the live server can be restarted, and counts DELETEs.
func (s *stack) Offer(ctx context.Context, req webrtc.OfferRequest) ([]byte, string, error) {
	return s.live().Offer(ctx, req)
}

func (s *stack) Delete(sessionID string) error {
	s.deletes.Add(1)
	return s.live().Delete(sessionID)
}

func (s *stack) Patch(sessionID string, fragment []byte) error {
	return s.live().Patch(sessionID, fragment)
}

func (s *stack) startLive(tb testing.TB) {
	tb.Helper()
	lv, err := webrtc.New(webrtc.Options{UDPPort: 0, TCPPort: -1, IncludeLoopback: true,
		MaxSessionsPerClient: s.maxPerClient}, s.reg, testLog(tb))
	if err != nil {
		tb.Fatal(err)
	}
	s.mu.Lock()
	s.liveSv = lv
	s.mu.Unlock()
}

// restartLive closes the live server, as a service restart would, and starts another.
func (s *stack) restartLive(tb testing.TB) {
	tb.Helper()
	if err := s.live().Close(); err != nil {
		tb.Logf("close live server: %v", err)
	}
	s.startLive(tb)
}

func startStack(tb testing.TB, n int, codecs map[int]streaming.Codec) *stack {
	tb.Helper()
	log := testLog(tb)
	sim, err := camsim.New(camsim.Options{Listen: "127.0.0.1:0", Cameras: n, Codecs: codecs}, log)
	if err != nil {
		tb.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(sim.Close)

	dir := tb.TempDir()
	store, err := storage.NewDisk(filepath.Join(dir, "segments"))
	if err != nil {
		tb.Fatal(err)
	}
	opts := recorder.Options{DataDir: dir, Store: store, Spool: spool.Options{Dir: filepath.Join(dir, "spool")}}
	for i := 1; i <= n; i++ {
		site, siteName := "bastion", "Bastionul Theresia"
		if i%2 == 0 {
			site, siteName = "palat", "Palatul Administrativ"
		}
		opts.Cameras = append(opts.Cameras, recorder.CameraConfig{ID: fmt.Sprintf("cam-%d", i), Name: fmt.Sprintf("Camera %d", i),
			Site: site, SiteName: siteName, URL: sim.URL(i), Transport: ingest.TransportTCP, Record: true})
	}
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	rec, err := recorder.New(ctx, opts, reg, log)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := rec.Run(ctx); err != nil {
			tb.Errorf("recorder: %v", err)
		}
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
		if err := rec.Close(); err != nil {
			tb.Errorf("close recorder: %v", err)
		}
	})

	st := &stack{sim: sim, rec: rec, cams: opts.Cameras, reg: reg}
	st.startLive(tb)
	tb.Cleanup(func() { _ = st.live().Close() })
	srv := httptest.NewServer(web.New(web.WithTestUsers(tb, web.Options{Cameras: rec, Segments: rec, Health: rec,
		Gatherer: reg, Streams: rec, Live: st, Auditor: web.NewAuditLog(tb)}), log))
	tb.Cleanup(srv.Close)
	st.url = srv.URL
	return st
}

// needChromium skips browser tests with -short, and without Chromium unless
// STRAJA_TEST_REQUIRE_TOOLS says they must run.
func needChromium(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("browser test: skipped with -short")
	}
	testutil.NeedChromium(tb)
}

// newBrowser starts headless Chromium (testutil.Browser) at 1280x800.
func newBrowser(tb testing.TB) context.Context {
	tb.Helper()
	return testutil.Browser(tb, nil, chromedp.WindowSize(1280, 800))
}

// signInBrowser gives the browser the session cookie of the test user of role
// (web.TestSession) for the server at url, as signing in on the page would.
func signInBrowser(tb testing.TB, ctx context.Context, url, role string) {
	tb.Helper()
	if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: "straja_session",
		Value: web.TestSession(role), URL: url, HTTPOnly: ptr(true), SameSite: network.CookieSameSiteStrict}); err != nil {
		tb.Fatalf("set session cookie: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func run[T any](tb testing.TB, ctx context.Context, a chromedp.Action[T]) T {
	tb.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, a)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func eval[T any](tb testing.TB, ctx context.Context, expr string) T {
	tb.Helper()
	return run(tb, ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// stats is one sample of a player's video, read in the page.
type stats struct {
	Now         float64 `json:"now"` // performance.now()
	Frames      int     `json:"frames"`
	Received    int     `json:"received"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	CurrentTime float64 `json:"currentTime"`
	JBAvgMs     float64 `json:"jbAvgMs"`
	JBTargetMs  float64 `json:"jbTargetMs"`
}

// statsJS reads inbound-rtp video stats and the <video> of a player.
const statsJS = `(async (id) => {
	const p = window.strajaPlayers && window.strajaPlayers.get(id);
	const out = {now: performance.now(), frames: 0, received: 0, width: 0, height: 0, currentTime: 0,
		jbAvgMs: 0, jbTargetMs: 0};
	if (!p) return out;
	out.width = p.video.videoWidth; out.height = p.video.videoHeight; out.currentTime = p.video.currentTime;
	if (!p.pc) return out;
	(await p.pc.getStats()).forEach(r => {
		if (r.type !== 'inbound-rtp' || r.kind !== 'video') return;
		out.frames = r.framesDecoded || 0;
		out.received = r.framesReceived || 0;
		if (r.jitterBufferEmittedCount) {
			out.jbAvgMs = 1000 * r.jitterBufferDelay / r.jitterBufferEmittedCount;
			out.jbTargetMs = 1000 * (r.jitterBufferTargetDelay || 0) / r.jitterBufferEmittedCount;
		}
	});
	return out;
})(%q)`

func stat(tb testing.TB, ctx context.Context, id string) stats {
	tb.Helper()
	return eval[stats](tb, ctx, fmt.Sprintf(statsJS, id))
}

// waitStats polls a player's stats until cond holds or d passes.
func waitStats(tb testing.TB, ctx context.Context, id string, d time.Duration, what string, cond func(stats) bool) stats {
	tb.Helper()
	deadline := time.Now().Add(d)
	for {
		s := stat(tb, ctx, id)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: %s not seen within %v; last stats %+v; tile says %q", id, what, d, s, tileText(tb, ctx, id))
		}
		pause(ctx, 50*time.Millisecond)
	}
}

// waitJS polls a boolean page expression until it is true or d passes.
func waitJS(tb testing.TB, ctx context.Context, d time.Duration, what, expr string) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !eval[bool](tb, ctx, expr) {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not seen within %v; page says %q", what, d,
				eval[string](tb, ctx, `document.body ? document.body.innerText : ''`))
		}
		pause(ctx, 100*time.Millisecond)
	}
}

// pause is the poll interval of the wait helpers above (not a wait for an event).
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func tileText(tb testing.TB, ctx context.Context, id string) string {
	tb.Helper()
	return eval[string](tb, ctx, fmt.Sprintf(`(() => { const e = document.querySelector('.tile[data-camera=%q]'); return e ? e.innerText : '' })()`, id))
}

// screenshot saves the page to $STRAJA_TEST_ARTIFACTS (or a temp dir) and logs the path.
func screenshot(tb testing.TB, ctx context.Context, name string) {
	tb.Helper()
	png := run(tb, ctx, chromedp.CaptureScreenshot())
	dir := os.Getenv("STRAJA_TEST_ARTIFACTS")
	if dir == "" {
		dir = tb.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("screenshot: %s", p)
}

func testLog(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

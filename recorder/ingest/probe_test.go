package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/streaming"
)

func startProbeSim(t *testing.T, opts camsim.Options) *camsim.Server {
	t.Helper()
	opts.Listen = "127.0.0.1:0"
	if opts.Cameras == 0 {
		opts.Cameras = 1
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

func probe(t *testing.T, url string, timeout time.Duration) (ProbeResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return Probe(ctx, url, timeout-time.Second)
}

// TestProbeReportsTheStream: the probe reports what the simulator sends, for the
// embedded H.264 and H.265 clips and a clip with B-frames made to other figures.
func TestProbeReportsTheStream(t *testing.T) {
	if testing.Short() {
		t.Skip("watches streams for a few seconds")
	}
	testutil.NeedTool(t, "ffmpeg")
	bframes := filepath.Join(t.TempDir(), "bframes.mp4")
	if err := (camsim.ClipSpec{Width: 320, Height: 180, FPS: 15, GOP: 15, BFrames: 2, Duration: 3 * time.Second}).Make(
		context.Background(), bframes); err != nil {
		t.Fatal(err)
	}
	sim := startProbeSim(t, camsim.Options{Cameras: 2, Codecs: map[int]streaming.Codec{2: streaming.H265}})
	bsim := startProbeSim(t, camsim.Options{Clip: bframes})
	for _, tc := range []struct {
		name string
		url  string
		want ProbeResult
	}{
		{"h264", sim.URL(1), ProbeResult{Codec: streaming.H264, Width: 640, Height: 360, FPS: 25, GOPFrames: 50, GOPSeconds: 2,
			Live: true}},
		{"h265", sim.URL(2), ProbeResult{Codec: streaming.H265, Width: 640, Height: 360, FPS: 25, GOPFrames: 50, GOPSeconds: 2}},
		{"b-frames", bsim.URL(1), ProbeResult{Codec: streaming.H264, Width: 320, Height: 180, FPS: 15, GOPFrames: 15,
			GOPSeconds: 1, BFrames: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := probe(t, tc.url, 8*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got.Codec != tc.want.Codec || got.Width != tc.want.Width || got.Height != tc.want.Height ||
				got.FPS != tc.want.FPS || got.GOPFrames != tc.want.GOPFrames || got.GOPSeconds != tc.want.GOPSeconds ||
				got.BFrames != tc.want.BFrames || got.Live != tc.want.Live {
				t.Errorf("probe = %+v\nwant %+v", got, tc.want)
			}
			if got.Profile == "" || (!got.Live && got.LiveReason == "") || got.Audio == nil || len(got.Audio) != 0 {
				t.Errorf("probe = %+v: want a profile, a reason when live view cannot show it, no audio", got)
			}
		})
	}
}

// TestProbeFailures: each way a probe fails has its reason, within the probe's timeout,
// and no reason quotes the password.
func TestProbeFailures(t *testing.T) {
	const secret = "Parola-Probe-4411"
	sim := startProbeSim(t, camsim.Options{Username: "operator", Password: secret})
	closed := testutil.FreeAddr(t, "tcp")
	httpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not here", http.StatusNotFound)
	}))
	t.Cleanup(httpSrv.Close)
	silent := silentServer(t)
	redirect := redirectServer(t, "rtsp://127.0.0.2:8554/elsewhere")
	simURL := func(user, pass string) string {
		return strings.Replace(sim.URL(1), "rtsp://", fmt.Sprintf("rtsp://%s:%s@", user, pass), 1)
	}
	for _, tc := range []struct {
		name string
		url  string
		want ProbeReason
	}{
		{"closed port", "rtsp://" + closed + "/cam", ProbeRefused},
		{"wrong password", simURL("operator", "not-the-password"), ProbeAuthFailed},
		{"no credentials", sim.URL(1), ProbeAuthFailed},
		{"http server", "rtsp://" + strings.TrimPrefix(httpSrv.URL, "http://") + "/cam", ProbeNotRTSP},
		{"silent server", "rtsp://" + silent + "/cam", ProbeTimeout},
		{"redirect to another host", "rtsp://" + redirect + "/cam", ProbeRedirected},
		{"unresolvable name", "rtsp://camera.invalid/cam", ProbeUnreachable},
		{"not rtsp", "http://127.0.0.1/cam", ProbeNotRTSP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const timeout = 3 * time.Second
			start := time.Now()
			_, err := probe(t, tc.url, timeout)
			took := time.Since(start)
			var pe *ProbeError
			if !errors.As(err, &pe) || pe.Reason != tc.want {
				t.Fatalf("probe: %v, want reason %s", err, tc.want)
			}
			if tc.want == ProbeRedirected && !strings.Contains(pe.Msg, "another host") {
				t.Errorf("redirect: %q, want it refused as going to another host", pe.Msg)
			}
			if took > timeout+time.Second {
				t.Errorf("probe took %v, beyond its %v timeout", took, timeout)
			}
			if strings.Contains(pe.Msg, secret) || strings.Contains(pe.Msg, "not-the-password") || pe.Msg == "" {
				t.Errorf("reason text %q: want one, without the password", pe.Msg)
			}
		})
	}
	// The right password works.
	if testing.Short() {
		return
	}
	if res, err := probe(t, simURL("operator", secret), 8*time.Second); err != nil || res.Codec != streaming.H264 {
		t.Errorf("probe with the right password: %+v, %v", res, err)
	}
}

// silentServer accepts connections and never answers, as a black hole would.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// redirectServer answers every RTSP request with 301 to location.
func redirectServer(t *testing.T, location string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					cseq, options := "", false
					for {
						line, err := r.ReadString('\n')
						if err != nil {
							return
						}
						line = strings.TrimSpace(line)
						options = options || strings.HasPrefix(line, "OPTIONS ")
						if line == "" {
							break
						}
						if v, ok := strings.CutPrefix(line, "CSeq: "); ok {
							cseq = v
						}
					}
					if options {
						fmt.Fprintf(c, "RTSP/1.0 200 OK\r\nCSeq: %s\r\nPublic: DESCRIBE, SETUP, PLAY\r\n\r\n", cseq)
						continue
					}
					fmt.Fprintf(c, "RTSP/1.0 301 Moved Permanently\r\nCSeq: %s\r\nLocation: %s\r\n\r\n", cseq, location)
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

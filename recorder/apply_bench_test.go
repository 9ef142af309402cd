package recorder

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/recorder/ingest"
	"github.com/straja-nvr/straja/streaming"
)

// BenchmarkApplyOneOf100 changes the URL of one camera among 100 recording, once per
// op: ms_to_frames is how long until the changed camera delivers frames again (its
// first keyframe, at most a GOP of 2 s after it reconnects); others_reconnects and
// others_gaps count what the 99 untouched cameras lost over the whole run (target 0).
//
//	go test -run '^$' -bench ApplyOneOf100 -benchtime 5x ./recorder
func BenchmarkApplyOneOf100(b *testing.B) {
	const n = 100
	sim, err := camsim.New(camsim.Options{Listen: "127.0.0.1:0", Cameras: n + 1, Codecs: map[int]streaming.Codec{}},
		slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	cams := make([]CameraConfig, n)
	for i := range cams {
		cams[i] = CameraConfig{ID: "cam-" + strconv.Itoa(i+1), Name: "Camera", Record: true, URL: sim.URL(i + 1),
			Transport: ingest.TransportTCP}
	}
	dir := b.TempDir()
	opts := superviseOptions(b, dir, cams...)
	reg := prometheus.NewRegistry()
	r, err := New(context.Background(), opts, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-runDone
	}()
	testutil.WaitFor(b, 60*time.Second, "every camera online", func() bool {
		for _, c := range r.Cameras() {
			if c.Stream.State != ingest.StateOnline {
				return false
			}
		}
		return true
	})
	others := func() (reconnects uint64, gaps float64) {
		for _, c := range r.Cameras() {
			if c.ID != "cam-1" {
				reconnects += c.Stream.Reconnects
			}
		}
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != "straja_recording_gaps_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "camera" && l.GetValue() != "cam-1" {
						gaps += m.GetCounter().GetValue()
					}
				}
			}
		}
		return reconnects, gaps
	}
	rec0, gaps0 := others()
	var total time.Duration
	b.ResetTimer()
	for i := range b.N {
		alt := 1
		if i%2 == 0 {
			alt = n + 1
		}
		cams[0].URL = sim.URL(alt)
		start := time.Now()
		if err := r.Apply(context.Background(), cams); err != nil {
			b.Fatal(err)
		}
		testutil.WaitFor(b, 10*time.Second, "frames of the changed camera", func() bool {
			c, _ := r.Camera("cam-1")
			return c.Stream.State == ingest.StateOnline && c.Stream.LastFrame.After(start)
		})
		total += time.Since(start)
	}
	b.StopTimer()
	rec1, gaps1 := others()
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms_to_frames")
	b.ReportMetric(float64(rec1-rec0), "others_reconnects")
	b.ReportMetric(gaps1-gaps0, "others_gaps")
}

package ingest

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder/internal/metrics"
	"github.com/straja-nvr/straja/streaming"
)

// TestRTPLossCounted: a camera whose every 40th RTP packet is lost shows the lost
// packets in its status and in straja_camera_rtp_packets_lost_total; one that loses
// none shows none.
func TestRTPLossCounted(t *testing.T) {
	if testing.Short() {
		t.Skip("real time: ~3 s")
	}
	lossy := newTestCam(t, streaming.H264)
	lossy.skipEvery.Store(40)
	clean := newTestCam(t, streaming.H264)
	m := metrics.New(prometheus.NewRegistry())
	rl := startCamera(t, Spec{ID: "lossy", URL: lossy.URL(), Transport: TransportTCP}, m)
	rc := startCamera(t, Spec{ID: "clean", URL: clean.URL(), Transport: TransportTCP}, m)
	testutil.WaitFor(t, 10*time.Second, "packets lost to be counted", func() bool { return rl.cam.Status().RTPLost >= 5 })
	testutil.WaitFor(t, 10*time.Second, "the clean camera's frames", func() bool { return rc.cam.Status().GOP > 0 })
	st := rl.cam.Status()
	if got := promtest.ToFloat64(m.RTPLost.WithLabelValues("lossy")); got < float64(st.RTPLost)-1 || got == 0 {
		t.Errorf("straja_camera_rtp_packets_lost_total = %v, status says %d", got, st.RTPLost)
	}
	if st := rc.cam.Status(); st.RTPLost != 0 || st.Undecodable != 0 {
		t.Errorf("clean camera: %d lost, %d undecodable; want none", st.RTPLost, st.Undecodable)
	}
	if st := rc.cam.Status(); st.GOP != 50 || st.LastKeyframe.IsZero() {
		t.Errorf("clean camera GOP %d, last keyframe %v; want the clip's 50 frames and a time", st.GOP, st.LastKeyframe)
	}
}

// TestClockOffset: a camera whose sender reports run 10 minutes ahead shows a clock
// offset of 10 minutes; one with a right clock shows about none.
func TestClockOffset(t *testing.T) {
	if testing.Short() {
		t.Skip("real time: the first sender report comes after ~10 s")
	}
	ahead := newTestCam(t, streaming.H264, withClockOffset(10*time.Minute))
	right := newTestCam(t, streaming.H264)
	ra := startCamera(t, Spec{ID: "ahead", URL: ahead.URL(), Transport: TransportTCP}, nil)
	rr := startCamera(t, Spec{ID: "right", URL: right.URL(), Transport: TransportTCP}, nil)
	if st := ra.cam.Status(); st.ClockKnown {
		t.Fatalf("clock offset known before any sender report: %v", st.ClockOffset)
	}
	testutil.WaitFor(t, 25*time.Second, "both clocks known", func() bool {
		return ra.cam.Status().ClockKnown && rr.cam.Status().ClockKnown
	})
	if d := ra.cam.Status().ClockOffset; d < 10*time.Minute-2*time.Second || d > 10*time.Minute+2*time.Second {
		t.Errorf("clock offset %v, want about 10 minutes", d)
	}
	if d := rr.cam.Status().ClockOffset; d < -2*time.Second || d > 2*time.Second {
		t.Errorf("right clock's offset %v, want about 0", d)
	}
}

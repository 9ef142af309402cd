package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/recorder/ingest"
)

// BenchmarkServiceHealth100 answers GET /api/v1/health for 100 cameras through the
// whole middleware chain (session lookup included), as the health page asks it.
func BenchmarkServiceHealth100(b *testing.B) {
	cams := make(fakeCameras, 100)
	now := time.Now()
	for i := range cams {
		cams[i] = recorder.CameraStatus{ID: fmt.Sprintf("cam-%03d", i), Name: "Camera", Site: "bastion", Record: true,
			Stream: ingest.Status{State: ingest.StateOnline, Since: now, LastFrame: now, LastKeyframe: now, GOP: 50,
				FPS: 25, BitrateBps: 4.2e6, ClockKnown: true}, LagKnown: true, Lag: 1100 * time.Millisecond}
	}
	s := newTestServer(b, nil, func(o *Options) { o.Cameras = cams })
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, newRequestAs("itc", "GET", "/api/v1/health", nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

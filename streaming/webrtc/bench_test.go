package webrtc

import (
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/straja-nvr/straja/streaming"
)

// BenchmarkWriteToRTP measures the latency live view adds: from Stream.Write of an
// access unit to the arrival of its last RTP packet at a pion viewer on loopback
// (packetising, queueing, SRTP, the UDP mux, loopback and the client's SRTP: an upper
// bound for write-to-send). Reported as p50_us and p99_us.
func BenchmarkWriteToRTP(b *testing.B) {
	c := loadClip(b)
	srv := newTestServer(b)
	st := streaming.New()
	e := &env{srv: srv, stream: st}

	marks := make(chan time.Time, 1024)
	st.Write(c.unit(0))
	v := e.connect(b, "cam1", func(p *rtp.Packet) {
		if p.Marker {
			marks <- time.Now()
		}
	})
	defer v.close(b, e)
	select {
	case <-marks: // the GOP burst (one keyframe)
	case <-time.After(5 * time.Second):
		b.Fatal("viewer did not start")
	}

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		u := c.unit(i)
		t0 := time.Now()
		st.Write(u)
		select {
		case t1 := <-marks:
			lat = append(lat, t1.Sub(t0))
		case <-time.After(2 * time.Second):
			b.Fatalf("unit %d never arrived", i)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50_us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99_us")
}

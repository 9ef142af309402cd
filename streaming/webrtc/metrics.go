package webrtc

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are labelled by camera only: sessions come and go too fast to be labels.
type metrics struct {
	viewers    *prometheus.GaugeVec
	packets    *prometheus.CounterVec
	bytes      *prometheus.CounterVec
	drops      *prometheus.CounterVec
	firstFrame *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		viewers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "straja_live_viewers",
			Help: "Connected live (WebRTC) viewers per camera.",
		}, []string{"camera"}),
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "straja_live_rtp_packets_sent_total",
			Help: "RTP packets sent to live viewers, summed over viewers.",
		}, []string{"camera"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "straja_live_rtp_bytes_sent_total",
			Help: "RTP bytes (header and payload, before SRTP) sent to live viewers, summed over viewers.",
		}, []string{"camera"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "straja_live_dropped_units_total",
			Help: "Access units not sent to a live viewer that could not keep up, summed over viewers.",
		}, []string{"camera"}),
		firstFrame: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "straja_live_first_frame_seconds",
			Help:    "Time from a viewer's offer to the first keyframe sent to it.",
			Buckets: []float64{.05, .1, .2, .3, .5, .75, 1, 1.5, 2, 3, 5},
		}, []string{"camera"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.viewers, m.packets, m.bytes, m.drops, m.firstFrame} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("register live metrics: %w", err)
			}
		}
	}
	return m, nil
}

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
	tcpClosed  *prometheus.CounterVec
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
		tcpClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "straja_live_ice_tcp_closed_total",
			Help: "ICE-TCP connections closed before serving a session, by reason: " +
				"idle (no STUN for a session in time), pending_full (oldest waiting one pushed out), open_full (refused).",
		}, []string{"reason"}),
	}
	if reg == nil {
		return m, nil
	}
	// A server restarted on the same registry carries on with the registered series.
	err := errors.Join(register(reg, &m.viewers), register(reg, &m.packets), register(reg, &m.bytes),
		register(reg, &m.drops), register(reg, &m.firstFrame), register(reg, &m.tcpClosed))
	if err != nil {
		return nil, fmt.Errorf("register live metrics: %w", err)
	}
	return m, nil
}

// register registers *c, or replaces it with the collector already registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c *C) error {
	err := reg.Register(*c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			*c = existing
			return nil
		}
	}
	return err
}

// Package metrics holds the recorder's Prometheus collectors, shared by ingest, the
// spool and the supervisor. Labels hold camera IDs only, never URLs.
package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the recorder's Prometheus collectors. Labels hold camera IDs only, never
// URLs, so credentials cannot leak into them.
type Metrics struct {
	CameraState     *prometheus.GaugeVec   // camera, state: 1 for the current state
	Frames          *prometheus.CounterVec // camera
	Bytes           *prometheus.CounterVec // camera: access unit payload bytes received
	Reconnects      *prometheus.CounterVec // camera
	Gaps            *prometheus.CounterVec // camera, cause
	SegmentsWritten *prometheus.CounterVec // camera: segments closed in the spool
	SegmentsStored  *prometheus.CounterVec // camera: segments uploaded and catalogued
	UploadSeconds   prometheus.Histogram
	UploadErrors    prometheus.Counter
	SpoolBytes      prometheus.Gauge
	StoreUp         prometheus.Gauge
	RTPLost         *prometheus.CounterVec // camera: RTP packets lost (sequence gaps)
	Undecodable     *prometheus.CounterVec // camera: RTP data the depacketiser rejected
	ClockOffset     *prometheus.GaugeVec   // camera: seconds the camera clock is ahead of ours
	RecordingLag    *prometheus.GaugeVec   // camera: seconds from capture to durable in the spool

	mu      sync.Mutex
	removed map[string]bool // cameras whose series were deleted
}

// Gap causes, the values of the Metrics.Gaps "cause" label, set by ingest and the segmenter.
const (
	GapOverflow    = "overflow"    // the segmenter's queue overflowed and units were lost
	GapSpoolFull   = "spool_full"  // the spool reached its cap
	GapWriteError  = "write_error" // the spool disk failed a write (ENOSPC, EIO)
	GapUnsupported = "unsupported" // units the segmenter cannot record (no or unknown codec)
	// GapDiscontinuity: units dropped after a timestamp or parameter discontinuity while
	// waiting for the keyframe that starts the next segment, or the hole a new time
	// base leaves after the camera's footage so far.
	GapDiscontinuity = "discontinuity"
	// GapReconnect: the time between a camera's last unit and the first of its next
	// session.
	GapReconnect = "reconnect"
)

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		CameraState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "straja_camera_state", Help: "1 for the camera's current state (connecting, online, stalled, offline)."},
			[]string{"camera", "state"}),
		Frames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "straja_camera_frames_total", Help: "Access units received from the camera."}, []string{"camera"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "straja_camera_bytes_total", Help: "Video payload bytes received from the camera."}, []string{"camera"}),
		Reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "straja_camera_reconnects_total", Help: "Camera sessions restarted after a failure."}, []string{"camera"}),
		Gaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "straja_recording_gaps_total", Help: "Holes in the recording, by cause."}, []string{"camera", "cause"}),
		SegmentsWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "straja_segments_written_total", Help: "Segments closed in the local spool."}, []string{"camera"}),
		SegmentsStored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "straja_segments_stored_total", Help: "Segments uploaded to the store and catalogued."}, []string{"camera"}),
		UploadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "straja_upload_seconds", Help: "Time to upload one segment to the store.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
		UploadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "straja_upload_errors_total", Help: "Failed segment uploads (retried)."}),
		SpoolBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "straja_spool_bytes", Help: "Bytes waiting in the local spool."}),
		StoreUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "straja_store_up", Help: "1 when the last store operation succeeded."}),
		RTPLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "straja_camera_rtp_packets_lost_total", Help: "RTP packets the camera sent that never arrived (sequence gaps)."},
			[]string{"camera"}),
		Undecodable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "straja_camera_undecodable_total", Help: "RTP data from the camera that could not be depacketised."},
			[]string{"camera"}),
		ClockOffset: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "straja_camera_clock_offset_seconds",
			Help: "How far the camera's clock (from its RTCP sender reports) is ahead of the local clock."}, []string{"camera"}),
		RecordingLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "straja_recording_lag_seconds", Help: "Time from capture to the fragment being durable in the spool."},
			[]string{"camera"}),
	}
	reg.MustRegister(m.CameraState, m.Frames, m.Bytes, m.Reconnects, m.Gaps, m.SegmentsWritten,
		m.SegmentsStored, m.UploadSeconds, m.UploadErrors, m.SpoolBytes, m.StoreUp, m.RTPLost, m.Undecodable,
		m.ClockOffset, m.RecordingLag)
	return m
}

// ForgetCamera deletes a removed camera's series (and those of the other streams
// named, such as its live substream), so they do not linger. Segments of it that are
// still uploaded afterwards are not counted.
func (m *Metrics) ForgetCamera(id string, streams ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.removed == nil {
		m.removed = map[string]bool{}
	}
	m.removed[id] = true
	for _, cam := range append([]string{id}, streams...) {
		l := prometheus.Labels{"camera": cam}
		for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
			m.CameraState, m.Frames, m.Bytes, m.Reconnects, m.Gaps, m.SegmentsWritten, m.SegmentsStored,
			m.RTPLost, m.Undecodable, m.ClockOffset, m.RecordingLag} {
			v.DeletePartialMatch(l)
		}
	}
}

// KeepCamera undoes ForgetCamera for a camera that is added again.
func (m *Metrics) KeepCamera(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.removed, id)
}

// SegmentStored counts a stored segment, unless its camera was removed.
func (m *Metrics) SegmentStored(camera string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.removed[camera] {
		m.SegmentsStored.WithLabelValues(camera).Inc()
	}
}

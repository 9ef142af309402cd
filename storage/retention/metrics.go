package retention

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	lastSuccess     *prometheus.GaugeVec
	deletedSegments *prometheus.CounterVec
	deletedBytes    *prometheus.CounterVec
	safetyStops     *prometheus.CounterVec
	runs            *prometheus.CounterVec
	skipped         prometheus.Counter
	emergencies     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, r *Runner) (*metrics, error) {
	m := &metrics{
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "straja_retention_last_success_timestamp_seconds",
			Help: "When a run of each policy last finished without errors."}, []string{"policy"}),
		deletedSegments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "straja_retention_deleted_segments_total",
			Help: "Segments deleted by retention, by kind of run (scheduled, manual, emergency)."}, []string{"kind"}),
		deletedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "straja_retention_deleted_bytes_total",
			Help: "Bytes of footage deleted by retention, by kind of run."}, []string{"kind"}),
		safetyStops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "straja_retention_safety_stops_total",
			Help: "Runs that deleted nothing for a camera because they would have taken far more than its policy's age implies (alert on any)."},
			[]string{"camera"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "straja_retention_runs_total",
			Help: "Retention runs, by kind and result (ok, error)."}, []string{"kind", "result"}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "straja_retention_runs_skipped_total",
			Help: "Scheduled runs skipped because the policy's previous run was still going."}),
		emergencies: prometheus.NewCounter(prometheus.CounterOpts{Name: "straja_retention_emergency_runs_total",
			Help: "Runs of the full-disk guard: free space fell below retention.min_free (or the bucket above retention.max_bytes)."}),
	}
	for _, k := range []string{KindScheduled, KindManual, KindEmergency} {
		m.deletedSegments.WithLabelValues(k)
		m.deletedBytes.WithLabelValues(k)
		m.runs.WithLabelValues(k, "ok")
		m.runs.WithLabelValues(k, "error")
	}
	for _, c := range []prometheus.Collector{m.lastSuccess, m.deletedSegments, m.deletedBytes, m.safetyStops, m.runs,
		m.skipped, m.emergencies, oldestCollector{r}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

var oldestDesc = prometheus.NewDesc("straja_retention_oldest_footage_age_seconds",
	"Age of each camera's oldest catalogued footage, as of the last retention run.", []string{"camera"}, nil)

// oldestCollector reports the age of each camera's oldest footage at scrape time.
type oldestCollector struct{ r *Runner }

func (c oldestCollector) Describe(ch chan<- *prometheus.Desc) { ch <- oldestDesc }

func (c oldestCollector) Collect(ch chan<- prometheus.Metric) {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	now := c.r.opts.Now()
	for cam, t := range c.r.oldest {
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, now.Sub(t).Seconds(), cam)
	}
}

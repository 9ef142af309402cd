package retention_test

import (
	"bytes"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/retention"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/storage/storetest"
)

// synthetic yields n one-minute rows spread over cameras, oldest first, the last
// ending at end.
func synthetic(cameras, n int, end time.Time) iter.Seq[storage.Segment] {
	return syntheticOf("cam-", cameras, n, end)
}

func syntheticOf(prefix string, cameras, n int, end time.Time) iter.Seq[storage.Segment] {
	per := n / cameras
	return func(yield func(storage.Segment) bool) {
		for c := range cameras {
			cam := prefix + strconv.Itoa(c)
			for i := range per {
				start := end.Add(-time.Duration(per-i) * time.Minute)
				seg := storage.Segment{Camera: cam, Start: start, Duration: time.Minute, Size: 2 << 20,
					Key: storage.SegmentKey{Camera: cam, Start: start, Duration: time.Minute}.String()}
				if !yield(seg) {
					return
				}
			}
		}
	}
}

// BenchmarkPlan plans over catalogs of 100,000 and 1,000,000 synthetic rows (20
// cameras, one-minute segments): with the default 30-day policy (1,000,000 minutes
// is 34.7 days a camera, so the oldest 4.7 days go), and with a policy whose
// max_bytes makes every row go (the worst case: every row read). It reports time
// and allocated memory per plan, and the heap in use after it.
//
//	go test -run XXX -bench BenchmarkPlan -benchtime 3x ./storage/retention/
func BenchmarkPlan(b *testing.B) {
	for _, bc := range []struct {
		n   int
		all bool
	}{{100_000, false}, {1_000_000, false}, {1_000_000, true}} {
		n := bc.n
		name := fmt.Sprintf("rows=%d", n)
		if bc.all {
			name += "/all-due"
		}
		b.Run(name, func(b *testing.B) {
			cat, err := storage.OpenCatalog(filepath.Join(b.TempDir(), "catalog.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer cat.Close()
			// 1,000,000 minutes over 20 cameras is 34.7 days each: the oldest 4.7 days go.
			if err := cat.AddAll(b.Context(), synthetic(20, n, runNow)); err != nil {
				b.Fatal(err)
			}
			var ps []retention.Policy
			if bc.all {
				ps = []retention.Policy{{Name: "default", MaxAge: 30 * 24 * time.Hour, MaxBytes: 1}}
			}
			pols, errs := retention.NewPolicies(ps, retention.Known{})
			if len(errs) > 0 {
				b.Fatal(errs)
			}
			src := retention.CatalogSource{Catalog: cat}
			var heap runtime.MemStats
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				plan, err := retention.Make(b.Context(), src, nil, pols, nil, runNow, retention.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if len(plan.Cameras) != 20 {
					b.Fatalf("%d cameras planned, want 20", len(plan.Cameras))
				}
				if d, _, _ := plan.Totals(); bc.all && d != n {
					b.Fatalf("%d rows due, want all %d", d, n)
				}
			}
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&heap)
			b.ReportMetric(float64(heap.HeapInuse)/(1<<20), "heap-MiB")
		})
	}
}

// BenchmarkRunDisk runs retention over a catalog of 1,000,000 synthetic rows whose
// 20,000 oldest have real files on the disk backend: plan, delete those objects,
// forget their rows. It reports deleted objects per second.
//
//	go test -run XXX -bench BenchmarkRunDisk -benchtime 1x ./storage/retention/
func BenchmarkRunDisk(b *testing.B) {
	const total, expired = 1_000_000, 20_000
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		st, err := storage.NewDisk(filepath.Join(dir, "segments"))
		if err != nil {
			b.Fatal(err)
		}
		cat, err := storage.OpenCatalog(filepath.Join(dir, "catalog.db"))
		if err != nil {
			b.Fatal(err)
		}
		// A camera removed long ago: 20,000 minutes older than 30 days; and
		// 980,000 recent rows of 40 cameras (17 days each).
		end := runNow
		if err := cat.AddAll(b.Context(), syntheticOf("old-", 1, expired, end.Add(-31*24*time.Hour))); err != nil {
			b.Fatal(err)
		}
		if err := cat.AddAll(b.Context(), synthetic(40, total-expired, end)); err != nil {
			b.Fatal(err)
		}
		for s := range syntheticOf("old-", 1, expired, end.Add(-31*24*time.Hour)) {
			if err := st.Put(b.Context(), s.Key, bytes.NewReader([]byte("x")), 1); err != nil {
				b.Fatal(err)
			}
		}
		sdb, err := state.Open(b.Context(), filepath.Join(dir, "state.db"))
		if err != nil {
			b.Fatal(err)
		}
		r, err := retention.NewRunner(b.Context(), retention.RunnerOptions{
			Catalog: retention.CatalogDeleter{CatalogSource: retention.CatalogSource{Catalog: cat}}, Store: st, State: sdb,
			Now: func() time.Time { return end }}, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		run, err := r.Run(b.Context(), retention.KindManual, "", false)
		took := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if d, _, _, _ := run.Totals(); d != expired {
			b.Fatalf("deleted %d, want %d: %+v", d, expired, run)
		}
		b.ReportMetric(float64(expired)/took.Seconds(), "objects/s")
		r.Close()
		sdb.Close()
		cat.Close()
		b.StartTimer()
	}
}

// BenchmarkDeleteManyS3 deletes objects from a real MinIO with batch deletes (1000 a
// request) and reports objects per second.
//
//	STRAJA_TEST_S3_...=... go test -run XXX -bench BenchmarkDeleteManyS3 -benchtime 3x ./storage/retention/
func BenchmarkDeleteManyS3(b *testing.B) {
	o := storetest.S3FromEnv(b)
	st, err := storage.NewS3(b.Context(), o)
	if err != nil {
		b.Fatal(err)
	}
	const n = 5000
	for b.Loop() {
		b.StopTimer()
		var keys []string
		for s := range synthetic(1, n, runNow) {
			if err := st.Put(b.Context(), s.Key, bytes.NewReader([]byte("x")), 1); err != nil {
				b.Fatal(err)
			}
			keys = append(keys, s.Key)
		}
		b.StartTimer()
		start := time.Now()
		for i := 0; i < n; i += 1000 {
			failed, err := st.DeleteMany(b.Context(), keys[i:min(i+1000, n)])
			if err != nil || len(failed) > 0 {
				b.Fatal(failed, err)
			}
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "objects/s")
	}
}

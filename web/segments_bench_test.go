package web

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/storage"
)

// nullWriter is a ResponseWriter that keeps nothing, so that only the server's own
// memory is measured.
type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nullWriter) WriteHeader(int)             {}

// BenchmarkSegmentsPage measures one page (1000 segments, the default) of
// GET /api/v1/cameras/{id}/segments over 31 days of 60 s segments, from a catalog of
// 1,000,000 rows (20 cameras × 50,000) and, to show that the cost does not grow with
// the catalog, from one of 10,000 rows; "first" is the first page of the range,
// "deep" the page after a cursor near its end.
//
//	go test -run '^$' -bench SegmentsPage -benchmem ./web
func BenchmarkSegmentsPage(b *testing.B) {
	end := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name             string
		cameras, perCam  int
		deepRow, lastRow int // rows of the 31-day range ending at end
	}{
		{"catalog=10k", 2, 5000, 4000, 5000},
		{"catalog=1M", 20, 50000, 43000, 44640},
	} {
		start := end.Add(-time.Duration(c.perCam) * time.Minute)
		t0 := time.Now()
		cat, err := storage.OpenCatalog(filepath.Join(b.TempDir(), "catalog.sqlite"))
		if err != nil {
			b.Fatal(err)
		}
		for i := range c.cameras {
			if err := cat.AddAll(b.Context(), minuteSegments(fmt.Sprintf("cam-%d", i+1), start, c.perCam)); err != nil {
				b.Fatal(err)
			}
		}
		b.Logf("%s: %d rows built in %v", c.name, c.cameras*c.perCam, time.Since(t0).Round(time.Millisecond))
		var cams fakeCameras
		for i := range c.cameras {
			cams = append(cams, fakeCamera(fmt.Sprintf("cam-%d", i+1)))
		}
		s := New(withTestUsers(b, Options{Cameras: cams, Segments: cat, Auditor: newAuditLog(b)}), slog.New(slog.DiscardHandler))
		cam := fmt.Sprintf("cam-%d", c.cameras/2)
		base := "/api/v1/cameras/" + cam + "/segments?from=" + end.Add(-maxSegmentRange).Format(time.RFC3339) +
			"&to=" + end.Format(time.RFC3339)
		rangeStart := end.Add(-time.Duration(c.lastRow) * time.Minute)
		deepKey := storage.SegmentKey{Camera: cam, Start: rangeStart.Add(time.Duration(c.deepRow-1) * time.Minute),
			Duration: time.Minute}.String()
		for _, p := range []struct{ name, target string }{
			{"first", base},
			{"deep", base + "&next=" + url.QueryEscape(encodeCursor(deepKey))},
		} {
			b.Run(c.name+"/"+p.name, func(b *testing.B) {
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, newRequest("GET", p.target, nil))
				var page segmentsPage
				if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Segments) != defaultSegmentLimit {
					b.Fatalf("page: %d segments, %v: %.300s", len(page.Segments), err, rec.Body)
				}
				req := newRequest("GET", p.target, nil)
				w := &nullWriter{}
				for b.Loop() {
					w.h = http.Header{}
					s.ServeHTTP(w, req)
				}
				b.ReportMetric(float64(defaultSegmentLimit), "segments/op")
			})
		}
		cat.Close()
	}
}

func fakeCamera(id string) recorder.CameraStatus { return recorder.CameraStatus{ID: id} }

package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/storage"
)

type fakeCameras []recorder.CameraInfo

func (f fakeCameras) Cameras() []recorder.CameraInfo { return f }
func (f fakeCameras) Camera(id string) (recorder.CameraInfo, bool) {
	for _, c := range f {
		if c.ID == id {
			return c, true
		}
	}
	return recorder.CameraInfo{}, false
}

type fakeSegments []storage.Segment

func (f fakeSegments) Segments(_ context.Context, camera string, from, to time.Time) ([]storage.Segment, error) {
	var out []storage.Segment
	for _, s := range f {
		if s.Camera == camera && s.Start.Before(to) && s.End().After(from) {
			out = append(out, s)
		}
	}
	return out, nil
}

func newTestServer() *Server {
	t0 := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	var segs fakeSegments
	for i := range 3 {
		segs = append(segs, storage.Segment{Camera: "bastion-gate", Start: t0.Add(time.Duration(i) * time.Minute),
			Duration: time.Minute, Size: 1000, Fragments: make([]storage.Fragment, 60)})
	}
	return New(Options{Cameras: fakeCameras{{ID: "bastion-gate", Name: "Poarta"}}, Segments: segs,
		Gatherer: prometheus.NewRegistry()}, slog.New(slog.DiscardHandler))
}

func TestSegmentsAPI(t *testing.T) {
	s := newTestServer()
	cases := []struct {
		name, query string
		status      int
		want        string // in the body
		count       int
	}{
		{"range", "from=2026-11-25T14:00:30Z&to=2026-11-25T14:01:30Z", 200, `"segments"`, 2},
		{"all", "from=2026-11-25T13:00:00Z&to=2026-11-25T15:00:00Z", 200, `"segments"`, 3},
		{"none", "from=2026-11-24T13:00:00Z&to=2026-11-24T15:00:00Z", 200, `"segments"`, 0},
		{"bad from", "from=yesterday", 400, "from: want an RFC 3339 time", 0},
		{"bad to", "from=2026-11-25T13:00:00Z&to=14:00", 400, "to: want an RFC 3339 time", 0},
		{"reversed", "from=2026-11-25T15:00:00Z&to=2026-11-25T13:00:00Z", 400, "from must be before to", 0},
		{"too long", "from=2025-01-01T00:00:00Z&to=2026-11-25T13:00:00Z", 400, "range longer than", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/cameras/bastion-gate/segments?"+c.query, nil))
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.want) {
				t.Fatalf("status %d body %s; want %d with %q", rec.Code, rec.Body, c.status, c.want)
			}
			if c.status == 200 {
				var out struct{ Segments []segmentJSON }
				if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
					t.Fatal(err)
				}
				if len(out.Segments) != c.count {
					t.Fatalf("%d segments, want %d", len(out.Segments), c.count)
				}
			}
		})
	}
}

func TestUnknownCamera(t *testing.T) {
	s := newTestServer()
	for _, path := range []string{"/api/v1/cameras/nope", "/api/v1/cameras/nope/segments", "/api/v1/cameras/..%2Fetc/segments"} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, rec.Code)
		}
	}
}

// FuzzSegmentsQuery: any query string gets 200 or a 400 naming the problem, never a panic
// or a 500.
func FuzzSegmentsQuery(f *testing.F) {
	f.Add("2026-11-25T14:00:30Z", "2026-11-25T14:01:30Z")
	f.Add("", "")
	f.Add("2026-11-25T14:00:30+02:00", "9999-12-31T23:59:59Z")
	s := newTestServer()
	f.Fuzz(func(t *testing.T, from, to string) {
		q := url.Values{"from": {from}, "to": {to}}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/cameras/bastion-gate/segments?"+q.Encode(), nil))
		if rec.Code != 200 && rec.Code != 400 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

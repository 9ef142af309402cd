package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"iter"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/storage"
)

type fakeCameras []recorder.CameraStatus

func (f fakeCameras) Cameras() []recorder.CameraStatus { return f }
func (f fakeCameras) Camera(id string) (recorder.CameraStatus, bool) {
	for _, c := range f {
		if c.ID == id {
			return c, true
		}
	}
	return recorder.CameraStatus{}, false
}

var t0 = time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)

// minuteSegments yields n contiguous 60 s segments of camera from start.
func minuteSegments(camera string, start time.Time, n int) iter.Seq[storage.Segment] {
	return func(yield func(storage.Segment) bool) {
		for i := range n {
			k := storage.SegmentKey{Camera: camera, Start: start.Add(time.Duration(i) * time.Minute), Duration: time.Minute}
			key := k.String()
			sg := storage.Segment{Camera: camera, Start: k.Start, Duration: time.Minute, Key: key,
				Size: 1000 + int64(i), SHA256: sha256.Sum256([]byte(key)),
				Fragments: []storage.Fragment{{Offset: 800, Size: 1000, Duration: time.Minute, Key: true}}}
			if !yield(sg) {
				return
			}
		}
	}
}

// newCatalog opens a catalog in a temporary directory holding segs.
func newCatalog(tb testing.TB, segs ...iter.Seq[storage.Segment]) *storage.Catalog {
	tb.Helper()
	cat, err := storage.OpenCatalog(filepath.Join(tb.TempDir(), "catalog.sqlite"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cat.Close() })
	for _, s := range segs {
		if err := cat.AddAll(context.Background(), s); err != nil {
			tb.Fatal(err)
		}
	}
	return cat
}

func newTestServer(tb testing.TB, segs SegmentLister, opts ...func(*Options)) *Server {
	tb.Helper()
	o := Options{Cameras: fakeCameras{{ID: "bastion-gate", Name: "Poarta"}}, Segments: segs, Listen: "127.0.0.1:8080",
		Auditor: newAuditLog(tb)}
	for _, f := range opts {
		f(&o)
	}
	return New(withTestUsers(tb, o), slog.New(slog.DiscardHandler))
}

// newRequest is a request as a browser on the same machine sends it, signed in as
// the admin, or as the guard for live view (which admins do not have).
func newRequest(method, target string, body []byte) *http.Request {
	role := "admin"
	if strings.Contains(target, "/whep") {
		role = "guard"
	}
	return newRequestAs(role, method, target, body)
}

// newRequestAs is newRequest signed in as the test user of role ("" for nobody).
func newRequestAs(role, method, target string, body []byte) *http.Request {
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	r.Host = "localhost:8080"
	if role != "" {
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: testSession(role)})
	}
	return r
}

func get(h http.Handler, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest("GET", target, nil))
	return rec
}

// segmentsPage is the JSON of one segments page.
type segmentsPage struct {
	Camera   string        `json:"camera"`
	Limit    int           `json:"limit"`
	Segments []segmentJSON `json:"segments"`
	Next     *string       `json:"next"`
}

func decodePage(t *testing.T, rec *httptest.ResponseRecorder) segmentsPage {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var p segmentsPage
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	return p
}

// checkError checks an error answer: status, and the one JSON body naming the field.
func checkError(t *testing.T, rec *httptest.ResponseRecorder, status int, field, contains string) {
	t.Helper()
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("error body %q (%s) is not the JSON error body: %v", rec.Body, rec.Header().Get("Content-Type"), err)
	}
	if rec.Code != status || body["field"] != field || !strings.Contains(body["error"], contains) {
		t.Fatalf("got %d %v; want %d, field %q, error containing %q", rec.Code, body, status, field, contains)
	}
	for k := range body {
		if k != "error" && k != "field" {
			t.Errorf("error body has key %q", k)
		}
	}
}

func TestSegmentsAPI(t *testing.T) {
	s := newTestServer(t, newCatalog(t, minuteSegments("bastion-gate", t0, 3), minuteSegments("other", t0, 3)))
	cases := []struct {
		name, query string
		status      int
		field, want string // of an error
		count       int
	}{
		{"range", "from=2026-11-25T14:00:30Z&to=2026-11-25T14:01:30Z", 200, "", "", 2},
		{"all", "from=2026-11-25T13:00:00Z&to=2026-11-25T15:00:00Z", 200, "", "", 3},
		{"none", "from=2026-11-24T13:00:00Z&to=2026-11-24T15:00:00Z", 200, "", "", 0},
		{"bad from", "from=yesterday", 400, "from", "want an RFC 3339 time", 0},
		{"bad to", "from=2026-11-25T13:00:00Z&to=14:00", 400, "to", "want an RFC 3339 time", 0},
		{"reversed", "from=2026-11-25T15:00:00Z&to=2026-11-25T13:00:00Z", 400, "from", "must be before to", 0},
		{"too long", "from=2025-01-01T00:00:00Z&to=2026-11-25T13:00:00Z", 400, "to", "range longer than", 0},
		{"limit zero", "from=2026-11-25T13:00:00Z&to=2026-11-25T15:00:00Z&limit=0", 400, "limit", "from 1 to 10000", 0},
		{"limit too big", "from=2026-11-25T13:00:00Z&to=2026-11-25T15:00:00Z&limit=10001", 400, "limit", "from 1 to 10000", 0},
		{"limit not a number", "limit=ten", 400, "limit", "whole number", 0},
		{"next not base64", "next=%25%25", 400, "next", "not a cursor", 0},
		{"next not a cursor", "next=" + encodeCursor("hello"), 400, "next", "not a cursor", 0},
		{"next of another camera", "next=" + encodeCursor(storage.SegmentKey{Camera: "other", Start: t0, Duration: time.Minute}.String()),
			400, "next", "not a cursor", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := get(s, "/api/v1/cameras/bastion-gate/segments?"+c.query)
			if c.status != 200 {
				checkError(t, rec, c.status, c.field, c.want)
				return
			}
			p := decodePage(t, rec)
			if len(p.Segments) != c.count || p.Next != nil || p.Camera != "bastion-gate" || p.Limit != defaultSegmentLimit {
				t.Fatalf("%d segments, next %v, camera %q, limit %d; want %d, no next", len(p.Segments), p.Next, p.Camera, p.Limit, c.count)
			}
		})
	}
	// Each segment as before pagination: start, end, duration, size, SHA-256.
	p := decodePage(t, get(s, "/api/v1/cameras/bastion-gate/segments?from=2026-11-25T14:00:00Z&to=2026-11-25T14:01:00Z"))
	key := storage.SegmentKey{Camera: "bastion-gate", Start: t0, Duration: time.Minute}.String()
	sum := sha256.Sum256([]byte(key))
	want := segmentJSON{Start: t0, End: t0.Add(time.Minute), Duration: 60, Size: 1000, SHA256: hex.EncodeToString(sum[:])}
	if len(p.Segments) != 1 || p.Segments[0] != want {
		t.Fatalf("segments %+v, want [%+v]", p.Segments, want)
	}
}

// TestSegmentsPagination is the regression test of the 31-day listing (44,640 rows of
// 60 s segments in one answer, 6.4 s and 250 MB): a page holds at most limit segments
// (default 1000), next walks them all in order with none lost or repeated, and one
// page allocates a bounded amount, not an amount that grows with the catalog.
func TestSegmentsPagination(t *testing.T) {
	const rows = 31 * 24 * 60
	start := t0.Add(-31 * 24 * time.Hour)
	s := newTestServer(t, newCatalog(t, minuteSegments("bastion-gate", start, rows)))
	base := "/api/v1/cameras/bastion-gate/segments?from=" + start.Format(time.RFC3339) + "&to=" + t0.Format(time.RFC3339)

	for _, limit := range []int{0, 10000, 7} { // 0: the default
		q := base
		want := defaultSegmentLimit
		if limit > 0 {
			q += "&limit=" + strconv.Itoa(limit)
			want = limit
		}
		var all []segmentJSON
		pages := 0
		for next := ""; ; pages++ {
			target := q
			if next != "" {
				target += "&next=" + url.QueryEscape(next)
			}
			p := decodePage(t, get(s, target))
			if len(p.Segments) > want || (p.Next != nil && len(p.Segments) != want) {
				t.Fatalf("limit %d: page %d has %d segments (next %v)", limit, pages, len(p.Segments), p.Next)
			}
			all = append(all, p.Segments...)
			if p.Next == nil {
				break
			}
			next = *p.Next
			if limit == 7 && pages == 3 { // small pages: a few are enough to check the cursor
				break
			}
		}
		if limit == 7 {
			if len(all) != 28 {
				t.Fatalf("limit 7: %d segments in 4 pages", len(all))
			}
		} else if len(all) != rows {
			t.Fatalf("limit %d: %d segments over %d pages, want %d", limit, len(all), pages+1, rows)
		}
		for i, sg := range all {
			if !sg.Start.Equal(start.Add(time.Duration(i) * time.Minute)) {
				t.Fatalf("limit %d: segment %d starts at %v, want %v", limit, i, sg.Start, start.Add(time.Duration(i)*time.Minute))
			}
		}
	}

	// One default page of this catalog allocates about as much as a page of a small one.
	small := newTestServer(t, newCatalog(t, minuteSegments("bastion-gate", start, 1001)))
	bytesOf := func(h http.Handler) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range 5 {
			if rec := get(h, base); rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / 5
	}
	b1, b2 := bytesOf(small), bytesOf(s)
	t.Logf("one page of 1000 segments allocates %d KiB from a 1001-row catalog, %d KiB from a %d-row one", b1>>10, b2>>10, rows)
	if b2 > 2*b1+1<<20 {
		t.Errorf("a page of the %d-row catalog allocates %d KiB, of a 1001-row one %d KiB: memory grows with the catalog",
			rows, b2>>10, b1>>10)
	}
}

// A listing that fails before the first segment is an error answer without internals;
// one that fails after it is cut short, never a well-formed partial page.
func TestSegmentsListingFails(t *testing.T) {
	var logs bytes.Buffer
	s := New(withTestUsers(t, Options{Cameras: fakeCameras{{ID: "bastion-gate"}}, Segments: failingLister{after: 0}, Auditor: newAuditLog(t)}),
		slog.New(slog.NewTextHandler(&logs, nil)))
	rec := get(s, "/api/v1/cameras/bastion-gate/segments")
	checkError(t, rec, 500, "", "internal error")
	if strings.Contains(rec.Body.String(), "disk I/O") || !strings.Contains(logs.String(), "disk I/O") {
		t.Errorf("body %q shows the cause, or the log %q lacks it", rec.Body, logs.String())
	}

	srv := httptest.NewServer(New(withTestUsers(t, Options{Cameras: fakeCameras{{ID: "bastion-gate"}}, Segments: failingLister{after: 3}, Auditor: newAuditLog(t)}),
		slog.New(slog.DiscardHandler)))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/cameras/bastion-gate/segments", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: testSession("admin")})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return // cut before the status line
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 then a cut", resp.StatusCode)
	}
	defer resp.Body.Close()
	var p segmentsPage
	if err := json.NewDecoder(resp.Body).Decode(&p); err == nil {
		t.Fatalf("a listing that failed after 3 segments decoded as a page of %d", len(p.Segments))
	}
}

// failingLister yields after segments, then fails.
type failingLister struct{ after int }

func (f failingLister) ListSegments(_ context.Context, q storage.SegmentQuery, fn func(storage.Segment) error) error {
	for sg := range minuteSegments(q.Camera, t0, f.after) {
		if err := fn(sg); err != nil {
			return err
		}
	}
	return errors.New("catalog list: disk I/O error")
}

func TestUnknownCamera(t *testing.T) {
	s := newTestServer(t, newCatalog(t))
	// Users with grants get 403, as for a camera not granted, so none can probe for
	// cameras; ITC staff, who see every camera's settings, get 404.
	for _, path := range []string{"/api/v1/cameras/nope", "/api/v1/cameras/nope/segments", "/api/v1/cameras/..%2Fetc/segments"} {
		checkError(t, get(s, path), http.StatusForbidden, "", "you may not")
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, newRequestAs("itc", "GET", "/api/v1/cameras/nope", nil))
	checkError(t, rec, http.StatusNotFound, "", "not found")
}

// FuzzSegmentsQuery: any query gets 200 or a 400 naming the parameter at fault, never
// a panic or a 500.
func FuzzSegmentsQuery(f *testing.F) {
	f.Add("2026-11-25T14:00:30Z", "2026-11-25T14:01:30Z", "", "")
	f.Add("", "", "0", "")
	f.Add("2026-11-25T14:00:30+02:00", "9999-12-31T23:59:59Z", "10000", "MWJhc3Rpb24tZ2F0ZS8yMDI2")
	f.Add("", "", "5", encodeCursor(storage.SegmentKey{Camera: "bastion-gate", Start: t0, Duration: time.Minute}.String()))
	s := newTestServer(f, newCatalog(f, minuteSegments("bastion-gate", t0, 10)))
	f.Fuzz(func(t *testing.T, from, to, limit, next string) {
		q := url.Values{"from": {from}, "to": {to}, "limit": {limit}, "next": {next}}
		rec := get(s, "/api/v1/cameras/bastion-gate/segments?"+q.Encode())
		switch rec.Code {
		case 200:
			var p segmentsPage
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("200 with a body that is not a page: %v: %s", err, rec.Body)
			}
		case 400:
			var body errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Field == "" {
				t.Fatalf("400 without a field: %s", rec.Body)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	})
}

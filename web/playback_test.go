package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
)

// newPlaybackServer serves 3 segments of 6 s of bastion-gate from p0, recorded
// the way the recorder writes them, from a disk store.
func newPlaybackServer(t *testing.T, p0 time.Time) *Server {
	t.Helper()
	st, cat := playbacktest.NewDisk(t)
	playbacktest.Record(t, st, cat, "bastion-gate", p0, 3, 6*time.Second)
	return newTestServer(t, cat, func(o *Options) { o.Player = playback.New(cat, st, nil) })
}

func videoURL(from, to time.Time) string {
	return fmt.Sprintf("/api/v1/cameras/bastion-gate/video.mp4?from=%s&to=%s",
		from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
}

// TestVideoRanges checks that arbitrary Range requests answer exactly the bytes of
// the whole answer at that offset, that the ETag is stable and If-None-Match gives
// 304, and that the playback is audited once, not once per request.
func TestVideoRanges(t *testing.T) {
	p0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	s := newPlaybackServer(t, p0)
	url := videoURL(p0.Add(time.Second), p0.Add(17*time.Second))
	full := get(s, url)
	if full.Code != http.StatusOK || full.Header().Get("Content-Type") != "video/mp4" {
		t.Fatalf("GET video: %d %s %s", full.Code, full.Header().Get("Content-Type"), full.Body)
	}
	etag := full.Header().Get("ETag")
	body := full.Body.Bytes()
	if etag == "" || full.Header().Get("Accept-Ranges") != "bytes" {
		t.Fatalf("no ETag or Accept-Ranges: %v", full.Header())
	}
	rng := rand.New(rand.NewPCG(3, 4))
	n := int64(len(body))
	for range 100 {
		a := rng.Int64N(n)
		b := a + rng.Int64N(min(n-a, 300_000))
		var hdr string
		switch rng.IntN(3) {
		case 0:
			hdr = fmt.Sprintf("bytes=%d-%d", a, b)
		case 1:
			hdr = fmt.Sprintf("bytes=%d-", a)
			b = n - 1
		case 2:
			hdr = fmt.Sprintf("bytes=-%d", n-a)
			b = n - 1
		}
		r := newRequest("GET", url, nil)
		r.Header.Set("Range", hdr)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		if rec.Code != http.StatusPartialContent {
			t.Fatalf("Range %s: %d %s", hdr, rec.Code, rec.Body)
		}
		if !bytes.Equal(rec.Body.Bytes(), body[a:b+1]) {
			t.Fatalf("Range %s: %d bytes differ from the whole answer's bytes %d-%d", hdr, rec.Body.Len(), a, b)
		}
		if rec.Header().Get("ETag") != etag {
			t.Fatalf("Range %s: ETag %s, want %s", hdr, rec.Header().Get("ETag"), etag)
		}
	}
	// HEAD, as the page warms its next window, sends no footage and is not audited.
	r := newRequest("HEAD", videoURL(p0.Add(2*time.Second), p0.Add(10*time.Second)), nil)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD: %d, %d body bytes, Content-Length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}
	r = newRequest("GET", url, nil)
	r.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	if rec.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", rec.Code)
	}
	r = newRequest("GET", url, nil)
	r.Header.Set("Range", fmt.Sprintf("bytes=%d-", n+10))
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	if rec.Code != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("Range past the end: %d, want 416", rec.Code)
	}

	var p auditPage
	testutil.WaitFor(t, 10*time.Second, "the playback entry", func() bool {
		p = getAudit(t, s, "")
		return len(p.Entries) >= 1
	})
	plays := 0
	for _, e := range p.Entries {
		if e.Action == "playback.video" {
			plays++
			if e.Camera != "bastion-gate" || !strings.Contains(string(e.Detail), `"from"`) {
				t.Errorf("playback entry %+v", e)
			}
		}
	}
	if plays != 1 {
		t.Errorf("%d playback entries for one movie's 102 requests, want 1", plays)
	}
}

func TestVideoBadInput(t *testing.T) {
	p0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	s := newPlaybackServer(t, p0)
	for _, tc := range []struct {
		url      string
		status   int
		field    string
		contains string
	}{
		{videoURL(p0.Add(10*time.Second), p0), 400, "to", "after from"},
		{videoURL(p0, p0.Add(61*time.Minute)), 400, "to", "maximum"},
		{"/api/v1/cameras/bastion-gate/video.mp4?from=yesterday&to=2026-11-25T14:00:00Z", 400, "from", "RFC 3339"},
		{"/api/v1/cameras/bastion-gate/video.mp4?from=2026-11-25T14:00:00Z", 400, "to", "required"},
		{videoURL(p0.Add(-time.Hour), p0.Add(-30*time.Minute)), 404, "", "no footage"},
		{"/api/v1/cameras/bastion-gate/still.mp4?at=noon", 400, "at", "RFC 3339"},
		// The zero time is not "not given".
		{"/api/v1/cameras/bastion-gate/video.mp4?from=0001-01-01T00:00:00Z&to=0001-01-01T00:01:00Z", 400, "from", "before 1970"},
		{"/api/v1/cameras/bastion-gate/timeline?from=1969-12-31T23:59:59Z", 400, "from", "before 1970"},
		{"/api/v1/cameras/bastion-gate/timeline?buckets=0", 400, "buckets", "from 1"},
		{"/api/v1/cameras/bastion-gate/timeline?from=" + p0.Format(time.RFC3339) + "&to=" + p0.Add(-time.Hour).Format(time.RFC3339),
			400, "to", "after from"},
	} {
		checkError(t, get(s, tc.url), tc.status, tc.field, tc.contains)
	}
	rec := get(s, "/api/v1/cameras/no-such/video.mp4?from=2026-11-25T14:00:00Z&to=2026-11-25T14:01:00Z")
	if rec.Code != http.StatusForbidden { // not granted, as every unknown camera
		t.Errorf("unknown camera: %d", rec.Code)
	}
}

// TestPlaybackLookback checks that a guard cannot play footage older than the
// guard look-back, and sees the timeline only from there.
func TestPlaybackLookback(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	old := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	playbacktest.Record(t, st, cat, "bastion-gate", old, 1, 6*time.Second)
	s := newTestServer(t, cat, func(o *Options) { o.Player = playback.New(cat, st, nil) })
	s.sessions.Lookback = time.Hour
	get := func(role, url string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, newRequestAs(role, "GET", url, nil))
		return rec
	}
	url := videoURL(old, old.Add(6*time.Second))
	if rec := get("admin", url); rec.Code != http.StatusOK {
		t.Fatalf("admin: %d %s", rec.Code, rec.Body)
	}
	checkError(t, get("guard", url), 400, "from", "last 1h0m0s")
	checkError(t, get("guard", "/api/v1/cameras/bastion-gate/still.mp4?at="+old.Add(time.Second).Format(time.RFC3339)), 400, "at", "may play")
	rec := get("guard", "/api/v1/cameras/bastion-gate/timeline?from="+old.Format(time.RFC3339))
	var tl timelineJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &tl); err != nil || rec.Code != 200 {
		t.Fatalf("guard timeline: %d %s", rec.Code, rec.Body)
	}
	if tl.From.Before(time.Now().Add(-time.Hour-time.Minute)) || len(tl.Recorded) != 0 {
		t.Errorf("guard timeline from %v with %d recorded stretches: want from an hour ago, nothing older", tl.From, len(tl.Recorded))
	}
}

func TestTimelineAndStill(t *testing.T) {
	p0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	s := newPlaybackServer(t, p0)
	rec := get(s, fmt.Sprintf("/api/v1/cameras/bastion-gate/timeline?from=%s&to=%s&buckets=18",
		p0.Format(time.RFC3339), p0.Add(18*time.Second).Format(time.RFC3339)))
	var tl timelineJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &tl); err != nil || rec.Code != 200 {
		t.Fatalf("timeline: %d %s", rec.Code, rec.Body)
	}
	if len(tl.Recorded) != 1 || len(tl.Activity) != 18 || tl.Step != 1 || len(tl.Gaps) != 0 {
		t.Errorf("timeline %+v", tl)
	}
	rec = get(s, "/api/v1/cameras/bastion-gate/still.mp4?at="+p0.Add(5*time.Second).Format(time.RFC3339))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "video/mp4" || rec.Body.Len() < 1000 {
		t.Fatalf("still: %d %s, %d bytes", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
	if _, err := io.Copy(io.Discard, rec.Body); err != nil {
		t.Fatal(err)
	}
}

// FuzzPlaybackQuery sends arbitrary parameters to the playback routes: every answer
// is footage, a timeline, 404 (nothing recorded) or 400 naming the field.
func FuzzPlaybackQuery(f *testing.F) {
	p0 := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	st, cat := playbacktest.NewDisk(f)
	playbacktest.Record(f, st, cat, "bastion-gate", p0, 2, 6*time.Second)
	s := newTestServer(f, cat, func(o *Options) { o.Player = playback.New(cat, st, nil) })
	f.Add("video.mp4", "2026-11-25T14:00:01Z", "2026-11-25T14:00:09Z", "", "")
	f.Add("timeline", "2026-11-25T14:00:00+02:00", "2026-11-25T15:00:00Z", "", "7")
	f.Add("still.mp4", "", "", "2026-11-25T14:00:05.5Z", "")
	f.Add("video.mp4", "2026-11-25T14:00:00Z", "9999-12-31T23:59:59Z", "", "")
	f.Fuzz(func(t *testing.T, route, from, to, at, buckets string) {
		switch route {
		case "video.mp4", "still.mp4", "timeline":
		default:
			return
		}
		q := url.Values{"from": {from}, "to": {to}, "at": {at}, "buckets": {buckets}}
		rec := get(s, "/api/v1/cameras/bastion-gate/"+route+"?"+q.Encode())
		switch rec.Code {
		case 200, 404:
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

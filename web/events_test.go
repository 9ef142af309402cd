package web

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/web/events"
)

// readEvents opens GET /api/v1/events as role and returns a function that reads the
// next event's type and data; it returns once the stream is open.
func readEvents(t *testing.T, base, role string) func() (string, map[string]any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/api/v1/events", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: testSession(role)})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events as %s: %s %s", role, resp.Status, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == ": open\n" {
			break
		}
	}
	return func() (string, map[string]any) {
		var typ string
		var data map[string]any
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("events as %s: %v", role, err)
			}
			l = strings.TrimSuffix(l, "\n")
			switch {
			case strings.HasPrefix(l, "event: "):
				typ = strings.TrimPrefix(l, "event: ")
			case strings.HasPrefix(l, "data: "):
				if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "data: ")), &data); err != nil {
					t.Fatal(err)
				}
			case l == "" && typ != "":
				return typ, data
			}
		}
	}
}

// TestEventsFilteredPerUser: a guard's stream carries the state changes of the
// cameras granted to them only, and no itc-only event; itc's carries all of them.
func TestEventsFilteredPerUser(t *testing.T) {
	bus := events.New(0, 0)
	// The guard is granted gate only; yard exists too.
	o := withTestUsers(t, Options{Cameras: fakeCameras{{ID: "gate"}}, Listen: "127.0.0.1:8080", Auditor: newAuditLog(t)})
	o.Cameras = fakeCameras{{ID: "gate"}, {ID: "yard"}}
	o.Events = bus
	srv := httptest.NewServer(New(o, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)

	guard := readEvents(t, srv.URL, "guard")
	itc := readEvents(t, srv.URL, "itc")
	bus.Publish(events.Event{Type: events.TypeCameraState, Camera: "yard", Data: map[string]string{"state": "offline"}})
	bus.Publish(events.Event{Type: events.TypeRetentionRun, Roles: []string{"itc"}})
	bus.Publish(events.Event{Type: events.TypeCameraState, Camera: "gate", Data: map[string]string{"state": "offline"}})

	if typ, data := guard(); typ != events.TypeCameraState || data["camera"] != "gate" {
		t.Errorf("guard's first event: %s %v; want gate's state change (yard's and itc's withheld)", typ, data)
	}
	for _, want := range []string{"yard", "", "gate"} {
		if typ, data := itc(); data["camera"] != nil && data["camera"] != want || data["camera"] == nil && want != "" {
			t.Errorf("itc event %s %v; want camera %q", typ, data, want)
		}
	}
	// Anonymous callers get nothing.
	resp, err := http.Get(srv.URL + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous events: %d, want 401", resp.StatusCode)
	}
}

// TestEventsStreamsPerUser: one user holding streams open cannot lock the others
// out: past maxStreamsPerCaller they get 429, another user still gets a stream, and a
// closed stream gives its place back.
func TestEventsStreamsPerUser(t *testing.T) {
	o := withTestUsers(t, Options{Cameras: fakeCameras{{ID: "gate"}}, Listen: "127.0.0.1:8080", Auditor: newAuditLog(t)})
	o.Events = events.New(0, 0)
	srv := httptest.NewServer(New(o, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	open := func(role string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/v1/events", nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: testSession(role)})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	var held []*http.Response
	for i := range maxStreamsPerCaller {
		resp := open("guard")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("guard's stream %d: %s", i, resp.Status)
		}
		held = append(held, resp)
	}
	if resp := open("guard"); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("guard's stream %d: %s, Retry-After %q; want 429 with Retry-After", maxStreamsPerCaller+1, resp.Status,
			resp.Header.Get("Retry-After"))
	}
	if resp := open("admin"); resp.StatusCode != http.StatusOK {
		t.Errorf("admin's stream while the guard holds %d: %s; want 200", maxStreamsPerCaller, resp.Status)
	}
	held[0].Body.Close()
	testutil.WaitFor(t, 5*time.Second, "the guard's closed stream to give its place back", func() bool {
		resp := open("guard")
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestEventsEndWhenUserDisabled: an open stream is not a way around disabling a
// user: it ends within eventsRecheck, as the user's other requests get 401.
func TestEventsEndWhenUserDisabled(t *testing.T) {
	o := withTestUsers(t, Options{Cameras: fakeCameras{{ID: "gate"}}, Listen: "127.0.0.1:8080", Auditor: newAuditLog(t)})
	o.Events = events.New(0, 0)
	srv := httptest.NewServer(New(o, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	for _, role := range []string{"guard", "admin"} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/v1/events", nil)
		if role == "guard" {
			req.AddCookie(&http.Cookie{Name: sessionCookie, Value: testSession(role)})
		} else {
			req.Header.Set("Authorization", "Bearer "+testToken(role))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s's stream: %s", role, resp.Status)
		}
		ended := make(chan struct{})
		go func() {
			defer close(ended)
			_, _ = io.Copy(io.Discard, resp.Body)
		}()
		if err := o.Users.SetDisabled(t.Context(), role, true); err != nil {
			t.Fatal(err)
		}
		o.Sessions.Changed()
		select {
		case <-ended:
		case <-time.After(eventsRecheck + 10*time.Second):
			t.Errorf("%s's event stream still open after the user was disabled", role)
		}
	}
}

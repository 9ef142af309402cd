package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/holds"
	"github.com/straja-nvr/straja/storage/state"
)

func holdServer(t *testing.T, opts ...func(*Options)) *Server {
	t.Helper()
	dir := t.TempDir()
	db, err := state.Open(t.Context(), filepath.Join(dir, "holds.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := storage.NewDisk(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := holds.Open(t.Context(), holds.Options{State: db, Store: store, Cameras: func() []holds.Camera {
		return []holds.Camera{{ID: "bastion-gate", Site: "bastion"}, {ID: "palat-hall", Site: "palat"}}
	}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return authServer(t, append(opts, func(o *Options) { o.Holds = reg })...)
}

// changingCameras is a camera list a test edits.
type changingCameras struct{ fakeCameras }

func (c *changingCameras) Cameras() []recorder.CameraStatus { return c.fakeCameras.Cameras() }
func (c *changingCameras) Camera(id string) (recorder.CameraStatus, bool) {
	return c.fakeCameras.Camera(id)
}

// TestReleaseHoldOfDeletedCamera: an admin granted a site still sees and releases a
// hold on a camera of that site after the camera is deleted (judged by the site it had
// when the hold was set).
func TestReleaseHoldOfDeletedCamera(t *testing.T) {
	cams := &changingCameras{fakeCameras{{ID: "bastion-gate", Site: "bastion"}, {ID: "palat-hall", Site: "palat"}}}
	s := holdServer(t, func(o *Options) { o.Cameras = cams })
	rec := serve(s, jsonRequest("admin", "POST", "/api/v1/holds",
		`{"cameras":["bastion-gate"],"from":"2026-11-30T14:00:00Z","to":"2026-11-30T14:10:00Z","reason":"furt"}`))
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var h holdJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil {
		t.Fatal(err)
	}
	cams.fakeCameras = cams.fakeCameras[1:] // bastion-gate deleted
	rec = serve(s, newRequestAs("admin", "GET", "/api/v1/holds", nil))
	if !strings.Contains(rec.Body.String(), h.ID) {
		t.Errorf("the hold of a deleted camera is no longer listed: %s", rec.Body)
	}
	rec = serve(s, newRequestAs("admin", "DELETE", "/api/v1/holds/"+h.ID+"?reason=clasat", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("release of the deleted camera's hold: %d %s", rec.Code, rec.Body)
	}
}

func jsonRequest(role, method, target, body string) *http.Request {
	r := newRequestAs(role, method, target, []byte(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

// TestHoldsAPI: an admin holds footage of a granted camera, lists and releases it
// with a reason; bad input is refused naming the field; both changes are audited.
func TestHoldsAPI(t *testing.T) {
	s := holdServer(t)
	const from, to = `"from":"2026-11-30T14:00:00+02:00"`, `"to":"2026-11-30T14:10:00+02:00"`
	for _, tc := range []struct {
		body   string
		status int
		field  string
		msg    string
	}{
		{`{"cameras":["bastion-gate"],"from":"2026-11-30T14:10:00Z","to":"2026-11-30T14:00:00Z","reason":"furt"}`,
			400, "to", "after from"},
		{`{"cameras":["bastion-gate"],` + from + `,` + to + `}`, 400, "reason", "required"},
		{`{"cameras":["bastion-gate"],` + from + `,` + to + `,"reason":"  "}`, 400, "reason", "required"},
		{`{` + from + `,` + to + `,"reason":"furt"}`, 400, "cameras", "site"},
		{`{"site":"nowhere",` + from + `,` + to + `,"reason":"furt"}`, 400, "site", "unknown site"},
		{`{"cameras":["bastion-gate"],"site":"bastion",` + from + `,` + to + `,"reason":"furt"}`, 400, "site", "not both"},
		{`{"cameras":["Bad Id"],` + from + `,` + to + `,"reason":"furt"}`, 400, "cameras", "a-z"},
		{`{"cameras":["bastion-gate"],"from":"yesterday",` + to + `,"reason":"furt"}`, 400, "from", "RFC 3339"},
		{`{"cameras":["bastion-gate"],` + from + `,"reason":"furt"}`, 400, "to", "required"},
		{`{"cameras":["bastion-gate"],` + from + `,` + to + `,"reason":"furt","expires":"2020-01-01T00:00:00Z"}`,
			400, "expires", "future"},
		// Not granted, and not existing: the same 403.
		{`{"cameras":["palat-hall"],` + from + `,` + to + `,"reason":"furt"}`, 403, "", "palat-hall"},
		{`{"cameras":["no-such-camera"],` + from + `,` + to + `,"reason":"furt"}`, 403, "", "no-such-camera"},
		{`{"site":"palat",` + from + `,` + to + `,"reason":"furt"}`, 403, "", "palat-hall"},
	} {
		rec := serve(s, jsonRequest("admin", "POST", "/api/v1/holds", tc.body))
		checkError(t, rec, tc.status, tc.field, tc.msg)
	}

	rec := serve(s, jsonRequest("admin", "POST", "/api/v1/holds",
		`{"cameras":["bastion-gate"],`+from+`,`+to+`,"reason":"Dosar 123/P/2026"}`))
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var h holdJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil {
		t.Fatal(err)
	}
	if h.ID == "" || h.By != "admin" || h.Status != "active" || h.From.Format("15:04Z07:00") != "12:00Z" {
		t.Errorf("created hold = %+v", h)
	}
	site := serve(s, jsonRequest("admin", "POST", "/api/v1/holds", `{"site":"bastion",`+from+`,`+to+`,"reason":"incident"}`))
	if site.Code != http.StatusCreated {
		t.Fatalf("site hold: %d %s", site.Code, site.Body)
	}

	var list []holdJSON
	rec = serve(s, newRequestAs("admin", "GET", "/api/v1/holds", nil))
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != 200 || len(list) != 2 {
		t.Fatalf("list: %d %s", rec.Code, rec.Body)
	}

	rec = serve(s, jsonRequest("admin", "DELETE", "/api/v1/holds/"+h.ID, `{}`))
	checkError(t, rec, 400, "reason", "required")
	rec = serve(s, newRequestAs("admin", "DELETE", "/api/v1/holds/"+h.ID, nil))
	checkError(t, rec, 400, "reason", "required")
	rec = serve(s, newRequestAs("admin", "DELETE", "/api/v1/holds/nope?reason=x", nil))
	checkError(t, rec, 404, "", "not found")
	rec = serve(s, newRequestAs("admin", "DELETE", "/api/v1/holds/"+h.ID+"?reason=dosar+clasat", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"released_by":"admin"`) ||
		!strings.Contains(rec.Body.String(), `"release_reason":"dosar clasat"`) || !strings.Contains(rec.Body.String(), `"status":"released"`) {
		t.Fatalf("release: %d %s", rec.Code, rec.Body)
	}
	rec = serve(s, jsonRequest("admin", "DELETE", "/api/v1/holds/"+h.ID, `{"reason":"again"}`))
	checkError(t, rec, 409, "", "already released")

	for action, n := range map[string]int{"hold.set": 2, "hold.release": 1} {
		rec = serve(s, newRequestAs("admin", "GET", "/api/v1/audit?action="+action, nil))
		var page struct {
			Entries []struct {
				User   string          `json:"user"`
				Detail json.RawMessage `json:"detail"`
			} `json:"entries"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Entries) != n || page.Entries[0].User != "admin" {
			t.Errorf("audit %s: %s", action, rec.Body)
		}
	}
}

// FuzzHoldRequest: any hold request is accepted as a well-formed hold or refused
// naming the field at fault, never a panic.
func FuzzHoldRequest(f *testing.F) {
	f.Add("bastion-gate", "", "2026-11-30T14:00:00+02:00", "2026-11-30T14:10:00+02:00", "furt", "")
	f.Add("", "bastion", "2026-11-30T14:00:00Z", "2026-11-30T14:00:00Z", "x", "2099-01-01T00:00:00Z")
	f.Add("Bad Id", "nowhere", "yesterday", "", " ", "soon")
	s := newTestServer(f, newCatalog(f))
	s.users.Targets.Sites = []string{"bastion"}
	f.Fuzz(func(t *testing.T, camera, site, from, to, reason, expires string) {
		req := holdRequest{Site: site, From: from, To: to, Reason: reason, Expires: expires}
		if camera != "" {
			req.Cameras = []string{camera}
		}
		h, err := s.checkHold(req)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("refused without naming a field: %v", err)
			}
			return
		}
		if !h.To.After(h.From) || strings.TrimSpace(h.Reason) == "" || (len(h.Cameras) == 0) == (h.Site == "") {
			t.Fatalf("accepted a malformed hold %+v from %+v", h, req)
		}
	})
}

package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage/export"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/auth"
)

// exportServer is authServer (admin granted site bastion only) with a real exporter
// whose workers do not run, so exports stay queued, and a queue of two.
func exportServer(t *testing.T) (*Server, *export.Exporter) {
	s, ex, _, _ := exportRig(t, 1)
	return s, ex
}

// exportRig is authServer (admin granted site bastion only) with a real exporter of
// queue places whose workers do not run, its state database and exports directory.
func exportRig(t *testing.T, queue int) (*Server, *export.Exporter, *state.State, string) {
	t.Helper()
	cat := newCatalog(t, minuteSegments("bastion-gate", t0, 3), minuteSegments("palat-hall", t0, 3))
	dir := t.TempDir()
	db, err := state.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys, err := export.OpenKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	exports := filepath.Join(dir, "exports")
	ex, err := export.NewExporter(context.Background(), export.Options{Dir: exports,
		Builder: &export.Builder{Keys: keys}, DB: db, Workers: 1, Queue: queue, MaxRange: time.Hour, Footage: cat},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s := authServer(t, func(o *Options) {
		o.Exports = ex
		o.Cameras = fakeCameras{{ID: "bastion-gate", Name: "Poarta", Site: "bastion"}, {ID: "palat-hall", Site: "palat"}}
	})
	return s, ex, db, exports
}

func postExport(s *Server, role, body string) *httptest.ResponseRecorder {
	r := newRequestAs(role, "POST", "/api/v1/exports", []byte(body))
	r.Header.Set("Content-Type", "application/json")
	return serve(s, r)
}

// Bad export requests are refused naming the field; a camera not granted gets 403.
func TestExportInput(t *testing.T) {
	s, _ := exportServer(t)
	const ok = `"camera":"bastion-gate","from":"2026-11-25T14:00:00Z","to":"2026-11-25T14:02:00Z"`
	for _, tc := range []struct {
		body   string
		status int
		field  string
		want   string
	}{
		{`{` + ok + `}`, 400, "reason", "is required"},
		{`{` + ok + `,"reason":"   "}`, 400, "reason", "is required"},
		{`{"camera":"bastion-gate","from":"2026-11-25T14:02:00Z","to":"2026-11-25T14:00:00Z","reason":"r"}`, 400, "to", "after from"},
		{`{"camera":"bastion-gate","from":"2026-11-25T12:00:00Z","to":"2026-11-25T14:00:01Z","reason":"r"}`, 400, "to", "at most 1h0m0s"},
		{`{"camera":"bastion-gate","from":"14:00","to":"2026-11-25T14:00:01Z","reason":"r"}`, 400, "from", "RFC 3339"},
		{`{"camera":"bastion-gate","to":"2026-11-25T14:00:01Z","reason":"r"}`, 400, "from", "required"},
		{`{"camera":"bastion-gate","from":"2026-11-26T14:00:00Z","to":"2026-11-26T14:01:00Z","reason":"r"}`, 400, "from", "no stored footage"},
		{`{"from":"2026-11-25T14:00:00Z","to":"2026-11-25T14:02:00Z","reason":"r"}`, 400, "camera", "required"},
		{`{"camera":"palat-hall","from":"2026-11-25T14:00:00Z","to":"2026-11-25T14:02:00Z","reason":"r"}`, 403, "", "export footage of camera \"palat-hall\""},
		{`{"camera":"no-such","from":"2026-11-25T14:00:00Z","to":"2026-11-25T14:02:00Z","reason":"r"}`, 403, "", "no-such"},
		{`{` + ok + `,"reason":"r","extra":1}`, 400, "", "unknown field"},
	} {
		rec := postExport(s, auth.RoleAdmin, tc.body)
		if rec.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.body, rec.Code, rec.Body, tc.status)
			continue
		}
		checkError(t, rec, tc.status, tc.field, tc.want)
	}
	if rec := postExport(s, auth.RoleGuard, `{`+ok+`,"reason":"r"}`); rec.Code != http.StatusForbidden {
		t.Errorf("a guard's export: %d, want 403", rec.Code)
	}
	// A refused request exports nothing, so the trail has no export entry.
	if n := len(auditOf(t, s, "export")); n != 0 {
		t.Errorf("%d export entries in the audit trail after refused requests, want 0", n)
	}
}

// An accepted export is 202 with an id; it is listed for its camera's admins, shows
// its state, has no files until done, and the queue's cap answers 429.
func TestExportQueue(t *testing.T) {
	s, _ := exportServer(t)
	body := `{"camera":"bastion-gate","from":"2026-11-25T14:00:30Z","to":"2026-11-25T14:02:00Z","reason":"dosar 12/2026"}`
	rec := postExport(s, auth.RoleAdmin, body)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("export: %d %s", rec.Code, rec.Body)
	}
	var got exportJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.ID) != 16 || got.State != state.ExportQueued || got.Camera != "bastion-gate" || got.CameraName != "Poarta" ||
		got.User != "admin" || got.Reason != "dosar 12/2026" || rec.Header().Get("Location") != "/api/v1/exports/"+got.ID {
		t.Errorf("export = %+v, Location %q", got, rec.Header().Get("Location"))
	}
	var st exportJSON
	if r := serve(s, newRequestAs(auth.RoleAdmin, "GET", "/api/v1/exports/"+got.ID, nil)); r.Code != 200 ||
		json.Unmarshal(r.Body.Bytes(), &st) != nil || st.ID != got.ID || st.State != "queued" {
		t.Errorf("GET export: %d %s", r.Code, r.Body)
	}
	r := serve(s, newRequestAs(auth.RoleAdmin, "GET", "/api/v1/exports/"+got.ID+"/clip.mp4", nil))
	checkError(t, r, http.StatusConflict, "", "is queued")
	r = serve(s, newRequestAs(auth.RoleAdmin, "GET", "/api/v1/exports/"+got.ID+"/passwd", nil))
	checkError(t, r, http.StatusNotFound, "", "no \"passwd\"")
	r = serve(s, newRequestAs(auth.RoleAdmin, "GET", "/api/v1/exports/0123456789abcdef", nil))
	checkError(t, r, http.StatusNotFound, "", "not found")

	var list []exportJSON
	if r := serve(s, newRequestAs(auth.RoleAdmin, "GET", "/api/v1/exports", nil)); r.Code != 200 ||
		json.Unmarshal(r.Body.Bytes(), &list) != nil || len(list) != 1 || list[0].ID != got.ID {
		t.Errorf("list: %d %s", r.Code, r.Body)
	}
	// One worker (not running) and one place in the queue: the third waits for nothing.
	if rec := postExport(s, auth.RoleAdmin, body); rec.Code != http.StatusAccepted {
		t.Fatalf("second export: %d %s", rec.Code, rec.Body)
	}
	entries := auditOf(t, s, "export")
	if len(entries) != 2 || !strings.Contains(entries[0], "admin bastion-gate") || !strings.Contains(entries[0], `"reason":"dosar 12/2026"`) ||
		!strings.Contains(entries[0], `"from":"2026-11-25T14:00:30Z"`) {
		t.Errorf("audit entries of two exports: %q", entries)
	}
	rec = postExport(s, auth.RoleAdmin, body)
	checkError(t, rec, http.StatusTooManyRequests, "", "too many exports")
	if rec.Header().Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// The export keys are public: any signed-in user gets them as PEM with their ids.
func TestExportKeysAPI(t *testing.T) {
	s, _ := exportServer(t)
	r := serve(s, newRequestAs(auth.RoleGuard, "GET", "/api/v1/export-keys", nil))
	var keys []exportKeyJSON
	if r.Code != 200 || json.Unmarshal(r.Body.Bytes(), &keys) != nil || len(keys) != 1 || !keys[0].Current {
		t.Fatalf("export keys: %d %s", r.Code, r.Body)
	}
	pub, err := export.ParsePublicPEM([]byte(keys[0].PEM))
	if err != nil || export.KeyID(pub) != keys[0].ID || !strings.Contains(keys[0].PEM, "BEGIN PUBLIC KEY") {
		t.Errorf("key %+v: %v", keys[0], err)
	}
}

package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage/export"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/auth"
)

// deleteServer is exportServer with its state database and exports directory.
func deleteServer(t *testing.T) (*Server, *state.State, string) {
	s, _, db, exports := exportRig(t, 4)
	return s, db, exports
}

// finished makes export id of camera done, with its files on disk.
func finished(t *testing.T, db *state.State, exports, id, camera string) {
	t.Helper()
	if _, err := db.Export(t.Context(), id); errors.Is(err, state.ErrNotFound) {
		if err := db.AddExport(t.Context(), state.Export{ID: id, Camera: camera, From: t0, To: t0.Add(time.Minute),
			Reason: "dosar 5/2026", User: "admin.ana"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.FinishExport(t.Context(), id, 3, "ab", "k"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(exports, id), 0o750); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{export.ClipFile, export.ManifestFile, export.SignatureFile} {
		if err := os.WriteFile(filepath.Join(exports, id, f), []byte("abc"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

func deleteExport(s *Server, role, id, body string) *httptest.ResponseRecorder {
	r := newRequestAs(role, "DELETE", "/api/v1/exports/"+id, []byte(body))
	r.Header.Set("Content-Type", "application/json")
	return serve(s, r)
}

// Deleting an export: refused while it is queued, without a reason, for an unknown
// export, a guard or a camera not granted; done, it removes the files, keeps the row
// saying who deleted it and why, is in the audit trail, and cannot be repeated.
func TestExportDelete(t *testing.T) {
	s, db, exports := deleteServer(t)
	rec := postExport(s, auth.RoleAdmin, `{"camera":"bastion-gate","from":"2026-11-25T14:00:30Z","to":"2026-11-25T14:02:00Z","reason":"dosar 12/2026"}`)
	var queued exportJSON
	if rec.Code != http.StatusAccepted || json.Unmarshal(rec.Body.Bytes(), &queued) != nil {
		t.Fatalf("export: %d %s", rec.Code, rec.Body)
	}
	checkError(t, deleteExport(s, auth.RoleAdmin, queued.ID, `{"reason":"gata"}`), http.StatusConflict, "", "is queued")

	finished(t, db, exports, queued.ID, "bastion-gate")
	finished(t, db, exports, "00000000000000bb", "palat-hall")
	for _, tc := range []struct {
		role, id, body string
		status         int
		field, want    string
	}{
		{auth.RoleAdmin, queued.ID, `{}`, 400, "reason", "is required"},
		{auth.RoleAdmin, queued.ID, `{"reason":"  "}`, 400, "reason", "is required"},
		{auth.RoleAdmin, queued.ID, ``, 400, "", ""},
		{auth.RoleAdmin, queued.ID, `{"reason":"x","extra":1}`, 400, "", "unknown field"},
		{auth.RoleAdmin, "ffffffffffffffff", `{"reason":"x"}`, 404, "", "not found"},
		{auth.RoleAdmin, "00000000000000bb", `{"reason":"x"}`, 403, "", "palat-hall"},
		{auth.RoleGuard, queued.ID, `{"reason":"x"}`, 403, "", ""},
		{auth.RoleITC, queued.ID, `{"reason":"x"}`, 403, "", ""},
	} {
		rec := deleteExport(s, tc.role, tc.id, tc.body)
		if rec.Code != tc.status {
			t.Errorf("%s %s %s: %d %s, want %d", tc.role, tc.id, tc.body, rec.Code, rec.Body, tc.status)
			continue
		}
		if tc.want != "" || tc.field != "" {
			checkError(t, rec, tc.status, tc.field, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(exports, queued.ID, export.ClipFile)); err != nil {
		t.Fatalf("a refused delete removed the clip: %v", err)
	}
	if n := len(auditOf(t, s, "export.delete")); n != 0 {
		t.Errorf("%d export.delete entries after refused deletes, want 0", n)
	}

	rec = deleteExport(s, auth.RoleAdmin, queued.ID, `{"reason":"  dosar clasat "}`)
	var got exportJSON
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	if got.State != "deleted" || got.DeletedBy != "admin" || got.DeleteReason != "dosar clasat" || got.Deleted == nil ||
		got.User != "admin" || got.Files != nil {
		t.Errorf("deleted export = %+v", got)
	}
	if _, err := os.Stat(filepath.Join(exports, queued.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the export's files are still there: %v", err)
	}
	var list []exportJSON
	if r := serve(s, newRequestAs(auth.RoleAdmin, "GET", "/api/v1/exports", nil)); r.Code != 200 ||
		json.Unmarshal(r.Body.Bytes(), &list) != nil || len(list) != 1 || list[0].State != "deleted" || list[0].User != "admin" {
		t.Errorf("list after delete: %d %s; want the export, deleted, still saying who made it", r.Code, r.Body)
	}
	checkError(t, serve(s, newRequestAs(auth.RoleAdmin, "GET", "/api/v1/exports/"+queued.ID+"/clip.mp4", nil)),
		http.StatusConflict, "", "was deleted by admin")
	checkError(t, deleteExport(s, auth.RoleAdmin, queued.ID, `{"reason":"again"}`), http.StatusConflict, "", "was deleted")
	entries := auditOf(t, s, "export.delete")
	if len(entries) != 1 || !strings.Contains(entries[0], "admin bastion-gate") ||
		!strings.Contains(entries[0], `"reason":"dosar clasat"`) || !strings.Contains(entries[0], `"export":"`+queued.ID+`"`) {
		t.Errorf("audit of the delete: %q", entries)
	}
}

// auditOf lists the audit trail's entries of action as "user camera detail".
func auditOf(t *testing.T, s *Server, action string) []string {
	t.Helper()
	rec := serve(s, newRequestAs("admin", "GET", "/api/v1/audit?action="+action, nil))
	var page struct {
		Entries []struct {
			User   string          `json:"user"`
			Camera string          `json:"camera"`
			Detail json.RawMessage `json:"detail"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatalf("audit: %d %s", rec.Code, rec.Body)
	}
	var out []string
	for _, e := range page.Entries {
		out = append(out, e.User+" "+e.Camera+" "+string(e.Detail))
	}
	return out
}

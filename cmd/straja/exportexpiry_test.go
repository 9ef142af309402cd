package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage/export"
	"github.com/straja-nvr/straja/web/audit"
)

// TestExportExpiry runs the service with export.keep 1m: an export made now survives
// the expiry job's run now, and is deleted by the job's run two minutes later, its
// files gone, its row listed as deleted by the service, and the deletion in the audit
// trail as the service's. An administrator's delete is audited under their name.
func TestExportExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("records for ~6 s")
	}
	sim := startSim(t, 1, camsimOpts())
	cfg := baseConfig(t, t.TempDir(), sim, 1)
	cfg.Export.Keep = configs.Duration(time.Minute)
	m := startMain(t, cfg)
	admin := exportAdminToken(t, m)
	testutil.WaitFor(t, 40*time.Second, "3 segments", func() bool { return len(segmentsOf(t, m.Addr(), "cam-1")) >= 3 })
	segs := segmentsOf(t, m.Addr(), "cam-1")
	base := "http://" + m.Addr()
	body := fmt.Sprintf(`{"camera":"cam-1","from":%q,"to":%q,"reason":"cerere IPJ Cluj"}`,
		segs[0].Start.Format(time.RFC3339Nano), segs[1].End.Format(time.RFC3339Nano))
	type exportOut struct {
		ID           string `json:"id"`
		State        string `json:"state"`
		User         string `json:"user"`
		DeletedBy    string `json:"deleted_by"`
		DeleteReason string `json:"delete_reason"`
		Error        string `json:"error"`
	}
	var ids []string
	for range 2 {
		var ex exportOut
		if code, b := adminDo(t, admin, "POST", base+"/api/v1/exports", body, &ex); code != http.StatusAccepted {
			t.Fatalf("POST /api/v1/exports: %d %s", code, b)
		}
		testutil.WaitFor(t, 60*time.Second, "export done", func() bool {
			adminDo(t, admin, "GET", base+"/api/v1/exports/"+ex.ID, "", &ex)
			if ex.State == "failed" {
				t.Fatalf("export failed: %s", ex.Error)
			}
			return ex.State == "done"
		})
		ids = append(ids, ex.ID)
	}
	dirOf := func(id string) string { return filepath.Join(cfg.DataDir, "exports", id) }

	// An administrator deletes the first, with a reason.
	var ex exportOut
	if code, b := adminDo(t, admin, "DELETE", base+"/api/v1/exports/"+ids[0], `{"reason":"trimis la IPJ"}`, &ex); code != 200 ||
		ex.State != "deleted" || ex.DeletedBy != "export-admin" {
		t.Fatalf("DELETE export: %d %s", code, b)
	}
	if _, err := os.Stat(dirOf(ids[0])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("files of the deleted export: %v", err)
	}

	// The job now: the second is under a minute old and stays.
	expireExports(t.Context(), m.exports, m.audit, m.Log, time.Now())
	if _, err := os.Stat(filepath.Join(dirOf(ids[1]), export.ClipFile)); err != nil {
		t.Fatalf("an export younger than export.keep lost its clip: %v", err)
	}
	// Two minutes later it is past export.keep.
	expireExports(t.Context(), m.exports, m.audit, m.Log, time.Now().Add(2*time.Minute))
	if _, err := os.Stat(dirOf(ids[1])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("files of the expired export: %v", err)
	}
	adminDo(t, admin, "GET", base+"/api/v1/exports/"+ids[1], "", &ex)
	if ex.State != "deleted" || ex.DeletedBy != export.ServiceUser || ex.User != "export-admin" ||
		!strings.Contains(ex.DeleteReason, "export.keep (1m)") {
		t.Errorf("expired export = %+v; want deleted by the service, still saying who made it", ex)
	}
	if code, b := adminDo(t, admin, "GET", base+"/api/v1/exports/"+ids[1]+"/clip.mp4", "", nil); code != http.StatusConflict {
		t.Errorf("clip of an expired export: %d %s, want 409", code, b)
	}

	var deleted, expired []string
	err := m.state.AuditRows(t.Context(), audit.Query{}, func(e audit.Entry) error {
		switch e.Action {
		case audit.ActionExportDelete:
			deleted = append(deleted, e.User+" "+e.Detail)
		case audit.ActionExportExpire:
			expired = append(expired, e.Actor+" "+e.User+" "+e.Detail)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || !strings.HasPrefix(deleted[0], "export-admin ") || !strings.Contains(deleted[0], ids[0]) ||
		!strings.Contains(deleted[0], "trimis la IPJ") {
		t.Errorf("export.delete entries: %q", deleted)
	}
	if len(expired) != 1 || !strings.HasPrefix(expired[0], audit.ActorLocal+" "+export.ServiceUser+" ") ||
		!strings.Contains(expired[0], ids[1]) {
		t.Errorf("export.expire entries: %q; want one, by the service, naming %s", expired, ids[1])
	}
}

func TestExportExpiryEvery(t *testing.T) {
	for keep, want := range map[time.Duration]time.Duration{
		time.Minute: time.Minute, 30 * 24 * time.Hour: time.Hour, 12 * time.Hour: 30 * time.Minute,
	} {
		if got := exportExpiryEvery(keep); got != want {
			t.Errorf("exportExpiryEvery(%s) = %s, want %s", keep, got, want)
		}
	}
}

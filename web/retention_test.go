package web

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/retention"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/auth"
)

// retentionServer serves the retention API over a real runner: disk store, catalog
// with an hour of bastion-gate footage 40 days old and ten minutes of palat-hall's
// now, and a file policy "palat".
func retentionServer(t *testing.T) (*Server, *storage.Catalog) {
	t.Helper()
	dir := t.TempDir()
	st, err := storage.NewDisk(filepath.Join(dir, "segments"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Minute)
	cat := newCatalog(t, minuteSegments("bastion-gate", now.Add(-40*24*time.Hour), 60), minuteSegments("palat-hall", now.Add(-10*time.Minute), 10))
	sdb, err := state.Open(t.Context(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	cams := []retention.Camera{{ID: "bastion-gate", Site: "bastion"}, {ID: "palat-hall", Site: "palat"}}
	known := retention.Known{Cameras: map[string]string{"bastion-gate": "bastion", "palat-hall": "palat"},
		Sites: map[string]bool{"bastion": true, "palat": true}}
	r, err := retention.NewRunner(t.Context(), retention.RunnerOptions{
		Catalog: retention.CatalogDeleter{CatalogSource: retention.CatalogSource{Catalog: cat}}, Store: st, State: sdb,
		Cameras: func() []retention.Camera { return cams }, Known: func() retention.Known { return known },
		FilePolicies: []retention.Policy{{Name: "palat", Sites: []string{"palat"}, MaxAge: 7 * 24 * time.Hour,
			Schedule: "@hourly", Source: retention.SourceFile}},
	}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return authServer(t, func(o *Options) { o.Retention = r }), cat
}

func itcJSON(s *Server, method, path, body string) *httpResult {
	r := newRequestAs(auth.RoleITC, method, path, []byte(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	rec := serve(s, r)
	return &httpResult{Code: rec.Code, Body: rec.Body.Bytes()}
}

type httpResult struct {
	Code int
	Body []byte
}

func TestRetentionPolicyErrorsNameTheField(t *testing.T) {
	s, _ := retentionServer(t)
	for _, tc := range []struct{ body, field string }{
		{`{"cameras":["bastion-gate"],"max_age":"1h","schedule":"every hour"}`, "schedule"},
		{`{"cameras":["bastion-gate"],"max_age":"-1h"}`, "max_age"},
		{`{"cameras":["bastion-gate"],"max_age":"soon"}`, "max_age"},
		{`{"cameras":["no-such-camera"],"max_age":"1h"}`, "cameras[0]"},
		{`{"sites":["nowhere"],"max_age":"1h"}`, "sites[0]"},
		{`{"cameras":["bastion-gate"],"max_age":"60d"}`, "justification"},
		{`{"cameras":["palat-hall"],"max_age":"1h","name":"other"}`, "name"},
	} {
		res := itcJSON(s, "PUT", "/api/v1/retention/policies/gate", tc.body)
		var body errorBody
		_ = json.Unmarshal(res.Body, &body)
		if res.Code != http.StatusBadRequest || body.Field != tc.field {
			t.Errorf("PUT %s: %d %s, want 400 naming %s", tc.body, res.Code, res.Body, tc.field)
		}
	}
	if res := itcJSON(s, "PUT", "/api/v1/retention/policies/palat", `{"sites":["palat"],"max_age":"1d"}`); res.Code != http.StatusConflict ||
		!strings.Contains(string(res.Body), "configuration file") {
		t.Errorf("PUT a file policy: %d %s, want 409 saying it is in the file", res.Code, res.Body)
	}
	if res := itcJSON(s, "DELETE", "/api/v1/retention/policies/nothing", ""); res.Code != http.StatusNotFound {
		t.Errorf("DELETE a missing policy: %d %s, want 404", res.Code, res.Body)
	}
}

func TestRetentionAPI(t *testing.T) {
	s, cat := retentionServer(t)
	// The editor's preview: what a 30-minute policy on bastion-gate would delete,
	// nothing saved.
	res := itcJSON(s, "POST", "/api/v1/retention/plan", `{"policy":{"name":"gate","cameras":["bastion-gate"],"max_age":"30m"}}`)
	var plan planJSON
	if err := json.Unmarshal(res.Body, &plan); res.Code != http.StatusOK || err != nil {
		t.Fatalf("plan: %d %s", res.Code, res.Body)
	}
	// bastion-gate's hour is 40 days old: all 60 go (palat-hall recording now rules
	// out a clock jump); palat-hall keeps its 10 minutes under "palat".
	if plan.Delete != 60 || plan.SafetyStops != 0 || len(plan.Cameras) != 2 || plan.Cameras[0].Policy != "gate" {
		t.Errorf("plan = %s, want 60 segments of bastion-gate under gate", res.Body)
	}
	if keys, _ := cat.Keys(t.Context()); len(keys) != 70 {
		t.Errorf("a dry run deleted: %d rows left, want 70", len(keys))
	}

	res = itcJSON(s, "PUT", "/api/v1/retention/policies/gate",
		`{"cameras":["bastion-gate"],"max_age":"45d","justification":"dosar 12/2026","schedule":"@every 10m"}`)
	if res.Code != http.StatusOK || !strings.Contains(string(res.Body), `"max_age":"45d"`) || !strings.Contains(string(res.Body), `"source":"api"`) {
		t.Fatalf("PUT gate: %d %s", res.Code, res.Body)
	}
	res = itcJSON(s, "GET", "/api/v1/retention/policies", "")
	var pols policiesJSON
	if err := json.Unmarshal(res.Body, &pols); err != nil || len(pols.Policies) != 3 || pols.Effective["bastion-gate"] != "gate" ||
		pols.Effective["palat-hall"] != "palat" {
		t.Errorf("policies: %d %s, want default, gate and palat with bastion-gate under gate", res.Code, res.Body)
	}
	res = itcJSON(s, "GET", "/api/v1/cameras", "")
	if !strings.Contains(string(res.Body), `"retention_policy":"gate"`) || !strings.Contains(string(res.Body), `"retention_policy":"palat"`) {
		t.Errorf("cameras: %s, want each camera's effective policy", res.Body)
	}

	// 45 days keeps the 40-day-old hour: a run deletes nothing.
	res = itcJSON(s, "POST", "/api/v1/retention/run", `{"force":false}`)
	if res.Code != http.StatusOK {
		t.Fatalf("run: %d %s", res.Code, res.Body)
	}
	if keys, _ := cat.Keys(t.Context()); len(keys) != 70 {
		t.Errorf("run under a 45d policy: %d rows left, want 70", len(keys))
	}
	if res := itcJSON(s, "DELETE", "/api/v1/retention/policies/gate", ""); res.Code != http.StatusNoContent {
		t.Fatalf("DELETE gate: %d %s", res.Code, res.Body)
	}
	// Back under the default 30 days: the hour goes.
	res = itcJSON(s, "POST", "/api/v1/retention/run", "")
	var run retention.Run
	if err := json.Unmarshal(res.Body, &run); res.Code != http.StatusOK || err != nil || len(run.Cameras) != 1 ||
		run.Cameras[0].Deleted != 60 || run.Kind != "manual" {
		t.Errorf("run: %d %s, want 60 deleted", res.Code, res.Body)
	}
	if keys, _ := cat.Keys(t.Context()); len(keys) != 10 {
		t.Errorf("after the run %d rows left, want 10", len(keys))
	}
	res = itcJSON(s, "GET", "/api/v1/retention/runs?limit=5", "")
	var runs []retention.Run
	if err := json.Unmarshal(res.Body, &runs); err != nil || len(runs) != 2 || runs[0].ID != run.ID {
		t.Errorf("runs: %d %s, want the two runs, newest first", res.Code, res.Body)
	}
	if res := itcJSON(s, "GET", "/api/v1/retention/runs?limit=0", ""); res.Code != http.StatusBadRequest ||
		!bytes.Contains(res.Body, []byte(`"field":"limit"`)) {
		t.Errorf("runs?limit=0: %d %s, want 400 naming limit", res.Code, res.Body)
	}
}

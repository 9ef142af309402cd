package web

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/recorder/alerts"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/audit"
)

// TestAlertRulesAPI: itc adds, changes and deletes rules; bad fields are named;
// configuration rules are read only; each change is in the audit trail.
func TestAlertRulesAPI(t *testing.T) {
	st, err := state.Open(t.Context(), filepath.Join(t.TempDir(), "alerts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := alerts.New(t.Context(), alerts.Options{Store: st,
		Rules: []alerts.Rule{{ID: "dark", Kind: alerts.KindCameraOffline, ForS: 30}}}, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	al := newAuditLog(t)
	s := newTestServer(t, nil, func(o *Options) { o.Alerts, o.Auditor = eng, al })
	put := func(id, body string) (int, errorBody) {
		r := newRequestAs("itc", "PUT", "/api/v1/alerts/rules/"+id, []byte(body))
		r.Header.Set("Content-Type", "application/json")
		rec := serve(s, r)
		var e errorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		return rec.Code, e
	}
	if code, e := put("lag", `{"kind":"recording_lag","for_s":30,"threshold":5}`); code != http.StatusCreated {
		t.Fatalf("new rule: %d %+v, want 201", code, e)
	}
	if code, e := put("lag", `{"kind":"recording_lag","for_s":60,"threshold":8}`); code != http.StatusOK {
		t.Fatalf("changed rule: %d %+v, want 200", code, e)
	}
	for _, tc := range []struct{ id, body, field string }{
		{"Bad-Name", `{"kind":"camera_offline"}`, "id"},
		{"x", `{"kind":"camera_gone"}`, "kind"},
		{"x", `{"kind":"camera_offline","camera":"nowhere"}`, "camera"},
		{"x", `{"kind":"spool_usage","threshold":80}`, "threshold"},
		{"x", `{"kind":"camera_offline","for_s":"soon"}`, "for_s"},
		{"x", `{"id":"y","kind":"camera_offline"}`, "id"},
	} {
		if code, e := put(tc.id, tc.body); code != http.StatusBadRequest || e.Field != tc.field {
			t.Errorf("PUT %s %s: %d %+v; want 400 naming %s", tc.id, tc.body, code, e, tc.field)
		}
	}
	if code, _ := put("dark", `{"kind":"camera_offline","for_s":5}`); code != http.StatusConflict {
		t.Errorf("PUT over a configuration rule: %d, want 409", code)
	}
	rec := serve(s, newRequestAs("itc", "GET", "/api/v1/alerts/rules", nil))
	var rules []alerts.Rule
	if err := json.Unmarshal(rec.Body.Bytes(), &rules); err != nil || len(rules) != 2 || rules[1].Threshold != 8 ||
		rules[0].Source != alerts.SourceConfig {
		t.Errorf("rules = %s; want dark (config) and lag (threshold 8)", rec.Body)
	}
	if rec := serve(s, newRequestAs("itc", "DELETE", "/api/v1/alerts/rules/lag", nil)); rec.Code != http.StatusNoContent {
		t.Errorf("delete: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(s, newRequestAs("itc", "DELETE", "/api/v1/alerts/rules/lag", nil)); rec.Code != http.StatusNotFound {
		t.Errorf("second delete: %d, want 404", rec.Code)
	}
	if rec := serve(s, newRequestAs("itc", "GET", "/api/v1/alerts?limit=0", nil)); rec.Code != http.StatusBadRequest {
		t.Errorf("alerts?limit=0: %d, want 400", rec.Code)
	}
	if rec := serve(s, newRequestAs("itc", "GET", "/api/v1/alerts", nil)); rec.Code != http.StatusOK {
		t.Errorf("alerts: %d %s", rec.Code, rec.Body)
	}
	var actions []string
	if err := al.List(t.Context(), audit.Query{}, func(e audit.Entry) error {
		if e.User == "itc" {
			actions = append(actions, e.Action)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{audit.ActionAlertRulePut, audit.ActionAlertRulePut, audit.ActionAlertRuleDelete}
	if len(actions) != len(want) || actions[0] != want[0] || actions[2] != want[2] {
		t.Errorf("audited %v, want %v", actions, want)
	}
}

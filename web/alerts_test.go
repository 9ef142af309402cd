package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

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
		{"x", `{"kind":"camera_offline","webhook":"ftp://alerte.cj.local/x"}`, "webhook"},
		{"x", `{"kind":"camera_offline","webhook":"https://alerte.cj.local/x"}`, "webhook"}, // no signing secret here
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

// FuzzParseRange: any from/to either parses into a range no longer than the maximum,
// from before to, or is refused naming from or to.
func FuzzParseRange(f *testing.F) {
	f.Add("2026-11-30T10:00:00Z", "2026-11-30T11:00:00Z")
	f.Add("", "")
	f.Add("yesterday", "")
	f.Add("2026-11-30T10:00:00Z", "2025-11-30T10:00:00Z")
	f.Add("0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999+14:00")
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, from, to string) {
		q := url.Values{}
		if from != "" {
			q.Set("from", from)
		}
		if to != "" {
			q.Set("to", to)
		}
		r := httptest.NewRequest("GET", "/api/v1/cameras/gate/gaps?"+q.Encode(), nil)
		a, b, err := parseRange(r, now, 24*time.Hour, maxGapRange)
		var fe *FieldError
		switch {
		case err == nil:
			if !a.Before(b) || b.Sub(a) > maxGapRange {
				t.Errorf("from=%q to=%q gave [%v, %v)", from, to, a, b)
			}
		case !errors.As(err, &fe) || (fe.Field != "from" && fe.Field != "to"):
			t.Errorf("from=%q to=%q: %v, want a field error naming from or to", from, to, err)
		}
	})
}

// FuzzAlertRule: any rule body is accepted by Check or refused naming a field it has.
func FuzzAlertRule(f *testing.F) {
	f.Add("dark", "camera_offline", "", 30.0, 0.0, 0.0)
	f.Add("tamper", "tamper", "gate", 20.0, 0.3, 4.0)
	f.Add("x", "spool_usage", "", -1.0, 80.0, 2.0)
	fields := map[string]bool{"id": true, "kind": true, "camera": true, "for_s": true, "threshold": true, "high": true}
	f.Fuzz(func(t *testing.T, id, kind, camera string, forS, threshold, high float64) {
		r := alerts.Rule{ID: id, Kind: alerts.Kind(kind), Camera: camera, ForS: forS, Threshold: threshold, High: high}
		err := r.Check()
		if err == nil {
			if !(r.ForS >= 0 && r.ForS <= 86400) || r.Threshold != r.Threshold || r.High != r.High {
				t.Errorf("%+v accepted", r)
			}
			return
		}
		var fe *alerts.FieldError
		if !errors.As(err, &fe) || !fields[fe.Field] {
			t.Errorf("%+v: %v, want a field error naming a rule field", r, err)
		}
	})
}

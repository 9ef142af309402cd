package web

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/audit"
)

// newAuditLog is a real audit trail in a temporary state database and disk store,
// closed when the test ends.
func newAuditLog(tb testing.TB) *audit.Log {
	tb.Helper()
	dir := tb.TempDir()
	st, err := state.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		tb.Fatal(err)
	}
	store, err := storage.NewDisk(filepath.Join(dir, "store"))
	if err != nil {
		tb.Fatal(err)
	}
	l, err := audit.New(context.Background(), st, audit.Options{Store: store}, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("close audit: %v", err)
		}
		st.Close()
	})
	return l
}

type auditPage struct {
	Entries []auditJSON `json:"entries"`
	Next    *string     `json:"next"`
}

func getAudit(t *testing.T, h http.Handler, query string) auditPage {
	t.Helper()
	rec := get(h, "/api/v1/audit"+query)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET audit%s: %d %s", query, rec.Code, rec.Body)
	}
	var p auditPage
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// The segments listing records who listed which range of which camera.
func TestSegmentsListingIsAudited(t *testing.T) {
	s := newTestServer(t, newCatalog(t))
	rec := get(s, "/api/v1/cameras/bastion-gate/segments?from=2026-11-30T08:00:00Z&to=2026-11-30T09:00:00Z")
	if rec.Code != http.StatusOK {
		t.Fatalf("segments: %d %s", rec.Code, rec.Body)
	}
	// A refused listing (bad range) records nothing.
	get(s, "/api/v1/cameras/bastion-gate/segments?from=x")
	var p auditPage
	// The entry is queued on the request path and committed with the next group.
	testutil.WaitFor(t, 10*time.Second, "the segments.list entry", func() bool {
		p = getAudit(t, s, "")
		return len(p.Entries) >= 1
	})
	if len(p.Entries) != 1 {
		t.Fatalf("audit entries = %+v; want one segments.list", p.Entries)
	}
	e := p.Entries[0]
	var d map[string]string
	_ = json.Unmarshal(e.Detail, &d)
	if e.Seq != 1 || e.Action != audit.ActionSegmentList || e.Camera != "bastion-gate" || e.Actor != "192.0.2.1" ||
		d["from"] != "2026-11-30T08:00:00Z" || d["to"] != "2026-11-30T09:00:00Z" || len(e.Hash) != 64 || e.User != "admin" {
		t.Errorf("entry = %+v (detail %v); want segments.list of bastion-gate 08:00-09:00 from 192.0.2.1", e, d)
	}
}

// A WHEP session's start and stop, through the real live server, are recorded with
// the session, and the stop with the seconds watched and why it ended.
func TestLiveViewIsAudited(t *testing.T) {
	s, live := newWHEPServer(t)
	rec := do(s, "POST", "/api/v1/cameras/cam-1/whep", "application/sdp", []byte(clientOffer(t, nil)))
	if rec.Code != http.StatusCreated {
		t.Fatalf("offer: %d %s", rec.Code, rec.Body)
	}
	loc := rec.Header().Get("Location")
	if rec := do(s, "DELETE", loc, "", nil); rec.Code != http.StatusOK {
		t.Fatalf("DELETE: %d %s", rec.Code, rec.Body)
	}
	if live.Sessions() != 0 {
		t.Fatal("session left after DELETE")
	}
	var p auditPage
	testutil.WaitFor(t, 10*time.Second, "live.start and live.stop entries", func() bool {
		p = getAudit(t, s, "?camera=cam-1")
		return len(p.Entries) >= 2
	})
	if len(p.Entries) != 2 {
		t.Fatalf("audit entries = %+v; want live.start and live.stop", p.Entries)
	}
	start, stop := p.Entries[0], p.Entries[1]
	var ds, de map[string]any
	_ = json.Unmarshal(start.Detail, &ds)
	_ = json.Unmarshal(stop.Detail, &de)
	sid := strings.TrimPrefix(loc, sessionPath)[:8]
	if start.Action != audit.ActionLiveStart || ds["session"] != sid || start.Actor != "192.0.2.1" {
		t.Errorf("start = %+v %v; want live.start of session %s", start, ds, sid)
	}
	if _, ok := de["seconds"].(float64); stop.Action != audit.ActionLiveStop || de["session"] != sid ||
		de["reason"] != "stopped" || !ok || stop.Actor != "192.0.2.1" {
		t.Errorf("stop = %+v %v; want live.stop of session %s with seconds and reason stopped", stop, de, sid)
	}
}

func TestAuditAPIPagesFiltersAndCSV(t *testing.T) {
	l := newAuditLog(t)
	s := newTestServer(t, newCatalog(t), func(o *Options) { o.Auditor = l })
	ctx := t.Context()
	for i := range 25 {
		cam := "bastion-gate"
		if i%2 == 1 {
			cam = "palat-hall"
		}
		if err := l.Record(ctx, audit.Event{Actor: "10.20.1.7", Action: audit.ActionSegmentList, Camera: cam,
			Detail: map[string]any{"i": i, "reason": `quoted "text", with comma`}}); err != nil {
			t.Fatal(err)
		}
	}
	// Pages of 5 of bastion-gate's 13 entries, in seq order, without gaps or repeats.
	var seqs []int64
	next := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		q := "?camera=bastion-gate&action=segments.list&limit=5"
		if next != "" {
			q += "&next=" + next
		}
		p := getAudit(t, s, q)
		for _, e := range p.Entries {
			if e.Camera != "bastion-gate" {
				t.Errorf("filtered page holds %+v", e)
			}
			seqs = append(seqs, e.Seq)
		}
		if p.Next == nil {
			break
		}
		next = *p.Next
	}
	want := []int64{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25}
	if fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Errorf("paged seqs = %v, want %v", seqs, want)
	}
	if p := getAudit(t, s, "?user=alice"); len(p.Entries) != 0 {
		t.Errorf("user filter: %d entries, want none (no users yet)", len(p.Entries))
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if p := getAudit(t, s, "?from="+future); len(p.Entries) != 0 {
		t.Errorf("from in the future: %d entries", len(p.Entries))
	}
	if p := getAudit(t, s, "?to="+future+"&action=live.start"); len(p.Entries) != 0 {
		t.Errorf("action filter: %d entries", len(p.Entries))
	}

	rec := get(s, "/api/v1/audit?format=csv&camera=palat-hall")
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Disposition"), "attachment") ||
		!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %v", rec.Code, rec.Header())
	}
	rows, err := csv.NewReader(rec.Body).ReadAll()
	if err != nil {
		t.Fatalf("csv does not parse: %v", err)
	}
	if len(rows) != 13 || rows[0][0] != "seq" || rows[1][0] != "2" || rows[1][5] != "palat-hall" ||
		!strings.Contains(rows[1][6], `quoted \"text\", with comma`) || len(rows[1][8]) != 64 {
		t.Errorf("csv rows = %q", rows[:min(2, len(rows))])
	}

	for _, tc := range []struct{ query, field string }{
		{"?from=yesterday", "from"},
		{"?to=2026-13-01T00:00:00Z", "to"},
		{"?from=2026-11-30T10:00:00Z&to=2026-11-30T09:00:00Z", "from"},
		{"?limit=0", "limit"},
		{"?limit=10001", "limit"},
		{"?next=garbage", "next"},
		{"?format=xml", "format"},
		{"?camera=" + strings.Repeat("x", 200), "camera"},
	} {
		checkError(t, get(s, "/api/v1/audit"+tc.query), http.StatusBadRequest, tc.field, "")
	}
}

// TestAuditCSVFormulas: a cell that a spreadsheet would run as a formula is written
// as text in the CSV; the JSON answer keeps the text as recorded.
func TestAuditCSVFormulas(t *testing.T) {
	l := newAuditLog(t)
	s := newTestServer(t, newCatalog(t), func(o *Options) { o.Auditor = l })
	for _, ev := range []audit.Event{
		{Actor: "=1+2", User: "-a1", Action: "login.failed"},
		{Actor: "@sum", User: "+b", Action: "login.failed"},
		{Actor: "\tx", User: "\ry", Action: "login.failed"},
	} {
		if err := l.Record(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	rec := get(s, "/api/v1/audit?format=csv&action=login.failed")
	rows, err := csv.NewReader(rec.Body).ReadAll()
	if err != nil || len(rows) != 4 {
		t.Fatalf("csv: %d rows, %v", len(rows), err)
	}
	for _, row := range rows[1:] {
		for _, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("csv cell %q would run as a formula (row %q)", cell, row)
			}
		}
	}
	if rows[1][2] != "'=1+2" || rows[1][3] != "'-a1" {
		t.Errorf("csv row %q; want actor '=1+2 and user '-a1", rows[1])
	}
	if p := getAudit(t, s, "?action=login.failed"); len(p.Entries) != 3 || p.Entries[0].Actor != "=1+2" {
		t.Errorf("json entries %+v; want the text as recorded", p.Entries)
	}
}

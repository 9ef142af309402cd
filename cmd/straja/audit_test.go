package main

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/audit"
)

// TestAuditVerifyCommand runs the service (its start and a segments listing are
// recorded, its stop stores the head), then `straja audit verify` on the intact
// trail, on an edited one and on a shortened one.
func TestAuditVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig(t, dir, nil, 0)
	path := writeConfig(t, cfg)
	m := startMain(t, cfg)
	for i := range 3 {
		if err := m.audit.Record(t.Context(), audit.Event{Actor: "10.20.1.7", Action: audit.ActionSegmentList,
			Camera: "bastion-gate", Detail: map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "audit", "verify", "--config", path)
	if err != nil || !strings.Contains(out, "5 entries") { // service.start, 3 listings, service.stop
		t.Fatalf("verify of an intact trail = %v:\n%s", err, out)
	}
	dbPath := filepath.Join(dir, "state.db")
	s, err := state.Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	_ = s.AuditRows(t.Context(), state.AuditQuery{}, func(r state.AuditRow) error { actions = append(actions, r.Action); return nil })
	s.Close()
	if fmt.Sprint(actions) != "[service.start segments.list segments.list segments.list service.stop]" {
		t.Errorf("recorded actions = %v", actions)
	}

	tamper := func(q string) {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+dbPath)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, q := range []string{`DROP TRIGGER IF EXISTS audit_no_update`, `DROP TRIGGER IF EXISTS audit_no_delete`, q} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
	}
	tamper(`UPDATE audit SET camera = 'palat-hall' WHERE seq = 3`)
	if out, err := runCmd(t, "audit", "verify", "--config", path); err == nil || !strings.Contains(err.Error(), "audit entry 3: hash mismatch") {
		t.Fatalf("verify of an edited trail = %v:\n%s", err, out)
	}
	tamper(`DELETE FROM audit WHERE seq >= 3`)
	if out, err := runCmd(t, "audit", "verify", "--config", path); err == nil ||
		!strings.Contains(err.Error(), "stored head seq 5 is beyond the database's last entry 2") {
		t.Fatalf("verify of a shortened trail = %v:\n%s", err, out)
	}
}

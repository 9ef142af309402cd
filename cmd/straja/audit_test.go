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

// TestRestoreKeepsAuditTrail: restoring a backup brings back the state of its time,
// but not the audit trail's: entries written since the backup are carried over, so
// verify still agrees with the heads stored after the backup.
func TestRestoreKeepsAuditTrail(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig(t, dir, nil, 0)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, cfg)
	st := testStore(t, cfg)
	dbPath := filepath.Join(dir, "state.db")
	record := func(n int) {
		t.Helper()
		s, err := state.Open(t.Context(), dbPath)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		l, err := audit.New(t.Context(), s, audit.Options{Store: st}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			if err := l.Record(t.Context(), audit.Event{Actor: "10.20.1.7", Action: audit.ActionSegmentList, Camera: "gate"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil { // stores the head
			t.Fatal(err)
		}
	}
	record(3)
	if out, err := runCmd(t, "state", "backup", "--config", path); err != nil {
		t.Fatalf("state backup: %v\n%s", err, out)
	}
	record(2)
	out, err := runCmd(t, "state", "restore", "--config", path)
	if err != nil || !strings.Contains(out, "2 entries written since the backup carried over") {
		t.Fatalf("state restore = %v:\n%s", err, out)
	}
	out, err = runCmd(t, "audit", "verify", "--config", path)
	if err != nil || !strings.Contains(out, "6 entries") { // 5 listings and the restore
		t.Fatalf("verify after restore = %v:\n%s", err, out)
	}
}

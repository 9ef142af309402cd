package state

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestDeleteExport(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	from := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	for _, id := range []string{"a1", "b2", "c3"} {
		if err := s.AddExport(ctx, Export{ID: id, Camera: "gate", From: from, To: from.Add(time.Minute), Reason: "dosar",
			User: "admin.ana"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishExport(ctx, "a1", 10, "ab", "k"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetExportState(ctx, "b2", ExportRunning, ""); err != nil {
		t.Fatal(err)
	}
	exp, err := s.ExpiredExports(ctx, time.Now().Add(time.Minute))
	if err != nil || len(exp) != 1 || exp[0].ID != "a1" {
		t.Fatalf("expired = %+v, %v; want only the finished a1", exp, err)
	}
	if _, err := s.DeleteExport(ctx, "b2", "admin.dan", "gata"); !errors.Is(err, ErrExportBusy) {
		t.Errorf("delete running: %v, want ErrExportBusy", err)
	}
	if _, err := s.DeleteExport(ctx, "c3", "admin.dan", "gata"); !errors.Is(err, ErrExportBusy) {
		t.Errorf("delete queued: %v, want ErrExportBusy", err)
	}
	if _, err := s.DeleteExport(ctx, "zz", "admin.dan", "gata"); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete unknown: %v, want ErrNotFound", err)
	}
	e, err := s.DeleteExport(ctx, "a1", "admin.dan", "dosar clasat")
	if err != nil || e.Deleted.IsZero() || e.DeletedBy != "admin.dan" || e.DeleteReason != "dosar clasat" ||
		e.User != "admin.ana" || e.State != ExportDone {
		t.Fatalf("deleted = %+v, %v", e, err)
	}
	if _, err := s.DeleteExport(ctx, "a1", "admin.dan", "again"); !errors.Is(err, ErrExportDeleted) {
		t.Errorf("delete twice: %v, want ErrExportDeleted", err)
	}
	if exp, _ := s.ExpiredExports(ctx, time.Now().Add(time.Minute)); len(exp) != 0 {
		t.Errorf("a deleted export is still listed as expired: %+v", exp)
	}
	if list, _ := s.Exports(ctx, nil, 10); len(list) != 3 {
		t.Errorf("exports listed = %d, want 3: a deleted one keeps its row", len(list))
	}
}

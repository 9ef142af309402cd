package state

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// exportDeleteSchema lets an export's files be deleted (by an administrator, or by the
// service once export.keep has passed) while its row stays: the list and the audit
// trail keep saying who made it, why, and who deleted it.
const exportDeleteSchema = `ALTER TABLE exports ADD COLUMN deleted_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE exports ADD COLUMN deleted_by TEXT NOT NULL DEFAULT '';
ALTER TABLE exports ADD COLUMN delete_reason TEXT NOT NULL DEFAULT '';`

// ErrExportBusy is returned (wrapped) when deleting an export that is queued or running.
var ErrExportBusy = errors.New("export in progress")

// ErrExportDeleted is returned (wrapped) when deleting an export already deleted.
var ErrExportDeleted = errors.New("export already deleted")

// DeleteExport marks a finished (done or failed) export deleted by by, for reason.
// An unknown id returns ErrNotFound, a queued or running one ErrExportBusy, a deleted
// one ErrExportDeleted. Finished and deleted are final, so the check cannot race.
func (s *State) DeleteExport(ctx context.Context, id, by, reason string) (Export, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE exports SET deleted_ms = ?, deleted_by = ?, delete_reason = ?
		WHERE id = ? AND deleted_ms = 0 AND state IN ('done', 'failed')`, time.Now().UnixMilli(), by, reason, id)
	if err != nil {
		return Export{}, fmt.Errorf("state delete export %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return Export{}, fmt.Errorf("state delete export %s: %w", id, err)
	}
	e, err := s.Export(ctx, id)
	if err != nil || n == 1 {
		return e, err
	}
	if !e.Deleted.IsZero() {
		return e, fmt.Errorf("export %s was deleted %s by %s: %w", id, e.Deleted.Format(time.RFC3339), e.DeletedBy,
			ErrExportDeleted)
	}
	return e, fmt.Errorf("export %s is %s: wait until it has finished: %w", id, e.State, ErrExportBusy)
}

// ExpiredExports returns the finished exports made before t whose files are not
// deleted yet, oldest first.
func (s *State) ExpiredExports(ctx context.Context, t time.Time) ([]Export, error) {
	return s.queryExports(ctx, `SELECT `+exportColumns+` FROM exports
		WHERE deleted_ms = 0 AND state IN ('done', 'failed') AND created_ms < ? ORDER BY created_ms, id`, t.UnixMilli())
}

package web

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/audit"
)

type exportDeleteRequest struct {
	Reason string `json:"reason"`
}

// handleDeleteExport deletes a finished export's files, with a reason, recorded in the
// audit trail; the export stays listed, marked deleted, saying by whom and why.
func (s *Server) handleDeleteExport(w http.ResponseWriter, r *http.Request) error {
	st, err := s.exportOf(r)
	if err != nil {
		return err
	}
	var req exportDeleteRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		return &FieldError{"reason", "is required: say why the export is deleted"}
	}
	// Finished and deleted are final states: checked here, they hold until the
	// deletion below, so the trail records only deletions that happen.
	switch {
	case !st.Deleted.IsZero():
		return fmt.Errorf("export %s was deleted %s by %s: %w", st.ID, st.Deleted.Format("2006-01-02 15:04:05Z"),
			st.DeletedBy, state.ErrExportDeleted)
	case st.State == state.ExportQueued || st.State == state.ExportRunning:
		return fmt.Errorf("export %s is %s: wait until it has finished: %w", st.ID, st.State, state.ErrExportBusy)
	}
	if err := s.record(r, audit.Event{Action: audit.ActionExportDelete, Camera: st.Camera,
		Detail: map[string]any{"export": st.ID, "reason": reason, "exported_by": st.User}}); err != nil {
		return err
	}
	out, err := s.exports.Delete(r.Context(), st.ID, principal(r).Username, reason)
	if err != nil && out.ID == "" {
		return exportError(err)
	}
	if err != nil {
		// Marked deleted; the files a failed removal left go with the next expiry run.
		s.log.Warn("export deleted, files left for the next sweep", "request_id", requestID(r.Context()), "export", st.ID, "err", err)
	}
	writeJSON(w, http.StatusOK, s.exportJSON(out))
	return nil
}

package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/straja-nvr/straja/storage/retention"
	"github.com/straja-nvr/straja/web/audit"
)

// Retention is what the retention API needs (*retention.Runner).
type Retention interface {
	Policies() []retention.Policy
	Resolve(camera, site string) retention.Policy
	PutPolicy(ctx context.Context, p retention.Policy, by string) (retention.Policy, error)
	DeletePolicy(ctx context.Context, name, by string) error
	Plan(ctx context.Context, p *retention.Policy, force bool) (*retention.Plan, error)
	Run(ctx context.Context, kind, policy string, force bool) (retention.Run, error)
	Runs(ctx context.Context, limit int) ([]retention.Run, error)
}

// errRetentionOff answers the retention routes of a server without retention.
var errRetentionOff = errors.New("retention is not running on this server")

// retentionRunTimeout bounds a run started through the API.
const retentionRunTimeout = 10 * time.Minute

// policiesJSON is the answer of GET /api/v1/retention/policies: every policy, and
// which one each camera resolves to.
type policiesJSON struct {
	Policies  []retention.Policy `json:"policies"`
	Effective map[string]string  `json:"effective"` // camera ID -> policy name
}

func (s *Server) handleRetentionPolicies(w http.ResponseWriter, r *http.Request) error {
	if s.retention == nil {
		return errRetentionOff
	}
	out := policiesJSON{Policies: s.retention.Policies(), Effective: map[string]string{}}
	for _, c := range s.cams.Cameras() {
		out.Effective[c.ID] = s.retention.Resolve(c.ID, c.Site).Name
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// retentionError turns the retention package's errors into the API's: a bad field
// names it.
func retentionError(err error) error {
	var pe retention.PolicyErrors
	if errors.As(err, &pe) && len(pe) > 0 {
		msgs := make([]string, len(pe))
		for i, e := range pe {
			msgs[i] = e.Error()
		}
		// The first field is the one to fix first; the message lists them all.
		return &FieldError{Field: pe[0].Field, Msg: strings.TrimPrefix(strings.Join(msgs, "; "), pe[0].Field+": ")}
	}
	var fe *retention.FieldError
	if errors.As(err, &fe) {
		return &FieldError{Field: fe.Field, Msg: fe.Msg}
	}
	return err
}

// decodePolicy reads a policy body; a bad max_age names the field.
func decodePolicy(r *http.Request, p any) error {
	return retentionError(decodeJSON(r, p))
}

func (s *Server) handlePutRetentionPolicy(w http.ResponseWriter, r *http.Request) error {
	if s.retention == nil {
		return errRetentionOff
	}
	name := r.PathValue("name")
	var p retention.Policy
	if err := decodePolicy(r, &p); err != nil {
		return err
	}
	if p.Name != "" && p.Name != name {
		return &FieldError{Field: "name", Msg: fmt.Sprintf("%q differs from the policy in the path, %q", truncate(p.Name, 64), truncate(name, 64))}
	}
	p.Name = name
	u := principal(r)
	saved, err := s.retention.PutPolicy(r.Context(), p, u.Username)
	if err != nil {
		return retentionError(err)
	}
	if err := s.record(r, audit.Event{Action: audit.ActionRetentionPolicySet, Detail: map[string]any{
		"policy": saved.Name, "sites": saved.Sites, "cameras": saved.Cameras, "max_age": retention.FormatAge(saved.MaxAge),
		"max_bytes": saved.MaxBytes, "schedule": saved.Schedule, "justification": saved.Justification}}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, saved)
	return nil
}

func (s *Server) handleDeleteRetentionPolicy(w http.ResponseWriter, r *http.Request) error {
	if s.retention == nil {
		return errRetentionOff
	}
	name := r.PathValue("name")
	if err := s.retention.DeletePolicy(r.Context(), name, principal(r).Username); err != nil {
		return err
	}
	if err := s.record(r, audit.Event{Action: audit.ActionRetentionPolicyDelete, Detail: map[string]any{"policy": name}}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// planRequest asks for a dry run, optionally as if Policy were set (the editor's
// preview before saving).
type planRequest struct {
	Policy *retention.Policy `json:"policy"`
	Force  bool              `json:"force"`
}

// planJSON is a dry run's answer.
type planJSON struct {
	*retention.Plan
	Delete      int   `json:"delete"`
	DeleteBytes int64 `json:"delete_bytes"`
	SafetyStops int   `json:"safety_stops"`
}

func (s *Server) handleRetentionPlan(w http.ResponseWriter, r *http.Request) error {
	if s.retention == nil {
		return errRetentionOff
	}
	var req planRequest
	if r.ContentLength != 0 {
		if err := decodePolicy(r, &req); err != nil {
			return err
		}
	}
	if req.Policy != nil && req.Policy.Name == "" {
		return &FieldError{Field: "policy.name", Msg: "is required"}
	}
	plan, err := s.retention.Plan(r.Context(), req.Policy, req.Force)
	if err != nil {
		return retentionError(err)
	}
	if plan.Cameras == nil {
		plan.Cameras = []retention.CameraPlan{}
	}
	out := planJSON{Plan: plan}
	out.Delete, out.DeleteBytes, out.SafetyStops = plan.Totals()
	writeJSON(w, http.StatusOK, out)
	return nil
}

type runRequest struct {
	Force bool `json:"force"`
}

func (s *Server) handleRetentionRun(w http.ResponseWriter, r *http.Request) error {
	if s.retention == nil {
		return errRetentionOff
	}
	var req runRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
	}
	run, runErr := s.retention.Run(r.Context(), retention.KindManual, "", req.Force)
	if run.ID == 0 && runErr != nil {
		return runErr
	}
	deleted, bytes, errs, stops := run.Totals()
	if err := s.record(r, audit.Event{Action: audit.ActionRetentionRun, Detail: map[string]any{
		"run": run.ID, "kind": run.Kind, "forced": run.Forced, "deleted": deleted, "bytes": bytes, "errors": errs,
		"safety_stops": stops, "error": run.Error}}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

func (s *Server) handleRetentionRuns(w http.ResponseWriter, r *http.Request) error {
	if s.retention == nil {
		return errRetentionOff
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return &FieldError{Field: "limit", Msg: "must be a whole number from 1 to 1000"}
		}
		limit = n
	}
	runs, err := s.retention.Runs(r.Context(), limit)
	if err != nil {
		return err
	}
	if runs == nil {
		runs = []retention.Run{}
	}
	writeJSON(w, http.StatusOK, runs)
	return nil
}

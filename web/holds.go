package web

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/audit"
	"github.com/straja-nvr/straja/web/auth"
)

// HoldKeeper keeps evidence holds (*holds.Registry).
type HoldKeeper interface {
	Create(ctx context.Context, h state.Hold) (state.Hold, error)
	Release(ctx context.Context, id, by, reason string) (state.Hold, error)
	Get(ctx context.Context, id string) (state.Hold, error)
	List(ctx context.Context) ([]state.Hold, error)
}

// errNoHolds answers hold routes on a server wired without holds.
var errNoHolds = errors.New("evidence holds are not available on this server")

// Limits of a hold request.
const (
	maxHoldReason  = 1000
	maxHoldCameras = 256
)

// holdJSON is a hold as the API shows it.
type holdJSON struct {
	state.Hold
	// Status is active, expired or released.
	Status string `json:"status"`
}

func (s *Server) holdOut(h state.Hold) holdJSON {
	st := "active"
	switch {
	case !h.Released.IsZero():
		st = "released"
	case !h.Expires.IsZero() && !time.Now().Before(h.Expires):
		st = "expired"
	}
	if h.Cameras == nil {
		h.Cameras = []string{}
	}
	return holdJSON{Hold: h, Status: st}
}

type holdRequest struct {
	Cameras []string `json:"cameras"`
	Site    string   `json:"site"`
	From    string   `json:"from"`
	To      string   `json:"to"`
	Reason  string   `json:"reason"`
	Expires string   `json:"expires"`
}

// holdCameras is what a hold covers now: its cameras, or its site's.
func (s *Server) holdCameras(h state.Hold) []string {
	if h.Site == "" {
		return h.Cameras
	}
	var ids []string
	for _, c := range s.cams.Cameras() {
		if c.Site == h.Site {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// mayHold checks the caller's hold right on what h covers: every camera, and for a
// site hold the site itself when it has no camera yet. A camera deleted since the
// hold was set is judged by the site it had then.
func (s *Server) mayHold(r *http.Request, h state.Hold) error {
	cams := s.holdCameras(h)
	if h.Site != "" && len(cams) == 0 && !principal(r).May(auth.RightHold, "", h.Site) {
		return errorf(errForbidden, "you may not %s site %q", rightVerb[auth.RightHold], h.Site)
	}
	known := make([]string, 0, len(cams))
	for _, id := range cams {
		if _, ok := s.cams.Camera(id); ok || h.CameraSites[id] == "" {
			known = append(known, id)
		} else if !principal(r).May(auth.RightHold, id, h.CameraSites[id]) {
			return errorf(errForbidden, "you may not %s camera %q", rightVerb[auth.RightHold], id)
		}
	}
	return s.mayAll(r, auth.RightHold, known)
}

func (s *Server) handleHolds(w http.ResponseWriter, r *http.Request) error {
	if s.holds == nil {
		return errNoHolds
	}
	all, err := s.holds.List(r.Context())
	if err != nil {
		return err
	}
	out := []holdJSON{}
	for _, h := range all {
		if s.mayHold(r, h) == nil {
			out = append(out, s.holdOut(h))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleAddHold(w http.ResponseWriter, r *http.Request) error {
	if s.holds == nil {
		return errNoHolds
	}
	var req holdRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	h, err := s.checkHold(req)
	if err != nil {
		return err
	}
	if err := s.mayHold(r, h); err != nil {
		return err
	}
	h.By = principal(r).Username
	for _, id := range h.Cameras {
		if c, ok := s.cams.Camera(id); ok && c.Site != "" {
			if h.CameraSites == nil {
				h.CameraSites = map[string]string{}
			}
			h.CameraSites[id] = c.Site
		}
	}
	h, err = s.holds.Create(r.Context(), h)
	if err != nil {
		return err
	}
	detail := holdDetail(h)
	detail["from"], detail["to"], detail["reason"] = h.From, h.To, h.Reason
	if !h.Expires.IsZero() {
		detail["expires"] = h.Expires
	}
	if err := s.record(r, audit.Event{Action: audit.ActionHoldSet, Camera: oneCamera(h.Cameras), Detail: detail}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.holdOut(h))
	return nil
}

// holdDetail is the audit detail naming hold h, plus more key-value pairs.
func holdDetail(h state.Hold, kv ...string) map[string]any {
	d := map[string]any{"id": h.ID}
	if h.Site != "" {
		d["site"] = h.Site
	} else {
		d["cameras"] = h.Cameras
	}
	for i := 0; i+1 < len(kv); i += 2 {
		d[kv[i]] = kv[i+1]
	}
	return d
}

// oneCamera is the audit entry's camera: the hold's only camera, else none (the
// detail lists them).
func oneCamera(ids []string) string {
	if len(ids) == 1 {
		return ids[0]
	}
	return ""
}

// checkHold validates a hold request, naming the field at fault.
func (s *Server) checkHold(req holdRequest) (state.Hold, error) {
	var h state.Hold
	h.Reason = strings.TrimSpace(req.Reason)
	switch {
	case h.Reason == "":
		return h, &FieldError{Field: "reason", Msg: "is required: say why the footage is held (case, incident)"}
	case len(h.Reason) > maxHoldReason:
		return h, &FieldError{Field: "reason", Msg: "is longer than 1000 bytes"}
	}
	switch {
	case len(req.Cameras) == 0 && req.Site == "":
		return h, &FieldError{Field: "cameras", Msg: "name the cameras to hold, or a site"}
	case len(req.Cameras) > 0 && req.Site != "":
		return h, &FieldError{Field: "site", Msg: "give cameras or a site, not both"}
	case len(req.Cameras) > maxHoldCameras:
		return h, &FieldError{Field: "cameras", Msg: "too many cameras"}
	}
	for _, id := range req.Cameras {
		if err := storage.CheckCameraID(id); err != nil {
			return h, &FieldError{Field: "cameras", Msg: err.Error()}
		}
		if !slices.Contains(h.Cameras, id) {
			h.Cameras = append(h.Cameras, id)
		}
	}
	if req.Site != "" {
		known := s.users.Targets
		if s.users.Known != nil {
			known = s.users.Known()
		}
		if !slices.Contains(known.Sites, req.Site) {
			return h, &FieldError{Field: "site", Msg: "unknown site " + quote(req.Site)}
		}
		h.Site = req.Site
	}
	var err error
	if h.From, err = parseTime(req.From, "from", time.Time{}); err != nil {
		return h, err
	}
	if h.To, err = parseTime(req.To, "to", time.Time{}); err != nil {
		return h, err
	}
	if !h.To.After(h.From) {
		return h, &FieldError{Field: "to", Msg: "must be after from"}
	}
	if req.Expires != "" {
		if h.Expires, err = parseTime(req.Expires, "expires", time.Time{}); err != nil {
			return h, err
		}
	}
	if !h.Expires.IsZero() && !h.Expires.After(time.Now()) {
		return h, &FieldError{Field: "expires", Msg: "must be in the future (leave it out to hold until released)"}
	}
	return h, nil
}

func quote(s string) string { return `"` + truncate(s, 64) + `"` }

type releaseRequest struct {
	Reason string `json:"reason"`
}

// handleReleaseHold releases a hold: the reason comes in a JSON body or ?reason=.
func (s *Server) handleReleaseHold(w http.ResponseWriter, r *http.Request) error {
	if s.holds == nil {
		return errNoHolds
	}
	reason := r.URL.Query().Get("reason")
	if reason == "" && r.Header.Get("Content-Type") != "" {
		var req releaseRequest
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
		reason = req.Reason
	}
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return &FieldError{Field: "reason", Msg: "is required: say why the hold is released"}
	case len(reason) > maxHoldReason:
		return &FieldError{Field: "reason", Msg: "is longer than 1000 bytes"}
	}
	id := r.PathValue("hold")
	h, err := s.holds.Get(r.Context(), id)
	if errors.Is(err, state.ErrNotFound) {
		err = errorf(errNotFound, "hold %s not found", quote(id))
	}
	if err != nil {
		return err
	}
	if err := s.mayHold(r, h); err != nil {
		return err
	}
	h, err = s.holds.Release(r.Context(), id, principal(r).Username, reason)
	if err != nil {
		return err
	}
	if err := s.record(r, audit.Event{Action: audit.ActionHoldRelease, Camera: oneCamera(h.Cameras),
		Detail: holdDetail(h, "reason", reason)}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.holdOut(h))
	return nil
}

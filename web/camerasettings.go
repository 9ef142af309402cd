package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/straja-nvr/straja/web/audit"
)

// CameraSettings is a camera's settings as the API reads and writes them. Password is
// write-only: it is never in a response, a log line or an audit entry; an update that
// leaves it empty keeps the stored one.
type CameraSettings struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Site string `json:"site"`
	// URL and LiveURL are rtsp:// or rtsps:// without credentials: Username and
	// Password apply to both.
	URL      string `json:"url"`
	LiveURL  string `json:"live_url,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// Transport is auto, tcp or udp; ReadTimeout a duration such as "10s".
	Transport   string `json:"transport,omitempty"`
	ReadTimeout string `json:"read_timeout,omitempty"`
	// Record false means live view only; nil in a request means true.
	Record *bool `json:"record,omitempty"`
	// PasswordSet and Source are shown, never written: whether a password is stored,
	// and where the camera comes from (SourceConfig or SourceAPI).
	PasswordSet bool   `json:"password_set"`
	Source      string `json:"source"`
	// PasswordUnreadable: the stored password cannot be decrypted (the secrets key
	// differs or is missing), so the camera is not started until it is entered again.
	PasswordUnreadable bool `json:"password_unreadable,omitempty"`
}

// SiteSettings is a site as the API reads and writes it.
type SiteSettings struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Source string `json:"source"` // shown, never written
}

// Where a camera or site comes from. The configuration file wins: its cameras and
// sites cannot be changed through the API, and a runtime one cannot take an ID the file
// uses.
const (
	SourceConfig = "config"
	SourceAPI    = "api"
)

// CameraManager changes the cameras and sites at runtime: it checks a change by the
// configuration file's rules, stores it in the state database and applies it to the
// recorder, restarting only the camera that changed. Errors are *FieldError for a bad
// field, ErrConflict when the change contradicts what exists, and match errNotFound
// (NotFound) for an unknown ID; their text never holds a password. Safe for concurrent
// use; changes are applied one at a time.
type CameraManager interface {
	CameraSettings(ctx context.Context) ([]CameraSettings, error)
	AddCamera(ctx context.Context, c CameraSettings) (CameraSettings, error)
	// UpdateCamera replaces the settings of camera id; an empty Password keeps the
	// stored one. It returns the settings before and after.
	UpdateCamera(ctx context.Context, id string, c CameraSettings) (before, after CameraSettings, err error)
	DeleteCamera(ctx context.Context, id string) (CameraSettings, error)
	Sites(ctx context.Context) ([]SiteSettings, error)
	AddSite(ctx context.Context, s SiteSettings) (SiteSettings, error)
	UpdateSite(ctx context.Context, id string, s SiteSettings) (before, after SiteSettings, err error)
	DeleteSite(ctx context.Context, id string) (SiteSettings, error)
	// RetiredSite returns the site of a camera deleted at runtime, whose footage stays:
	// grants by site keep reaching it.
	RetiredSite(id string) (string, bool)
}

// HeldCameras says which cameras have footage under an evidence hold in force.
type HeldCameras interface {
	HeldCameras(ctx context.Context) (map[string]bool, error)
}

// ErrConflict is a change that contradicts what exists: an ID in use, a camera of the
// configuration file, a site that still has cameras, footage under a hold. 409.
var ErrConflict = errors.New("conflict")

// Conflict is an ErrConflict whose text says why, for the user.
func Conflict(format string, args ...any) error { return errorf(ErrConflict, format, args...) }

// NotFound is a 404 whose text says what was not found.
func NotFound(format string, args ...any) error { return errorf(errNotFound, format, args...) }

// errNoManager answers camera changes on a server wired without a CameraManager.
var errNoManager = errors.New("camera management is not available")

func (s *Server) manager() (CameraManager, error) {
	if s.mgr == nil {
		return nil, errorf(errNoManager, "camera management is not available on this server")
	}
	return s.mgr, nil
}

// handleCameraSettings shows one camera's settings, for the edit form.
func (s *Server) handleCameraSettings(w http.ResponseWriter, r *http.Request) error {
	m, err := s.manager()
	if err != nil {
		return err
	}
	all, err := m.CameraSettings(r.Context())
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	for _, c := range all {
		if c.ID == id {
			writeJSON(w, http.StatusOK, shown(c))
			return nil
		}
	}
	s.writeError(w, r, NotFound("camera %q not found", id))
	return nil
}

func (s *Server) handleAddCamera(w http.ResponseWriter, r *http.Request) error {
	m, err := s.manager()
	if err != nil {
		return err
	}
	var req CameraSettings
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.ID == "probe" {
		return &FieldError{Field: "id", Msg: `"probe" is reserved (POST /api/v1/cameras/probe)`}
	}
	c, err := m.AddCamera(r.Context(), req)
	if err != nil {
		return err
	}
	c = shown(c)
	if err := s.record(r, audit.Event{Action: audit.ActionCameraAdd, Camera: c.ID, Detail: map[string]any{
		"settings": auditSettings(c)}}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Server) handleUpdateCamera(w http.ResponseWriter, r *http.Request) error {
	m, err := s.manager()
	if err != nil {
		return err
	}
	var req CameraSettings
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	if req.ID != "" && req.ID != id {
		return &FieldError{Field: "id", Msg: "cannot be changed: add a new camera and delete this one"}
	}
	req.ID = id
	newPassword := req.Password != ""
	before, after, err := m.UpdateCamera(r.Context(), id, req)
	if err != nil {
		return err
	}
	after = shown(after)
	if err := s.record(r, audit.Event{Action: audit.ActionCameraUpdate, Camera: id, Detail: map[string]any{
		"before": auditSettings(before), "after": auditSettings(after), "password_changed": newPassword}}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, after)
	return nil
}

func (s *Server) handleDeleteCamera(w http.ResponseWriter, r *http.Request) error {
	m, err := s.manager()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	keep, err := boolParam(r, "keep_holds")
	if err != nil {
		return err
	}
	if s.held != nil && !keep {
		held, err := s.held.HeldCameras(r.Context())
		if err != nil {
			return err
		}
		if held[id] {
			return Conflict("camera %q has footage under an evidence hold; delete with keep_holds=true "+
				"to remove the camera and keep its held footage (and every other) as it is", id)
		}
	}
	c, err := m.DeleteCamera(r.Context(), id)
	if err != nil {
		return err
	}
	if err := s.record(r, audit.Event{Action: audit.ActionCameraDelete, Camera: id, Detail: map[string]any{
		"settings": auditSettings(shown(c)), "keep_holds": keep}}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleSites(w http.ResponseWriter, r *http.Request) error {
	m, err := s.manager()
	if err != nil {
		return err
	}
	sites, err := m.Sites(r.Context())
	if err != nil {
		return err
	}
	if sites == nil {
		sites = []SiteSettings{}
	}
	writeJSON(w, http.StatusOK, sites)
	return nil
}

func (s *Server) handleAddSite(w http.ResponseWriter, r *http.Request) error {
	m, err := s.manager()
	if err != nil {
		return err
	}
	var req SiteSettings
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	st, err := m.AddSite(r.Context(), req)
	if err != nil {
		return err
	}
	if err := s.record(r, audit.Event{Action: audit.ActionSiteAdd, Detail: map[string]any{"id": st.ID, "name": st.Name}}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, st)
	return nil
}

func (s *Server) handleUpdateSite(w http.ResponseWriter, r *http.Request) error {
	m, err := s.manager()
	if err != nil {
		return err
	}
	var req SiteSettings
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	if req.ID != "" && req.ID != id {
		return &FieldError{Field: "id", Msg: "cannot be changed"}
	}
	req.ID = id
	before, after, err := m.UpdateSite(r.Context(), id, req)
	if err != nil {
		return err
	}
	if err := s.record(r, audit.Event{Action: audit.ActionSiteUpdate, Detail: map[string]any{"id": id,
		"before": map[string]any{"name": before.Name}, "after": map[string]any{"name": after.Name}}}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, after)
	return nil
}

func (s *Server) handleDeleteSite(w http.ResponseWriter, r *http.Request) error {
	m, err := s.manager()
	if err != nil {
		return err
	}
	st, err := m.DeleteSite(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.record(r, audit.Event{Action: audit.ActionSiteDelete, Detail: map[string]any{"id": st.ID, "name": st.Name}}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// shown is c as a response carries it: never a password.
func shown(c CameraSettings) CameraSettings {
	c.Password = ""
	return c
}

// auditSettings is what the audit trail keeps of a camera's settings: no password.
func auditSettings(c CameraSettings) map[string]any {
	rec := c.Record == nil || *c.Record
	return map[string]any{"name": c.Name, "site": c.Site, "url": c.URL, "live_url": c.LiveURL, "username": c.Username,
		"transport": c.Transport, "read_timeout": c.ReadTimeout, "record": rec, "password_set": c.PasswordSet}
}

// boolParam reads an optional true/false query parameter.
func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &FieldError{Field: name, Msg: "must be true or false"}
	}
	return b, nil
}

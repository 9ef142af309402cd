package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/straja-nvr/straja/storage/export"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/audit"
	"github.com/straja-nvr/straja/web/auth"
)

// Exports runs clip exports (*export.Exporter).
type Exports interface {
	// Check reports what Submit would refuse (*export.InputError).
	Check(ctx context.Context, req export.Request) error
	Submit(ctx context.Context, req export.Request) (export.Status, error)
	Get(ctx context.Context, id string) (export.Status, error)
	List(ctx context.Context, cameras []string, limit int) ([]export.Status, error)
	// File returns the path of a finished export's clip, manifest or signature.
	File(ctx context.Context, id, name string) (string, error)
	WriteBundle(ctx context.Context, w io.Writer, id string) error
	// Delete deletes a finished export's files, keeping its row marked deleted by by.
	Delete(ctx context.Context, id, by, reason string) (export.Status, error)
	Keys() ([]export.PublicKey, error)
}

// exportsPath is the prefix of an export's files.
const exportsPath = "/api/v1/exports/"

// exportJSON is one export as the API shows it.
type exportJSON struct {
	ID         string            `json:"id"`
	Camera     string            `json:"camera"`
	CameraName string            `json:"camera_name"`
	From       time.Time         `json:"from"`
	To         time.Time         `json:"to"`
	Reason     string            `json:"reason"`
	User       string            `json:"user"`
	State      string            `json:"state"`
	Progress   float64           `json:"progress"`
	Error      string            `json:"error,omitempty"`
	Created    time.Time         `json:"created"`
	Updated    time.Time         `json:"updated"`
	ClipSize   int64             `json:"clip_size,omitempty"`
	ClipSHA256 string            `json:"clip_sha256,omitempty"`
	KeyID      string            `json:"key_id,omitempty"`
	Files      map[string]string `json:"files,omitempty"` // name -> URL, once done
	// Deleted is when its files were deleted, by whom (a user, or "service" once
	// export.keep passed) and why; State is then "deleted".
	Deleted      *time.Time `json:"deleted,omitempty"`
	DeletedBy    string     `json:"deleted_by,omitempty"`
	DeleteReason string     `json:"delete_reason,omitempty"`
}

// exportDeleted is an export's state in the API once its files are deleted.
const exportDeleted = "deleted"

func (s *Server) exportJSON(st export.Status) exportJSON {
	out := exportJSON{ID: st.ID, Camera: st.Camera, From: st.From, To: st.To, Reason: st.Reason, User: st.User,
		State: st.State, Progress: st.Progress, Error: st.Error, Created: st.Created, Updated: st.Updated,
		ClipSize: st.ClipSize, ClipSHA256: st.ClipSHA256, KeyID: st.KeyID}
	if c, ok := s.cams.Camera(st.Camera); ok {
		out.CameraName = c.Name
	}
	if !st.Deleted.IsZero() {
		t := st.Deleted
		out.State, out.Deleted, out.DeletedBy, out.DeleteReason = exportDeleted, &t, st.DeletedBy, st.DeleteReason
		return out
	}
	if st.State == state.ExportDone {
		out.Files = map[string]string{}
		for _, f := range []string{export.ClipFile, export.ManifestFile, export.SignatureFile, export.BundleFile} {
			out.Files[f] = exportsPath + st.ID + "/" + f
		}
	}
	return out
}

type exportRequest struct {
	Camera string `json:"camera"`
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason"`
}

// handleExport queues an export: 202 and the export, whose state the client polls.
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) error {
	var req exportRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Camera == "" {
		return &FieldError{"camera", "is required"}
	}
	if err := s.mayAll(r, auth.RightExport, []string{req.Camera}); err != nil {
		return err
	}
	if s.exports == nil {
		return errorf(errExportsOff, "export is not running on this server")
	}
	from, err := parseTime(req.From, "from", time.Time{})
	if err != nil {
		return err
	}
	to, err := parseTime(req.To, "to", time.Time{})
	if err != nil {
		return err
	}
	if strings.TrimSpace(req.Reason) == "" {
		return &FieldError{"reason", "is required: say why the footage leaves the system"}
	}
	// mayAll let it through: it exists, or was deleted at runtime and its footage stays.
	c, ok := s.cams.Camera(req.Camera)
	if !ok {
		c.ID, c.Name, c.Site = req.Camera, req.Camera, s.siteOf(req.Camera)
	}
	u := principal(r)
	er := export.Request{Camera: c.ID, CameraName: c.Name, Site: c.Site, SiteName: c.SiteName, From: from, To: to,
		Reason: req.Reason, User: u.Username}
	if err := s.exports.Check(r.Context(), er); err != nil {
		return exportError(err)
	}
	// Recorded before the export is queued, and waited for: no footage leaves the
	// system without its entry in the trail.
	if err := s.record(r, audit.Event{Action: audit.ActionExport, Camera: c.ID,
		Detail: map[string]any{"from": from.UTC(), "to": to.UTC(), "reason": strings.TrimSpace(req.Reason)}}); err != nil {
		return err
	}
	st, err := s.exports.Submit(r.Context(), er)
	if err != nil {
		return exportError(err)
	}
	w.Header().Set("Location", exportsPath+st.ID)
	writeJSON(w, http.StatusAccepted, s.exportJSON(st))
	return nil
}

// handleExportStatus shows one export: state, progress, error, files once done.
func (s *Server) handleExportStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := s.exportOf(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.exportJSON(st))
	return nil
}

// handleExports lists the newest exports of the cameras the caller may export.
func (s *Server) handleExports(w http.ResponseWriter, r *http.Request) error {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return &FieldError{"limit", "must be a whole number from 1 to 1000"}
		}
		limit = n
	}
	if s.exports == nil {
		writeJSON(w, http.StatusOK, []exportJSON{})
		return nil
	}
	u := principal(r)
	cams := []string{}
	for _, c := range s.cams.Cameras() {
		if u.May(auth.RightExport, c.ID, c.Site) {
			cams = append(cams, c.ID)
		}
	}
	list, err := s.exports.List(r.Context(), cams, limit)
	if err != nil {
		return err
	}
	out := make([]exportJSON, len(list))
	for i, st := range list {
		out[i] = s.exportJSON(st)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleExportFile sends one file of a finished export; downloading footage is
// recorded in the audit trail.
func (s *Server) handleExportFile(w http.ResponseWriter, r *http.Request) error {
	st, err := s.exportOf(r)
	if err != nil {
		return err
	}
	name := r.PathValue("file")
	if name != export.BundleFile && name != export.ClipFile && name != export.ManifestFile && name != export.SignatureFile {
		return errorf(errNotFound, "an export has %s, %s, %s and %s; no %q", export.ClipFile,
			export.ManifestFile, export.SignatureFile, export.BundleFile, truncate(name, 64))
	}
	if !st.Deleted.IsZero() {
		return fmt.Errorf("export %s was deleted by %s: %w", st.ID, st.DeletedBy, state.ErrExportDeleted)
	}
	if st.State != state.ExportDone {
		return errorf(errExportNotReady, "export %s is %s: its files are there once it is done", st.ID, st.State)
	}
	if name == export.ClipFile || name == export.BundleFile {
		if err := s.note(r, audit.Event{Action: audit.ActionExportDownload, Camera: st.Camera,
			Detail: map[string]any{"export": st.ID, "file": name}}); err != nil {
			return err
		}
	}
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="straja-%s-%s-%s"`, st.Camera, st.ID, name))
	if name == export.BundleFile {
		// Made as it is sent, from the files on disk: no second copy of the clip.
		w.Header().Set("Content-Type", "application/zip")
		if r.Method == http.MethodHead {
			return nil
		}
		if err := s.exports.WriteBundle(r.Context(), w, st.ID); err != nil {
			s.log.Warn("export bundle cut short", "request_id", requestID(r.Context()), "export", st.ID, "err", err)
			panic(http.ErrAbortHandler) // the status is sent: cut the response so the zip is not taken as whole
		}
		return nil
	}
	path, err := s.exports.File(r.Context(), st.ID, name)
	if err != nil {
		return exportError(err)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	switch name {
	case export.ClipFile:
		w.Header().Set("Content-Type", "video/mp4")
	case export.ManifestFile:
		w.Header().Set("Content-Type", "application/json")
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	w.Header().Set("ETag", `"`+st.ClipSHA256+"-"+name+`"`)
	http.ServeContent(w, r, "", fi.ModTime(), f)
	return nil
}

// exportOf looks up the path's export, refusing an export of a camera the caller
// may not export (403, as for any camera not granted).
func (s *Server) exportOf(r *http.Request) (export.Status, error) {
	if s.exports == nil {
		return export.Status{}, errorf(errNotFound, "export %q not found", truncate(r.PathValue("id"), 64))
	}
	st, err := s.exports.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, state.ErrNotFound) {
		return st, errorf(errNotFound, "export %q not found", truncate(r.PathValue("id"), 64))
	}
	if err != nil {
		return st, err
	}
	if err := s.mayAll(r, auth.RightExport, []string{st.Camera}); err != nil {
		return st, err
	}
	return st, nil
}

// exportKeyJSON is one signing key as /api/v1/export-keys shows it.
type exportKeyJSON struct {
	ID      string    `json:"id"`
	Current bool      `json:"current"`
	Created time.Time `json:"created"`
	PEM     string    `json:"pem"`
}

// handleExportKeys lists the export signing keys' public halves, current first.
func (s *Server) handleExportKeys(w http.ResponseWriter, r *http.Request) error {
	out := []exportKeyJSON{}
	if s.exports != nil {
		keys, err := s.exports.Keys()
		if err != nil {
			return err
		}
		for _, k := range keys {
			out = append(out, exportKeyJSON{ID: k.ID, Current: k.Current, Created: k.Created, PEM: k.PEM})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// exportError turns the exporter's errors into the HTTP layer's.
func exportError(err error) error {
	var ie *export.InputError
	if errors.As(err, &ie) {
		return &FieldError{ie.Field, ie.Msg}
	}
	if errors.Is(err, state.ErrNotFound) {
		return errorf(errNotFound, "%v", err)
	}
	return err
}

// Errors of export.
var (
	errExportsOff     = errors.New("export is off")
	errExportNotReady = errors.New("export not finished")
)

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/internal/redact"
	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/recorder/ingest"
	"github.com/straja-nvr/straja/storage/retention"
	"github.com/straja-nvr/straja/storage/secrets"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web"
	"github.com/straja-nvr/straja/web/auth"
)

// cameraManager is web.CameraManager over the configuration file, the state database
// and the recorder. The file wins: its cameras and sites are shown with source
// "config" and cannot be changed or deleted through the API (409: edit the file), and
// a runtime camera or site cannot take one of its IDs. A runtime camera whose ID the
// file takes later (the file was edited) is not started, with a warning at start.
type cameraManager struct {
	cfg *configs.Config
	log *slog.Logger
	db  *state.State
	rec *recorder.Recorder
	// box seals the runtime cameras' passwords in the state database.
	box *secrets.Box

	// change is held through a whole change (check, store, apply), so changes apply
	// one at a time in the order they were stored.
	change sync.Mutex

	mu    sync.RWMutex // guards what follows; held only briefly, never through Apply
	sites []state.Site
	cams  map[string]runtimeCamera
	// retired maps cameras deleted at runtime to their site: their footage stays, and
	// grants by site keep reaching it.
	retired map[string]string
}

// runtimeCamera is a runtime camera as the state database keeps it (cameras.spec). The
// password is kept sealed with the data directory's secrets key, never in clear: the
// state database goes into backups in the object store, the key does not.
type runtimeCamera struct {
	ID       string `json:"-"`
	Name     string `json:"name"`
	Site     string `json:"site"`
	URL      string `json:"url"` // without user information
	LiveURL  string `json:"live_url,omitempty"`
	Username string `json:"username,omitempty"`
	// Password is in memory only; PasswordSealed is what is stored.
	Password       string `json:"-"`
	PasswordSealed string `json:"password_sealed,omitempty"`
	// Held says why the stored password cannot be read: the camera is not started
	// until it is entered again.
	Held        string `json:"-"`
	Transport   string `json:"transport"`
	ReadTimeout string `json:"read_timeout"`
	Record      bool   `json:"record"`
	// Deleted marks a camera deleted at runtime: the row stays, without credentials,
	// so that its footage keeps its site.
	Deleted bool `json:"deleted,omitempty"`
}

var _ web.CameraManager = (*cameraManager)(nil)

func newCameraManager(cfg *configs.Config, log *slog.Logger) *cameraManager {
	return &cameraManager{cfg: cfg, log: log, box: secrets.NewBox(secrets.Path(cfg.DataDir)),
		cams: map[string]runtimeCamera{}, retired: map[string]string{}}
}

// load reads the runtime sites and cameras and makes the recorder run them beside
// the file's. Call it once, before the recorder runs.
func (m *cameraManager) load(ctx context.Context, db *state.State, rec *recorder.Recorder) error {
	m.db, m.rec = db, rec
	sites, err := db.Sites(ctx)
	if err != nil {
		return err
	}
	rows, err := db.Cameras(ctx)
	if err != nil {
		return err
	}
	cams, retired := map[string]runtimeCamera{}, map[string]string{}
	var kept []state.Site
	for _, s := range sites {
		if _, ok := m.fileSite(s.ID); ok {
			m.log.Warn("site added through the API is now in the configuration file, which wins", "site", s.ID)
			continue
		}
		kept = append(kept, s)
	}
	for _, row := range rows {
		var c runtimeCamera
		if err := json.Unmarshal(row.Spec, &c); err != nil {
			m.log.Error("camera added through the API has unreadable settings; not started", "camera", row.ID, "err", err)
			continue
		}
		c.ID = row.ID
		if c.Deleted {
			retired[c.ID] = c.Site
			continue
		}
		if _, ok := m.cfg.Camera(c.ID); ok {
			m.log.Warn("camera added through the API has the ID of a camera of the configuration file, which wins; "+
				"delete it through the API or rename one", "camera", c.ID)
			continue
		}
		m.unseal(&c)
		cams[c.ID] = c
	}
	m.mu.Lock()
	m.sites, m.cams, m.retired = kept, cams, retired
	m.mu.Unlock()
	return m.apply(ctx)
}

// heldKeyDiffers and heldNoKey say why a camera's password cannot be read.
const (
	heldKeyDiffers = "password cannot be decrypted: the secrets key differs (a state backup restored " +
		"without its key file?); restore the key file or re-enter the password"
	heldNoKey = "password cannot be decrypted: no secrets key in the data directory; " +
		"restore the key file or re-enter the password"
)

// unseal reads c's sealed password, or says in c.Held why it cannot.
func (m *cameraManager) unseal(c *runtimeCamera) {
	if c.PasswordSealed == "" {
		return
	}
	pw, err := m.box.Open(c.ID, c.PasswordSealed)
	switch {
	case err == nil:
		c.Password = pw
		return
	case errors.Is(err, secrets.ErrNoKey):
		c.Held = heldNoKey
	case errors.Is(err, secrets.ErrKeyDiffers):
		c.Held = heldKeyDiffers
	default:
		c.Held = "password cannot be decrypted: " + err.Error() + "; re-enter it"
	}
	m.log.Error("camera added through the API not started", "camera", c.ID, "because", c.Held, "key", m.box.Path())
}

// apply makes the recorder run the file's cameras and the runtime ones.
func (m *cameraManager) apply(ctx context.Context) error {
	want, err := cameraConfigs(m.cfg)
	if err != nil {
		return err
	}
	m.mu.RLock()
	for _, c := range m.sortedCams() {
		cc, err := c.recorderConfig(m.siteName(c.Site))
		if err != nil {
			m.log.Error("camera added through the API cannot run", "camera", c.ID, "err", m.redact(err.Error()))
			continue
		}
		want = append(want, cc)
	}
	m.mu.RUnlock()
	if err := m.rec.Apply(ctx, want); err != nil {
		return errors.New(m.redact(err.Error()))
	}
	return nil
}

// sortedCams needs m.mu held.
func (m *cameraManager) sortedCams() []runtimeCamera {
	out := make([]runtimeCamera, 0, len(m.cams))
	for _, c := range m.cams {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (m *cameraManager) fileSite(id string) (configs.Site, bool) {
	for _, s := range m.cfg.Sites {
		if s.ID == id {
			return s, true
		}
	}
	return configs.Site{}, false
}

// siteName needs m.mu held.
func (m *cameraManager) siteName(id string) string {
	if s, ok := m.fileSite(id); ok {
		return s.Name
	}
	for _, s := range m.sites {
		if s.ID == id {
			return s.Name
		}
	}
	return ""
}

// siteIDs needs m.mu held.
func (m *cameraManager) siteIDs() []string {
	var out []string
	for _, s := range m.cfg.Sites {
		out = append(out, s.ID)
	}
	for _, s := range m.sites {
		out = append(out, s.ID)
	}
	return out
}

// targets is what grants may name: every site and camera, of the file and runtime.
func (m *cameraManager) targets() auth.Targets {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := auth.Targets{Sites: m.siteIDs()}
	for _, c := range m.cfg.Cameras {
		t.Cameras = append(t.Cameras, c.ID)
	}
	for _, c := range m.sortedCams() {
		t.Cameras = append(t.Cameras, c.ID)
	}
	for id := range m.retired {
		if _, running := m.cams[id]; !running {
			t.Cameras = append(t.Cameras, id) // a grant still reaches its footage
		}
	}
	return t
}

// retiredCameras lists the cameras deleted at runtime with their sites.
func (m *cameraManager) retiredCameras() []retention.Camera {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]retention.Camera, 0, len(m.retired))
	for id, site := range m.retired {
		out = append(out, retention.Camera{ID: id, Site: site})
	}
	return out
}

// RetiredSite returns the site of a camera deleted at runtime.
func (m *cameraManager) RetiredSite(id string) (string, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	site, ok := m.retired[id]
	return site, ok
}

// secrets lists the runtime cameras' passwords in every form they may be written.
func (m *cameraManager) secrets() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for _, c := range m.cams {
		out = append(out, redact.Forms(c.Password)...)
	}
	return out
}

// redact removes every camera password, the file's and the runtime ones, from s.
func (m *cameraManager) redact(s string) string {
	return redact.String(configs.Redact(s, m.cfg), m.secrets())
}

// recorderConfig is c as the recorder runs it, credentials applied.
func (c runtimeCamera) recorderConfig(siteName string) (recorder.CameraConfig, error) {
	rt, err := configs.ParseDuration(c.ReadTimeout)
	if err != nil {
		return recorder.CameraConfig{}, fmt.Errorf("read_timeout: %w", err)
	}
	cc := recorder.CameraConfig{ID: c.ID, Name: c.Name, Site: c.Site, SiteName: siteName,
		Transport: ingest.Transport(c.Transport), ReadTimeout: time.Duration(rt), Record: c.Record, Held: c.Held}
	if cc.URL, err = c.dial(c.URL); err != nil {
		return recorder.CameraConfig{}, fmt.Errorf("url: %w", err)
	}
	if c.LiveURL != "" {
		if cc.LiveURL, err = c.dial(c.LiveURL); err != nil {
			return recorder.CameraConfig{}, fmt.Errorf("live_url: %w", err)
		}
	}
	return cc, nil
}

// dial is raw with c's credentials: for the RTSP client only, never shown.
func (c runtimeCamera) dial(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("cannot be parsed")
	}
	switch {
	case c.Username != "" && c.Password != "":
		u.User = url.UserPassword(c.Username, c.Password)
	case c.Username != "":
		u.User = url.User(c.Username)
	}
	return u.String(), nil
}

// settings is c as the API shows it: no password.
func (c runtimeCamera) settings() web.CameraSettings {
	rec := c.Record
	return web.CameraSettings{ID: c.ID, Name: c.Name, Site: c.Site, URL: c.URL, LiveURL: c.LiveURL, Username: c.Username,
		Transport: c.Transport, ReadTimeout: c.ReadTimeout, Record: &rec,
		PasswordSet: c.Password != "" || c.PasswordSealed != "", PasswordUnreadable: c.Held != "", Source: web.SourceAPI}
}

// fileSettings is a camera of the configuration file as the API shows it.
func fileSettings(c configs.Camera) web.CameraSettings {
	rec := c.Recording()
	s := web.CameraSettings{ID: c.ID, Name: c.Name, Site: c.Site, Transport: string(c.Transport),
		ReadTimeout: c.ReadTimeout.String(), Record: &rec, PasswordSet: c.PasswordEnv != "", Source: web.SourceConfig}
	strip := func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			return ""
		}
		if u.User != nil {
			s.Username = u.User.Username()
			if _, ok := u.User.Password(); ok {
				s.PasswordSet = true
			}
			u.User = nil
		}
		return u.String()
	}
	s.URL = strip(c.URL)
	if c.LiveURL != "" {
		s.LiveURL = strip(c.LiveURL)
	}
	return s
}

// CameraSettings lists every camera: the file's first, in its order, then the
// runtime ones by ID.
func (m *cameraManager) CameraSettings(context.Context) ([]web.CameraSettings, error) {
	out := make([]web.CameraSettings, 0, len(m.cfg.Cameras))
	for _, c := range m.cfg.Cameras {
		out = append(out, fileSettings(c))
	}
	m.mu.RLock()
	for _, c := range m.sortedCams() {
		out = append(out, c.settings())
	}
	m.mu.RUnlock()
	return out, nil
}

// check turns the API's settings into a runtime camera, checked by the file's rules.
// prev, when set, is the camera being updated: an empty password keeps its password.
func (m *cameraManager) check(in web.CameraSettings, prev *runtimeCamera) (runtimeCamera, error) {
	c := runtimeCamera{ID: in.ID, Name: strings.TrimSpace(in.Name), Site: in.Site, Username: in.Username,
		Password: in.Password, Transport: in.Transport, Record: in.Record == nil || *in.Record}
	var errs []error
	bad := func(field, msg string) { errs = append(errs, &web.FieldError{Field: field, Msg: msg}) }
	// Credentials in the URL move to username and password.
	var err error
	if c.URL, err = m.takeCredentials(in.URL, &c, "url"); err != nil {
		errs = append(errs, err)
	}
	if in.LiveURL != "" {
		if c.LiveURL, err = m.takeCredentials(in.LiveURL, nil, "live_url"); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Password != "" && c.Username == "" {
		bad("username", "is required with a password")
	}
	if prev != nil && c.Password == "" && c.Username != "" {
		// Kept as it is, readable or not: restoring the key file makes it readable.
		c.Password, c.PasswordSealed, c.Held = prev.Password, prev.PasswordSealed, prev.Held
	}
	var rt configs.Duration
	if in.ReadTimeout != "" {
		if rt, err = configs.ParseDuration(in.ReadTimeout); err != nil {
			bad("read_timeout", err.Error())
		}
	}
	fc := configs.Camera{ID: c.ID, Name: c.Name, Site: c.Site, URL: c.URL, LiveURL: c.LiveURL,
		Transport: configs.Transport(c.Transport), ReadTimeout: rt}
	m.mu.RLock()
	sites := m.siteIDs()
	m.mu.RUnlock()
	for _, e := range configs.CheckCamera(&fc, sites) {
		if e.Path == "read_timeout" && in.ReadTimeout != "" && rt == 0 {
			continue // already said
		}
		if (e.Path == "url" || e.Path == "live_url") && slices.ContainsFunc(errs, func(err error) bool {
			var fe *web.FieldError
			return errors.As(err, &fe) && fe.Field == e.Path
		}) {
			continue
		}
		bad(e.Path, e.Msg)
	}
	c.Transport, c.ReadTimeout = string(fc.Transport), fc.ReadTimeout.String()
	if len(errs) > 0 {
		// The first problem is the answer's field; the text lists them all.
		var fe *web.FieldError
		errors.As(errs[0], &fe)
		if len(errs) > 1 {
			msgs := make([]string, len(errs))
			for i, e := range errs {
				msgs[i] = e.Error()
			}
			return c, &web.FieldError{Field: fe.Field, Msg: fe.Msg + " (also: " + strings.Join(msgs[1:], "; ") + ")"}
		}
		return c, fe
	}
	return c, nil
}

// takeCredentials returns raw without user information; credentials in it go to c
// (the url) or are refused (the live_url: one set of credentials serves both).
func (m *cameraManager) takeCredentials(raw string, c *runtimeCamera, field string) (string, error) {
	if raw == "" {
		return "", nil // CheckCamera says it is required
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", &web.FieldError{Field: field,
			Msg: "cannot be parsed (percent-encode special characters, or give the password in the password field)"}
	}
	if u.User == nil {
		return raw, nil
	}
	if c == nil {
		return "", &web.FieldError{Field: field, Msg: "must not hold credentials: username and password apply to url and live_url"}
	}
	if c.Username == "" {
		c.Username = u.User.Username()
	}
	if pw, ok := u.User.Password(); ok && c.Password == "" {
		c.Password = pw
	}
	u.User = nil
	return u.String(), nil
}

// AddCamera adds a runtime camera and starts it.
func (m *cameraManager) AddCamera(ctx context.Context, in web.CameraSettings) (web.CameraSettings, error) {
	m.change.Lock()
	defer m.change.Unlock()
	c, err := m.check(in, nil)
	if err != nil {
		return web.CameraSettings{}, err
	}
	if _, ok := m.cfg.Camera(c.ID); ok {
		return web.CameraSettings{}, &web.FieldConflict{Field: "id",
			Msg: fmt.Sprintf("camera %q is in the configuration file", c.ID)}
	}
	m.mu.RLock()
	_, dup := m.cams[c.ID]
	m.mu.RUnlock()
	if dup {
		return web.CameraSettings{}, &web.FieldConflict{Field: "id", Msg: fmt.Sprintf("camera %q exists", c.ID)}
	}
	if err := m.store(ctx, c); err != nil {
		return web.CameraSettings{}, err
	}
	m.mu.Lock()
	m.cams[c.ID] = c
	site, wasRetired := m.retired[c.ID]
	delete(m.retired, c.ID)
	m.mu.Unlock()
	if err := m.apply(ctx); err != nil {
		m.mu.Lock()
		delete(m.cams, c.ID)
		if wasRetired {
			m.retired[c.ID] = site
		}
		m.mu.Unlock()
		if wasRetired {
			_ = m.store(context.WithoutCancel(ctx), runtimeCamera{ID: c.ID, Site: site, Deleted: true})
		} else {
			_ = m.db.DeleteCamera(context.WithoutCancel(ctx), c.ID)
		}
		return web.CameraSettings{}, err
	}
	m.log.Info("camera added", "camera", c.ID, "site", c.Site, "record", c.Record)
	return c.settings(), nil
}

// UpdateCamera replaces a runtime camera's settings; only it restarts, and only if
// how it is reached changed.
func (m *cameraManager) UpdateCamera(ctx context.Context, id string, in web.CameraSettings) (before, after web.CameraSettings, err error) {
	m.change.Lock()
	defer m.change.Unlock()
	if fc, ok := m.cfg.Camera(id); ok {
		return fileSettings(fc), web.CameraSettings{}, web.Conflict("camera %q is in the configuration file, which wins: "+
			"edit the file and restart the service to change it", id)
	}
	m.mu.RLock()
	prev, ok := m.cams[id]
	m.mu.RUnlock()
	if !ok {
		return web.CameraSettings{}, web.CameraSettings{}, web.NotFound("camera %q not found", id)
	}
	in.ID = id
	c, err := m.check(in, &prev)
	if err != nil {
		return web.CameraSettings{}, web.CameraSettings{}, err
	}
	if err := m.store(ctx, c); err != nil {
		return web.CameraSettings{}, web.CameraSettings{}, err
	}
	m.mu.Lock()
	m.cams[id] = c
	m.mu.Unlock()
	if err := m.apply(ctx); err != nil {
		m.mu.Lock()
		m.cams[id] = prev
		m.mu.Unlock()
		_ = m.store(context.WithoutCancel(ctx), prev)
		return web.CameraSettings{}, web.CameraSettings{}, err
	}
	m.log.Info("camera changed", "camera", id)
	return prev.settings(), c.settings(), nil
}

// DeleteCamera stops a runtime camera and forgets its settings; its footage stays
// until retention deletes it.
func (m *cameraManager) DeleteCamera(ctx context.Context, id string) (web.CameraSettings, error) {
	m.change.Lock()
	defer m.change.Unlock()
	if _, ok := m.cfg.Camera(id); ok {
		return web.CameraSettings{}, web.Conflict("camera %q is in the configuration file, which wins: "+
			"remove it from the file and restart the service", id)
	}
	m.mu.RLock()
	prev, ok := m.cams[id]
	m.mu.RUnlock()
	if !ok {
		return web.CameraSettings{}, web.NotFound("camera %q not found", id)
	}
	// A row without credentials stays, so that the footage keeps its site.
	if err := m.store(ctx, runtimeCamera{ID: id, Name: prev.Name, Site: prev.Site, Deleted: true}); err != nil {
		return web.CameraSettings{}, err
	}
	m.mu.Lock()
	delete(m.cams, id)
	m.retired[id] = prev.Site
	m.mu.Unlock()
	if err := m.apply(ctx); err != nil {
		m.mu.Lock()
		m.cams[id] = prev
		delete(m.retired, id)
		m.mu.Unlock()
		_ = m.store(context.WithoutCancel(ctx), prev)
		return web.CameraSettings{}, err
	}
	m.log.Info("camera deleted; its footage stays until retention deletes it", "camera", id)
	return prev.settings(), nil
}

// store writes c with its password sealed for it.
func (m *cameraManager) store(ctx context.Context, c runtimeCamera) error {
	if c.Password != "" {
		sealed, err := m.box.Seal(c.ID, c.Password)
		if err != nil {
			return fmt.Errorf("seal the password of camera %s: %w", c.ID, err)
		}
		c.PasswordSealed = sealed
	}
	spec, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return m.db.PutCamera(ctx, c.ID, spec)
}

// Sites lists every site: the file's first, then the runtime ones by ID.
func (m *cameraManager) Sites(context.Context) ([]web.SiteSettings, error) {
	var out []web.SiteSettings
	for _, s := range m.cfg.Sites {
		out = append(out, web.SiteSettings{ID: s.ID, Name: s.Name, Source: web.SourceConfig})
	}
	m.mu.RLock()
	for _, s := range m.sites {
		out = append(out, web.SiteSettings{ID: s.ID, Name: s.Name, Source: web.SourceAPI})
	}
	m.mu.RUnlock()
	return out, nil
}

func checkSite(in web.SiteSettings) (state.Site, error) {
	s := state.Site{ID: in.ID, Name: strings.TrimSpace(in.Name)}
	if errs := configs.CheckSite(configs.Site{ID: s.ID, Name: s.Name}); len(errs) > 0 {
		return s, &web.FieldError{Field: errs[0].Path, Msg: errs[0].Msg}
	}
	return s, nil
}

// AddSite adds a runtime site.
func (m *cameraManager) AddSite(ctx context.Context, in web.SiteSettings) (web.SiteSettings, error) {
	m.change.Lock()
	defer m.change.Unlock()
	s, err := checkSite(in)
	if err != nil {
		return web.SiteSettings{}, err
	}
	m.mu.RLock()
	dup := slices.Contains(m.siteIDs(), s.ID)
	m.mu.RUnlock()
	if dup {
		return web.SiteSettings{}, &web.FieldConflict{Field: "id", Msg: fmt.Sprintf("site %q exists", s.ID)}
	}
	if err := m.db.PutSite(ctx, s.ID, s.Name); err != nil {
		return web.SiteSettings{}, err
	}
	m.mu.Lock()
	m.sites = append(m.sites, s)
	sort.Slice(m.sites, func(i, j int) bool { return m.sites[i].ID < m.sites[j].ID })
	m.mu.Unlock()
	return web.SiteSettings{ID: s.ID, Name: s.Name, Source: web.SourceAPI}, nil
}

// UpdateSite renames a runtime site; its cameras show the new name at once.
func (m *cameraManager) UpdateSite(ctx context.Context, id string, in web.SiteSettings) (before, after web.SiteSettings, err error) {
	m.change.Lock()
	defer m.change.Unlock()
	if _, ok := m.fileSite(id); ok {
		return web.SiteSettings{}, web.SiteSettings{}, web.Conflict("site %q is in the configuration file, which wins: "+
			"edit the file and restart the service to change it", id)
	}
	in.ID = id
	s, err := checkSite(in)
	if err != nil {
		return web.SiteSettings{}, web.SiteSettings{}, err
	}
	m.mu.Lock()
	i := slices.IndexFunc(m.sites, func(x state.Site) bool { return x.ID == id })
	var prev state.Site
	if i >= 0 {
		prev = m.sites[i]
	}
	m.mu.Unlock()
	if i < 0 {
		return web.SiteSettings{}, web.SiteSettings{}, web.NotFound("site %q not found", id)
	}
	if err := m.db.PutSite(ctx, id, s.Name); err != nil {
		return web.SiteSettings{}, web.SiteSettings{}, err
	}
	m.mu.Lock()
	m.sites[i].Name = s.Name
	m.mu.Unlock()
	if err := m.apply(ctx); err != nil { // names only: nothing restarts
		return web.SiteSettings{}, web.SiteSettings{}, err
	}
	return web.SiteSettings{ID: id, Name: prev.Name, Source: web.SourceAPI},
		web.SiteSettings{ID: id, Name: s.Name, Source: web.SourceAPI}, nil
}

// DeleteSite deletes a runtime site that no camera uses.
func (m *cameraManager) DeleteSite(ctx context.Context, id string) (web.SiteSettings, error) {
	m.change.Lock()
	defer m.change.Unlock()
	if _, ok := m.fileSite(id); ok {
		return web.SiteSettings{}, web.Conflict("site %q is in the configuration file, which wins: "+
			"remove it from the file and restart the service", id)
	}
	m.mu.RLock()
	i := slices.IndexFunc(m.sites, func(x state.Site) bool { return x.ID == id })
	var users []string
	for _, c := range m.sortedCams() {
		if c.Site == id {
			users = append(users, c.ID)
		}
	}
	m.mu.RUnlock()
	if i < 0 {
		return web.SiteSettings{}, web.NotFound("site %q not found", id)
	}
	if len(users) > 0 {
		return web.SiteSettings{}, web.Conflict("site %q still has cameras: %s; move or delete them first",
			id, strings.Join(users, ", "))
	}
	if err := m.db.DeleteSite(ctx, id); err != nil {
		return web.SiteSettings{}, err
	}
	m.mu.Lock()
	prev := m.sites[i]
	m.sites = slices.Delete(m.sites, i, i+1)
	m.mu.Unlock()
	return web.SiteSettings{ID: prev.ID, Name: prev.Name, Source: web.SourceAPI}, nil
}

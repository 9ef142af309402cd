package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/web"
	"github.com/straja-nvr/straja/web/audit"
	"github.com/straja-nvr/straja/web/auth"
)

// itcToken makes user "itc-tester" (role itc) with an API token on m and returns it.
func itcToken(t testing.TB, m *Main) string {
	return userToken(t, m, "itc-tester", auth.RoleITC, false)
}

// call sends a JSON request with token and returns the status and body.
func call(t testing.TB, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := anonClient
	if token == "" {
		client = http.DefaultClient // as the tester, a guard
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// camAs reads one camera from the API with token (itc sees every camera).
func camAs(t *testing.T, base, token, id string) apiCamera {
	t.Helper()
	var c apiCamera
	code, body := call(t, "GET", base+"/cameras/"+id, token, nil)
	if code != http.StatusOK {
		t.Fatalf("camera %s: %d %s", id, code, body)
	}
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// holesOf lists the holes longer than a frame between a stopped service's segments of
// camera that start after from.
func holesOf(t *testing.T, cfg *configs.Config, camera string, from time.Time) []time.Duration {
	t.Helper()
	segs := recorded(t, cfg, camera)
	var hs []time.Duration
	for i := 1; i < len(segs); i++ {
		if segs[i].Start.Before(from) {
			continue
		}
		if h := segs[i].Start.Sub(segs[i-1].End()); h > frame {
			hs = append(hs, h)
		}
	}
	return hs
}

// TestCamerasAPI adds a camera through the API while three cameras of the file record:
// it records, the others' segments stay contiguous through every change; a change of
// its URL restarts only it; its password is never shown; deleting it keeps its footage;
// it survives a restart of the service.
func TestCamerasAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: ~40 s")
	}
	const secret = "Parola-Camerei-7731"
	sim := startSim(t, 5, camsim.Options{Codecs: map[int]streaming.Codec{}})
	authSim := startSim(t, 1, camsim.Options{Username: "operator", Password: secret})
	dir := t.TempDir()
	cfg := baseConfig(t, dir, sim, 3)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &testutil.Buffer{}
	m := &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = m.Close()
		}
		if t.Failed() {
			t.Logf("service log:\n%s", logs.String())
		}
	})
	signInTests(t, m)
	itc := itcToken(t, m)
	base := m.URL() + "/api/v1"
	for _, id := range []string{"cam-1", "cam-2", "cam-3"} {
		testutil.WaitFor(t, 20*time.Second, id+" segments", func() bool { return len(segmentsOf(t, m.Addr(), id)) >= 1 })
	}
	start := time.Now()

	// Add: 201 without the password, and it records within 5 s of its first keyframe.
	code, body := call(t, "POST", base+"/cameras", itc, map[string]any{"id": "cam-new", "name": "Poarta nouă",
		"site": "bastion", "url": sim.URL(4), "transport": "tcp"})
	if code != http.StatusCreated {
		t.Fatalf("add camera: %d %s", code, body)
	}
	added := time.Now()
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil || got["source"] != "api" || got["id"] != "cam-new" {
		t.Fatalf("add camera answered %s (%v), want the camera with source api", body, err)
	}
	// The tester (a guard) may see its footage once granted: grants know runtime cameras.
	if code, body := call(t, "PUT", base+"/users/tester/grants", itc, map[string]any{"grants": []state.Grant{
		{Kind: "camera", Target: "cam-1"}, {Kind: "camera", Target: "cam-2"}, {Kind: "camera", Target: "cam-3"},
		{Kind: "camera", Target: "cam-new"}}}); code != http.StatusOK {
		t.Fatalf("grant cam-new: %d %s", code, body)
	}
	testutil.WaitFor(t, 20*time.Second, "cam-new online", func() bool { return camAs(t, base, itc, "cam-new").State == "online" })
	testutil.WaitFor(t, 20*time.Second, "cam-new segments", func() bool { return len(segmentsOf(t, m.Addr(), "cam-new")) >= 1 })
	if took := time.Since(added); took > 5*time.Second+3*time.Second {
		t.Errorf("cam-new first segment %v after it was added (segments of 2 s, want within 5 s of recording)", took)
	}

	// A camera with a password, given in its own field: it records, and the password
	// is never shown.
	code, body = call(t, "POST", base+"/cameras", itc, map[string]any{"id": "cam-auth", "name": "Cu parolă",
		"site": "palat", "url": authSim.URL(1), "username": "operator", "password": secret, "transport": "tcp"})
	if code != http.StatusCreated {
		t.Fatalf("add camera with password: %d %s", code, body)
	}
	testutil.WaitFor(t, 20*time.Second, "cam-auth online", func() bool { return camAs(t, base, itc, "cam-auth").State == "online" })
	// An edit with an empty password keeps it: the camera stays online through a
	// change of transport, which restarts it.
	code, body = call(t, "PUT", base+"/cameras/cam-auth", itc, map[string]any{"name": "Cu parolă", "site": "palat",
		"url": authSim.URL(1), "username": "operator", "password": "", "transport": "auto"})
	if code != http.StatusOK || !strings.Contains(string(body), `"password_set":true`) {
		t.Fatalf("edit keeping the password: %d %s", code, body)
	}
	edited := time.Now()
	testutil.WaitFor(t, 20*time.Second, "cam-auth frames after the edit", func() bool {
		c := camAs(t, base, itc, "cam-auth")
		return c.State == "online" && c.LastFrame != nil && c.LastFrame.After(edited)
	})

	// Change cam-new's URL: only it restarts.
	before := map[string]apiCamera{}
	for _, id := range []string{"cam-1", "cam-2", "cam-3"} {
		before[id] = camAs(t, base, itc, id)
	}
	newBefore := camAs(t, base, itc, "cam-new")
	code, body = call(t, "PUT", base+"/cameras/cam-new", itc, map[string]any{"name": "Poarta nouă", "site": "bastion",
		"url": sim.URL(5), "transport": "tcp"})
	if code != http.StatusOK {
		t.Fatalf("change cam-new url: %d %s", code, body)
	}
	changed := time.Now()
	testutil.WaitFor(t, 20*time.Second, "cam-new frames after the change", func() bool {
		c := camAs(t, base, itc, "cam-new")
		return c.State == "online" && c.LastFrame != nil && c.LastFrame.After(changed)
	})
	if c := camAs(t, base, itc, "cam-new"); c.Reconnects <= newBefore.Reconnects {
		t.Errorf("cam-new reconnects %d after its url changed, want more than %d", c.Reconnects, newBefore.Reconnects)
	}
	for id, b := range before {
		if c := camAs(t, base, itc, id); c.Reconnects != b.Reconnects || c.State != "online" {
			t.Errorf("%s after cam-new changed: %s, %d reconnects; want online, %d (untouched)", id, c.State, c.Reconnects, b.Reconnects)
		}
	}
	// A change of name only restarts nothing.
	code, _ = call(t, "PUT", base+"/cameras/cam-new", itc, map[string]any{"name": "Poarta de est", "site": "bastion",
		"url": sim.URL(5), "transport": "tcp"})
	if c := camAs(t, base, itc, "cam-new"); code != http.StatusOK || c.Reconnects != newBefore.Reconnects+1 {
		t.Errorf("rename: %d, cam-new reconnects %d; want 200 and %d (a rename restarts nothing)", code, c.Reconnects, newBefore.Reconnects+1)
	}
	// The file wins: its cameras cannot be changed or deleted here.
	for _, req := range []struct{ method, path string }{{"PUT", "/cameras/cam-1"}, {"DELETE", "/cameras/cam-2"}} {
		code, body := call(t, req.method, base+req.path, itc, map[string]any{"name": "x", "site": "bastion", "url": sim.URL(1)})
		if code != http.StatusConflict || !strings.Contains(string(body), "configuration file") {
			t.Errorf("%s %s of a file camera: %d %s, want 409 naming the configuration file", req.method, req.path, code, body)
		}
	}

	// Every camera shows where it comes from; no password anywhere.
	var list []map[string]any
	if code := getJSON(t, base+"/cameras", &list); code != http.StatusOK {
		t.Fatalf("cameras: %d", code)
	}
	sources := map[string]any{}
	for _, c := range list {
		sources[c["id"].(string)] = c["source"]
	}
	if sources["cam-1"] != "config" || sources["cam-new"] != "api" {
		t.Errorf("camera sources %v, want cam-1 config and cam-new api", sources)
	}
	_, settings := call(t, "GET", base+"/cameras/cam-auth/settings", itc, nil)
	_, all := call(t, "GET", base+"/cameras", itc, nil)
	_, trail := call(t, "GET", base+"/audit?camera=cam-auth", adminToken(t, m), nil)
	for what, text := range map[string]string{"settings": string(settings), "camera list": string(all),
		"audit trail": string(trail), "log": logs.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("the camera password is in the %s:\n%s", what, text)
		}
	}
	if !strings.Contains(string(settings), `"username":"operator"`) || !strings.Contains(string(settings), `"password_set":true`) {
		t.Errorf("settings of cam-auth: %s, want the username and password_set", settings)
	}
	for _, action := range []string{audit.ActionCameraAdd, audit.ActionCameraUpdate} {
		if !strings.Contains(string(trail), `"`+action+`"`) {
			t.Errorf("audit trail has no %s", action)
		}
	}

	// Delete: its footage stays listed.
	footage := len(segmentsOf(t, m.Addr(), "cam-new"))
	if code, body := call(t, "DELETE", base+"/cameras/cam-new", itc, nil); code != http.StatusNoContent {
		t.Fatalf("delete cam-new: %d %s", code, body)
	}
	if code, _ := call(t, "GET", base+"/cameras/cam-new/settings", itc, nil); code != http.StatusNotFound {
		t.Errorf("settings of a deleted camera: %d, want 404", code)
	}
	if n := len(segmentsOf(t, m.Addr(), "cam-new")); n < footage {
		t.Errorf("cam-new segments after delete: %d, want its %d (footage is kept)", n, footage)
	}
	// An administrator granted the camera's site still reaches its footage.
	admin := adminToken(t, m)
	if err := m.state.SetGrants(context.Background(), "admin-tester", []state.Grant{{Kind: "site", Target: "bastion"}}); err != nil {
		t.Fatal(err)
	}
	from, to := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if code, body := call(t, "GET", base+"/cameras/cam-new/segments?from="+from+"&to="+to, admin, nil); code != http.StatusOK ||
		!strings.Contains(string(body), `"sha256"`) {
		t.Errorf("segments of the deleted cam-new for an admin of its site: %d %s", code, body)
	}
	// And plays it.
	if segs := segmentsOf(t, m.Addr(), "cam-new"); len(segs) > 0 {
		s := segs[0]
		code, body := call(t, "GET", base+"/cameras/cam-new/video.mp4?from="+s.Start.UTC().Format(time.RFC3339Nano)+
			"&to="+s.End.UTC().Format(time.RFC3339Nano), admin, nil)
		if code != http.StatusOK || len(body) < 1000 || !bytes.Contains(body[:64], []byte("ftyp")) {
			t.Errorf("video.mp4 of the deleted cam-new: %d, %d bytes, want an MP4", code, len(body))
		}
	}
	// Wait for a segment of the file's cameras that starts well after every change.
	last := time.Now()
	for _, id := range []string{"cam-1", "cam-2", "cam-3"} {
		testutil.WaitFor(t, 20*time.Second, id+" segments after the changes", func() bool {
			segs := segmentsOf(t, m.Addr(), id)
			return len(segs) > 0 && segs[len(segs)-1].Start.After(last)
		})
	}
	closed = true
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"cam-1", "cam-2", "cam-3"} {
		if hs := holesOf(t, cfg, id, start); len(hs) != 0 {
			t.Errorf("%s holes %v across the camera changes, want none", id, hs)
		}
	}
	if segs := recorded(t, cfg, "cam-new"); len(segs) < footage {
		t.Errorf("cam-new has %d segments in the catalog after delete, want at least %d", len(segs), footage)
	}

	// The runtime camera survives a restart; the deleted one stays deleted.
	m2 := startMain(t, cfg)
	base2, itc2 := m2.URL()+"/api/v1", itcToken(t, m2)
	testutil.WaitFor(t, 20*time.Second, "cam-auth online after restart", func() bool {
		return camAs(t, base2, itc2, "cam-auth").State == "online"
	})
	var after []map[string]any
	getJSON(t, m2.URL()+"/api/v1/cameras", &after)
	for _, c := range after {
		if c["id"] == "cam-new" {
			t.Errorf("deleted cam-new is back after a restart")
		}
	}
}

// adminToken makes user "admin-tester" (role admin) with an API token on m.
func adminToken(t testing.TB, m *Main) string {
	return userToken(t, m, "admin-tester", auth.RoleAdmin, false)
}

// TestCamerasAPIBadInput: each bad camera or site is refused naming its field, and
// changes nothing.
func TestCamerasAPIBadInput(t *testing.T) {
	m, _ := startBare(t, func(c *configs.Config) {
		c.Sites = []configs.Site{{ID: "bastion", Name: "Bastionul Theresia"}}
		c.Cameras = []configs.Camera{{ID: "cam-1", Name: "Camera 1", Site: "bastion", URL: "rtsp://127.0.0.1:1/cam1"}}
	})
	itc := itcToken(t, m)
	base := m.URL() + "/api/v1"
	good := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{"id": "cam-x", "name": "X", "site": "bastion", "url": "rtsp://127.0.0.1:1/x"}
		edit(c)
		return c
	}
	for _, tc := range []struct {
		name  string
		body  map[string]any
		code  int
		field string
	}{
		{"duplicate of a file camera", good(func(c map[string]any) { c["id"] = "cam-1" }), 409, "id"},
		{"invalid id characters", good(func(c map[string]any) { c["id"] = "Cam_X" }), 400, "id"},
		{"missing id", good(func(c map[string]any) { delete(c, "id") }), 400, "id"},
		{"reserved id", good(func(c map[string]any) { c["id"] = "probe" }), 400, "id"},
		{"http scheme", good(func(c map[string]any) { c["url"] = "http://127.0.0.1/x" }), 400, "url"},
		{"no host", good(func(c map[string]any) { c["url"] = "rtsp:///x" }), 400, "url"},
		{"unknown site", good(func(c map[string]any) { c["site"] = "nowhere" }), 400, "site"},
		{"no name", good(func(c map[string]any) { c["name"] = " " }), 400, "name"},
		{"bad transport", good(func(c map[string]any) { c["transport"] = "sctp" }), 400, "transport"},
		{"bad read timeout", good(func(c map[string]any) { c["read_timeout"] = "soon" }), 400, "read_timeout"},
		{"read timeout out of range", good(func(c map[string]any) { c["read_timeout"] = "1h" }), 400, "read_timeout"},
		{"live_url with credentials", good(func(c map[string]any) { c["live_url"] = "rtsp://u:p@127.0.0.1/sub" }), 400, "live_url"},
		{"password without username", good(func(c map[string]any) { c["password"] = "secret-pw" }), 400, "username"},
		{"unknown field", good(func(c map[string]any) { c["color"] = "red" }), 400, ""},
	} {
		code, body := call(t, "POST", base+"/cameras", itc, tc.body)
		var eb struct {
			Error string `json:"error"`
			Field string `json:"field"`
		}
		_ = json.Unmarshal(body, &eb)
		if code != tc.code || eb.Field != tc.field {
			t.Errorf("%s: %d %s, want %d naming field %q", tc.name, code, body, tc.code, tc.field)
		}
		if strings.Contains(string(body), "secret-pw") {
			t.Errorf("%s: the answer quotes the password: %s", tc.name, body)
		}
	}
	// A guard may not add cameras.
	if code, _ := call(t, "POST", base+"/cameras", "", good(func(map[string]any) {})); code != http.StatusForbidden {
		t.Errorf("a guard adding a camera: %d, want 403", code)
	}
	if code, body := call(t, "GET", base+"/cameras", itc, nil); code != http.StatusOK || strings.Contains(string(body), "cam-x") {
		t.Errorf("after refused adds the cameras are %s (%d), want no cam-x", body, code)
	}

	// Sites: add one, a camera on it, which then keeps it from being deleted.
	if code, body := call(t, "POST", base+"/sites", itc, map[string]any{"id": "Depozit", "name": "Depozit"}); code != 400 ||
		!strings.Contains(string(body), `"field":"id"`) {
		t.Errorf("site with a bad id: %d %s, want 400 naming id", code, body)
	}
	if code, body := call(t, "POST", base+"/sites", itc, map[string]any{"id": "bastion", "name": "Dublură"}); code != 409 ||
		!strings.Contains(string(body), `"field":"id"`) {
		t.Errorf("duplicate site: %d %s, want 409 naming id", code, body)
	}
	if code, body := call(t, "POST", base+"/sites", itc, map[string]any{"id": "depozit", "name": "Depozitul Feleacu"}); code != 201 {
		t.Fatalf("add site: %d %s", code, body)
	}
	if code, body := call(t, "POST", base+"/cameras", itc, good(func(c map[string]any) { c["site"] = "depozit" })); code != 201 {
		t.Fatalf("camera on the new site: %d %s", code, body)
	}
	// Grants may name the runtime site at once.
	if code, body := call(t, "PUT", base+"/users/tester/grants", itc, map[string]any{"grants": []state.Grant{
		{Kind: "site", Target: "depozit"}}}); code != http.StatusOK {
		t.Errorf("grant the runtime site: %d %s", code, body)
	}
	// A live-only camera with a substream: both are kept as given.
	if code, body := call(t, "POST", base+"/cameras", itc, good(func(c map[string]any) {
		c["id"], c["site"], c["record"], c["live_url"] = "cam-live", "depozit", false, "rtsp://127.0.0.1:1/sub"
	})); code != 201 || !strings.Contains(string(body), `"record":false`) || !strings.Contains(string(body), `"live_url":"rtsp://127.0.0.1:1/sub"`) {
		t.Errorf("live-only camera: %d %s", code, body)
	}
	var live []map[string]any
	getJSON(t, base+"/cameras", &live) // the tester, now granted site depozit
	found := false
	for _, c := range live {
		if c["id"] == "cam-live" {
			found = c["record"] == false
		}
	}
	if !found {
		t.Errorf("cameras for a guard of site depozit: %v, want cam-live with record false", live)
	}
	if code, body := call(t, "DELETE", base+"/sites/depozit", itc, nil); code != 409 || !strings.Contains(string(body), "cam-x") {
		t.Errorf("delete a site with a camera: %d %s, want 409 naming cam-x", code, body)
	}
	if code, body := call(t, "PUT", base+"/sites/bastion", itc, map[string]any{"name": "Alt nume"}); code != 409 {
		t.Errorf("rename a file site: %d %s, want 409", code, body)
	}
	if code, body := call(t, "PUT", base+"/sites/depozit", itc, map[string]any{"name": "Depozitul nou"}); code != 200 {
		t.Errorf("rename a runtime site: %d %s", code, body)
	}
	_, body := call(t, "GET", base+"/cameras", itc, nil)
	if !strings.Contains(string(body), "Depozitul nou") {
		t.Errorf("cameras after the site's rename: %s, want the new site name", body)
	}
	_, body = call(t, "GET", base+"/sites", "", nil)
	if !strings.Contains(string(body), `"id":"depozit"`) || !strings.Contains(string(body), `"source":"config"`) {
		t.Errorf("sites: %s, want bastion (config) and depozit", body)
	}

	// An evidence hold on the camera: deleting it needs keep_holds.
	admin := adminToken(t, m)
	if err := m.state.SetGrants(context.Background(), "admin-tester", []state.Grant{{Kind: "camera", Target: "cam-x"}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if code, body := call(t, "POST", base+"/holds", admin, map[string]any{"cameras": []string{"cam-x"},
		"from": now.Add(-time.Hour).Format(time.RFC3339), "to": now.Format(time.RFC3339), "reason": "dosar 12/2026"}); code/100 != 2 {
		t.Fatalf("hold on cam-x: %d %s", code, body)
	}
	if code, body := call(t, "DELETE", base+"/cameras/cam-x", itc, nil); code != http.StatusConflict || !strings.Contains(string(body), "keep_holds") {
		t.Errorf("delete a held camera: %d %s, want 409 saying keep_holds", code, body)
	}
	if code, body := call(t, "DELETE", base+"/cameras/cam-x?keep_holds=maybe", itc, nil); code != 400 ||
		!strings.Contains(string(body), `"field":"keep_holds"`) {
		t.Errorf("keep_holds=maybe: %d %s, want 400 naming keep_holds", code, body)
	}
	if code, body := call(t, "DELETE", base+"/cameras/cam-x?keep_holds=true", itc, nil); code != http.StatusNoContent {
		t.Errorf("delete a held camera with keep_holds: %d %s, want 204", code, body)
	}
	if code, body := call(t, "GET", base+"/holds", admin, nil); code != 200 || !strings.Contains(string(body), "dosar 12/2026") {
		t.Errorf("holds after the camera was deleted: %d %s, want the hold kept", code, body)
	}
}

// TestProbeAPI: itc probes the simulator through the API and gets its stream, or the
// reason it failed; bad input names the field; a guard may not probe.
func TestProbeAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("watches a stream for a few seconds")
	}
	sim := startSim(t, 1, camsim.Options{Username: "operator", Password: "Parola-API-5521"})
	m, logs := startBare(t, func(*configs.Config) {})
	itc := itcToken(t, m)
	url := m.URL() + "/api/v1/cameras/probe"
	code, body := call(t, "POST", url, itc, map[string]any{"url": sim.URL(1), "username": "operator", "password": "Parola-API-5521"})
	var res struct {
		OK     bool   `json:"ok"`
		Reason string `json:"reason"`
		Result struct {
			Codec  string  `json:"codec"`
			Width  int     `json:"width"`
			FPS    float64 `json:"fps"`
			GOP    int     `json:"gop_frames"`
			Live   bool    `json:"live"`
			BFrame bool    `json:"b_frames"`
		} `json:"result"`
	}
	if err := json.Unmarshal(body, &res); err != nil || code != 200 || !res.OK || res.Result.Codec != "h264" ||
		res.Result.Width != 640 || res.Result.FPS != 25 || res.Result.GOP != 50 || !res.Result.Live {
		t.Errorf("probe of the simulator: %d %s", code, body)
	}
	code, body = call(t, "POST", url, itc, map[string]any{"url": sim.URL(1), "username": "operator", "password": "wrong-pw-1"})
	if code != 200 || !strings.Contains(string(body), `"reason":"auth_failed"`) || strings.Contains(string(body), "wrong-pw-1") {
		t.Errorf("probe with a wrong password: %d %s, want reason auth_failed", code, body)
	}
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"url": "http://127.0.0.1/x"}, "url"},
		{map[string]any{"url": ""}, "url"},
		{map[string]any{"url": "rtsp://127.0.0.1/x", "password": "p"}, "username"},
	} {
		if code, body := call(t, "POST", url, itc, tc.body); code != 400 || !strings.Contains(string(body), `"field":"`+tc.field+`"`) {
			t.Errorf("probe %v: %d %s, want 400 naming %s", tc.body, code, body, tc.field)
		}
	}
	if code, _ := call(t, "POST", url, "", map[string]any{"url": sim.URL(1)}); code != http.StatusForbidden {
		t.Errorf("a guard probing: %d, want 403", code)
	}
	// The allowance: a flood of probes from one user is refused after the burst.
	refused := false
	for range 10 {
		code, _ := call(t, "POST", url, itc, map[string]any{"url": "rtsp://127.0.0.1:1/x"})
		refused = refused || code == http.StatusTooManyRequests
	}
	if !refused {
		t.Error("12 probes in a row from one user all allowed, want 429 after the burst")
	}
	if l := logs.String(); strings.Contains(l, "Parola-API-5521") || strings.Contains(l, "wrong-pw-1") {
		t.Errorf("a probe password is in the log:\n%s", l)
	}
}

// FuzzCameraSettings: whatever the API is sent, checking it never panics, and an error
// never quotes the password, whether given in its field or in the URL.
func FuzzCameraSettings(f *testing.F) {
	cfg := configs.Default()
	cfg.Sites = []configs.Site{{ID: "bastion", Name: "Bastionul Theresia"}}
	m := newCameraManager(&cfg, slog.New(slog.DiscardHandler))
	f.Add("cam-1", "rtsp://10.0.0.1/s", "", "operator", "Parola-Fuzz-1", "tcp", "10s")
	f.Add("Cam_1", "rtsp://op:Parola-Fuzz-1@10.0.0.1:554/s", "rtsp://u:p@10.0.0.1/sub", "", "", "sctp", "soon")
	f.Add("x", "http://[::1/s", "rtsp://%zz", "op", "Parola-Fuzz-1", "", "1h")
	f.Fuzz(func(t *testing.T, id, url, liveURL, user, password, transport, readTimeout string) {
		in := web.CameraSettings{ID: id, Name: "X", Site: "bastion", URL: url, LiveURL: liveURL, Username: user,
			Password: password, Transport: transport, ReadTimeout: readTimeout}
		c, err := m.check(in, nil)
		if err == nil {
			if _, err := c.recorderConfig("Bastionul Theresia"); err != nil {
				t.Fatalf("accepted settings %+v do not run: %v", in, err)
			}
			return
		}
		for _, secret := range []string{password, c.Password} {
			// Short ones may be words of the messages themselves.
			if len(secret) >= 12 && strings.Contains(err.Error(), secret) && !strings.Contains(id+user+transport+readTimeout, secret) {
				t.Fatalf("error %q quotes the password %q", err, secret)
			}
		}
	})
}

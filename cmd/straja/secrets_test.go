package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/storage/secrets"
	"github.com/straja-nvr/straja/storage/state"
)

// TestCameraPasswordAtRest adds a camera with a password through the API: neither the
// state database file nor its backup in the store holds the password, yet the camera
// records with it after a restart. Restored without its secrets key, the camera is not
// started and says why; entering the password again starts it.
func TestCameraPasswordAtRest(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: ~20 s")
	}
	const secret = "Parola-Sigilata-8842"
	sim := startSim(t, 1, camsim.Options{Username: "operator", Password: secret})
	dir := t.TempDir()
	cfg := baseConfig(t, dir, nil, 0)
	if os.Getenv("STRAJA_TEST_S3_ENDPOINT") != "" {
		useS3(t, cfg) // the backup goes where an outsider might read it
	}
	m := startMain(t, cfg)
	itc := itcToken(t, m)
	base := m.URL() + "/api/v1"
	code, body := call(t, "POST", base+"/cameras", itc, map[string]any{"id": "gate", "name": "Poartă",
		"site": "bastion", "url": sim.URL(1), "username": "operator", "password": secret, "transport": "tcp"})
	if code != http.StatusCreated || bytes.Contains(body, []byte(secret)) {
		t.Fatalf("add camera: %d %s", code, body)
	}
	testutil.WaitFor(t, 20*time.Second, "gate online", func() bool { return camAs(t, base, itc, "gate").State == "online" })

	// The file, its WAL, and the backup object hold the camera, not its password.
	dbPath := statePath(cfg)
	for _, name := range []string{dbPath, dbPath + "-wal"} {
		b, _ := os.ReadFile(name)
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the camera password in clear", filepath.Base(name))
		}
	}
	key, err := state.Backups{Store: m.rec.Store()}.Save(t.Context(), m.state)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := testStore(t, cfg).Get(t.Context(), key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	backup, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Contains(backup, []byte(`"password_sealed":"v1:`)) {
		t.Fatalf("the backup %s does not hold the camera's sealed password: the check below proves nothing", key)
	}
	if bytes.Contains(backup, []byte(secret)) {
		t.Errorf("the backup %s in the store holds the camera password in clear", key)
	}
	fi, err := os.Stat(secrets.Path(dir))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secrets key = %v, %v; want %s, mode 0600", fi, err, secrets.Path(dir))
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart it records with its password.
	m = startMain(t, cfg)
	base, itc = m.URL()+"/api/v1", itcToken(t, m)
	restarted := time.Now()
	if err := m.state.SetGrants(t.Context(), "tester", []state.Grant{{Kind: "camera", Target: "gate"}}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, "gate segments after the restart", func() bool {
		segs := segmentsOf(t, m.Addr(), "gate")
		return len(segs) > 0 && segs[len(segs)-1].Start.After(restarted)
	})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// Another machine: the backup restored beside another key.
	foreign := make([]byte, 32)
	_, _ = rand.Read(foreign)
	if err := os.WriteFile(secrets.Path(dir), foreign, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runCmd(t, "state", "restore", "--config", writeConfig(t, cfg)); err != nil ||
		!strings.Contains(out, "1 camera password(s) cannot be decrypted with "+secrets.Path(dir)) {
		t.Fatalf("state restore beside another key: %v; want it to say one password cannot be decrypted:\n%s", err, out)
	}
	m = startMain(t, cfg)
	base, itc = m.URL()+"/api/v1", itcToken(t, m)
	var c struct {
		apiCamera
		Reason string `json:"reason"`
	}
	code, body = call(t, "GET", base+"/cameras/gate", itc, nil)
	if err := json.Unmarshal(body, &c); code != http.StatusOK || err != nil {
		t.Fatalf("camera gate after the restore: %d %s", code, body)
	}
	if c.State != "offline" || c.Reason != "no_credentials" || !strings.Contains(c.LastError, "secrets key differs") ||
		!strings.Contains(c.LastError, "re-enter the password") || c.Reconnects != 0 {
		t.Errorf("camera gate restored without its key = %s; want offline, reason no_credentials, "+
			"saying the key differs and to re-enter the password, never connected", body)
	}
	// Its recording has a hole, open while it waits for its password.
	if err := m.state.SetGrants(t.Context(), "tester", []state.Grant{{Kind: "camera", Target: "gate"}}); err != nil {
		t.Fatal(err)
	}
	held := time.Now()
	openGap := func() bool {
		for _, g := range gapsOfCamera(t, m.Addr(), "gate") {
			if g.End == nil { // service_stopped after the restore, then offline
				return true
			}
		}
		return false
	}
	testutil.WaitFor(t, 10*time.Second, "an open gap of gate in the ledger", openGap)
	code, body = call(t, "GET", base+"/cameras/gate/settings", itc, nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"password_unreadable":true`) {
		t.Errorf("settings of gate restored without its key: %d %s; want password_unreadable", code, body)
	}
	// An edit that leaves the password empty keeps it unreadable (the right key file
	// may come back); entering it again starts the camera.
	settings := map[string]any{"name": "Poartă", "site": "bastion", "url": sim.URL(1), "username": "operator",
		"transport": "tcp"}
	if code, body := call(t, "PUT", base+"/cameras/gate", itc, settings); code != http.StatusOK ||
		!strings.Contains(string(body), `"password_unreadable":true`) {
		t.Errorf("edit without the password: %d %s; want it still unreadable", code, body)
	}
	settings["password"] = secret
	if code, body := call(t, "PUT", base+"/cameras/gate", itc, settings); code != http.StatusOK ||
		strings.Contains(string(body), "password_unreadable") {
		t.Fatalf("re-enter the password: %d %s", code, body)
	}
	testutil.WaitFor(t, 20*time.Second, "gate online with its password entered again", func() bool {
		return camAs(t, base, itc, "gate").State == "online"
	})
	testutil.WaitFor(t, 10*time.Second, "the gap closed", func() bool { return !openGap() })
	if gs := gapsOfCamera(t, m.Addr(), "gate"); !slices.ContainsFunc(gs, func(g apiGap) bool {
		return g.End != nil && g.End.After(held)
	}) {
		t.Errorf("gaps of gate = %+v; want the time it waited for its password, closed", gs)
	}
}

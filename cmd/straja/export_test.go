package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/export"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/web/auth"
)

// TestExportCommand records a camera into disk and into MinIO (and an H.265 camera
// into disk), exports three segments' worth with `straja export`, and checks the
// result the way a court expert would:
// `straja verify`, openssl and sha256sum with the published PEM key, and ffprobe.
// A flipped byte in the clip, an edited manifest and a key it was not signed with
// each fail, naming what; a source segment changed in the store fails the export,
// naming the segment.
func TestExportCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("records for ~8 s")
	}
	testutil.NeedTool(t, "ffprobe")
	for _, backend := range []string{"disk", "s3", "disk-h265"} {
		t.Run(backend, func(t *testing.T) {
			opts, codec := camsimOpts(), "h264"
			if backend == "disk-h265" {
				opts.Codecs, codec = map[int]streaming.Codec{1: "h265"}, "hevc"
			}
			sim := startSim(t, 1, opts)
			cfg := baseConfig(t, t.TempDir(), sim, 1)
			if backend == "s3" {
				useS3(t, cfg)
			}
			m := startMain(t, cfg)
			testutil.WaitFor(t, 40*time.Second, "4 segments", func() bool { return len(segmentsOf(t, m.Addr(), "cam-1")) >= 4 })
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			config := writeConfig(t, cfg)
			segs := recorded(t, cfg, "cam-1")
			from, to := segs[0].Start, segs[2].End()
			out := filepath.Join(t.TempDir(), "incident.mp4")
			stdout, err := runCmd(t, "export", "--config", config, "--camera", "cam-1", "--from", from.Format(time.RFC3339Nano),
				"--to", to.Format(time.RFC3339Nano), "-o", out, "--reason", "sesizare poliție 123/2026")
			if err != nil {
				t.Fatalf("export: %v\n%s", err, stdout)
			}
			manifestPath := filepath.Join(filepath.Dir(out), "incident.manifest.json")
			var man export.Manifest
			mb, err := os.ReadFile(manifestPath)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(mb, &man); err != nil {
				t.Fatal(err)
			}
			if len(man.Segments) < 3 || man.Segments[0].Key != segs[0].Key || man.Segments[0].SHA256 != hex.EncodeToString(segs[0].SHA256[:]) ||
				man.Camera.ID != "cam-1" || man.Camera.Name != "Camera 1" || man.Site.Name != "Bastionul Theresia" ||
				man.Reason != "sesizare poliție 123/2026" || !strings.HasPrefix(man.User, "local") || man.Version == "" {
				t.Errorf("manifest = %s", mb)
			}
			p := testutil.FFprobe(t, out)
			if d := p.Duration - to.Sub(from); p.Codec != codec || !p.FirstKey || d > frame || d < -frame {
				t.Errorf("ffprobe of the clip: %+v; want %s from a keyframe, %v within a frame", p, codec, to.Sub(from))
			}

			verify := func(args ...string) (string, error) {
				return runCmd(t, append([]string{"verify"}, args...)...)
			}
			if got, err := verify(out, "--config", config); err != nil || !strings.Contains(got, "OK incident.mp4") {
				t.Fatalf("verify of a good clip: %v\n%s", err, got)
			}
			pem := filepath.Join(t.TempDir(), "key.pem")
			pub, err := export.LoadKeys(export.KeyDir(cfg.DataDir)).Public(man.KeyID)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(pem, export.PublicPEM(pub), 0o644); err != nil {
				t.Fatal(err)
			}
			checkWithStandardTools(t, out, manifestPath, pem, man.Clip.SHA256)

			// Tampering, each caught and named.
			bad := copyFiles(t, out, manifestPath)
			flipByte(t, bad.Clip, man.Clip.Size/2)
			if got, err := verify(bad.Clip, "--key", pem); err == nil || !strings.Contains(err.Error(), "clip hash") {
				t.Errorf("verify of a clip with a flipped byte: %v\n%s; want a clip hash failure", err, got)
			}
			bad = copyFiles(t, out, manifestPath)
			edited := bytes.Replace(mb, []byte("123/2026"), []byte("124/2026"), 1)
			if err := os.WriteFile(bad.Manifest, edited, 0o644); err != nil {
				t.Fatal(err)
			}
			if got, err := verify(bad.Clip, "--config", config); err == nil || !strings.Contains(err.Error(), "manifest signature") {
				t.Errorf("verify with an edited manifest: %v\n%s; want a manifest signature failure", err, got)
			}
			other := filepath.Join(t.TempDir(), "other.pem")
			otherKeys, err := export.OpenKeys(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			otherID, _, _ := otherKeys.Signer()
			otherPub, _ := otherKeys.Public(otherID)
			if err := os.WriteFile(other, export.PublicPEM(otherPub), 0o644); err != nil {
				t.Fatal(err)
			}
			if got, err := verify(out, "--key", other); err == nil || !strings.Contains(err.Error(), "unknown key") ||
				!strings.Contains(err.Error(), man.KeyID) {
				t.Errorf("verify with another key: %v\n%s; want unknown key naming %s", err, got, man.KeyID)
			}

			// A rotated key leaves old exports verifiable.
			if got, err := runCmd(t, "keys", "rotate", "--config", config); err != nil || !strings.Contains(got, man.KeyID+" is retired") {
				t.Fatalf("keys rotate: %v\n%s", err, got)
			}
			if got, err := verify(out, "--config", config); err != nil {
				t.Errorf("verify after a key rotation: %v\n%s", err, got)
			}
			if got, err := runCmd(t, "keys", "show", "--config", config); err != nil || !strings.Contains(got, man.KeyID+" retired") ||
				strings.Count(got, "BEGIN PUBLIC KEY") != 2 {
				t.Errorf("keys show after rotation: %v\n%s", err, got)
			}

			// A source segment changed in the store after it was catalogued.
			st := testStore(t, cfg)
			tamperObject(t, st, segs[1].Key)
			got, err := runCmd(t, "export", "--config", config, "--camera", "cam-1", "--from", from.Format(time.RFC3339Nano),
				"--to", to.Format(time.RFC3339Nano), "-o", filepath.Join(t.TempDir(), "x.mp4"), "--reason", "r")
			if err == nil || !strings.Contains(err.Error(), segs[1].Key) || !strings.Contains(err.Error(), "sha-256") {
				t.Errorf("export over a tampered segment: %v\n%s; want a failure naming %s", err, got, segs[1].Key)
			}
		})
	}
}

// TestExportCommandInput: bad flags are refused, naming the flag.
func TestExportCommandInput(t *testing.T) {
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Storage.Disk.Path = filepath.Join(cfg.DataDir, "segments")
	cfg.Sites = []configs.Site{{ID: "bastion", Name: "B"}}
	cfg.Cameras = []configs.Camera{{ID: "gate", Name: "Poarta", Site: "bastion", URL: "rtsp://10.0.0.5/a"}}
	config := writeConfig(t, &cfg)
	base := []string{"export", "--config", config, "-o", filepath.Join(t.TempDir(), "c.mp4")}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--camera", "gate", "--from", "2026-11-25T14:00:00Z", "--to", "2026-11-25T14:05:00Z"}, "--reason is required"},
		{[]string{"--camera", "gate", "--from", "2026-11-25T14:00:00Z", "--to", "2026-11-25T13:05:00Z", "--reason", "r"}, "--to: must be after from"},
		{[]string{"--camera", "gate", "--from", "2026-11-25T00:00:00Z", "--to", "2026-11-26T00:00:00Z", "--reason", "r"}, "--to: the range is 24h0m0s long; an export may cover at most 1h0m0s"},
		{[]string{"--camera", "gate", "--from", "yesterday", "--to", "2026-11-26T00:00:00Z", "--reason", "r"}, "--from:"},
		{[]string{"--camera", "nope", "--from", "2026-11-25T14:00:00Z", "--to", "2026-11-25T14:05:00Z", "--reason", "r"}, "--camera"},
		{[]string{"--camera", "gate", "--from", "2026-11-25 16:00", "--to", "2026-11-25 16:05", "--reason", "r"}, "no recorded footage"},
	} {
		got, err := runCmd(t, append(base, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("export %v: %v\n%s; want an error with %q", tc.args, err, got, tc.want)
		}
	}
	if _, err := runCmd(t, "verify"); err == nil {
		t.Error("verify without a clip succeeded")
	}
}

// checkWithStandardTools checks a clip as someone without Straja would: the README's
// openssl command over the manifest, and sha256sum of the clip against the manifest.
func checkWithStandardTools(t *testing.T, clip, manifest, pem, sum string) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Log("openssl is not installed: the standard-tools check of the signature is skipped (Go's ed25519 checked it)")
	} else {
		out, err := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pem, "-rawin",
			"-in", manifest, "-sigfile", manifest+".sig").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Signature Verified Successfully") {
			t.Errorf("openssl pkeyutl -verify: %v\n%s", err, out)
		}
		// The key id is reproducible with openssl too.
		der, err := exec.Command("openssl", "pkey", "-pubin", "-in", pem, "-outform", "DER").Output()
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(der)
		var m export.Manifest
		b, _ := os.ReadFile(manifest)
		_ = json.Unmarshal(b, &m)
		if hex.EncodeToString(h[:8]) != m.KeyID {
			t.Errorf("key id from openssl's DER %x, manifest says %s", h[:8], m.KeyID)
		}
		bad := filepath.Join(t.TempDir(), "manifest.json")
		if err := os.WriteFile(bad, append(b, ' '), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pem, "-rawin",
			"-in", bad, "-sigfile", manifest+".sig").CombinedOutput(); err == nil {
			t.Errorf("openssl accepted a changed manifest: %s", out)
		}
	}
	out, err := exec.Command("sha256sum", clip).Output()
	if err != nil {
		t.Fatalf("sha256sum: %v", err)
	}
	if f := strings.Fields(string(out)); len(f) == 0 || f[0] != sum {
		t.Errorf("sha256sum %s = %s, manifest says %s", clip, out, sum)
	}
}

// copyFiles copies a clip and its manifest and signature into a new directory.
func copyFiles(t *testing.T, clip, manifest string) export.Files {
	t.Helper()
	dir := t.TempDir()
	f := export.Files{Clip: filepath.Join(dir, filepath.Base(clip)), Manifest: filepath.Join(dir, filepath.Base(manifest))}
	f.Signature = f.Manifest + ".sig"
	for src, dst := range map[string]string{clip: f.Clip, manifest: f.Manifest, manifest + ".sig": f.Signature} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x01
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tamperObject flips one byte of a stored object in the middle of its media.
func tamperObject(t *testing.T, st storage.Store, key string) {
	t.Helper()
	ctx := context.Background()
	rc, err := st.Get(ctx, key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	b[len(b)*2/3] ^= 0x40
	if err := st.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

// TestExportService exports through the API as an admin: 202, progress to done, the
// four files and a bundle holding the five; the signature checked with Go's
// crypto/ed25519 directly against the PEM from /api/v1/export-keys; the bundle's
// files pass `straja verify` and openssl. A tampered source segment fails the
// export, naming the segment.
func TestExportService(t *testing.T) {
	if testing.Short() {
		t.Skip("records for ~8 s")
	}
	sim := startSim(t, 1, camsimOpts())
	cfg := baseConfig(t, t.TempDir(), sim, 1)
	useS3(t, cfg)
	m := startMain(t, cfg)
	admin := exportAdminToken(t, m)
	testutil.WaitFor(t, 40*time.Second, "4 segments", func() bool { return len(segmentsOf(t, m.Addr(), "cam-1")) >= 4 })
	segs := segmentsOf(t, m.Addr(), "cam-1")
	from, to := segs[0].Start, segs[2].End
	base := "http://" + m.Addr()

	body := fmt.Sprintf(`{"camera":"cam-1","from":%q,"to":%q,"reason":"cerere IPJ Timiș"}`,
		from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	var ex struct {
		ID       string            `json:"id"`
		State    string            `json:"state"`
		Progress float64           `json:"progress"`
		Error    string            `json:"error"`
		Files    map[string]string `json:"files"`
	}
	if code, b := adminDo(t, admin, "POST", base+"/api/v1/exports", body, &ex); code != http.StatusAccepted {
		t.Fatalf("POST /api/v1/exports: %d %s", code, b)
	}
	id := ex.ID
	testutil.WaitFor(t, 60*time.Second, "export done", func() bool {
		adminDo(t, admin, "GET", base+"/api/v1/exports/"+id, "", &ex)
		if ex.State == "failed" {
			t.Fatalf("export failed: %s", ex.Error)
		}
		return ex.State == "done"
	})
	if ex.Progress != 1 || len(ex.Files) != 4 {
		t.Errorf("done export: %+v", ex)
	}
	dir := t.TempDir()
	get := func(name string) []byte {
		code, b := adminDo(t, admin, "GET", base+ex.Files[name], "", nil)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", ex.Files[name], code, b)
		}
		return b
	}
	clip, manifest, sig := get("clip.mp4"), get("manifest.json"), get("manifest.json.sig")

	// The signature, checked with crypto/ed25519 against the published key.
	var keys []struct {
		ID      string `json:"id"`
		Current bool   `json:"current"`
		PEM     string `json:"pem"`
	}
	if code, b := adminDo(t, admin, "GET", base+"/api/v1/export-keys", "", &keys); code != 200 || len(keys) == 0 {
		t.Fatalf("export keys: %d %s", code, b)
	}
	blk, _ := pem.Decode([]byte(keys[0].PEM))
	pk, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pk.(ed25519.PublicKey), manifest, sig) {
		t.Error("crypto/ed25519 rejects the manifest signature with the key from /api/v1/export-keys")
	}
	var man export.Manifest
	if err := json.Unmarshal(manifest, &man); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(clip)
	if man.Clip.SHA256 != hex.EncodeToString(sum[:]) || man.Clip.Size != int64(len(clip)) || man.ID != id ||
		man.KeyID != keys[0].ID || man.User != "export-admin" || man.Reason != "cerere IPJ Timiș" ||
		!man.Requested.From.Equal(from) || len(man.Segments) < 3 {
		t.Errorf("manifest: %s", manifest)
	}

	// The bundle: five files that check out with standard tools and straja verify.
	zb := get("bundle.zip")
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("bundle %s: %v", f.Name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(names, " ") != "clip.mp4 manifest.json manifest.json.sig key.pem README.txt" {
		t.Errorf("bundle holds %v", names)
	}
	testutil.FFprobe(t, filepath.Join(dir, "clip.mp4"))
	checkWithStandardTools(t, filepath.Join(dir, "clip.mp4"), filepath.Join(dir, "manifest.json"),
		filepath.Join(dir, "key.pem"), man.Clip.SHA256)
	if got, err := runCmd(t, "verify", filepath.Join(dir, "clip.mp4"), "--key", filepath.Join(dir, "key.pem")); err != nil {
		t.Errorf("straja verify of the bundle: %v\n%s", err, got)
	}

	// A source segment changed in the store fails the export, naming it.
	all := recordedLive(t, m, "cam-1")
	tamperObject(t, m.rec.Store(), all[1].Key)
	if code, b := adminDo(t, admin, "POST", base+"/api/v1/exports", body, &ex); code != http.StatusAccepted {
		t.Fatalf("POST /api/v1/exports: %d %s", code, b)
	}
	testutil.WaitFor(t, 60*time.Second, "export failed", func() bool {
		adminDo(t, admin, "GET", base+"/api/v1/exports/"+ex.ID, "", &ex)
		return ex.State == "failed" || ex.State == "done"
	})
	if ex.State != "failed" || !strings.Contains(ex.Error, all[1].Key) || !strings.Contains(ex.Error, "sha-256") {
		t.Errorf("export over a tampered segment: %s %q; want failed naming %s", ex.State, ex.Error, all[1].Key)
	}
}

// recordedLive reads a running service's catalog.
func recordedLive(t *testing.T, m *Main, camera string) []storage.Segment {
	t.Helper()
	segs, err := m.rec.Catalog().Segments(context.Background(), camera, time.Unix(0, 0), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// exportAdminToken makes user export-admin, an admin granted every camera, and returns an
// API token of theirs.
func exportAdminToken(t *testing.T, m *Main) string {
	return userToken(t, m, "export-admin", auth.RoleAdmin, true)
}

// adminDo sends a request with the admin's token and decodes a 2xx JSON answer into v.
func adminDo(t *testing.T, token, method, url, body string, v any) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
	return resp.StatusCode, b
}

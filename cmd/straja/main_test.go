package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCatalogRebuildNeedsNoCameraPasswords: catalog rebuild uses only the store, so
// a camera whose password_env is not set must not stop it; serve still refuses.
func TestCatalogRebuildNeedsNoCameraPasswords(t *testing.T) {
	const env = "STRAJA_TEST_REBUILD_UNSET_PASSWORD"
	if _, ok := os.LookupEnv(env); ok {
		t.Fatalf("%s is set", env)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "straja.yaml")
	yaml := "data_dir: " + filepath.Join(dir, "data") + `
sites:
  - id: bastion
    name: Bastionul Theresia
cameras:
  - id: gate
    name: Poarta
    site: bastion
    url: rtsp://admin@10.0.0.5/a
    password_env: ` + env + "\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"catalog", "rebuild", "--config", cfg}, &stdout, &stderr); err != nil {
		t.Fatalf("catalog rebuild: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "catalog rebuilt: 0 segments") {
		t.Errorf("catalog rebuild printed %q", stdout.String())
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel() // if serve started, it stops at once
	err := run(ctx, []string{"serve", "--config", cfg}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "cameras[0].password_env: environment variable "+env+" is not set") {
		t.Errorf("serve without the camera password: %v, want the unset password_env named", err)
	}
}

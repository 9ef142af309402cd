package configs

import (
	"strings"
	"testing"
	"time"
)

// Session timeouts and the guards' look-back: defaults, and errors naming the field.
func TestAuthSettings(t *testing.T) {
	cfg, err := parse([]byte("listen: 127.0.0.1:8080\n"), "t.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Auth; time.Duration(a.SessionIdle) != 30*time.Minute || time.Duration(a.SessionMax) != 12*time.Hour ||
		time.Duration(a.GuardLookback) != 7*24*time.Hour {
		t.Errorf("defaults = %+v", a)
	}
	for _, tc := range []struct{ yaml, wantErr string }{
		{"auth: {session_idle: 15m, session_max: 8h, guard_lookback: 3d}\n", ""},
		{"auth: {session_idle: 10s}\n", "t.yaml:1: auth.session_idle:"},
		{"auth: {session_idle: 2h, session_max: 1h}\n", "auth.session_max:"},
		{"auth: {session_max: 60d}\n", "auth.session_max:"},
		{"auth: {guard_lookback: 30m}\n", "auth.guard_lookback:"},
		{"auth: {guard_lookback: soon}\n", "auth.guard_lookback"},
	} {
		_, err := parse([]byte(tc.yaml), "t.yaml", noEnv)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.wantErr)
		}
	}
}

// Export limits: defaults, and errors naming the field.
func TestExportSettings(t *testing.T) {
	cfg, err := parse([]byte("listen: 127.0.0.1:8080\n"), "t.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if e := cfg.Export; time.Duration(e.MaxRange) != time.Hour || e.Workers != 1 || e.Queue != 8 || e.MinFree != 1<<30 {
		t.Errorf("defaults = %+v", e)
	}
	for _, tc := range []struct{ yaml, wantErr string }{
		{"export: {max_range: 30m, workers: 2, queue: 0, min_free: 500MB}\n", ""},
		{"export: {max_range: 30s}\n", "t.yaml:1: export.max_range:"},
		{"export: {max_range: 2h}\n", "export.max_range:"},
		{"export: {workers: 9}\n", "export.workers:"},
		{"export: {queue: 101}\n", "export.queue:"},
		{"export: {min_free: lots}\n", "export.min_free"},
	} {
		_, err := parse([]byte(tc.yaml), "t.yaml", noEnv)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.wantErr)
		}
	}
}

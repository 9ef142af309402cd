package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/retention"
)

// TestRetentionEndToEnd records two cameras with a 6-second policy on one of them,
// running every second: that camera's first segments go from storage and catalog
// while it keeps recording, the other camera keeps everything, and after the service
// stops, storage and catalog hold the same segments. `straja retention plan` then
// shows the policies without deleting.
func TestRetentionEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: records for ~15 s")
	}
	for _, backend := range []string{"disk", "s3"} {
		t.Run(backend, func(t *testing.T) {
			sim := startSim(t, 2, camsimOpts())
			cfg := baseConfig(t, t.TempDir(), sim, 2)
			if backend == "s3" {
				useS3(t, cfg)
			}
			cfg.Retention.Policies = []configs.RetentionPolicy{{Name: "short", Cameras: []string{"cam-1"},
				MaxAge: configs.Duration(6 * time.Second), Schedule: "@every 1s"}}
			m := startMain(t, cfg)
			var first []string // cam-1's first segments, which must go
			testutil.WaitFor(t, 40*time.Second, "2 segments of cam-1", func() bool {
				first = catalogKeys(t, m, "cam-1")
				return len(first) >= 2
			})
			first = first[:2]
			testutil.WaitFor(t, 60*time.Second, "a run to delete cam-1's first segments", func() bool {
				keys := catalogKeys(t, m, "cam-1")
				return len(keys) > 0 && !slices.Contains(keys, first[0]) && !slices.Contains(keys, first[1])
			})
			// The run that removed the rows records itself just after.
			var runs []retention.Run
			testutil.WaitFor(t, 10*time.Second, "the runs to record 2 deletions", func() bool {
				var err error
				if runs, err = m.ret.Runs(t.Context(), 1000); err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, r := range runs {
					for _, c := range r.Cameras {
						n += c.Deleted
					}
				}
				return n >= 2
			})
			var deleted int
			for _, r := range runs {
				for _, c := range r.Cameras {
					if c.Camera != "cam-1" || c.Policy != "short" {
						t.Errorf("run %d deleted footage of %s (policy %s): only cam-1 under short may lose any", r.ID, c.Camera, c.Policy)
					}
					deleted += c.Deleted
				}
			}
			if deleted < 2 {
				t.Errorf("runs record %d deleted segments, want at least 2", deleted)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			stored, rows := listKeys(t, testStore(t, cfg)), catalogKeysOf(t, cfg)
			if !slices.Equal(stored, rows) {
				t.Errorf("storage and catalog differ after retention:\nstorage %q\ncatalog %q", stored, rows)
			}
			for _, k := range first {
				if slices.Contains(stored, k) {
					t.Errorf("%s is still stored", k)
				}
			}
			if n := len(recorded(t, cfg, "cam-2")); n < 2 {
				t.Errorf("cam-2 kept %d segments, want all it recorded (the default policy keeps 30 days)", n)
			}

			out, err := runCmd(t, "retention", "plan", "--config", writeConfig(t, cfg))
			if err != nil {
				t.Fatalf("retention plan: %v\n%s", err, out)
			}
			if !strings.Contains(out, "cam-1") || !strings.Contains(out, "short") || !strings.Contains(out, "cam-2") ||
				!strings.Contains(out, "default") || !strings.Contains(out, "nothing was deleted") {
				t.Errorf("retention plan output:\n%s\nwant a line per camera with its policy", out)
			}
			if after := catalogKeysOf(t, cfg); !slices.Equal(after, rows) {
				t.Errorf("retention plan changed the catalog: %d rows, was %d", len(after), len(rows))
			}
		})
	}
}

// catalogKeys lists a camera's catalogued keys while the service runs.
func catalogKeys(t *testing.T, m *Main, camera string) []string {
	t.Helper()
	var keys []string
	err := retention.CatalogSource{Catalog: m.rec.Catalog()}.Each(t.Context(), camera, func(s storage.Segment) error {
		keys = append(keys, s.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// catalogKeysOf lists every catalogued key of a stopped service, sorted.
func catalogKeysOf(t *testing.T, cfg *configs.Config) []string {
	t.Helper()
	var keys []string
	for _, c := range cfg.Cameras {
		for _, s := range recorded(t, cfg, c.ID) {
			keys = append(keys, s.Key)
		}
	}
	slices.Sort(keys)
	return keys
}

// segmentOf decodes a segment key.
func segmentOf(t *testing.T, key string) storage.Segment {
	t.Helper()
	k, err := storage.ParseSegmentKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return storage.Segment{Camera: k.Camera, Start: k.Start, Duration: k.Duration, Key: key}
}

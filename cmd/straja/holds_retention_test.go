package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/retention"
)

// TestHoldsWinOverRetention records with a 6-second policy running every second and
// holds the first seconds of footage: the runs delete the unheld segments from
// storage (every version, on MinIO: the space is freed) and catalog, while the held
// ones stay, and on MinIO (a bucket made by `straja storage init`) a direct removal of
// a held version fails. Once the hold is released, the next runs delete them too.
func TestHoldsWinOverRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: records for ~20 s")
	}
	for _, backend := range []string{"disk", "minio"} {
		t.Run(backend, func(t *testing.T) {
			sim := startSim(t, 1, camsimOpts())
			cfg := baseConfig(t, t.TempDir(), sim, 1)
			var client *minio.Client
			var bucket string
			if backend == "minio" {
				o := useS3(t, cfg)
				bucket = o.Bucket
				var err error
				client, err = minio.New(o.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(o.AccessKey, o.SecretKey, "")})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { emptyBucket(client, bucket) })
				if out, err := runCmd(t, "storage", "init", "--config", writeConfig(t, cfg)); err != nil {
					t.Fatalf("storage init: %v\n%s", err, out)
				}
			}
			cfg.Retention.Policies = []configs.RetentionPolicy{{Name: "short", Cameras: []string{"cam-1"},
				MaxAge: configs.Duration(6 * time.Second), Schedule: "@every 1s"}}
			m := startMain(t, cfg)
			tok := holderToken(t, m)
			from := time.Now()
			to := from.Add(5 * time.Second)
			h := setHold(t, m, tok, "cam-1", from, to)

			// Wait for a segment wholly after the hold, then for the runs to delete it.
			var after string
			testutil.WaitFor(t, 60*time.Second, "a segment recorded after the hold's range", func() bool {
				for _, s := range catalogSegments(t, m) {
					if !s.Start.Before(to) {
						after = s.Key
						return true
					}
				}
				return false
			})
			testutil.WaitFor(t, 60*time.Second, "the runs to delete "+after, func() bool {
				return !slices.Contains(catalogKeys(t, m, "cam-1"), after)
			})
			var held []string
			for _, s := range catalogSegments(t, m) {
				if s.Start.Before(to) && s.End().After(from) {
					held = append(held, s.Key)
				}
			}
			if len(held) < 2 {
				t.Fatalf("held segments in the catalog %q, want the 2 s segments of the hold's 5 s", held)
			}
			ctx := context.Background()
			st := m.rec.Store()
			stored := listKeys(t, st)
			if slices.Contains(stored, after) {
				t.Errorf("%s is gone from the catalog but still stored", after)
			}
			for _, k := range held {
				if !slices.Contains(stored, k) {
					t.Errorf("held %s is no longer stored", k)
				}
			}
			if backend == "minio" {
				if n := versionCount(t, client, bucket, after); n != 0 {
					t.Errorf("%s still has %d versions or delete markers: the space was not freed", after, n)
				}
				if err := removeAllVersions(ctx, client, bucket, held[0]); err == nil || !strings.Contains(err.Error(), "WORM") {
					t.Errorf("direct removal of held %s: %v, want refused (WORM)", held[0], err)
				}
			}

			code, body := callAPI(t, tok, "DELETE", m.URL()+"/api/v1/holds/"+h.ID+"?reason=dosar+clasat", "")
			if code != http.StatusOK {
				t.Fatalf("release: %d %s", code, body)
			}
			testutil.WaitFor(t, 60*time.Second, "the runs to delete the released segments", func() bool {
				keys := catalogKeys(t, m, "cam-1")
				return !slices.ContainsFunc(held, func(k string) bool { return slices.Contains(keys, k) })
			})
			stored = listKeys(t, st)
			for _, k := range held {
				if slices.Contains(stored, k) {
					t.Errorf("released %s is gone from the catalog but still stored", k)
				}
				if backend == "minio" {
					if n := versionCount(t, client, bucket, k); n != 0 {
						t.Errorf("released %s still has %d versions", k, n)
					}
				}
			}
		})
	}
}

// catalogSegments lists cam-1's catalogued segments while the service runs.
func catalogSegments(t *testing.T, m *Main) []storage.Segment {
	t.Helper()
	var out []storage.Segment
	err := retention.CatalogSource{Catalog: m.rec.Catalog()}.Each(t.Context(), "cam-1", func(s storage.Segment) error {
		out = append(out, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// versionCount counts the versions and delete markers of key.
func versionCount(t *testing.T, c *minio.Client, bucket, key string) int {
	t.Helper()
	n := 0
	for obj := range c.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		if obj.Key == key {
			n++
		}
	}
	return n
}

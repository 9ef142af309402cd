package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder/camsim"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/auth"
)

// holderToken makes user "holder", an admin granted every configured camera, and
// returns an API token for it.
func holderToken(t *testing.T, m *Main) string {
	return userToken(t, m, "holder", auth.RoleAdmin, true)
}

// callAPI sends a JSON request with tok and returns the status and body.
func callAPI(t *testing.T, tok, method, url, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type apiHold struct {
	ID            string `json:"id"`
	Status        string `json:"status"`
	ReleasedBy    string `json:"released_by"`
	ReleaseReason string `json:"release_reason"`
}

func setHold(t *testing.T, m *Main, tok, camera string, from, to time.Time) apiHold {
	t.Helper()
	code, body := callAPI(t, tok, "POST", m.URL()+"/api/v1/holds", `{"cameras":["`+camera+`"],"from":"`+
		from.Format(time.RFC3339Nano)+`","to":"`+to.Format(time.RFC3339Nano)+`","reason":"Dosar penal 123/P/2026"}`)
	if code != http.StatusCreated {
		t.Fatalf("set hold: %d %s", code, body)
	}
	var h apiHold
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHoldsEndToEnd records, holds part of the footage through the API, and checks
// that the storage keeps it: on MinIO (a bucket made by `straja storage init`) a direct
// removal of a held object version fails, including a segment uploaded from the spool
// after the hold was set; on disk the store refuses. Releasing lets them go. After
// the state database is lost, `straja catalog rebuild` brings every hold back.
func TestHoldsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("records for several seconds")
	}
	for _, backend := range []string{"minio", "disk"} {
		t.Run(backend, func(t *testing.T) {
			dir := t.TempDir()
			sim := startSim(t, 1, camsim.Options{})
			cfg := baseConfig(t, dir, sim, 1)
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
				out, err := runCmd(t, "storage", "init", "--config", writeConfig(t, cfg))
				if err != nil || !strings.Contains(out, "created with versioning and Object Lock") {
					t.Fatalf("storage init: %v\n%s", err, out)
				}
			}
			m := startMain(t, cfg)
			tok := holderToken(t, m)
			st := m.rec.Store()
			var segs []apiSegment
			testutil.WaitFor(t, 30*time.Second, "3 segments of cam-1", func() bool {
				segs = segmentsOf(t, m.Addr(), "cam-1")
				return len(segs) >= 3
			})
			key := func(s apiSegment) string {
				return storage.SegmentKey{Camera: "cam-1", Start: s.Start, Duration: s.End.Sub(s.Start)}.String()
			}
			// Hold the second segment only; and, from now on, what is still being
			// recorded (it reaches the store after the hold is set).
			past := setHold(t, m, tok, "cam-1", segs[1].Start.Add(time.Millisecond), segs[1].End.Add(-time.Millisecond))
			if got := metricLine(t, m, `straja_held_bytes{camera="cam-1"}`); got != strconv.FormatInt(segs[1].Size, 10) {
				t.Errorf("straja_held_bytes of cam-1 = %q, want the held segment's %d bytes", got, segs[1].Size)
			}
			if got := metricLine(t, m, `straja_held_segments{camera="cam-1"}`); got != "1" {
				t.Errorf("straja_held_segments of cam-1 = %q, want 1", got)
			}
			setAt := time.Now()
			live := setHold(t, m, tok, "cam-1", setAt, setAt.Add(time.Hour))
			var later apiSegment
			testutil.WaitFor(t, 30*time.Second, "a segment recorded after the hold", func() bool {
				for _, s := range segmentsOf(t, m.Addr(), "cam-1") {
					if s.Start.After(setAt) {
						later = s
						return true
					}
				}
				return false
			})
			held := []string{key(segs[1]), key(later)}
			free := key(segs[0])

			ctx := context.Background()
			for _, k := range held {
				if err := st.Delete(ctx, k); !errors.Is(err, storage.ErrHeld) {
					t.Errorf("store delete of held %s: %v, want ErrHeld", k, err)
				}
				if backend == "minio" {
					if err := removeAllVersions(ctx, client, bucket, k); err == nil || !strings.Contains(err.Error(), "WORM") {
						t.Errorf("direct removal of held %s: %v, want refused (WORM)", k, err)
					}
				}
			}
			if backend == "minio" {
				if err := removeAllVersions(ctx, client, bucket, free); err != nil {
					t.Errorf("direct removal of unheld %s: %v", free, err)
				}
			} else if err := st.Delete(ctx, free); err != nil {
				t.Errorf("store delete of unheld %s: %v", free, err)
			}

			// Release both: the footage may go.
			for _, id := range []string{past.ID, live.ID} {
				code, body := callAPI(t, tok, "DELETE", m.URL()+"/api/v1/holds/"+id, "")
				if code != http.StatusBadRequest || !strings.Contains(string(body), `"field":"reason"`) {
					t.Errorf("release without a reason: %d %s, want 400 naming reason", code, body)
				}
				code, body = callAPI(t, tok, "DELETE", m.URL()+"/api/v1/holds/"+id, `{"reason":"dosar clasat"}`)
				if code != http.StatusOK || !strings.Contains(string(body), `"released_by":"holder"`) {
					t.Fatalf("release: %d %s", code, body)
				}
			}
			for _, k := range held {
				var err error
				if backend == "minio" {
					err = removeAllVersions(ctx, client, bucket, k)
				} else {
					err = st.Delete(ctx, k)
				}
				if err != nil {
					t.Errorf("delete %s after release: %v", k, err)
				}
			}

			// A lost state database: catalog rebuild brings both holds back, released.
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(statePath(cfg)); err != nil {
				t.Fatal(err)
			}
			out, err := runCmd(t, "catalog", "rebuild", "--config", writeConfig(t, cfg))
			if err != nil || !strings.Contains(out, "evidence holds: 2 known, 2 brought back") {
				t.Fatalf("catalog rebuild: %v\n%s", err, out)
			}
			db, err := state.Open(ctx, statePath(cfg))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, id := range []string{past.ID, live.ID} {
				h, err := db.Hold(ctx, id)
				if err != nil || h.ReleasedBy != "holder" || h.ReleaseReason != "dosar clasat" || h.By != "holder" {
					t.Errorf("hold %s after rebuild: %+v, %v", id, h, err)
				}
			}
		})
	}
}

// metricLine is the value of the /metrics line starting with series, "" without one.
func metricLine(t *testing.T, m *Main, series string) string {
	t.Helper()
	resp, err := http.Get(m.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// removeAllVersions removes every version of key with the bucket owner's credentials,
// bypassing Straja.
func removeAllVersions(ctx context.Context, c *minio.Client, bucket, key string) error {
	n := 0
	for obj := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true}) {
		if obj.Err != nil {
			return obj.Err
		}
		if obj.Key != key {
			continue
		}
		n++
		if err := c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{VersionID: obj.VersionID}); err != nil {
			return err
		}
	}
	if n == 0 {
		return errors.New("no version of " + key)
	}
	return nil
}

// emptyBucket lifts every legal hold and removes every version, so the test bucket of
// an Object Lock bucket can be removed.
func emptyBucket(c *minio.Client, bucket string) {
	ctx := context.Background()
	off := minio.LegalHoldDisabled
	for obj := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		if obj.Err != nil {
			return
		}
		if !obj.IsDeleteMarker {
			_ = c.PutObjectLegalHold(ctx, bucket, obj.Key, minio.PutObjectLegalHoldOptions{VersionID: obj.VersionID, Status: &off})
		}
		_ = c.RemoveObject(ctx, bucket, obj.Key, minio.RemoveObjectOptions{VersionID: obj.VersionID})
	}
}

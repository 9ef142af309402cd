package holds

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/storage/storetest"
)

// TestS3LegalHolds runs against a real MinIO with a bucket made by InitBucket (Object
// Lock): a held segment's version cannot be removed even by a direct S3 call, a
// segment uploaded into a hold's range is locked as it is stored, and releasing the
// hold lets both go.
func TestS3LegalHolds(t *testing.T) {
	ctx := t.Context()
	store, client, o := s3Rig(t)
	created, err := store.InitBucket(ctx)
	if err != nil || !created {
		t.Fatalf("init bucket: created %v, %v", created, err)
	}
	if created, err := store.InitBucket(ctx); err != nil || created {
		t.Fatalf("init an existing locked bucket: created %v, %v; want nothing to do", created, err)
	}
	if on, err := store.ObjectLocking(ctx); err != nil || !on {
		t.Fatalf("object locking = %v, %v", on, err)
	}
	keys := minuteKeys("bastion-gate", t0, 6)
	putAll(t, store, keys[:4])
	r := openRegistry(t, openState(t, t.TempDir()), store, func() time.Time { return t0.Add(time.Hour) }, nil)
	h, err := r.Create(ctx, state.Hold{Cameras: []string{"bastion-gate"}, From: t0.Add(2 * time.Minute),
		To: t0.Add(10 * time.Minute), Reason: "Dosar 77/P/2026", By: "ana"})
	if err != nil {
		t.Fatal(err)
	}
	// Segments 4 and 5 arrive from the spool after the hold was set.
	putAll(t, store, keys[4:])

	for i, k := range keys {
		held := i >= 2
		if got := legalHold(t, client, o.Bucket, k); got != held {
			t.Errorf("%s: legal hold %v, want %v", k, got, held)
		}
		if err := store.Delete(ctx, k); held != errors.Is(err, storage.ErrHeld) || !held && err != nil {
			t.Errorf("store delete %s: %v (held %v)", k, err, held)
		}
	}
	// Straja's own refusal aside, S3 refuses to remove a held version.
	for _, k := range keys[2:] {
		if err := removeVersions(ctx, client, o.Bucket, k); err == nil {
			t.Fatalf("removed a held version of %s directly", k)
		} else if !strings.Contains(err.Error(), "WORM") {
			t.Logf("direct removal of %s refused: %v", k, err)
		}
	}
	if _, err := r.Release(ctx, h.ID, "ion", "dosar clasat"); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys[2:] {
		if legalHold(t, client, o.Bucket, k) {
			t.Errorf("%s still under a legal hold after release", k)
		}
		if err := removeVersions(ctx, client, o.Bucket, k); err != nil {
			t.Errorf("remove %s after release: %v", k, err)
		}
	}
	var left []string
	for obj := range client.ListObjects(ctx, o.Bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		left = append(left, obj.Key)
	}
	for _, k := range keys[2:] {
		if slices.Contains(left, k) {
			t.Errorf("%s still stored after release and removal", k)
		}
	}
}

func legalHold(t *testing.T, c *minio.Client, bucket, key string) bool {
	t.Helper()
	st, err := c.GetObjectLegalHold(t.Context(), bucket, key, minio.GetObjectLegalHoldOptions{})
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchObjectLockConfiguration" {
			return false
		}
		t.Fatalf("legal hold of %s: %v", key, err)
	}
	return *st == minio.LegalHoldEnabled
}

// removeVersions removes every version of key, the way a user with the bucket's
// credentials would bypass Straja.
func removeVersions(ctx context.Context, c *minio.Client, bucket, key string) error {
	for obj := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true}) {
		if obj.Err != nil {
			return obj.Err
		}
		if obj.Key != key {
			continue
		}
		if err := c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{VersionID: obj.VersionID}); err != nil {
			return err
		}
	}
	return nil
}

// emptyLockedBucket lifts every legal hold and removes every version, so the test
// bucket can go.
func emptyLockedBucket(t *testing.T, c *minio.Client, bucket string) {
	ctx := context.Background()
	off := minio.LegalHoldDisabled
	for obj := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		if obj.Err != nil {
			return
		}
		if !obj.IsDeleteMarker {
			_ = c.PutObjectLegalHold(ctx, bucket, obj.Key, minio.PutObjectLegalHoldOptions{VersionID: obj.VersionID, Status: &off})
		}
		if err := c.RemoveObject(ctx, bucket, obj.Key, minio.RemoveObjectOptions{VersionID: obj.VersionID}); err != nil {
			t.Logf("cleanup %s: %v", obj.Key, err)
		}
	}
}

// A bucket made without Object Lock is reported as such: holds there are enforced by
// Straja alone, and storage init refuses to call it ready.
func TestS3WithoutObjectLock(t *testing.T) {
	ctx := t.Context()
	store, err := storage.NewS3(ctx, storetest.S3FromEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Ping(ctx); err != nil { // creates a plain bucket
		t.Fatal(err)
	}
	if on, err := store.ObjectLocking(ctx); err != nil || on {
		t.Fatalf("object locking of a plain bucket = %v, %v; want false", on, err)
	}
	if _, err := store.InitBucket(ctx); err == nil || !strings.Contains(err.Error(), "without Object Lock") {
		t.Fatalf("init of a plain bucket: %v, want a refusal naming Object Lock", err)
	}
}

// A held segment large enough for a multipart upload is locked as it is stored too.
func TestS3LegalHoldMultipart(t *testing.T) {
	ctx := t.Context()
	store, client, o := s3Rig(t)
	if _, err := store.InitBucket(ctx); err != nil {
		t.Fatal(err)
	}
	r := openRegistry(t, openState(t, t.TempDir()), store, func() time.Time { return t0.Add(time.Hour) }, nil)
	if _, err := r.Create(ctx, state.Hold{Cameras: []string{"bastion-gate"}, From: t0, To: t0.Add(time.Hour),
		Reason: "Dosar 9/P/2026", By: "ana"}); err != nil {
		t.Fatal(err)
	}
	key := minuteKeys("bastion-gate", t0, 1)[0]
	big := make([]byte, 12<<20) // three parts of 5 MiB
	if err := store.Put(ctx, key, bytes.NewReader(big), int64(len(big))); err != nil {
		t.Fatal(err)
	}
	if !legalHold(t, client, o.Bucket, key) {
		t.Errorf("%s (multipart) is not under a legal hold", key)
	}
	// The spool's way: one PUT signed with the SHA-256 it computed.
	key = minuteKeys("bastion-gate", t0.Add(time.Minute), 1)[0]
	if err := store.PutHashed(ctx, key, bytes.NewReader(big), int64(len(big)), sha256.Sum256(big)); err != nil {
		t.Fatal(err)
	}
	if !legalHold(t, client, o.Bucket, key) {
		t.Errorf("%s (put with its hash) is not under a legal hold", key)
	}
}

// When a hold expires, the sweep lifts its legal holds, so retention can delete the
// footage; a hold released while another still covers the footage leaves it locked.
func TestS3ExpiryAndOverlap(t *testing.T) {
	ctx := t.Context()
	store, client, o := s3Rig(t)
	if _, err := store.InitBucket(ctx); err != nil {
		t.Fatal(err)
	}
	keys := minuteKeys("bastion-gate", t0, 4)
	putAll(t, store, keys)
	now := t0.Add(time.Hour)
	r := openRegistry(t, openState(t, t.TempDir()), store, func() time.Time { return now }, nil)
	// Expiring: minutes 0-1; lasting: minutes 1-2.
	if _, err := r.Create(ctx, state.Hold{Cameras: []string{"bastion-gate"}, From: t0, To: t0.Add(2 * time.Minute),
		Reason: "cerere verificare", Expires: now.Add(time.Hour), By: "ana"}); err != nil {
		t.Fatal(err)
	}
	lasting, err := r.Create(ctx, state.Hold{Site: "bastion", From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute),
		Reason: "dosar", By: "ana"})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	if err := r.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{false, true, true, false} {
		if got := legalHold(t, client, o.Bucket, keys[i]); got != want {
			t.Errorf("after expiry %s: legal hold %v, want %v", keys[i], got, want)
		}
	}
	if _, err := r.Release(ctx, lasting.ID, "ion", "clasat"); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if legalHold(t, client, o.Bucket, k) {
			t.Errorf("after both ended %s is still under a legal hold", k)
		}
	}
}

// s3Rig opens the test bucket as a store and with a plain minio client, and empties
// it of locked versions when the test ends.
func s3Rig(t *testing.T) (*storage.S3, *minio.Client, storage.S3Options) {
	t.Helper()
	o := storetest.S3FromEnv(t)
	store, err := storage.NewS3(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	client, err := minio.New(o.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(o.AccessKey, o.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emptyLockedBucket(t, client, o.Bucket) })
	return store, client, o
}

package storage_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/storetest"
)

// TestS3DeleteManyVersioned checks that in a versioned bucket DeleteMany removes every
// version, so the space is freed, not hidden behind delete markers.
func TestS3DeleteManyVersioned(t *testing.T) {
	o := storetest.S3FromEnv(t)
	ctx := t.Context()
	c, err := minio.New(o.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(o.AccessKey, o.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MakeBucket(ctx, o.Bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeVersions(t, c, o.Bucket) })
	if err := c.EnableVersioning(ctx, o.Bucket); err != nil {
		t.Fatal(err)
	}
	s, err := storage.NewS3(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"bastion-gate/2026/11/25/20261125t215507.123z_2000ms.mp4", "bastion-gate/2026/11/26/20261126t000001.000z_2000ms.mp4"}
	keep := "bastion-gate/2026/11/26/20261126t000003.000z_2000ms.mp4"
	for _, k := range append(keys, keep, keys[0]) { // keys[0] twice: two versions
		if err := s.Put(ctx, k, bytes.NewReader(make([]byte, 1000)), 1000); err != nil {
			t.Fatal(err)
		}
	}
	if failed, err := s.DeleteMany(ctx, keys); err != nil || len(failed) > 0 {
		t.Fatalf("DeleteMany: %v %v", failed, err)
	}
	var left []string
	for v := range c.ListObjects(ctx, o.Bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		if v.Err != nil {
			t.Fatal(v.Err)
		}
		left = append(left, v.Key)
	}
	if len(left) != 1 || left[0] != keep {
		t.Errorf("versions left after DeleteMany: %q, want only the one of %s", left, keep)
	}
}

// removeVersions empties a versioned bucket so the suite's cleanup can remove it.
func removeVersions(t *testing.T, c *minio.Client, bucket string) {
	ctx := context.Background() // t.Context is done during cleanup
	ch := make(chan minio.ObjectInfo)
	go func() {
		defer close(ch)
		for v := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
			if v.Err == nil {
				ch <- minio.ObjectInfo{Key: v.Key, VersionID: v.VersionID}
			}
		}
	}()
	for range c.RemoveObjects(ctx, bucket, ch, minio.RemoveObjectsOptions{}) {
	}
}

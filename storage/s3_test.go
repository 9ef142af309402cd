package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/storetest"
)

func TestS3Conformance(t *testing.T) {
	storetest.S3FromEnv(t) // skip early, before any subtest
	storetest.Run(t, func(t *testing.T) storage.Store {
		s, err := storage.NewS3(t.Context(), storetest.S3FromEnv(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestS3ConformanceHashed runs the conformance suite with every Put made as the
// spool makes it: one PUT signed with the bytes' SHA-256 (PutHashed).
func TestS3ConformanceHashed(t *testing.T) {
	storetest.S3FromEnv(t)
	storetest.Run(t, func(t *testing.T) storage.Store {
		s, err := storage.NewS3(t.Context(), storetest.S3FromEnv(t))
		if err != nil {
			t.Fatal(err)
		}
		return hashingStore{s}
	})
}

// hashingStore puts through PutHashed, with the SHA-256 of the first size bytes.
type hashingStore struct{ *storage.S3 }

func (h hashingStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return h.PutHashed(ctx, key, bytes.NewReader(b), size, sha256.Sum256(b[:min(int64(len(b)), max(size, 0))]))
}

// TestS3PutHashedMismatch checks that the server refuses bytes that do not match the
// SHA-256 they were sent with, and stores nothing.
func TestS3PutHashedMismatch(t *testing.T) {
	ctx := t.Context()
	s, err := storage.NewS3(ctx, storetest.S3FromEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("segment bytes as written")
	sum := sha256.Sum256(body)
	body[0] ^= 1 // changed after hashing
	if err := s.PutHashed(ctx, "cam/bad", bytes.NewReader(body), int64(len(body)), sum); err == nil {
		t.Fatal("put with a SHA-256 that does not match the bytes succeeded")
	}
	if _, err := s.Stat(ctx, "cam/bad"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat after a refused put: %v, want not found", err)
	}
	body[0] ^= 1
	if err := s.PutHashed(ctx, "cam/bad", bytes.NewReader(body), int64(len(body)), sum); err != nil {
		t.Fatal(err)
	}
}

// TestS3Prefix checks that two stores sharing a bucket under different prefixes do
// not see each other's objects, and that keys come back without the prefix.
func TestS3Prefix(t *testing.T) {
	o := storetest.S3FromEnv(t)
	ctx := t.Context()
	o.Prefix = "site-a"
	a, err := storage.NewS3(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Prefix = "site-b/"
	b, err := storage.NewS3(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, "cam/x", strings.NewReader("a"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, "cam/x"); err == nil {
		t.Fatalf("store with prefix site-b sees site-a's object")
	}
	var keys []string
	if err := a.List(ctx, "", func(o storage.ObjectInfo) error { keys = append(keys, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "cam/x" {
		t.Fatalf("List = %q, want [cam/x]", keys)
	}
	if err := a.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// TestS3SecretNotInErrors checks that a wrong secret key is reported without
// echoing it, since errors end up in logs.
func TestS3SecretNotInErrors(t *testing.T) {
	o := storetest.S3FromEnv(t)
	o.SecretKey = "wrong-secret-Zq93xk"
	s, err := storage.NewS3(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Put(t.Context(), "cam/x", strings.NewReader("a"), 1)
	if err == nil {
		t.Fatal("Put with a wrong secret key succeeded")
	}
	if strings.Contains(err.Error(), o.SecretKey) {
		t.Fatalf("error leaks the secret key: %v", err)
	}
	if err := s.Ping(t.Context()); err == nil || strings.Contains(err.Error(), o.SecretKey) {
		t.Fatalf("Ping with a wrong secret key: %v", err)
	}
	if s := o.String(); strings.Contains(s, o.SecretKey) {
		t.Fatalf("S3Options.String leaks the secret key: %s", s)
	}
}

// TestS3StartsWhileServerDown checks that the service can start before MinIO (after a
// site power cut MinIO may boot later): NewS3 succeeds with nothing listening,
// operations fail until the server is up, then work, creating the bucket.
func TestS3StartsWhileServerDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a MinIO server")
	}
	bin := testutil.NeedTool(t, "minio")
	addr := testutil.FreeAddr(t, "tcp")
	o := storage.S3Options{Endpoint: addr, Bucket: "late-bucket", AccessKey: "late-test", SecretKey: "late-test-secret"}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	s, err := storage.NewS3(ctx, o)
	if err != nil {
		t.Fatalf("NewS3 with the server down: %v", err)
	}
	if err := s.Put(ctx, "cam/x", strings.NewReader("a"), 1); err == nil {
		t.Fatal("Put with the server down succeeded")
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping with the server down succeeded")
	}

	cmd := exec.Command(bin, "server", t.TempDir(), "--quiet", "--address", addr, "--console-address", testutil.FreeAddr(t, "tcp"))
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+o.AccessKey, "MINIO_ROOT_PASSWORD="+o.SecretKey)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// MinIO answers "Server not initialized yet" for a moment after its health check
	// says ready: what matters is that the same S3 value works once the server does.
	testutil.WaitFor(t, 30*time.Second, "a Put to succeed once MinIO runs", func() bool {
		return s.Put(ctx, "cam/x", strings.NewReader("a"), 1) == nil
	})
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping once the server is up: %v", err)
	}
	c, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(o.AccessKey, o.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.BucketExists(ctx, o.Bucket); err != nil || !ok {
		t.Fatalf("bucket %s exists = %v, %v; want created by the first Put", o.Bucket, ok, err)
	}
	if info, err := s.Stat(ctx, "cam/x"); err != nil || info.Size != 1 {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
	if _, err := s.Stat(ctx, "cam/y"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat of a missing key: %v, want ErrNotFound", err)
	}
}

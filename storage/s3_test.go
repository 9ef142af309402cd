package storage_test

import (
	"strings"
	"testing"

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
	_, err := storage.NewS3(t.Context(), o)
	if err == nil {
		t.Fatal("NewS3 with a wrong secret key succeeded")
	}
	if strings.Contains(err.Error(), o.SecretKey) {
		t.Fatalf("error leaks the secret key: %v", err)
	}
	if s := o.String(); strings.Contains(s, o.SecretKey) {
		t.Fatalf("S3Options.String leaks the secret key: %s", s)
	}
}

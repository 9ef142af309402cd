package storage_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/storetest"
)

func TestDiskConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		d, err := storage.NewDisk(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

// TestDiskLayout checks what an operator sees on disk: one plain file per key, no
// leftovers from writes, and no empty folders once footage is deleted.
func TestDiskLayout(t *testing.T) {
	root := t.TempDir()
	d, err := storage.NewDisk(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	key := "cam/2026/11/25/20261125t215507.123z_2000ms.mp4"
	if err := d.Put(ctx, key, strings.NewReader("video"), 5); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(key))); err != nil || string(b) != "video" {
		t.Fatalf("file at key path = %q, %v; want the object", b, err)
	}
	// A temporary file left by a crash is not an object.
	junk := filepath.Join(root, "cam/2026/11/25/.x.mp4.123~")
	if err := os.WriteFile(junk, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	var listed []string
	if err := d.List(ctx, "", func(o storage.ObjectInfo) error { listed = append(listed, o.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0] != key {
		t.Fatalf("List = %q, want only %s", listed, key)
	}
	os.Remove(junk)
	if err := d.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil || len(entries) != 0 {
		t.Fatalf("root after deleting the only object holds %v (%v), want nothing", entries, err)
	}
	if err := d.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	os.Remove(root)
	if err := d.Ping(ctx); err == nil {
		t.Fatalf("Ping with the root gone succeeded")
	}
}

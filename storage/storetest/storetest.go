// Package storetest is the conformance suite every storage.Store backend must pass,
// plus helpers for tests that need a real S3 server.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/straja-nvr/straja/storage"
)

// Run runs the Store contract tests; newStore must return an empty store and is
// called once per subtest.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Large", testLarge},
		{"Range", testRange},
		{"Replace", testReplace},
		{"List", testList},
		{"DeleteMany", testDeleteMany},
		{"NotFound", testNotFound},
		{"InvalidKey", testInvalidKey},
		{"SizeMismatch", testSizeMismatch},
		{"Concurrent", testConcurrent},
		{"Cancelled", testCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

// testLarge stores an object the size of a long 1080p segment, which S3 uploads in parts.
func testLarge(t *testing.T, s storage.Store) {
	data := payload(12<<20+12345, 7)
	put(t, s, segKey, data)
	if got := get(t, s, segKey, 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("Get returned %d bytes differing from the %d put", len(got), len(data))
	}
	if got := get(t, s, segKey, 6<<20, 1000); !bytes.Equal(got, data[6<<20:6<<20+1000]) {
		t.Fatal("range across a part boundary differs")
	}
}

// payload returns n deterministic, position-dependent bytes so a wrong range shows.
func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

func put(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
}

func get(t *testing.T, s storage.Store, key string, off, length int64) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key, off, length)
	if err != nil {
		t.Fatalf("Get(%s, %d, %d): %v", key, off, length, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%s, %d, %d): read: %v", key, off, length, err)
	}
	return b
}

func keys(t *testing.T, s storage.Store, prefix string) []string {
	t.Helper()
	var got []string
	err := s.List(t.Context(), prefix, func(o storage.ObjectInfo) error {
		got = append(got, o.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return got
}

const segKey = "bastion-gate/2026/11/25/20261125t215507.123z_2000ms.mp4"

func testRoundTrip(t *testing.T, s storage.Store) {
	data := payload(300_000, 1)
	put(t, s, segKey, data)
	if got := get(t, s, segKey, 0, -1); !bytes.Equal(got, data) {
		t.Fatalf("Get returned %d bytes differing from the %d put", len(got), len(data))
	}
	info, err := s.Stat(t.Context(), segKey)
	if err != nil {
		t.Fatal(err)
	}
	if info.Key != segKey || info.Size != int64(len(data)) || info.ModTime.IsZero() {
		t.Fatalf("Stat = %+v, want key %s size %d and a mod time", info, segKey, len(data))
	}
	put(t, s, "empty", nil)
	if got := get(t, s, "empty", 0, -1); len(got) != 0 {
		t.Fatalf("empty object read back as %d bytes", len(got))
	}
}

func testRange(t *testing.T, s storage.Store) {
	data := payload(1000, 2)
	put(t, s, "r/obj", data)
	for _, c := range []struct{ off, length int64 }{
		{0, -1}, {0, 1}, {10, 20}, {999, 1}, {500, -1}, {990, 100}, {0, 0}, {1000, -1}, {1000, 0},
	} {
		want := data[c.off:]
		if c.length >= 0 && c.off+c.length < int64(len(data)) {
			want = data[c.off : c.off+c.length]
		}
		if got := get(t, s, "r/obj", c.off, c.length); !bytes.Equal(got, want) {
			t.Errorf("Get(off=%d, length=%d) = %d bytes, want %d bytes [%d:]", c.off, c.length, len(got), len(want), c.off)
		}
	}
	if rc, err := s.Get(t.Context(), "r/obj", 1001, -1); err == nil {
		rc.Close()
		t.Errorf("Get beyond the end succeeded")
	}
}

func testReplace(t *testing.T, s storage.Store) {
	put(t, s, segKey, payload(5000, 3))
	second := payload(700, 4)
	put(t, s, segKey, second)
	if got := get(t, s, segKey, 0, -1); !bytes.Equal(got, second) {
		t.Fatalf("after replace Get returned %d bytes, want the second put's %d", len(got), len(second))
	}
	if info, err := s.Stat(t.Context(), segKey); err != nil || info.Size != int64(len(second)) {
		t.Fatalf("after replace Stat = %+v, %v; want size %d", info, err, len(second))
	}
	if got := keys(t, s, ""); !slices.Equal(got, []string{segKey}) {
		t.Fatalf("after replace List = %q, want one key", got)
	}
}

// testDeleteMany deletes a batch spanning folders, some keys already gone, and
// leaves the others alone.
func testDeleteMany(t *testing.T, s storage.Store) {
	keep := "cam/2026/01/02/keep.mp4"
	gone := []string{"cam/2026/01/01/a.mp4", "cam/2026/01/01/b.mp4", "cam/2026/01/02/a.mp4", "c"}
	for i, k := range append([]string{keep}, gone...) {
		put(t, s, k, payload(100+i, byte(i)))
	}
	put(t, s, gone[0], payload(50, 9)) // a second version, where the bucket keeps versions
	failed, err := s.DeleteMany(t.Context(), append(gone, "cam/2026/01/03/never.mp4"))
	if err != nil || len(failed) > 0 {
		t.Fatalf("DeleteMany: failed %v, err %v", failed, err)
	}
	if got := keys(t, s, ""); !slices.Equal(got, []string{keep}) {
		t.Errorf("after DeleteMany, List = %q, want only %q", got, keep)
	}
	// Again: everything is missing now, which is not an error.
	if failed, err := s.DeleteMany(t.Context(), gone); err != nil || len(failed) > 0 {
		t.Errorf("DeleteMany of deleted keys: failed %v, err %v; want nothing", failed, err)
	}
	if _, err := s.DeleteMany(t.Context(), []string{"../x"}); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("DeleteMany(../x) = %v, want ErrInvalidKey", err)
	}
}

func testList(t *testing.T, s storage.Store) {
	// '-' and '.' sort before '/', so a naive directory walk gets these wrong.
	all := []string{
		"cam/2026/01/01/a.mp4", "cam/2026/01/01/b.mp4", "cam/2026/01/02/a.mp4",
		"cam-a/2026/01/01/a.mp4", "cam.x", "cam0/z", "cama", "c", "z/z/z/z",
	}
	shuffled := slices.Clone(all)
	for i := range shuffled { // insertion order must not matter
		j, _ := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		shuffled[i], shuffled[j.Int64()] = shuffled[j.Int64()], shuffled[i]
	}
	for i, k := range shuffled {
		put(t, s, k, payload(i+1, byte(i)))
	}
	slices.Sort(all)
	for _, prefix := range []string{"", "c", "cam", "cam/", "cam/2026/01/01/", "cam/2026/01/01/a", "cam-", "z/z/", "none/", "none"} {
		var want []string
		for _, k := range all {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		if got := keys(t, s, prefix); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", prefix, got, want)
		}
	}
	var sizes []int64
	_ = s.List(t.Context(), "cam.x", func(o storage.ObjectInfo) error { sizes = append(sizes, o.Size); return nil })
	if want := int64(slices.Index(shuffled, "cam.x") + 1); len(sizes) != 1 || sizes[0] != want {
		t.Errorf("List reported sizes %v for cam.x, want [%d]", sizes, want)
	}
	stop := errors.New("stop")
	n := 0
	err := s.List(t.Context(), "", func(storage.ObjectInfo) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("List with failing fn: err %v after %d calls, want the fn error after 1", err, n)
	}
}

func testNotFound(t *testing.T, s storage.Store) {
	ctx := t.Context()
	put(t, s, "cam/2026/01/01/a.mp4", []byte("x"))
	for _, key := range []string{"cam/2026/01/01/b.mp4", "cam/2026/01/01", "cam", "other"} {
		if _, err := s.Get(ctx, key, 0, -1); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(%s) err = %v, want ErrNotFound", key, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(%s) err = %v, want ErrNotFound", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Delete(%s) err = %v, want ErrNotFound", key, err)
		}
	}
	if err := s.Delete(ctx, "cam/2026/01/01/a.mp4"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Stat(ctx, "cam/2026/01/01/a.mp4"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after Delete err = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "cam/2026/01/01/a.mp4"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second Delete err = %v, want ErrNotFound", err)
	}
	if got := keys(t, s, ""); len(got) != 0 {
		t.Errorf("List after Delete = %q, want nothing", got)
	}
}

func testInvalidKey(t *testing.T, s storage.Store) {
	ctx := t.Context()
	put(t, s, "x", []byte("x")) // so that a traversal to it would find something
	for _, key := range []string{"", "../x", "a/../x", "/abs", "A/B", "a//b", "a/", "./x", "a/./x", "a b", "a\\b", "a\x00b", "é"} {
		if err := s.Put(ctx, key, strings.NewReader("x"), 1); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Put(%q) err = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Get(ctx, key, 0, -1); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Get(%q) err = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Stat(%q) err = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Delete(%q) err = %v, want ErrInvalidKey", key, err)
		}
	}
	for _, prefix := range []string{"../", "/abs", "a//", "A"} {
		if err := s.List(ctx, prefix, func(storage.ObjectInfo) error { return nil }); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("List(%q) err = %v, want ErrInvalidKey", prefix, err)
		}
	}
	if got := keys(t, s, ""); !slices.Equal(got, []string{"x"}) {
		t.Errorf("after invalid puts List = %q, want [x]", got)
	}
}

func testSizeMismatch(t *testing.T, s storage.Store) {
	ctx := t.Context()
	data := payload(1000, 5)
	for _, c := range []struct {
		name string
		size int64
	}{{"short", 1001}, {"long", 999}, {"far too long", 1}, {"zero", 0}} {
		if err := s.Put(ctx, "new", bytes.NewReader(data), c.size); err == nil {
			t.Errorf("%s: Put of %d bytes with size %d succeeded", c.name, len(data), c.size)
		}
		if _, err := s.Stat(ctx, "new"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: after failed Put Stat err = %v, want ErrNotFound", c.name, err)
		}
	}
	// A failed replace keeps the old object whole.
	put(t, s, "old", data)
	if err := s.Put(ctx, "old", bytes.NewReader(payload(10, 6)), 11); err == nil {
		t.Errorf("short replace succeeded")
	}
	if got := get(t, s, "old", 0, -1); !bytes.Equal(got, data) {
		t.Errorf("after failed replace Get = %d bytes, want the old %d", len(got), len(data))
	}
	if got := keys(t, s, ""); !slices.Equal(got, []string{"old"}) {
		t.Errorf("after failed puts List = %q, want [old]", got)
	}
}

func testConcurrent(t *testing.T, s storage.Store) {
	ctx := t.Context()
	const n = 12
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := s.Put(ctx, fmt.Sprintf("c/d/%02d", i), bytes.NewReader(payload(10_000+i, byte(i))), int64(10_000+i)); err != nil {
				t.Errorf("Put %d: %v", i, err)
			}
			if err := s.Put(ctx, "c/same", bytes.NewReader(payload(20_000, byte(i))), 20_000); err != nil {
				t.Errorf("Put same %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	for i := range n {
		if got := get(t, s, fmt.Sprintf("c/d/%02d", i), 0, -1); !bytes.Equal(got, payload(10_000+i, byte(i))) {
			t.Errorf("object %d corrupted by concurrent puts", i)
		}
	}
	same := get(t, s, "c/same", 0, -1)
	whole := false
	for i := range n {
		whole = whole || bytes.Equal(same, payload(20_000, byte(i)))
	}
	if !whole {
		t.Errorf("concurrently replaced object is not any one writer's whole payload")
	}

	// Deleting the last object of a folder while another put goes to that folder
	// must not lose the put (the disk store prunes empty folders).
	for i := range 20 {
		put(t, s, "p/q/a", []byte("a"))
		wg.Go(func() {
			if err := s.Delete(ctx, "p/q/a"); err != nil {
				t.Errorf("Delete %d: %v", i, err)
			}
		})
		wg.Go(func() {
			if err := s.Put(ctx, fmt.Sprintf("p/q/b%02d", i), strings.NewReader("b"), 1); err != nil {
				t.Errorf("Put %d: %v", i, err)
			}
		})
		wg.Wait()
	}
	if got := keys(t, s, "p/"); len(got) != 20 {
		t.Errorf("after racing puts and deletes List = %q, want the 20 b objects", got)
	}
}

// cancelReader cancels its context after the first read, like a client that goes
// away in the middle of an upload.
type cancelReader struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p[:min(len(p), 1000)])
	c.cancel()
	return n, err
}

func testCancelled(t *testing.T, s storage.Store) {
	put(t, s, "x", []byte("x"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, "y", strings.NewReader("y"), 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with cancelled ctx err = %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, "x", 0, -1); err == nil {
		t.Errorf("Get with cancelled ctx succeeded")
	}
	if _, err := s.Stat(ctx, "x"); err == nil {
		t.Errorf("Stat with cancelled ctx succeeded")
	}
	if err := s.Delete(ctx, "x"); err == nil {
		t.Errorf("Delete with cancelled ctx succeeded")
	}
	if err := s.List(ctx, "", func(storage.ObjectInfo) error { return nil }); err == nil {
		t.Errorf("List with cancelled ctx succeeded")
	}

	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	data := payload(100_000, 7)
	if err := s.Put(ctx, "y", &cancelReader{bytes.NewReader(data), cancel}, int64(len(data))); err == nil {
		t.Errorf("Put cancelled midway succeeded")
	}
	if got := keys(t, s, ""); !slices.Equal(got, []string{"x"}) {
		t.Errorf("after cancelled puts List = %q, want [x]", got)
	}
}

// S3FromEnv returns options for a fresh, uniquely named bucket on the S3 server
// given by STRAJA_TEST_S3_ENDPOINT (host:port), STRAJA_TEST_S3_ACCESS_KEY and
// STRAJA_TEST_S3_SECRET_KEY. Without them the test is skipped, or fails when
// STRAJA_TEST_REQUIRE_S3=1. The bucket and its objects are removed at cleanup.
func S3FromEnv(t testing.TB) storage.S3Options {
	t.Helper()
	o := storage.S3Options{
		Endpoint:  os.Getenv("STRAJA_TEST_S3_ENDPOINT"),
		AccessKey: os.Getenv("STRAJA_TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("STRAJA_TEST_S3_SECRET_KEY"),
	}
	if o.Endpoint == "" || o.AccessKey == "" || o.SecretKey == "" {
		msg := "S3 tests need STRAJA_TEST_S3_ENDPOINT, STRAJA_TEST_S3_ACCESS_KEY and STRAJA_TEST_S3_SECRET_KEY"
		if os.Getenv("STRAJA_TEST_REQUIRE_S3") == "1" {
			t.Fatal(msg + " (STRAJA_TEST_REQUIRE_S3=1)")
		}
		t.Skip(msg)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	o.Bucket = "straja-test-" + hex.EncodeToString(b[:])
	t.Cleanup(func() { removeBucket(t, o) })
	return o
}

// removeBucket empties and removes the test bucket, if it was created.
func removeBucket(t testing.TB, o storage.S3Options) {
	ctx := context.Background() // t.Context is already done during cleanup
	c, err := minio.New(o.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""), Secure: o.TLS})
	if err != nil {
		t.Logf("cleanup bucket %s: %v", o.Bucket, err)
		return
	}
	if ok, err := c.BucketExists(ctx, o.Bucket); err != nil || !ok {
		return
	}
	for obj := range c.ListObjects(ctx, o.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err == nil {
			_ = c.RemoveObject(ctx, o.Bucket, obj.Key, minio.RemoveObjectOptions{})
		}
	}
	if err := c.RemoveBucket(ctx, o.Bucket); err != nil {
		t.Logf("cleanup bucket %s: %v", o.Bucket, err)
	}
}

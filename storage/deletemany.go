package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/straja-nvr/straja/internal/durable"
)

// DeleteMany removes each key's file (missing ones are passed over), then the
// folders left empty, and syncs each folder touched once for the batch rather than
// once a file.
func (d *Disk) DeleteMany(ctx context.Context, keys []string) (map[string]error, error) {
	for _, k := range keys {
		if err := ValidKey(k); err != nil {
			return nil, err
		}
	}
	var failed map[string]error
	dirs := map[string]bool{}
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return failed, fmt.Errorf("delete: %w", err)
		}
		p := filepath.Join(d.root, filepath.FromSlash(k))
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			continue // not an object
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			if failed == nil {
				failed = map[string]error{}
			}
			failed[k] = fmt.Errorf("delete %s: %w", k, err)
			continue
		}
		dirs[filepath.Dir(p)] = true
	}
	// Deepest first, so a day folder goes before its month folder is tried.
	order := make([]string, 0, len(dirs))
	for dir := range dirs {
		order = append(order, dir)
	}
	slices.SortFunc(order, func(a, b string) int {
		return strings.Count(b, string(filepath.Separator)) - strings.Count(a, string(filepath.Separator))
	})
	synced := map[string]bool{}
	for _, dir := range order {
		for dir != d.root && os.Remove(dir) == nil {
			dir = filepath.Dir(dir)
		}
		if synced[dir] {
			continue
		}
		synced[dir] = true
		if err := durable.SyncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return failed, fmt.Errorf("delete: %w", err)
		}
	}
	return failed, nil
}

// DeleteMany removes the keys with S3 batch deletes (up to 1000 per request). In a
// bucket that has or had versioning, it deletes every version of each key (found by
// listing the keys' folders), so the space is freed rather than hidden behind a
// delete marker; a version under legal hold or retention fails and is reported.
func (s *S3) DeleteMany(ctx context.Context, keys []string) (map[string]error, error) {
	for _, k := range keys {
		if err := ValidKey(k); err != nil {
			return nil, err
		}
	}
	// Held keys are refused as Delete refuses them, whatever the bucket enforces.
	var failed map[string]error
	free := keys[:0:0]
	for _, k := range keys {
		if s.held(k) {
			if failed == nil {
				failed = map[string]error{}
			}
			failed[k] = fmt.Errorf("delete %s: %w", k, ErrHeld)
			continue
		}
		free = append(free, k)
	}
	keys = free
	if len(keys) == 0 {
		return failed, nil
	}
	if err := s.ensureBucket(ctx); err != nil {
		return nil, fmt.Errorf("delete: %w", err)
	}
	vc, err := s.client.GetBucketVersioning(ctx, s.bucket)
	if err != nil {
		return nil, s.fail("delete: bucket versioning", s.bucket, err)
	}
	var objs []minio.ObjectInfo
	if vc.Enabled() || vc.Suspended() {
		if objs, err = s.versions(ctx, keys); err != nil {
			return nil, err
		}
	} else {
		for _, k := range keys {
			objs = append(objs, minio.ObjectInfo{Key: s.prefix + k})
		}
	}
	ch := make(chan minio.ObjectInfo, len(objs))
	for _, o := range objs {
		ch <- o
	}
	close(ch)
	for e := range s.client.RemoveObjects(ctx, s.bucket, ch, minio.RemoveObjectsOptions{}) {
		key := strings.TrimPrefix(e.ObjectName, s.prefix)
		if e.ObjectName == "" { // the request itself failed
			return nil, s.fail("delete", "batch", e.Err)
		}
		if code := minio.ToErrorResponse(e.Err).Code; code == minio.NoSuchKey || code == "NoSuchVersion" {
			continue
		}
		if failed == nil {
			failed = map[string]error{}
		}
		failed[key] = s.fail("delete", key, e.Err)
	}
	if err := ctx.Err(); err != nil {
		return failed, fmt.Errorf("delete: %w", err)
	}
	return failed, nil
}

// versions lists every version (and delete marker) of keys, one listing per folder.
func (s *S3) versions(ctx context.Context, keys []string) ([]minio.ObjectInfo, error) {
	want := make(map[string]bool, len(keys))
	dirs := map[string]bool{}
	var order []string
	for _, k := range keys {
		want[s.prefix+k] = true
		d := k // a key without folders is its own listing prefix
		if i := strings.LastIndexByte(k, '/'); i >= 0 {
			d = k[:i+1]
		}
		if !dirs[d] {
			dirs[d] = true
			order = append(order, d)
		}
	}
	var out []minio.ObjectInfo
	for _, d := range order {
		lctx, cancel := context.WithCancel(ctx)
		for o := range s.client.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + d,
			Recursive: true, WithVersions: true}) {
			if o.Err != nil {
				cancel()
				return nil, s.fail("delete: list versions", d, o.Err)
			}
			if want[o.Key] {
				out = append(out, minio.ObjectInfo{Key: o.Key, VersionID: o.VersionID})
			}
		}
		cancel()
	}
	return out, nil
}

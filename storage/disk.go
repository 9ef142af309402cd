package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/straja-nvr/straja/internal/durable"
)

// Disk is a Store on a local directory: each object is a file at root/key.
type Disk struct {
	root string
	heldCheck
}

var (
	_ Store     = (*Disk)(nil)
	_ HoldGuard = (*Disk)(nil)
)

// tempSuffix ends the names of files being written. '~' is not a key character, so
// List never reports a half-written file.
const tempSuffix = "~"

// NewDisk returns a Disk store rooted at root, creating the directory if needed.
func NewDisk(root string) (*Disk, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("disk store %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("disk store: %w", err)
	}
	return &Disk{root: abs}, nil
}

// Ping checks that the root directory is still there.
func (d *Disk) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := os.Stat(d.root)
	if err != nil {
		return fmt.Errorf("disk store: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("disk store: %s is not a directory", d.root)
	}
	return nil
}

// path maps a validated key to its file; ValidKey rules out traversal.
func (d *Disk) path(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Put writes r to a temporary file next to the target, fsyncs it, renames it into
// place and fsyncs the directory, so the object is either absent, old or complete.
// r must hold exactly size bytes; fewer or more is an error that stores nothing.
func (d *Disk) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	defer func() {
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			err = fmt.Errorf("%w (%w)", err, ErrFull)
		}
	}()
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("put %s: negative size %d", key, size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	dir := filepath.Dir(p)
	var f *os.File
	// A concurrent Delete may prune a directory between creating it and creating its
	// child or the temporary file in it; that is rare, so just try again.
	for range 10 {
		err = durable.MkdirAll(dir, durable.SyncDir)
		if err == nil {
			f, err = os.CreateTemp(dir, "."+filepath.Base(p)+".*"+tempSuffix)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = io.Copy(f, &exactReader{ctx: ctx, r: r, left: size}); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err = os.Rename(f.Name(), p); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err = durable.SyncDir(dir); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Get opens the object at byte offset off, for length bytes or, if length < 0, to the end.
func (d *Disk) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, notFound(err))
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = ErrNotFound
	}
	if err == nil && (off < 0 || off > fi.Size()) {
		err = fmt.Errorf("offset %d outside object of %d bytes", off, fi.Size())
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	rc, err := FileRange(f, off, length)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return rc, nil
}

// FileRange reads length bytes of f from off (to its end for a negative length) and
// closes f when closed; on error f is closed already.
func FileRange(f *os.File, off, length int64) (io.ReadCloser, error) {
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	if length < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, length), f}, nil
}

// Stat returns the size and modification time of the object.
func (d *Disk) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	p, err := d.path(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	fi, err := os.Stat(p)
	if err == nil && !fi.Mode().IsRegular() {
		err = ErrNotFound
	}
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", key, notFound(err))
	}
	return ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete removes the object and then any directories it leaves empty. A key an
// evidence hold protects is refused with ErrHeld.
func (d *Disk) Delete(ctx context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if d.held(key) {
		return fmt.Errorf("delete %s: %w", key, ErrHeld)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
		return fmt.Errorf("delete %s: %w", key, ErrNotFound)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("delete %s: %w", key, notFound(err))
	}
	dir := filepath.Dir(p)
	for dir != d.root && os.Remove(dir) == nil {
		dir = filepath.Dir(dir)
	}
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// List walks the tree in lexical key order without collecting it: within a directory,
// entries are visited in the order of name (files) or name+"/" (directories), which is
// the order of the keys below them.
func (d *Disk) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := validPrefix(prefix); err != nil {
		return err
	}
	base := prefix[:strings.LastIndex(prefix, "/")+1]
	return d.walk(ctx, strings.TrimSuffix(base, "/"), prefix, fn)
}

func (d *Disk) walk(ctx context.Context, rel, prefix string, fn func(ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	entries, err := os.ReadDir(filepath.Join(d.root, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // pruned by a concurrent Delete, or nothing under prefix
	}
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	sortName := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(sortName(a), sortName(b)) })
	for _, e := range entries {
		key := e.Name()
		if rel != "" {
			key = rel + "/" + key
		}
		if ValidKey(key) != nil {
			continue // temporary files and anything else that is not ours
		}
		switch {
		case e.IsDir():
			if strings.HasPrefix(key+"/", prefix) || strings.HasPrefix(prefix, key+"/") {
				if err := d.walk(ctx, key, prefix, fn); err != nil {
					return err
				}
			}
		case e.Type().IsRegular() && strings.HasPrefix(key, prefix):
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted meanwhile
			}
			if err != nil {
				return fmt.Errorf("list %s: %w", prefix, err)
			}
			if err := fn(ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	return err
}

// exactReader yields exactly left bytes of r and fails if r holds fewer or more, or
// ctx ends. It withholds the last bytes until it has checked that r is exhausted, so
// readers using io.ReadFull also see the error.
type exactReader struct {
	ctx  context.Context
	r    io.Reader
	left int64
}

var errTooLong = errors.New("reader holds more bytes than the given size")

func (e *exactReader) Read(p []byte) (int, error) {
	if err := e.ctx.Err(); err != nil {
		return 0, err
	}
	if e.left == 0 {
		return 0, e.probe()
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case e.left == 0:
		if err := e.probe(); err != io.EOF {
			return 0, err
		}
		return n, io.EOF
	case err == io.EOF:
		return n, fmt.Errorf("reader ended %d bytes short of the given size: %w", e.left, io.ErrUnexpectedEOF)
	}
	return n, err
}

// probe returns io.EOF if r is exhausted.
func (e *exactReader) probe() error {
	var one [1]byte
	for range 100 { // tolerate a few empty reads
		k, err := e.r.Read(one[:])
		if k > 0 {
			return errTooLong
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

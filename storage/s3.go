package storage

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/straja-nvr/straja/internal/redact"
)

// S3Options configures an S3 (MinIO) store.
type S3Options struct {
	Endpoint  string // host:port, without scheme
	Bucket    string
	Prefix    string // optional key prefix inside the bucket, e.g. "site-a"
	AccessKey string
	SecretKey string
	Region    string // optional
	TLS       bool
}

// String describes o without the secret key, so options can be logged.
func (o S3Options) String() string {
	scheme := "http"
	if o.TLS {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s/%s/%s (access key %s)", scheme, o.Endpoint, o.Bucket, o.Prefix, o.AccessKey)
}

// LogValue keeps the secret key out of slog output.
func (o S3Options) LogValue() slog.Value { return slog.StringValue(o.String()) }

// S3 is a Store on an S3-compatible bucket; object names are prefix + key.
type S3 struct {
	client *minio.Client
	bucket string
	region string
	prefix string // "" or ends with '/'
	secret string // only to scrub it from errors

	bucketMu sync.Mutex // one bucket check at a time
	bucketOK bool       // the bucket is known to exist

	heldCheck
	lockMu    sync.Mutex // one Object Lock check at a time
	lockKnown bool       // locking is known
	locking   bool       // the bucket has Object Lock
}

var (
	_ Store     = (*S3)(nil)
	_ HoldGuard = (*S3)(nil)
)

// NewS3 returns a store on the bucket described by o. It validates o but does no
// network I/O, so the service starts while the server is still down (the spool holds
// segments meanwhile): the bucket is checked, and created if missing, by the first
// operation that reaches the server. Ping reports whether the server is reachable.
func NewS3(_ context.Context, o S3Options) (*S3, error) {
	if o.Endpoint == "" || strings.Contains(o.Endpoint, "://") {
		return nil, fmt.Errorf("s3 endpoint %q: want host:port without scheme", o.Endpoint)
	}
	if o.Bucket == "" {
		return nil, errors.New("s3: bucket is required")
	}
	prefix := strings.Trim(o.Prefix, "/")
	if prefix != "" {
		if err := ValidKey(prefix); err != nil {
			return nil, fmt.Errorf("s3 prefix: %w", err)
		}
		prefix += "/"
	}
	s := &S3{bucket: o.Bucket, region: o.Region, prefix: prefix, secret: o.SecretKey}
	client, err := minio.New(o.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""),
		Secure: o.TLS,
		Region: o.Region,
	})
	if err != nil {
		return nil, s.fail("connect", o.Endpoint, err)
	}
	s.client = client
	return s, nil
}

// ensureBucket checks that the bucket exists, creating it if missing, until that
// succeeds once; a failure is returned and the next call tries again.
func (s *S3) ensureBucket(ctx context.Context) error {
	s.bucketMu.Lock()
	defer s.bucketMu.Unlock()
	if s.bucketOK {
		return nil
	}
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return s.fail("check bucket", s.bucket, err)
	}
	if !ok {
		err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region})
		if code := minio.ToErrorResponse(err).Code; err != nil && code != minio.BucketAlreadyOwnedByYou {
			return s.fail("create bucket", s.bucket, err)
		}
	}
	s.bucketOK = true
	return nil
}

// Ping checks that the bucket is reachable with our credentials, creating it first
// if no operation has yet.
func (s *S3) Ping(ctx context.Context) error {
	if err := s.ensureBucket(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return s.fail("ping bucket", s.bucket, err)
	}
	if !ok {
		return fmt.Errorf("ping bucket %s: bucket does not exist", s.bucket)
	}
	return nil
}

// Put uploads exactly size bytes of r in one request (or an aborted-on-error multipart
// upload for large objects), so the object appears only when complete. r must hold
// exactly size bytes; fewer or more is an error that stores nothing.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return s.put(ctx, key, r, size, nil)
}

// PutHashed is Put for bytes whose SHA-256 is sum: one PUT signed with sum, so the
// bytes are not hashed again here (over plain HTTP minio-go would hash every part
// for its streaming signature) and the server stores them only if they match sum.
func (s *S3) PutHashed(ctx context.Context, key string, r io.Reader, size int64, sum [32]byte) error {
	return s.put(ctx, key, r, size, &sum)
}

func (s *S3) put(ctx context.Context, key string, r io.Reader, size int64, sum *[32]byte) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("put %s: negative size %d", key, size)
	}
	body := &exactReader{ctx: ctx, r: r, left: size}
	if size == 0 { // minio-go does not read at all then
		if err := body.probe(); err != io.EOF {
			return fmt.Errorf("put %s: %w", key, err)
		}
	}
	if err := s.ensureBucket(ctx); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	ctype := "application/octet-stream"
	if strings.HasSuffix(key, ".mp4") {
		ctype = "video/mp4"
	}
	// minio-go buffers one part in memory for a reader like ours; the smallest part S3
	// allows keeps that to 5 MiB instead of its 16 MiB default.
	opts := minio.PutObjectOptions{ContentType: ctype, PartSize: s3PartSize}
	// A held object is locked as it is stored, so it never exists unlocked.
	held := s.held(key)
	if held && s.lockingOrLog(ctx) {
		opts.LegalHold = minio.LegalHoldEnabled
	}
	var err error
	if sum != nil && size <= s3MaxSinglePut {
		// The payload's hash is signed instead of streamed chunk by chunk; with no
		// trailing checksum configured minio-go adds none, which it could not sign.
		opts.DisableContentSha256 = true
		_, err = minio.Core{Client: s.client}.PutObject(ctx, s.bucket, s.prefix+key, body, size, "", hex.EncodeToString(sum[:]), opts)
	} else {
		_, err = s.client.PutObject(ctx, s.bucket, s.prefix+key, body, size, opts)
	}
	if err != nil {
		return s.fail("put", key, err)
	}
	// A hold set while the object was on its way missed it in its own sweep of the
	// bucket (which lists only stored objects): lock it now.
	if !held && s.held(key) && s.lockingOrLog(ctx) {
		if err := s.SetLegalHold(ctx, key, true); err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
	}
	return nil
}

// ObjectLocking reports whether the bucket has S3 Object Lock, so that legal holds
// can protect objects. The answer is kept once the server has given it.
func (s *S3) ObjectLocking(ctx context.Context) (bool, error) {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if s.lockKnown {
		return s.locking, nil
	}
	if err := s.ensureBucket(ctx); err != nil {
		return false, err
	}
	enabled, _, _, _, err := s.client.GetObjectLockConfig(ctx, s.bucket)
	if err != nil && minio.ToErrorResponse(err).Code != "ObjectLockConfigurationNotFoundError" {
		return false, s.fail("object lock config", s.bucket, err)
	}
	s.lockKnown, s.locking = true, err == nil && enabled == "Enabled"
	return s.locking, nil
}

// lockingOrLog is ObjectLocking for Put: a failed check counts as locking, so the
// legal hold is tried and its failure fails the upload (which is retried) rather
// than store a held object unlocked.
func (s *S3) lockingOrLog(ctx context.Context) bool {
	ok, err := s.ObjectLocking(ctx)
	return ok || err != nil
}

// SetLegalHold turns the S3 legal hold of every stored version of key on or off.
// While it is on, deleting that version fails, whoever asks. It needs a bucket with
// Object Lock.
func (s *S3) SetLegalHold(ctx context.Context, key string, on bool) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	status := minio.LegalHoldDisabled
	if on {
		status = minio.LegalHoldEnabled
	}
	name := s.prefix + key
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	found := false
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: name, WithVersions: true}) {
		if obj.Err != nil {
			return s.fail("list versions", key, obj.Err)
		}
		if obj.Key != name || obj.IsDeleteMarker {
			continue
		}
		found = true
		err := s.client.PutObjectLegalHold(ctx, s.bucket, name,
			minio.PutObjectLegalHoldOptions{VersionID: obj.VersionID, Status: &status})
		if err != nil {
			return s.fail("legal hold "+string(status), key, err)
		}
	}
	if !found {
		return fmt.Errorf("legal hold %s: %w", key, ErrNotFound)
	}
	return nil
}

// InitBucket creates the bucket with versioning and Object Lock, so evidence holds
// are enforced by the storage itself. created is false when it already existed; an
// existing bucket without Object Lock is an error, since S3 cannot be trusted to add
// it afterwards.
func (s *S3) InitBucket(ctx context.Context) (created bool, err error) {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return false, s.fail("check bucket", s.bucket, err)
	}
	if !ok {
		err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region, ObjectLocking: true})
		if err != nil {
			return false, s.fail("create bucket", s.bucket, err)
		}
		created = true
	}
	locking, err := s.ObjectLocking(ctx)
	if err != nil {
		return created, err
	}
	if !locking {
		return false, fmt.Errorf("bucket %s exists without Object Lock: evidence holds cannot be enforced by the storage; "+
			"create a new bucket with `straja storage init` and move the footage into it", s.bucket)
	}
	return created, nil
}

// s3PartSize is the multipart part size: S3's minimum.
const s3PartSize = 5 << 20

// s3MaxSinglePut is the largest object S3 takes in one PUT.
const s3MaxSinglePut = 5 << 30

// Get opens the object at byte offset off, for length bytes or, if length < 0, to the end.
func (s *S3) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("get %s: negative offset %d", key, off)
	}
	if length == 0 { // no range header can ask for zero bytes
		info, err := s.Stat(ctx, key)
		if err != nil {
			return nil, err
		}
		if off > info.Size {
			return nil, fmt.Errorf("get %s: offset %d outside object of %d bytes", key, off, info.Size)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	if err := s.ensureBucket(ctx); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	var opts minio.GetObjectOptions
	switch {
	case length > 0:
		err := opts.SetRange(off, off+length-1)
		if err != nil {
			return nil, s.fail("get", key, err)
		}
	case off > 0:
		err := opts.SetRange(off, 0)
		if err != nil {
			return nil, s.fail("get", key, err)
		}
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+key, opts)
	if err != nil {
		return nil, s.fail("get", key, err)
	}
	// GetObject is lazy; Stat sends the request so a missing key fails here.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		// S3 refuses a range starting at the end; Disk returns an empty object there.
		if minio.ToErrorResponse(err).StatusCode == http.StatusRequestedRangeNotSatisfiable {
			if info, serr := s.Stat(ctx, key); serr == nil && off == info.Size {
				return io.NopCloser(strings.NewReader("")), nil
			}
		}
		return nil, s.fail("get", key, err)
	}
	return obj, nil
}

// Stat returns the size and modification time of the object.
func (s *S3) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ValidKey(key); err != nil {
		return ObjectInfo{}, err
	}
	if err := s.ensureBucket(ctx); err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	info, err := s.client.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, s.fail("stat", key, err)
	}
	return ObjectInfo{Key: key, Size: info.Size, ModTime: info.LastModified}, nil
}

// Delete removes the object. S3 deletes of missing keys succeed, so it stats first
// to honour the ErrNotFound contract. A key an evidence hold protects is refused with
// ErrHeld (in a versioned bucket a plain delete would hide it behind a delete marker).
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	if s.held(key) {
		return fmt.Errorf("delete %s: %w", key, ErrHeld)
	}
	if _, err := s.Stat(ctx, key); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil {
		return s.fail("delete", key, err)
	}
	return nil
}

// List calls fn for every object under prefix in key order (S3 lists in UTF-8 binary
// order, which for key characters is lexical order).
func (s *S3) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := validPrefix(prefix); err != nil {
		return err
	}
	if err := s.ensureBucket(ctx); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	ctx, cancel := context.WithCancel(ctx) // stops the listing goroutine if fn fails
	defer cancel()
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if obj.Err != nil {
			return s.fail("list", prefix, obj.Err)
		}
		key := strings.TrimPrefix(obj.Key, s.prefix)
		if ValidKey(key) != nil {
			continue // written by something else
		}
		if err := fn(ObjectInfo{Key: key, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	return nil
}

// fail translates a minio error at the adapter boundary: a missing object becomes
// ErrNotFound, a server out of space ErrFull, and the secret key never appears in the
// message.
func (s *S3) fail(op, key string, err error) error {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && (resp.Code == minio.NoSuchKey || resp.Code == "NotFound") {
		return fmt.Errorf("%s %s: %w", op, key, ErrNotFound)
	}
	full := errors.As(err, &resp) && resp.Code == "XMinioStorageFull"
	if msg := redact.String(err.Error(), redact.Forms(s.secret)); msg != err.Error() {
		err = errors.New(msg) // the original would show the secret
	}
	if full {
		return fmt.Errorf("%s %s: %w (%w)", op, key, err, ErrFull)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// Package storage keeps recorded segments: the Store interface with its disk and S3
// backends, the self-describing object key codec, and the SQLite catalog.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned (wrapped) when a key does not exist in a Store.
var ErrNotFound = errors.New("not found")

// ErrFull is returned (wrapped) when the store has no space left for an object.
var ErrFull = errors.New("store full")

// ErrInvalidKey is returned (wrapped) when a key is not a well-formed object key.
var ErrInvalidKey = errors.New("invalid object key")

// ErrNewerSchema is returned (wrapped) when a database was written by a newer Straja
// whose schema this binary does not know.
var ErrNewerSchema = errors.New("database is from a newer straja")

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store keeps immutable objects addressed by keys of the form produced by SegmentKey.String.
//
// Implementations are safe for concurrent use and honour ctx cancellation. Keys are
// '/'-separated, made of [a-z0-9._-] segments and never start with '/' or hold '..';
// any other key is rejected with an error matching ErrInvalidKey before any I/O.
// Get, Stat and Delete return an error matching ErrNotFound when the key does not exist.
type Store interface {
	// Put stores exactly size bytes read from r under key, atomically: a reader never
	// sees a partial object, and Put returns nil only once the object is durable.
	// Putting an existing key replaces it. A store out of space returns an error
	// matching ErrFull.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the object for reading from byte offset off; length < 0 means to the end.
	Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
	// Stat returns the object's size and modification time.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// Delete removes the object. Deleting a missing key returns ErrNotFound.
	Delete(ctx context.Context, key string) error
	// DeleteMany removes the objects with keys in as few requests as the backend
	// allows, and in a versioned bucket every version of them, so the space is freed.
	// A missing key is not an error: a retention run completing one cut short finds
	// some gone. failed holds the keys that could not be deleted, each with why (an
	// object under legal hold, for one); err is a failure of the whole batch.
	DeleteMany(ctx context.Context, keys []string) (failed map[string]error, err error)
	// List calls fn for every object whose key starts with prefix, in lexical key order.
	// It stops at and returns the first error fn returns.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
}

// HashedPutter is a Store that can use an object's SHA-256, already computed by the
// caller, instead of hashing the bytes again on their way (S3 signs the request with
// it, and the server refuses a body that does not match it).
type HashedPutter interface {
	// PutHashed is Put for an object whose bytes have the SHA-256 sum.
	PutHashed(ctx context.Context, key string, r io.Reader, size int64, sum [32]byte) error
}

// PutHashed stores r under key in st, handing st the bytes' SHA-256 sum if it can use it.
func PutHashed(ctx context.Context, st Store, key string, r io.Reader, size int64, sum [32]byte) error {
	if h, ok := st.(HashedPutter); ok {
		return h.PutHashed(ctx, key, r, size, sum)
	}
	return st.Put(ctx, key, r, size)
}

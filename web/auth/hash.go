// Package auth holds Straja's local users: Argon2id password hashes, the rules for
// usernames, passwords and roles, and grants to sites and cameras. Routes do not use it
// yet; sign-in arrives with the login page.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// Params are Argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultParams suit a 2-core server: 64 MiB, 3 passes, 2 lanes (RFC 9106's second
// recommendation with fewer lanes) cost 70-130 ms per login on such a machine (README,
// Performance); OWASP's floor is 19 MiB with 2 passes. More memory makes GPU guessing dearer.
var DefaultParams = Params{Memory: 64 * 1024, Time: 3, Threads: 2}

// DefaultConcurrency caps hashes in flight, so 2 × 64 MiB is the most memory logins
// hold however many arrive at once. Each hash keeps both cores of a 2-core server busy,
// so a cap of 4 verified 50 logins no faster and peaked at twice the memory (README).
const DefaultConcurrency = 2

const (
	saltLen = 16
	keyLen  = 32
	// maxMemory refuses a stored hash asking for more than 1 GiB: an edited database
	// must not make one login exhaust the server.
	maxMemory = 1 << 20
)

// ErrMalformedHash is returned (wrapped) for a stored hash that is not an Argon2id PHC
// string this package can check.
var ErrMalformedHash = errors.New("malformed password hash")

// Hasher hashes and verifies passwords, at most a fixed number at a time.
type Hasher struct {
	params Params
	sem    chan struct{}

	inFlight, maxInFlight, runs atomic.Int64
}

// NewHasher returns a hasher making new hashes with p, running at most concurrency
// hashes at once (at least 1).
func NewHasher(p Params, concurrency int) *Hasher {
	return &Hasher{params: p, sem: make(chan struct{}, max(concurrency, 1))}
}

// Params are the parameters of new hashes.
func (h *Hasher) Params() Params { return h.params }

// Hash returns password's Argon2id hash as a PHC string,
// $argon2id$v=19$m=…,t=…,p=…$salt$hash with unpadded standard base64.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key, err := h.key(ctx, []byte(password), salt, h.params, keyLen)
	if err != nil {
		return "", err
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.params.Memory, h.params.Time, h.params.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether password matches the PHC string phc, hashing with the
// parameters stored in phc so hashes made with older defaults keep working.
func (h *Hasher) Verify(ctx context.Context, phc, password string) (bool, error) {
	p, salt, want, err := parsePHC(phc)
	if err != nil {
		return false, err
	}
	got, err := h.key(ctx, []byte(password), salt, p, uint32(len(want)))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// key runs Argon2id once a slot is free; a caller that gives up waiting gets ctx's error.
func (h *Hasher) key(ctx context.Context, password, salt []byte, p Params, n uint32) ([]byte, error) {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("hash password: %w", ctx.Err())
	}
	defer func() { <-h.sem }()
	cur := h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	for {
		m := h.maxInFlight.Load()
		if cur <= m || h.maxInFlight.CompareAndSwap(m, cur) {
			break
		}
	}
	h.runs.Add(1)
	return argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, n), nil
}

// Stats are counters of the hashes run.
type Stats struct {
	Runs        int64 // Argon2id computations done
	MaxInFlight int64 // the most that ran at once
}

// Stats returns the counters so far.
func (h *Hasher) Stats() Stats {
	return Stats{Runs: h.runs.Load(), MaxInFlight: h.maxInFlight.Load()}
}

func parsePHC(s string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: not $argon2id$v=…$m=…,t=…,p=…$salt$hash", ErrMalformedHash)
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("%w: version %q, want v=%d", ErrMalformedHash, parts[2], argon2.Version)
	}
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil || n != 3 ||
		p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory || p.Time < 1 || p.Threads < 1 {
		return p, nil, nil, fmt.Errorf("%w: parameters %q", ErrMalformedHash, parts[3])
	}
	b64 := base64.RawStdEncoding
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return p, nil, nil, fmt.Errorf("%w: salt", ErrMalformedHash)
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 {
		return p, nil, nil, fmt.Errorf("%w: hash", ErrMalformedHash)
	}
	return p, salt, key, nil
}

package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/straja-nvr/straja/storage/state"
)

// ErrNoSession is returned for a missing, expired or ended session, an unknown or
// revoked token, and a disabled user alike.
var ErrNoSession = errors.New("not signed in")

// Defaults of Sessions.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
	// recheck is how long a cached session is trusted before the database is asked
	// again: a user disabled or a token revoked by the CLI (another process) stops
	// working within it; changes through the API end the cached entries at once.
	recheck = 2 * time.Second
	// touchEvery throttles writes of a session's last-use time.
	touchEvery = time.Minute
	// maxCached bounds the cache; past it the cache starts over (entries reload).
	maxCached = 10_000
	// MaxSessionsPerUser bounds one user's sessions; a new one ends the oldest past it.
	MaxSessionsPerUser = 64
	// TokenPrefix starts every API token, so a leaked one is recognisable.
	TokenPrefix = "straja_"
)

// Sessions signs users in and finds who a request's cookie or token belongs to.
// Sessions are stored server-side (by hash), so ending one works at once; lookups are
// served from a short-lived cache so that authorising a request costs no query.
type Sessions struct {
	DB       *state.State
	Idle     time.Duration // ends a session unused this long
	Absolute time.Duration // ends a session this long after sign-in
	Lookback time.Duration // a guard's playback look-back
	Now      func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]*cached
}

type cached struct {
	p       Principal
	created time.Time
	seen    time.Time // last request
	touched time.Time // seen as last written
	checked time.Time
	tokenID int64
}

// NewSessions returns sessions in db with the default timeouts.
func NewSessions(db *state.State) *Sessions {
	return &Sessions{DB: db, Idle: DefaultIdleTimeout, Absolute: DefaultAbsoluteTimeout, Lookback: DefaultLookback,
		Now: time.Now}
}

func secretHash(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

func randomSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Create starts a session for u and returns the secret the client keeps (the cookie).
func (s *Sessions) Create(ctx context.Context, u state.User, client string) (string, error) {
	secret, err := randomSecret()
	if err != nil {
		return "", err
	}
	now := s.Now()
	h := secretHash(secret)
	if err := s.DB.AddSession(ctx, h[:], u.ID, client, now); err != nil {
		return "", err
	}
	// Opportunistic clean-up keeps the table to live sessions without a timer, and
	// each user to their newest MaxSessionsPerUser: signing in again and again (a
	// script that should use a token) cannot grow the database without end.
	if _, err := s.DB.PruneSessions(ctx, now.Add(-s.Idle), now.Add(-s.Absolute)); err != nil {
		return "", err
	}
	if _, err := s.DB.TrimSessions(ctx, u.ID, MaxSessionsPerUser); err != nil {
		return "", err
	}
	return secret, nil
}

// Lookup returns the principal of a session secret, and records its use.
func (s *Sessions) Lookup(ctx context.Context, secret string) (Principal, error) {
	if secret == "" || len(secret) > 128 {
		return Principal{}, ErrNoSession
	}
	h := secretHash(secret)
	now := s.Now()
	s.mu.Lock()
	c, ok := s.cache[h]
	if ok && c.tokenID == 0 && now.Sub(c.checked) < recheck && s.live(c, now) {
		c.seen = now
		p := c.p
		s.mu.Unlock()
		return p, nil
	}
	s.mu.Unlock()

	ss, u, err := s.DB.SessionUser(ctx, h[:])
	if errors.Is(err, state.ErrNotFound) {
		s.forget(h)
		return Principal{}, ErrNoSession
	}
	if err != nil {
		return Principal{}, err
	}
	c = &cached{p: principal(u, s.Lookback), created: ss.Created, seen: ss.Seen, touched: ss.Seen, checked: now}
	c.p.Via = "session"
	s.mu.Lock()
	if old, ok := s.cache[h]; ok && old.seen.After(c.seen) {
		c.seen, c.touched = old.seen, old.touched
	}
	s.mu.Unlock()
	if u.Disabled || !s.live(c, now) {
		s.forget(h)
		_ = s.DB.DeleteSession(ctx, h[:])
		return Principal{}, ErrNoSession
	}
	c.seen = now
	if now.Sub(c.touched) >= touchEvery {
		if err := s.DB.TouchSession(ctx, h[:], now); err != nil {
			return Principal{}, err
		}
		c.touched = now
	}
	s.put(h, c)
	return c.p, nil
}

func (s *Sessions) live(c *cached, now time.Time) bool {
	return now.Sub(c.seen) < s.Idle && now.Sub(c.created) < s.Absolute
}

// End ends the session of secret (logout).
func (s *Sessions) End(ctx context.Context, secret string) error {
	h := secretHash(secret)
	s.forget(h)
	return s.DB.DeleteSession(ctx, h[:])
}

// Changed drops every cached session and token, so the next request of each reloads
// its user: call it after changing a user, its grants, or a token.
func (s *Sessions) Changed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache = nil
}

func (s *Sessions) forget(h [32]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cache, h)
}

func (s *Sessions) put(h [32]byte, c *cached) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil || len(s.cache) >= maxCached {
		s.cache = map[[32]byte]*cached{}
	}
	s.cache[h] = c
}

// CreateToken makes a personal API token for username and returns its secret, which
// is shown once: only its hash is stored.
func (s *Sessions) CreateToken(ctx context.Context, username, name string) (string, state.Token, error) {
	if err := CheckTokenName(name); err != nil {
		return "", state.Token{}, err
	}
	secret, err := randomSecret()
	if err != nil {
		return "", state.Token{}, err
	}
	secret = TokenPrefix + secret
	h := secretHash(secret)
	t, err := s.DB.AddToken(ctx, username, name, h[:], s.Now())
	switch {
	case errors.Is(err, state.ErrExists):
		return "", state.Token{}, fmt.Errorf("name: user %q already has a token named %q; revoke it first or pick another name", username, name)
	case errors.Is(err, state.ErrNotFound):
		return "", state.Token{}, fmt.Errorf("user: no user %q", username)
	case err != nil:
		return "", state.Token{}, err
	}
	return secret, t, nil
}

// RevokeToken revokes username's token called name.
func (s *Sessions) RevokeToken(ctx context.Context, username, name string) (state.Token, error) {
	t, err := s.DB.RevokeToken(ctx, username, name, s.Now())
	if errors.Is(err, state.ErrNotFound) {
		return t, fmt.Errorf("name: user %q has no valid token named %q", username, name)
	}
	s.Changed()
	return t, err
}

// LookupToken returns the principal of an API token.
func (s *Sessions) LookupToken(ctx context.Context, secret string) (Principal, error) {
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) > 128 {
		return Principal{}, ErrNoSession
	}
	h := secretHash(secret)
	now := s.Now()
	s.mu.Lock()
	c, ok := s.cache[h]
	if ok && c.tokenID != 0 && now.Sub(c.checked) < recheck {
		p := c.p
		s.mu.Unlock()
		return p, nil
	}
	s.mu.Unlock()
	t, u, err := s.DB.TokenUser(ctx, h[:])
	if errors.Is(err, state.ErrNotFound) || err == nil && u.Disabled {
		s.forget(h)
		return Principal{}, ErrNoSession
	}
	if err != nil {
		return Principal{}, err
	}
	c = &cached{p: principal(u, s.Lookback), checked: now, tokenID: t.ID, touched: t.Used}
	c.p.Via, c.p.TokenName = "token", t.Name
	if now.Sub(t.Used) >= touchEvery {
		if err := s.DB.TouchToken(ctx, t.ID, now); err != nil {
			return Principal{}, err
		}
	}
	s.put(h, c)
	return c.p, nil
}

// CheckTokenName: 1..64 characters of [A-Za-z0-9._-].
func CheckTokenName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("name: %d characters; a token name has 1 to 64", len(s))
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("name: %q has %q; use letters, digits, '.', '_' and '-'", s, r)
		}
	}
	return nil
}

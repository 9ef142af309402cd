package auth

import (
	"errors"
	"testing"
	"time"
)

// clock is a settable time for sessions and the limiter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newSessions(t *testing.T) (*Users, *Sessions, *clock) {
	t.Helper()
	u := newUsers(t)
	if err := u.Add(t.Context(), "ana", RoleGuard, "Bastion-de-noapte-1"); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
	s := &Sessions{DB: u.DB, Idle: 30 * time.Minute, Absolute: 12 * time.Hour, Lookback: DefaultLookback, Now: c.now}
	return u, s, c
}

func TestSessionTimeouts(t *testing.T) {
	u, s, c := newSessions(t)
	ctx := t.Context()
	ana, err := u.Get(ctx, "ana")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := s.Create(ctx, ana, "10.0.0.7")
	if err != nil {
		t.Fatal(err)
	}
	// Used every 20 minutes, it lives until the absolute timeout.
	for c.t.Add(20*time.Minute).Sub(time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)) < 12*time.Hour {
		c.t = c.t.Add(20 * time.Minute)
		p, err := s.Lookup(ctx, secret)
		if err != nil {
			t.Fatalf("at %s: %v", c.t.Format("15:04"), err)
		}
		if p.Username != "ana" || !p.HasRole(RoleGuard) || p.Lookback != DefaultLookback || p.Via != "session" {
			t.Fatalf("principal %+v", p)
		}
	}
	c.t = time.Date(2026, 11, 30, 20, 0, 0, 0, time.UTC)
	if _, err := s.Lookup(ctx, secret); !errors.Is(err, ErrNoSession) {
		t.Errorf("after 12 h: %v, want ErrNoSession", err)
	}

	// Unused for longer than the idle timeout, it ends; so does a wrong secret.
	secret, _ = s.Create(ctx, ana, "10.0.0.7")
	c.t = c.t.Add(31 * time.Minute)
	if _, err := s.Lookup(ctx, secret); !errors.Is(err, ErrNoSession) {
		t.Errorf("after 31 idle minutes: %v, want ErrNoSession", err)
	}
	if _, err := s.Lookup(ctx, "made-up"); !errors.Is(err, ErrNoSession) {
		t.Errorf("a made-up secret: %v", err)
	}
}

// A user disabled by another process (the CLI) is refused within the cache's recheck.
func TestDisabledElsewhereEndsSession(t *testing.T) {
	u, s, c := newSessions(t)
	ctx := t.Context()
	ana, _ := u.Get(ctx, "ana")
	secret, err := s.Create(ctx, ana, "10.0.0.7")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, secret); err != nil {
		t.Fatal(err)
	}
	// The row goes straight to the database, as `straja user disable` writes it.
	if err := u.DB.SetDisabled(ctx, "ana", true); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(recheck)
	if _, err := s.Lookup(ctx, secret); !errors.Is(err, ErrNoSession) {
		t.Errorf("after disabling: %v, want ErrNoSession", err)
	}
}

func TestTokens(t *testing.T) {
	u, s, c := newSessions(t)
	ctx := t.Context()
	secret, tok, err := s.CreateToken(ctx, "ana", "export-script")
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) < 40 || tok.Name != "export-script" {
		t.Fatalf("token %q %+v", secret, tok)
	}
	p, err := s.LookupToken(ctx, secret)
	if err != nil || p.Username != "ana" || p.Via != "token" || p.TokenName != "export-script" {
		t.Fatalf("lookup: %+v %v", p, err)
	}
	if _, _, err := s.CreateToken(ctx, "ana", "export-script"); err == nil {
		t.Error("a second live token of the same name")
	}
	if _, _, err := s.CreateToken(ctx, "nobody", "x"); err == nil || err.Error() != `user: no user "nobody"` {
		t.Errorf("token of an unknown user: %v", err)
	}
	if _, _, err := s.CreateToken(ctx, "ana", "has space"); err == nil {
		t.Error("a token name with a space")
	}
	if _, err := s.RevokeToken(ctx, "ana", "export-script"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupToken(ctx, secret); !errors.Is(err, ErrNoSession) {
		t.Errorf("revoked token: %v", err)
	}
	// The database holds the hash, never the secret.
	ts, _ := u.DB.Tokens(ctx, "ana")
	if len(ts) != 1 || ts[0].Revoked.IsZero() {
		t.Errorf("tokens %+v", ts)
	}
	_ = c
}

func TestLimiter(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
	l := &Limiter{MaxFailures: 5, Window: time.Minute, MaxKeys: 3, Now: c.now}
	for i := range 4 {
		if locked := l.Fail("user:ana"); len(locked) != 0 {
			t.Fatalf("locked after %d failures", i+1)
		}
		c.t = c.t.Add(5 * time.Second)
	}
	if locked := l.Fail("user:ana"); len(locked) != 1 {
		t.Fatal("5th failure did not lock")
	}
	if ok, wait := l.Locked("user:ana"); !ok || wait != 40*time.Second {
		t.Errorf("locked %v for %s, want 40s (until the 1st failure leaves the minute)", ok, wait)
	}
	c.t = c.t.Add(41 * time.Second)
	if ok, _ := l.Locked("user:ana"); ok {
		t.Error("still locked after the window")
	}
	// A full table refuses new keys rather than forget old ones.
	c.t = c.t.Add(time.Hour)
	l.Fail("a", "b", "c")
	if ok, _ := l.Locked("d"); !ok {
		t.Error("a new key with the table full is not refused")
	}
	c.t = c.t.Add(2 * time.Minute)
	if ok, _ := l.Locked("d"); ok {
		t.Error("after the others expired a new key is still refused")
	}
}

// Signing in again and again keeps a user's newest MaxSessionsPerUser sessions: the
// oldest end, the newest work.
func TestSessionsPerUserBounded(t *testing.T) {
	u, s, c := newSessions(t)
	ctx := t.Context()
	ana, err := u.Get(ctx, "ana")
	if err != nil {
		t.Fatal(err)
	}
	var secrets []string
	for range MaxSessionsPerUser + 5 {
		c.t = c.t.Add(time.Second)
		secret, err := s.Create(ctx, ana, "10.0.0.7")
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, secret)
	}
	for i, secret := range secrets {
		_, err := s.Lookup(ctx, secret)
		if old := i < 5; old != errors.Is(err, ErrNoSession) {
			t.Errorf("session %d of %d: %v (the first 5 should have ended)", i+1, len(secrets), err)
		}
	}
}

// A token stops working once its user is disabled (also by another process: after
// the cache's recheck), and works again once enabled.
func TestTokenOfDisabledUser(t *testing.T) {
	u, s, c := newSessions(t)
	ctx := t.Context()
	secret, _, err := s.CreateToken(ctx, "ana", "script")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupToken(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if err := u.DB.SetDisabled(ctx, "ana", true); err != nil { // as the CLI does: no Changed()
		t.Fatal(err)
	}
	c.t = c.t.Add(recheck)
	if _, err := s.LookupToken(ctx, secret); !errors.Is(err, ErrNoSession) {
		t.Errorf("token of a disabled user: %v; want ErrNoSession", err)
	}
	if err := u.DB.SetDisabled(ctx, "ana", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupToken(ctx, secret); err != nil {
		t.Errorf("token after the user is enabled again: %v", err)
	}
}

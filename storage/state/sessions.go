package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// sessionsSchema is migration 5: sign-in sessions and personal API tokens. Both are
// stored by the SHA-256 of the secret the client holds, so a copy of the database
// (a backup, say) does not let anyone act as a signed-in user.
const sessionsSchema = `CREATE TABLE sessions (
	id_hash    BLOB PRIMARY KEY,
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_ms INTEGER NOT NULL,
	seen_ms    INTEGER NOT NULL,
	client     TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_id);
CREATE TABLE tokens (
	id         INTEGER PRIMARY KEY,
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	hash       BLOB NOT NULL UNIQUE,
	created_ms INTEGER NOT NULL,
	used_ms    INTEGER NOT NULL DEFAULT 0,
	revoked_ms INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX tokens_live_name ON tokens (user_id, name) WHERE revoked_ms = 0;`

// Session is a stored sign-in session.
type Session struct {
	UserID  int64
	Created time.Time
	Seen    time.Time // last request, as last written (writes are throttled)
	Client  string
}

// Token is a personal API token; its secret is never stored.
type Token struct {
	ID       int64
	UserID   int64
	Username string
	Name     string
	Created  time.Time
	Used     time.Time // zero: never used
	Revoked  time.Time // zero: valid
}

// AddSession stores a new session of user userID.
func (s *State) AddSession(ctx context.Context, idHash []byte, userID int64, client string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (id_hash, user_id, created_ms, seen_ms, client)
		VALUES (?, ?, ?, ?, ?)`, idHash, userID, now.UnixMilli(), now.UnixMilli(), client)
	if err != nil {
		return fmt.Errorf("state add session: %w", err)
	}
	return nil
}

// SessionUser returns a session and its user (with grants); a missing session returns
// ErrNotFound.
func (s *State) SessionUser(ctx context.Context, idHash []byte) (Session, User, error) {
	var ss Session
	var created, seen int64
	err := s.db.QueryRowContext(ctx, `SELECT user_id, created_ms, seen_ms, client FROM sessions WHERE id_hash = ?`,
		idHash).Scan(&ss.UserID, &created, &seen, &ss.Client)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, User{}, fmt.Errorf("state session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, User{}, fmt.Errorf("state session: %w", err)
	}
	ss.Created, ss.Seen = time.UnixMilli(created).UTC(), time.UnixMilli(seen).UTC()
	u, err := s.userByID(ctx, ss.UserID)
	return ss, u, err
}

// TouchSession records a session's last request time.
func (s *State) TouchSession(ctx context.Context, idHash []byte, seen time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET seen_ms = max(seen_ms, ?) WHERE id_hash = ?`,
		seen.UnixMilli(), idHash); err != nil {
		return fmt.Errorf("state touch session: %w", err)
	}
	return nil
}

// DeleteSession ends one session; a missing one is not an error.
func (s *State) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("state delete session: %w", err)
	}
	return nil
}

// PruneSessions deletes sessions idle since before idle or created before created.
func (s *State) PruneSessions(ctx context.Context, idle, created time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE seen_ms < ? OR created_ms < ?`,
		idle.UnixMilli(), created.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("state prune sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// TrimSessions deletes userID's sessions but the newest keep, and returns how many
// went.
func (s *State) TrimSessions(ctx context.Context, userID int64, keep int) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?1 AND id_hash NOT IN
		(SELECT id_hash FROM sessions WHERE user_id = ?1 ORDER BY created_ms DESC, id_hash LIMIT ?2)`, userID, keep)
	if err != nil {
		return 0, fmt.Errorf("state trim sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// AddToken stores a token for username; a live token of the same name returns
// ErrExists.
func (s *State) AddToken(ctx context.Context, username, name string, hash []byte, now time.Time) (Token, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO tokens (user_id, name, hash, created_ms)
		SELECT id, ?, ?, ? FROM users WHERE username = ?`, name, hash, now.UnixMilli(), username)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return Token{}, fmt.Errorf("state add token %s of %s: %w", name, username, ErrExists)
		}
		return Token{}, fmt.Errorf("state add token %s of %s: %w", name, username, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Token{}, fmt.Errorf("state add token %s: user %s: %w", name, username, ErrNotFound)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return Token{}, fmt.Errorf("state add token %s: %w", name, err)
	}
	return Token{ID: id, Username: username, Name: name, Created: now.UTC().Truncate(time.Millisecond)}, nil
}

const tokenColumns = `t.id, t.user_id, u.username, t.name, t.created_ms, t.used_ms, t.revoked_ms`

func scanToken(sc scanner) (Token, error) {
	var t Token
	var created, used, revoked int64
	if err := sc.Scan(&t.ID, &t.UserID, &t.Username, &t.Name, &created, &used, &revoked); err != nil {
		return Token{}, err
	}
	t.Created = time.UnixMilli(created).UTC()
	if used > 0 {
		t.Used = time.UnixMilli(used).UTC()
	}
	if revoked > 0 {
		t.Revoked = time.UnixMilli(revoked).UTC()
	}
	return t, nil
}

// TokenUser returns the unrevoked token with this hash and its user; an unknown or
// revoked token returns ErrNotFound.
func (s *State) TokenUser(ctx context.Context, hash []byte) (Token, User, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenColumns+`
		FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ? AND t.revoked_ms = 0`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, User{}, fmt.Errorf("state token: %w", ErrNotFound)
	}
	if err != nil {
		return Token{}, User{}, fmt.Errorf("state token: %w", err)
	}
	u, err := s.userByID(ctx, t.UserID)
	return t, u, err
}

// TouchToken records a token's last use.
func (s *State) TouchToken(ctx context.Context, id int64, used time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE tokens SET used_ms = max(used_ms, ?) WHERE id = ?`,
		used.UnixMilli(), id); err != nil {
		return fmt.Errorf("state touch token: %w", err)
	}
	return nil
}

// Tokens lists tokens, revoked ones included, of one user ("" for all), by id.
func (s *State) Tokens(ctx context.Context, username string) ([]Token, error) {
	return queryAll(ctx, s.db, "tokens", scanToken, `SELECT `+tokenColumns+`
		FROM tokens t JOIN users u ON u.id = t.user_id WHERE ? = '' OR u.username = ? ORDER BY t.id`, username, username)
}

// RevokeToken revokes a user's live token by name; none such returns ErrNotFound.
func (s *State) RevokeToken(ctx context.Context, username, name string, now time.Time) (Token, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `UPDATE tokens SET revoked_ms = ?
		WHERE revoked_ms = 0 AND name = ? AND user_id = (SELECT id FROM users WHERE username = ?)
		RETURNING id`, now.UnixMilli(), name, username).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, fmt.Errorf("state revoke token %s of %s: %w", name, username, ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("state revoke token %s of %s: %w", name, username, err)
	}
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenColumns+`
		FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?`, id))
	if err != nil {
		return Token{}, fmt.Errorf("state revoke token %s of %s: %w", name, username, err)
	}
	return t, nil
}

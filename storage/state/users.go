package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// usersSchema is migration 3: local users and what each may see. Hashes are PHC
// strings made by web/auth; the database only stores them. Grants are rows, not a list
// in the user, so a site or camera can be looked up both ways.
const usersSchema = `CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	username      TEXT NOT NULL UNIQUE,
	role          TEXT NOT NULL CHECK (role IN ('guard', 'admin', 'itc')),
	password_hash TEXT NOT NULL,
	disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	created_ms    INTEGER NOT NULL,
	updated_ms    INTEGER NOT NULL
) STRICT;
CREATE TABLE grants (
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	kind    TEXT NOT NULL CHECK (kind IN ('site', 'camera')),
	target  TEXT NOT NULL,
	PRIMARY KEY (user_id, kind, target)
) STRICT;`

// ErrExists is returned (wrapped) when a row with that key already exists.
var ErrExists = errors.New("already exists")

// User is a local user. PasswordHash is a PHC string; never print or log it.
type User struct {
	ID           int64
	Username     string
	Roles        []string // at least one, in the order web/auth documents them
	PasswordHash string
	Disabled     bool
	Created      time.Time // UTC, millisecond precision
	Updated      time.Time
	Grants       []Grant // ordered by kind, then target
}

// Grant lets a user see one site's cameras or one camera.
type Grant struct {
	Kind   string `json:"kind"`   // "site" or "camera"
	Target string `json:"target"` // the site or camera ID
}

func (g Grant) String() string { return g.Kind + ":" + g.Target }

// AddUser stores a new user with one role; a taken username returns ErrExists.
func (s *State) AddUser(ctx context.Context, username, role, hash string) error {
	return s.addUser(ctx, username, []string{role}, hash, false)
}

// AddUserRoles stores a new user holding roles; a taken username returns ErrExists.
func (s *State) AddUserRoles(ctx context.Context, username string, roles []string, hash string) error {
	return s.addUser(ctx, username, roles, hash, false)
}

// AddFirstUser stores the user only if there is no user at all, in one statement so
// two processes starting at once cannot both add one. It reports whether it did.
func (s *State) AddFirstUser(ctx context.Context, username, role, hash string) (bool, error) {
	err := s.addUser(ctx, username, []string{role}, hash, true)
	if errors.Is(err, errNoRow) {
		return false, nil
	}
	return err == nil, err
}

var errNoRow = errors.New("no row inserted")

func (s *State) addUser(ctx context.Context, username string, roles []string, hash string, onlyFirst bool) error {
	primary, list, err := joinRoles(roles)
	if err != nil {
		return fmt.Errorf("state add user %s: %w", username, err)
	}
	now := time.Now().UnixMilli()
	q := `INSERT INTO users (username, role, roles, password_hash, created_ms, updated_ms) SELECT ?1, ?2, ?3, ?4, ?5, ?5`
	if onlyFirst {
		q += ` WHERE NOT EXISTS (SELECT 1 FROM users)`
	}
	res, err := s.db.ExecContext(ctx, q, username, primary, list, hash, now)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return fmt.Errorf("state add user %s: %w", username, ErrExists)
		}
		return fmt.Errorf("state add user %s: %w", username, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errNoRow
	}
	return nil
}

// User returns one user with its grants; a missing one returns ErrNotFound.
func (s *State) User(ctx context.Context, username string) (User, error) {
	us, err := s.users(ctx, ` WHERE u.username = ?`, username)
	if err != nil {
		return User{}, err
	}
	if len(us) == 0 {
		return User{}, fmt.Errorf("state user %s: %w", username, ErrNotFound)
	}
	return us[0], nil
}

// Users returns every user with its grants, ordered by username.
func (s *State) Users(ctx context.Context) ([]User, error) { return s.users(ctx, "", nil) }

// userByID returns one user with its grants; a missing one returns ErrNotFound.
func (s *State) userByID(ctx context.Context, id int64) (User, error) {
	us, err := s.users(ctx, ` WHERE u.id = ?`, id)
	if err != nil {
		return User{}, err
	}
	if len(us) == 0 {
		return User{}, fmt.Errorf("state user %d: %w", id, ErrNotFound)
	}
	return us[0], nil
}

func (s *State) users(ctx context.Context, where string, arg any) ([]User, error) {
	q := `SELECT u.id, u.username, u.role, u.roles, u.password_hash, u.disabled, u.created_ms, u.updated_ms,
		COALESCE(g.kind, ''), COALESCE(g.target, '')
		FROM users u LEFT JOIN grants g ON g.user_id = u.id` + where + ` ORDER BY u.username, g.kind, g.target`
	args := []any{}
	if where != "" {
		args = append(args, arg)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("state users: %w", err)
	}
	defer rows.Close()
	var us []User
	for rows.Next() {
		var u User
		var created, updated int64
		var kind, target, role, roles string
		if err := rows.Scan(&u.ID, &u.Username, &role, &roles, &u.PasswordHash, &u.Disabled, &created, &updated, &kind, &target); err != nil {
			return nil, fmt.Errorf("state users: %w", err)
		}
		if len(us) == 0 || us[len(us)-1].ID != u.ID {
			u.Created, u.Updated = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
			// A row written without roles (by SQL, not by this package) holds its role.
			if u.Roles = splitRoles(roles); len(u.Roles) == 0 {
				u.Roles = []string{role}
			}
			us = append(us, u)
		}
		if kind != "" {
			last := &us[len(us)-1]
			last.Grants = append(last.Grants, Grant{Kind: kind, Target: target})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state users: %w", err)
	}
	return us, nil
}

// CountUsers returns how many users exist, disabled ones included.
func (s *State) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("state count users: %w", err)
	}
	return n, nil
}

// SetPassword replaces a user's password hash and ends the user's sessions: whoever
// knew the old password is signed out.
func (s *State) SetPassword(ctx context.Context, username, hash string) error {
	return s.updateUser(ctx, username, `password_hash = ?`, hash, true)
}

// SetDisabled disables or re-enables a user; disabling ends the user's sessions at once.
func (s *State) SetDisabled(ctx context.Context, username string, disabled bool) error {
	return s.updateUser(ctx, username, `disabled = ?`, disabled, disabled)
}

func (s *State) updateUser(ctx context.Context, username, set string, v any, endSessions bool) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state update user %s: %w", username, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE users SET `+set+`, updated_ms = ? WHERE username = ?`,
		v, time.Now().UnixMilli(), username)
	if err != nil {
		return fmt.Errorf("state update user %s: %w", username, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("state update user %s: %w", username, ErrNotFound)
	}
	if endSessions {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?)`,
			username); err != nil {
			return fmt.Errorf("state update user %s: end sessions: %w", username, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("state update user %s: %w", username, err)
	}
	return nil
}

// SetGrants replaces all of a user's grants.
func (s *State) SetGrants(ctx context.Context, username string, grants []Grant) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state set grants of %s: %w", username, err)
	}
	defer tx.Rollback()
	var id int64
	if err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE username = ?`, username).Scan(&id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = ErrNotFound
		}
		return fmt.Errorf("state set grants of %s: user %w", username, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM grants WHERE user_id = ?`, id); err != nil {
		return fmt.Errorf("state set grants of %s: %w", username, err)
	}
	for _, g := range grants {
		if _, err := tx.ExecContext(ctx, `INSERT INTO grants (user_id, kind, target) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			id, g.Kind, g.Target); err != nil {
			return fmt.Errorf("state set grants of %s: %s: %w", username, g, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE users SET updated_ms = ? WHERE id = ?`, time.Now().UnixMilli(), id); err != nil {
		return fmt.Errorf("state set grants of %s: %w", username, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("state set grants of %s: %w", username, err)
	}
	return nil
}

// AddGrant lets a user see a site or camera; granting twice is not an error.
func (s *State) AddGrant(ctx context.Context, username string, g Grant) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state grant %s to %s: %w", g, username, err)
	}
	defer tx.Rollback()
	var id int64
	if err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE username = ?`, username).Scan(&id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = ErrNotFound
		}
		return fmt.Errorf("state grant %s to %s: user %w", g, username, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO grants (user_id, kind, target) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		id, g.Kind, g.Target); err != nil {
		return fmt.Errorf("state grant %s to %s: %w", g, username, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE users SET updated_ms = ? WHERE id = ?`, time.Now().UnixMilli(), id); err != nil {
		return fmt.Errorf("state grant %s to %s: %w", g, username, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("state grant %s to %s: %w", g, username, err)
	}
	return nil
}

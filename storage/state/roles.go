package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// rolesSchema lets a user hold several roles (an ITC engineer who also watches the
// guard room's cameras needs no second account): roles is a comma list in the order
// web/auth documents them. The role column stays, holding the first of them, so its
// CHECK still refuses a database written with a name that is no role.
const rolesSchema = `ALTER TABLE users ADD COLUMN roles TEXT NOT NULL DEFAULT '';
UPDATE users SET roles = role;`

// ErrLastRole is returned (wrapped) by SetRoles when the change would leave no enabled
// user holding the role it must keep.
var ErrLastRole = errors.New("last enabled user with that role")

func joinRoles(roles []string) (primary, list string, err error) {
	if len(roles) == 0 {
		return "", "", errors.New("no role")
	}
	for _, r := range roles {
		if r == "" || strings.Contains(r, ",") {
			return "", "", fmt.Errorf("bad role %q", r)
		}
	}
	return roles[0], strings.Join(roles, ","), nil
}

func splitRoles(list string) []string {
	if list == "" {
		return nil
	}
	return strings.Split(list, ",")
}

// SetRoles replaces a user's roles; like grants, sessions keep going and pick the new
// rights up when their cached principal is reloaded. When keep is not "" and the user, enabled, holds keep
// but roles do not, it fails with ErrLastRole if no other enabled user holds keep:
// checked in the same transaction, so two changes at once cannot both pass.
func (s *State) SetRoles(ctx context.Context, username string, roles []string, keep string) error {
	primary, list, err := joinRoles(roles)
	if err != nil {
		return fmt.Errorf("state set roles of %s: %w", username, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state set roles of %s: %w", username, err)
	}
	defer tx.Rollback()
	var id int64
	var old string
	var disabled bool
	err = tx.QueryRowContext(ctx, `SELECT id, roles, disabled FROM users WHERE username = ?`, username).Scan(&id, &old, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("state set roles of %s: user %w", username, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("state set roles of %s: %w", username, err)
	}
	if keep != "" && !disabled && slices.Contains(splitRoles(old), keep) && !slices.Contains(roles, keep) {
		var others int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE id != ? AND disabled = 0
			AND ',' || roles || ',' LIKE '%,' || ? || ',%'`, id, keep).Scan(&others); err != nil {
			return fmt.Errorf("state set roles of %s: %w", username, err)
		}
		if others == 0 {
			return fmt.Errorf("state set roles of %s: %s: %w", username, keep, ErrLastRole)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE users SET role = ?, roles = ?, updated_ms = ? WHERE id = ?`,
		primary, list, time.Now().UnixMilli(), id); err != nil {
		return fmt.Errorf("state set roles of %s: %w", username, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("state set roles of %s: %w", username, err)
	}
	return nil
}

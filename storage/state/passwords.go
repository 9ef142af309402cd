package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/straja-nvr/straja/storage/secrets"
)

// PasswordSealedField is the key of a camera's sealed password in cameras.spec. Earlier
// versions kept it in clear under "password".
const PasswordSealedField = "password_sealed"

// sealPasswords encrypts the camera passwords that earlier versions kept in clear in
// cameras.spec ("password") with the secrets key in dir, made if needed, and moves them
// to PasswordSealedField. Deleted content is zeroed (secure_delete) so the clear text
// does not linger in the file's free space; Open then empties the WAL.
func sealPasswords(ctx context.Context, tx execer, dir string) error {
	if _, err := tx.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, spec FROM cameras
		WHERE json_type(spec, '$.password') = 'text' AND json_extract(spec, '$.password') != ''`)
	if err != nil {
		return err
	}
	type row struct{ id, spec string }
	var clear []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.spec); err != nil {
			rows.Close()
			return err
		}
		clear = append(clear, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(clear) == 0 {
		return nil // no key is made until one is needed
	}
	if dir == "" {
		return errors.New("camera passwords to encrypt, but no data directory for the secrets key")
	}
	key, err := secrets.LoadOrCreate(secrets.Path(dir))
	if err != nil {
		return err
	}
	for _, r := range clear {
		var spec map[string]json.RawMessage
		if err := json.Unmarshal([]byte(r.spec), &spec); err != nil {
			return fmt.Errorf("camera %s: %w", r.id, err)
		}
		var pw string
		if err := json.Unmarshal(spec["password"], &pw); err != nil {
			return fmt.Errorf("camera %s: password: %w", r.id, err)
		}
		sealed, err := key.Seal(r.id, pw)
		if err != nil {
			return fmt.Errorf("camera %s: %w", r.id, err)
		}
		delete(spec, "password")
		spec[PasswordSealedField], _ = json.Marshal(sealed)
		b, err := json.Marshal(spec)
		if err != nil {
			return fmt.Errorf("camera %s: %w", r.id, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE cameras SET spec = ? WHERE id = ?`, string(b), r.id); err != nil {
			return fmt.Errorf("camera %s: %w", r.id, err)
		}
	}
	return nil
}

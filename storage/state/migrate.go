package state

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/straja-nvr/straja/storage"
)

// migration is one schema step: SQL, then Go code for what SQL cannot say. Both run in
// the transaction that also sets user_version, so a step is applied whole or not at
// all. Never edit a released step: databases in the field have already run it; add a
// new one, and a fixture for it in migrate_test.go.
type migration struct {
	name string
	sql  string
	fn   func(ctx context.Context, tx execer) error
	// dirFn is fn for a step that needs the database's directory (the data directory),
	// "" when the database is opened outside it.
	dirFn func(ctx context.Context, tx execer, dir string) error
}

// execer is what a migration step may use: the connection holding its transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// migrations[i] takes a database from version i to version i+1.
var migrations = []migration{
	{
		name: "meta",
		sql: `CREATE TABLE meta (
			key   TEXT PRIMARY KEY,
			value TEXT NOT NULL
		) STRICT;`,
		fn: func(ctx context.Context, tx execer) error {
			id, err := newInstanceID()
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('instance_id', ?), ('created', ?)`,
				id, time.Now().UTC().Format(time.RFC3339))
			return err
		},
	},
	{
		name: "cameras",
		sql: `CREATE TABLE cameras (
			id         TEXT PRIMARY KEY,
			spec       TEXT NOT NULL CHECK (json_valid(spec)),
			created_ms INTEGER NOT NULL,
			updated_ms INTEGER NOT NULL
		) STRICT;`,
	},
	{
		name: "users",
		sql:  usersSchema,
	},
	{name: "audit", sql: auditMigrationSQL},
	{name: "sessions", sql: sessionsSchema},
	{name: "health", sql: healthSchema},
	{name: "sites", sql: sitesSchema},
	{name: "exports", sql: exportsSchema},
	{name: "retention", sql: retentionSchema},
	{name: "holds", sql: holdsSchema},
	{name: "hold camera sites", sql: holdCameraSitesSchema},
	{name: "seal camera passwords", dirFn: sealPasswords},
	{name: "export deletion", sql: exportDeleteSchema},
	{name: "user roles", sql: rolesSchema},
}

// SchemaVersion is the schema version this binary creates and understands.
func SchemaVersion() int { return len(migrations) }

// migrate brings db from its version up to target. Each step takes the write lock
// before reading the version, so two processes cannot run the same step twice.
func migrate(ctx context.Context, db *sql.DB, target int) error {
	return migrateIn(ctx, db, target, "")
}

// migrateIn is migrate for a database in dir, the data directory.
func migrateIn(ctx context.Context, db *sql.DB, target int, dir string) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for {
		done, err := step(ctx, conn, target, dir)
		if err != nil || done {
			return err
		}
	}
}

// step applies the next migration towards target; done reports that none was left.
func step(ctx context.Context, conn *sql.Conn, target int, dir string) (done bool, err error) {
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return false, fmt.Errorf("begin migration: %w", err)
	}
	defer func() {
		if err != nil {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
		}
	}()
	v, err := userVersion(ctx, conn)
	if err != nil {
		return false, err
	}
	if v > len(migrations) {
		return false, fmt.Errorf("%w: schema version %d, this straja knows up to %d: "+
			"run a newer straja, or restore a backup made by this version", storage.ErrNewerSchema, v, len(migrations))
	}
	if v >= target {
		_, err := conn.ExecContext(ctx, `COMMIT`)
		return true, err
	}
	m := migrations[v]
	if m.sql != "" {
		if _, err := conn.ExecContext(ctx, m.sql); err != nil {
			return false, fmt.Errorf("migration %d (%s): %w", v+1, m.name, err)
		}
	}
	if m.fn != nil {
		if err := m.fn(ctx, conn); err != nil {
			return false, fmt.Errorf("migration %d (%s): %w", v+1, m.name, err)
		}
	}
	if m.dirFn != nil {
		if err := m.dirFn(ctx, conn, dir); err != nil {
			return false, fmt.Errorf("migration %d (%s): %w", v+1, m.name, err)
		}
	}
	// PRAGMA takes no parameters; v+1 is an int.
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
		return false, fmt.Errorf("migration %d (%s): %w", v+1, m.name, err)
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		return false, fmt.Errorf("migration %d (%s): commit: %w", v+1, m.name, err)
	}
	return false, nil
}

func userVersion(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

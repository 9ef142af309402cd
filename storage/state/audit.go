package state

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// AuditRow is one stored audit entry as the database holds it. The state database
// only stores and returns rows; the hash chain over them is the audit package's.
type AuditRow struct {
	Seq      int64
	Time     time.Time // UTC, nanosecond precision
	Actor    string
	User     string
	Action   string
	Camera   string
	Detail   string // a JSON object
	PrevHash []byte
	Hash     []byte
}

// auditMigrationSQL creates the audit table. The triggers refuse updates and deletes
// through SQL; they stop mistakes, not an attacker with the file, which is what the
// hash chain and the heads in the store are for.
const auditMigrationSQL = `CREATE TABLE audit (
	seq       INTEGER PRIMARY KEY,
	time_ns   INTEGER NOT NULL,
	actor     TEXT NOT NULL,
	username  TEXT NOT NULL DEFAULT '',
	action    TEXT NOT NULL,
	camera    TEXT NOT NULL DEFAULT '',
	detail    TEXT NOT NULL CHECK (json_valid(detail)),
	prev_hash BLOB NOT NULL,
	hash      BLOB NOT NULL
) STRICT;
CREATE INDEX audit_time ON audit (time_ns);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;`

// AppendAudit inserts rows in one transaction: all of them or none. The caller is the
// one writer and has chained them after AuditHead. Rows go auditRowsPerInsert to a
// statement: what database/sql and the driver spend per statement is paid per group.
func (s *State) AppendAudit(ctx context.Context, rows []AuditRow) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state append audit: %w", err)
	}
	defer tx.Rollback()
	var stmt *sql.Stmt // for full groups
	args := make([]any, 0, auditColumns*min(len(rows), auditRowsPerInsert))
	for len(rows) > 0 {
		group := rows[:min(len(rows), auditRowsPerInsert)]
		rows = rows[len(group):]
		args = args[:0]
		for _, r := range group {
			args = append(args, r.Seq, r.Time.UnixNano(), r.Actor, r.User, r.Action, r.Camera, r.Detail, r.PrevHash, r.Hash)
		}
		if len(group) < auditRowsPerInsert {
			_, err = tx.ExecContext(ctx, auditInsertSQL(len(group)), args...)
		} else {
			if stmt == nil {
				if stmt, err = tx.PrepareContext(ctx, auditInsertSQL(auditRowsPerInsert)); err != nil {
					return fmt.Errorf("state append audit: %w", err)
				}
				defer stmt.Close()
			}
			_, err = stmt.ExecContext(ctx, args...)
		}
		if err != nil {
			return fmt.Errorf("state append audit seq %d-%d: %w", group[0].Seq, group[len(group)-1].Seq, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("state append audit: %w", err)
	}
	return nil
}

const (
	auditColumns       = 9
	auditRowsPerInsert = 64 // 576 parameters, well under SQLite's limit
)

// auditInserts are the INSERT statements of 1 to auditRowsPerInsert rows, made once.
var auditInserts = func() []string {
	q := make([]string, auditRowsPerInsert+1)
	var b strings.Builder
	b.WriteString("INSERT INTO audit (seq, time_ns, actor, username, action, camera, detail, prev_hash, hash) VALUES ")
	for n := 1; n <= auditRowsPerInsert; n++ {
		if n > 1 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
		q[n] = b.String()
	}
	return q
}()

func auditInsertSQL(rows int) string { return auditInserts[rows] }

// AuditHead returns the last entry's seq and hash; an empty trail gives 0 and nil.
func (s *State) AuditHead(ctx context.Context) (int64, []byte, error) {
	var seq int64
	var hash []byte
	err := s.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if err == sql.ErrNoRows {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("state audit head: %w", err)
	}
	return seq, hash, nil
}

// AuditQuery selects audit rows: all fields optional. Rows come in seq order, after
// After, at most Limit (0: no limit).
type AuditQuery struct {
	From, To time.Time // [From, To); zero: unbounded
	User     string
	Camera   string
	Action   string
	After    int64
	Limit    int
}

// AuditRows calls fn for each row q selects, in seq order, and stops at fn's first error.
func (s *State) AuditRows(ctx context.Context, q AuditQuery, fn func(AuditRow) error) error {
	where := []string{"seq > ?"}
	args := []any{q.After}
	if !q.From.IsZero() {
		where, args = append(where, "time_ns >= ?"), append(args, q.From.UnixNano())
	}
	if !q.To.IsZero() {
		where, args = append(where, "time_ns < ?"), append(args, q.To.UnixNano())
	}
	if q.User != "" {
		where, args = append(where, "username = ?"), append(args, q.User)
	}
	if q.Camera != "" {
		where, args = append(where, "camera = ?"), append(args, q.Camera)
	}
	if q.Action != "" {
		where, args = append(where, "action = ?"), append(args, q.Action)
	}
	query := `SELECT seq, time_ns, actor, username, action, camera, detail, prev_hash, hash FROM audit WHERE ` +
		strings.Join(where, " AND ") + ` ORDER BY seq`
	if q.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("state audit rows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r AuditRow
		var ns int64
		if err := rows.Scan(&r.Seq, &ns, &r.Actor, &r.User, &r.Action, &r.Camera, &r.Detail, &r.PrevHash, &r.Hash); err != nil {
			return fmt.Errorf("state audit rows: %w", err)
		}
		r.Time = time.Unix(0, ns).UTC()
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("state audit rows: %w", err)
	}
	return nil
}

// CarryAudit copies into s the audit entries of the database at from (the one a
// restore replaced) that come after s's last entry, so that restoring a backup does
// not roll the audit trail back. It copies only when s's trail is a prefix of from's
// (its last entry has the same hash there), which it is when s was backed up from
// from; it returns how many entries it copied.
func (s *State) CarryAudit(ctx context.Context, from string) (int, error) {
	seq, hash, err := s.AuditHead(ctx)
	if err != nil {
		return 0, err
	}
	// Not the immutable read-only DSN: the replaced file may have a WAL holding the
	// newest entries. The data dir is locked, so nothing else has it open.
	old, err := sql.Open("sqlite", dsn(from, false))
	if err != nil {
		return 0, fmt.Errorf("state carry audit: %w", err)
	}
	defer old.Close()
	var hasAudit int
	if err := old.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit'`).
		Scan(&hasAudit); err != nil {
		return 0, fmt.Errorf("state carry audit from %s: %w", from, err)
	}
	if hasAudit == 0 {
		return 0, nil
	}
	if seq > 0 {
		var there []byte
		err := old.QueryRowContext(ctx, `SELECT hash FROM audit WHERE seq = ?`, seq).Scan(&there)
		if err != nil || !bytes.Equal(there, hash) {
			return 0, fmt.Errorf("state carry audit: entry %d differs in %s: the trails do not share a history", seq, from)
		}
	}
	other := &State{db: old}
	var rows []AuditRow
	if err := other.AuditRows(ctx, AuditQuery{After: seq}, func(r AuditRow) error {
		rows = append(rows, r)
		return nil
	}); err != nil {
		return 0, err
	}
	if len(rows) == 0 {
		return 0, nil
	}
	return len(rows), s.AppendAudit(ctx, rows)
}

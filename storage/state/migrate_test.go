package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage"
)

// fixtures[i] puts rows into a database at version i+1, as a Straja of that version
// would have written them, and checks that they are still there after an upgrade to
// the current version. Every migration needs one.
var fixtures = []struct {
	seed  func(t *testing.T, db *sql.DB)
	check func(t *testing.T, s *State)
}{
	{ // 1: meta
		seed: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE meta SET value = 'fixture-instance' WHERE key = 'instance_id'`)
		},
		check: func(t *testing.T, s *State) {
			id, err := s.InstanceID(t.Context())
			if err != nil || id != "fixture-instance" {
				t.Errorf("instance id = %q, %v; want fixture-instance (it must survive upgrades)", id, err)
			}
		},
	},
	{ // 2: cameras
		seed: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `INSERT INTO cameras (id, spec, created_ms, updated_ms)
				VALUES ('roof-east', '{"name":"Acoperiș est","url":"rtsp://10.20.1.40/s"}', 1764500000000, 1764500001000)`)
		},
		check: func(t *testing.T, s *State) {
			cams, err := s.Cameras(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(cams) != 1 || cams[0].ID != "roof-east" || !strings.Contains(string(cams[0].Spec), "Acoperiș est") ||
				!cams[0].Created.Equal(time.UnixMilli(1764500000000)) || !cams[0].Updated.Equal(time.UnixMilli(1764500001000)) {
				t.Errorf("cameras after upgrade = %+v, want the roof-east row as written", cams)
			}
		},
	},
	{ // 3: users
		seed: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `INSERT INTO users (id, username, role, password_hash, disabled, created_ms, updated_ms)
				VALUES (7, 'paznic.ion', 'guard', '$argon2id$v=19$m=65536,t=2,p=2$c2FsdA$aGFzaA', 1, 1764500000000, 1764500002000)`)
			mustExec(t, db, `INSERT INTO grants (user_id, kind, target) VALUES (7, 'site', 'bastion'), (7, 'camera', 'roof-east')`)
		},
		check: func(t *testing.T, s *State) {
			u, err := s.User(t.Context(), "paznic.ion")
			if err != nil {
				t.Fatal(err)
			}
			want := []Grant{{"camera", "roof-east"}, {"site", "bastion"}}
			if !slices.Equal(u.Roles, []string{"guard"}) || !u.Disabled || u.PasswordHash != "$argon2id$v=19$m=65536,t=2,p=2$c2FsdA$aGFzaA" ||
				!slices.Equal(u.Grants, want) || !u.Created.Equal(time.UnixMilli(1764500000000)) {
				t.Errorf("user after upgrade = %+v, want the paznic.ion row as written with grants %v", u, want)
			}
		},
	},
	{ // 4: audit
		seed: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `INSERT INTO audit (seq, time_ns, actor, username, action, camera, detail, prev_hash, hash)
				VALUES (1, 1764500000000000000, '10.20.1.7', '', 'live.start', 'roof-east', '{"session":"ab12cd34"}', x'00', x'01')`)
		},
		check: func(t *testing.T, s *State) {
			var got []AuditRow
			if err := s.AuditRows(t.Context(), AuditQuery{}, func(r AuditRow) error { got = append(got, r); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Seq != 1 || got[0].Action != "live.start" || got[0].Camera != "roof-east" ||
				!got[0].Time.Equal(time.Unix(0, 1764500000000000000)) {
				t.Errorf("audit after upgrade = %+v, want the live.start row as written", got)
			}
		},
	},
	{ // 5: sessions and tokens
		seed: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `INSERT INTO sessions (id_hash, user_id, created_ms, seen_ms, client)
				VALUES (x'aa01', 7, 1764500000000, 1764500003000, '10.20.1.7')`)
			mustExec(t, db, `INSERT INTO tokens (id, user_id, name, hash, created_ms)
				VALUES (3, 7, 'export-script', x'bb02', 1764500004000)`)
		},
		check: func(t *testing.T, s *State) {
			ss, u, err := s.SessionUser(t.Context(), []byte{0xaa, 0x01})
			if err != nil || u.Username != "paznic.ion" || ss.Client != "10.20.1.7" ||
				!ss.Seen.Equal(time.UnixMilli(1764500003000)) {
				t.Errorf("session after upgrade = %+v of %q, %v; want the fixture row", ss, u.Username, err)
			}
			tok, u, err := s.TokenUser(t.Context(), []byte{0xbb, 0x02})
			if err != nil || u.Username != "paznic.ion" || tok.Name != "export-script" || tok.ID != 3 {
				t.Errorf("token after upgrade = %+v of %q, %v; want the fixture row", tok, u.Username, err)
			}
		},
	},
	{ // 6: health
		seed: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `INSERT INTO gaps (camera, start_ms, end_ms, cause) VALUES ('roof-east', 1764500000000, 1764500015000, 'offline')`)
			mustExec(t, db, `INSERT INTO heartbeat (id, beat_ms, clean) VALUES (1, 1764500020000, 0)`)
			mustExec(t, db, `INSERT INTO alert_rules (id, spec, updated_ms) VALUES ('dark', '{"kind":"camera_offline"}', 1764500000000)`)
			mustExec(t, db, `INSERT INTO alerts (rule, camera, kind, started_ms) VALUES ('dark', 'roof-east', 'camera_offline', 1764500005000)`)
		},
		check: func(t *testing.T, s *State) {
			gaps, err := s.Gaps(t.Context(), "roof-east", time.UnixMilli(1764500001000), time.UnixMilli(1764500002000), 10)
			if err != nil || len(gaps) != 1 || gaps[0].Cause != "offline" || !gaps[0].End.Equal(time.UnixMilli(1764500015000)) {
				t.Errorf("gaps after upgrade = %+v, %v; want the fixture gap", gaps, err)
			}
			hb, clean, err := s.LastHeartbeat(t.Context())
			if err != nil || clean || !hb.Equal(time.UnixMilli(1764500020000)) {
				t.Errorf("heartbeat after upgrade = %v %v, %v; want the fixture's", hb, clean, err)
			}
			rules, err := s.AlertRules(t.Context())
			if err != nil || len(rules) != 1 || rules[0].ID != "dark" {
				t.Errorf("alert rules after upgrade = %+v, %v", rules, err)
			}
			alerts, err := s.Alerts(t.Context(), 10)
			if err != nil || len(alerts) != 1 || alerts[0].Camera != "roof-east" || !alerts[0].Resolved.IsZero() {
				t.Errorf("alerts after upgrade = %+v, %v", alerts, err)
			}
		},
	},
	{ // 7: sites
		seed: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `INSERT INTO sites (id, name, created_ms, updated_ms)
				VALUES ('depozit', 'Depozitul Feleacu', 1764500000000, 1764500005000)`)
		},
		check: func(t *testing.T, s *State) {
			sites, err := s.Sites(t.Context())
			if err != nil || len(sites) != 1 || sites[0].ID != "depozit" || sites[0].Name != "Depozitul Feleacu" ||
				!sites[0].Updated.Equal(time.UnixMilli(1764500005000)) {
				t.Errorf("sites after upgrade = %+v, %v; want the depozit row as written", sites, err)
			}
		},
	},
	{ // 8: exports
		seed: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `INSERT INTO exports (id, camera, from_ms, to_ms, reason, username, state, created_ms,
				updated_ms, clip_size, clip_sha256, key_id) VALUES ('0123456789abcdef', 'roof-east', 1764500000000,
				1764500060000, 'dosar 12/2026', 'admin.ana', 'done', 1764500100000, 1764500200000, 4096, 'ab', 'cd')`)
		},
		check: func(t *testing.T, s *State) {
			e, err := s.Export(t.Context(), "0123456789abcdef")
			if err != nil || e.Camera != "roof-east" || e.Reason != "dosar 12/2026" || e.State != ExportDone ||
				e.ClipSize != 4096 || !e.From.Equal(time.UnixMilli(1764500000000)) || e.KeyID != "cd" {
				t.Errorf("export after upgrade = %+v, %v; want the fixture row", e, err)
			}
		},
	},
	{ // 9: retention policies and runs
		seed: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `INSERT INTO retention_policies (name, spec, updated_ms, updated_by)
				VALUES ('palat', '{"name":"palat","sites":["palat"],"max_age":"1h"}', 1764500005000, 'it.ana')`)
			mustExec(t, db, `INSERT INTO retention_runs (id, kind, policy, forced, started_ms, ended_ms, result, error)
				VALUES (4, 'manual', '', 1, 1764500006000, 1764500007000, '[]', '')`)
		},
		check: func(t *testing.T, s *State) {
			ps, err := s.RetentionPolicies(t.Context())
			if err != nil || len(ps) != 1 || ps[0].Name != "palat" || ps[0].By != "it.ana" ||
				!strings.Contains(string(ps[0].Spec), `"sites":["palat"]`) {
				t.Errorf("retention policies after upgrade = %+v, %v; want the palat row", ps, err)
			}
			runs, err := s.RetentionRuns(t.Context(), 10)
			if err != nil || len(runs) != 1 || runs[0].ID != 4 || runs[0].Kind != "manual" || !runs[0].Forced ||
				!runs[0].Ended.Equal(time.UnixMilli(1764500007000)) {
				t.Errorf("retention runs after upgrade = %+v, %v; want run 4", runs, err)
			}
		},
	},
	{ // 10: evidence holds
		seed: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `INSERT INTO holds (id, cameras, site, from_ms, to_ms, reason, expires_ms, created_ms,
				created_by, released_ms, released_by, release_reason)
				VALUES ('9f3a', '["roof-east"]', '', 1764500000000, 1764500600000, 'Dosar 123/P/2026', 0,
				1764500700000, 'admin', 1764500800000, 'admin', 'dosar clasat')`)
		},
		check: func(t *testing.T, s *State) {
			h, err := s.Hold(t.Context(), "9f3a")
			if err != nil || !slices.Equal(h.Cameras, []string{"roof-east"}) || h.Reason != "Dosar 123/P/2026" ||
				!h.From.Equal(time.UnixMilli(1764500000000)) || !h.Expires.IsZero() || h.ReleasedBy != "admin" ||
				h.ReleaseReason != "dosar clasat" || !h.Released.Equal(time.UnixMilli(1764500800000)) {
				t.Errorf("hold after upgrade = %+v, %v; want the 9f3a row as written", h, err)
			}
		},
	},
	{ // 11: the sites of a hold's cameras
		seed: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE holds SET camera_sites = '{"roof-east":"depozit"}' WHERE id = '9f3a'`)
		},
		check: func(t *testing.T, s *State) {
			h, err := s.Hold(t.Context(), "9f3a")
			if err != nil || h.CameraSites["roof-east"] != "depozit" {
				t.Errorf("hold camera sites after upgrade = %v, %v; want roof-east in depozit", h.CameraSites, err)
			}
		},
	},
	{ // 12: camera passwords sealed
		seed: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `UPDATE cameras SET spec = json_set(spec, '$.username', 'admin', '$.password_sealed', 'v1:c2VhbGVk')
				WHERE id = 'roof-east'`)
		},
		check: func(t *testing.T, s *State) {
			cams, err := s.Cameras(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(cams, func(c Camera) bool { return c.ID == "roof-east" })
			if i < 0 || !strings.Contains(string(cams[i].Spec), `"password_sealed":"v1:c2VhbGVk"`) {
				t.Errorf("cameras after upgrade = %+v, want roof-east with its sealed password as written", cams)
			}
		},
	},
	{ // 13: export deletion
		seed: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `INSERT INTO exports (id, camera, from_ms, to_ms, reason, username, state, created_ms,
				updated_ms, deleted_ms, deleted_by, delete_reason) VALUES ('fedcba9876543210', 'roof-east', 1764500000000,
				1764500060000, 'dosar 13/2026', 'admin.ana', 'done', 1764500100000, 1764500200000, 1764500300000,
				'admin.dan', 'dosar clasat')`)
		},
		check: func(t *testing.T, s *State) {
			e, err := s.Export(t.Context(), "fedcba9876543210")
			if err != nil || !e.Deleted.Equal(time.UnixMilli(1764500300000)) || e.DeletedBy != "admin.dan" ||
				e.DeleteReason != "dosar clasat" || e.User != "admin.ana" {
				t.Errorf("deleted export after upgrade = %+v, %v; want the fixture row", e, err)
			}
		},
	},
	{ // 14: several roles per user (fixture 3's single-role guard checks the carried-over role)
		seed: func(t *testing.T, db *sql.DB) {
			mustExec(t, db, `INSERT INTO users (id, username, role, roles, password_hash, disabled, created_ms, updated_ms)
				VALUES (8, 'it.mihai', 'guard', 'guard,itc', '$argon2id$v=19$m=65536,t=2,p=2$c2FsdA$aGFzaA', 0,
				1764500000000, 1764500002000)`)
		},
		check: func(t *testing.T, s *State) {
			u, err := s.User(t.Context(), "it.mihai")
			if err != nil || !slices.Equal(u.Roles, []string{"guard", "itc"}) {
				t.Errorf("user after upgrade = %+v, %v; want it.mihai with roles guard and itc", u, err)
			}
		},
	},
}

func mustExec(t *testing.T, db *sql.DB, query string) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), query); err != nil {
		t.Fatal(err)
	}
}

// createAt makes a database at schema version v holding the fixtures of versions 1..v.
func createAt(t *testing.T, path string, v int) {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := migrate(t.Context(), db, v); err != nil {
		t.Fatalf("migrate to %d: %v", v, err)
	}
	for _, f := range fixtures[:v] {
		f.seed(t, db)
	}
}

func schema(t *testing.T, s *State) []string {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), `SELECT type || ' ' || name || ': ' || COALESCE(sql, '')
		FROM sqlite_master ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

func TestMigrateFromEveryVersion(t *testing.T) {
	if len(fixtures) != len(migrations) {
		t.Fatalf("%d migrations but %d fixtures: add one for each new migration", len(migrations), len(fixtures))
	}
	fresh, err := Open(t.Context(), filepath.Join(t.TempDir(), "fresh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	want := schema(t, fresh)

	for from := 0; from <= len(migrations); from++ {
		t.Run(fmt.Sprintf("from_v%d", from), func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "state.db")
			createAt(t, path, from)
			s, err := Open(ctx, path)
			if err != nil {
				t.Fatalf("open a version %d database: %v", from, err)
			}
			defer s.Close()
			if v, err := s.Version(ctx); err != nil || v != SchemaVersion() {
				t.Fatalf("version after upgrade = %d, %v; want %d", v, err, SchemaVersion())
			}
			for _, f := range fixtures[:from] {
				f.check(t, s)
			}
			if got := schema(t, s); !slices.Equal(got, want) {
				t.Errorf("schema upgraded from v%d differs from a new database's:\n%s\nwant\n%s",
					from, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// The upgraded database works for what came after its version.
			if err := s.PutCamera(ctx, "lobby", json.RawMessage(`{"name":"Hol"}`)); err != nil {
				t.Fatal(err)
			}
			if id, err := s.InstanceID(ctx); err != nil || id == "" {
				t.Errorf("instance id after upgrade = %q, %v", id, err)
			}
		})
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	createAt(t, path, len(migrations))
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	newer := SchemaVersion() + 1
	mustExec(t, db, fmt.Sprintf(`PRAGMA user_version = %d`, newer))
	db.Close()

	s, err := Open(ctx, path)
	if err == nil {
		s.Close()
		t.Fatal("opened a database from a newer version")
	}
	if !errors.Is(err, storage.ErrNewerSchema) || !strings.Contains(err.Error(), fmt.Sprintf("schema version %d", newer)) {
		t.Fatalf("error = %v; want ErrNewerSchema naming version %d", err, newer)
	}
	v, err := CheckFile(ctx, path)
	if !errors.Is(err, storage.ErrNewerSchema) || v != newer {
		t.Fatalf("CheckFile = %d, %v; want %d and ErrNewerSchema (and the file left as it was)", v, err, newer)
	}
}

// TestMigrationIsAtomic checks that a step that fails halfway leaves no trace and the
// version where it was.
func TestMigrationIsAtomic(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    migration
	}{
		{"sql", migration{name: "bad sql", sql: `CREATE TABLE half (a INTEGER); INSERT INTO nowhere VALUES (1);`}},
		{"go", migration{name: "bad go", sql: `CREATE TABLE half (a INTEGER);`,
			fn: func(ctx context.Context, tx execer) error { return errors.New("step failed") }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "state.db")
			createAt(t, path, len(migrations))
			saved := migrations
			migrations = append(slices.Clip(saved), tc.m)
			defer func() { migrations = saved }()

			if s, err := Open(ctx, path); err == nil {
				s.Close()
				t.Fatal("a failing migration did not fail Open")
			} else if !strings.Contains(err.Error(), tc.m.name) {
				t.Errorf("error %q does not name the migration %q", err, tc.m.name)
			}
			migrations = saved
			s, err := Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if v, _ := s.Version(ctx); v != len(saved) {
				t.Errorf("version = %d after a failed step, want %d", v, len(saved))
			}
			var n int
			if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'half'`).Scan(&n); err != nil || n != 0 {
				t.Errorf("the failed step's table exists (%d, %v)", n, err)
			}
		})
	}
}

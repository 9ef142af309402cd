package web

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/auth"
)

// Fixed secrets of the test users, one user per role, so a test can sign a request
// without signing in through Argon2id.
func testToken(role string) string   { return auth.TokenPrefix + "test-" + role }
func testSession(role string) string { return "test-session-" + role }

// withTestUsers fills o.Users and o.Sessions, when unset, from a new state database
// holding users guard, admin and itc (named after their roles), each with the token
// testToken(role) and the session testSession(role); guard and admin are granted
// every camera of o.Cameras.
func withTestUsers(tb testing.TB, o Options) Options {
	tb.Helper()
	if o.Users != nil {
		return o
	}
	ctx := context.Background()
	db, err := state.Open(ctx, filepath.Join(tb.TempDir(), "users.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	var grants []state.Grant
	var cams []string
	if o.Cameras != nil {
		for _, c := range o.Cameras.Cameras() {
			grants = append(grants, state.Grant{Kind: "camera", Target: c.ID})
			cams = append(cams, c.ID)
		}
	}
	for _, role := range auth.Roles {
		if err := db.AddUser(ctx, role, role, "$argon2id$not-a-password"); err != nil {
			tb.Fatal(err)
		}
		if role != auth.RoleITC {
			if err := db.SetGrants(ctx, role, grants); err != nil {
				tb.Fatal(err)
			}
		}
		u, err := db.User(ctx, role)
		if err != nil {
			tb.Fatal(err)
		}
		th := sha256.Sum256([]byte(testToken(role)))
		if _, err := db.AddToken(ctx, role, "test", th[:], time.Now()); err != nil {
			tb.Fatal(err)
		}
		sh := sha256.Sum256([]byte(testSession(role)))
		if err := db.AddSession(ctx, sh[:], u.ID, "127.0.0.1", time.Now()); err != nil {
			tb.Fatal(err)
		}
	}
	o.Users = auth.NewUsers(db, auth.Targets{Cameras: cams})
	o.Sessions = auth.NewSessions(db)
	return o
}

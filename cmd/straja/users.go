package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/auth"
)

// setUpUsers runs at start: the demo (re)creates its three users; otherwise a database
// with no user gets an admin whose random password is printed once on out, never logged.
func (m *Main) setUpUsers(ctx context.Context, db *state.State) (*auth.Users, error) {
	t, err := userTargets(ctx, m.Config, db)
	if err != nil {
		return nil, err
	}
	users := auth.NewUsers(db, t)
	users.Known = m.cams.targets // cameras and sites change at runtime
	return users, m.firstUsers(ctx, users)
}

func (m *Main) firstUsers(ctx context.Context, users *auth.Users) error {
	out := m.Out
	if out == nil {
		out = io.Discard
	}
	if m.Demo != nil {
		return demoUsers(ctx, users, m.Config, *m.Demo, out)
	}
	password, err := users.AddFirst(ctx, "admin")
	if err != nil {
		return fmt.Errorf("first user: %w", err)
	}
	if password != "" {
		fmt.Fprintf(out, "No users existed, so user admin was created with password %s\n"+
			"It is shown only now: note it, then change it with `straja user passwd --config FILE --username admin`.\n", password)
		m.Log.Info("first user created", "username", "admin", "role", auth.RoleAdmin)
	}
	return nil
}

// DemoUsers is how the demo signs people in.
type DemoUsers struct {
	Password string
	Random   bool // made up, so it must be printed
}

// demoUsers creates guard (granted the first site), admin (every site) and itc, or
// resets their passwords in a demo data directory used before.
func demoUsers(ctx context.Context, users *auth.Users, cfg *configs.Config, d DemoUsers, out io.Writer) error {
	grants := map[string][]string{auth.RoleGuard: {cfg.Sites[0].ID}, auth.RoleAdmin: nil, auth.RoleITC: nil}
	for _, s := range cfg.Sites {
		grants[auth.RoleAdmin] = append(grants[auth.RoleAdmin], s.ID)
	}
	for _, role := range auth.Roles {
		if _, err := users.DB.User(ctx, role); err == nil {
			if err := users.SetPassword(ctx, role, d.Password); err != nil {
				return fmt.Errorf("demo user %s: %w", role, err)
			}
		} else if err := users.Add(ctx, role, role, d.Password); err != nil {
			return fmt.Errorf("demo user %s: %w", role, err)
		}
		for _, site := range grants[role] {
			if err := users.Grant(ctx, role, state.Grant{Kind: "site", Target: site}); err != nil {
				return fmt.Errorf("demo user %s: %w", role, err)
			}
		}
	}
	pw := "the one given by --demo-password"
	if d.Random {
		pw = d.Password + " (made up for this run; --demo-password sets one)"
	}
	fmt.Fprintf(out, "Demo users guard (site %s), admin (%s) and itc, all with password %s.\n"+
		"Open the web UI and sign in as one of them.\n",
		cfg.Sites[0].ID, strings.Join(grants[auth.RoleAdmin], ", "), pw)
	return nil
}

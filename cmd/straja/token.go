package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/web/audit"
	"github.com/straja-nvr/straja/web/auth"
)

const tokenUsage = "token: want `token create|list|revoke --config FILE ...`"

// tokenCommand runs `straja token create|list|revoke`: personal API tokens for
// scripts, sent as Authorization: Bearer. A token is shown once, at creation; only
// its hash is stored. Revoking works while the service runs (within seconds).
func tokenCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(tokenUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("token "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	user := fs.String("user", "", "the user the token acts as")
	var name *string
	switch sub {
	case "create", "revoke":
		name = fs.String("name", "", "the token's name, e.g. the script using it: 1-64 of A-Z a-z 0-9 . _ -")
	case "list":
	default:
		return errors.New(tokenUsage)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch {
	case *path == "":
		return fmt.Errorf("token %s: --config is required", sub)
	case fs.NArg() > 0:
		return fmt.Errorf("token %s: unexpected argument %q", sub, fs.Arg(0))
	case sub != "list" && *user == "":
		return fmt.Errorf("token %s: --user is required", sub)
	case name != nil && *name == "":
		return fmt.Errorf("token %s: --name is required", sub)
	}
	cfg, err := loadConfig(*path, configs.WithoutCameraSecrets())
	if err != nil {
		return err
	}
	users, closeDB, err := openUsers(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeDB()
	sessions := auth.NewSessions(users.DB)
	switch sub {
	case "create":
		secret, t, err := sessions.CreateToken(ctx, *user, *name)
		if err != nil {
			return fmt.Errorf("token create: --%s", err)
		}
		if err := recordCommand(ctx, cfg, users.DB, audit.Event{Action: audit.ActionTokenCreate, User: *user,
			Detail: map[string]any{"token": t.Name}}); err != nil {
			return fmt.Errorf("token create: %w", err)
		}
		fmt.Fprintf(stdout, "token %s of %s created; it is shown only now:\n%s\n"+
			"Send it as the header  Authorization: Bearer %s\n", t.Name, t.Username, secret, secret)
	case "revoke":
		t, err := sessions.RevokeToken(ctx, *user, *name)
		if err != nil {
			return fmt.Errorf("token revoke: --%s", err)
		}
		if err := recordCommand(ctx, cfg, users.DB, audit.Event{Action: audit.ActionTokenRevoke, User: *user,
			Detail: map[string]any{"token": t.Name}}); err != nil {
			return fmt.Errorf("token revoke: done, but %w", err)
		}
		fmt.Fprintf(stdout, "token %s of %s revoked\n", t.Name, t.Username)
	case "list":
		ts, err := users.DB.Tokens(ctx, *user)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "USER\tNAME\tCREATED\tLAST USED\tREVOKED")
		when := func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.Format(time.RFC3339)
		}
		for _, t := range ts {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", t.Username, t.Name, when(t.Created), when(t.Used), when(t.Revoked))
		}
		return w.Flush()
	}
	return nil
}

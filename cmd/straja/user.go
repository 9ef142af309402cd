package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/audit"
	"github.com/straja-nvr/straja/web/auth"
)

// recordCommand appends a change made by a command to the audit trail, as the local
// actor. The service may be appending at the same time: the trail's writer chains
// after whichever head is current.
func recordCommand(ctx context.Context, cfg *configs.Config, db *state.State, ev audit.Event) error {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("not recorded in the audit trail: %w", err)
	}
	al, err := audit.New(ctx, db, audit.Options{Store: st}, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("not recorded in the audit trail: %w", err)
	}
	ev.Actor = audit.ActorLocal
	rerr := al.Record(ctx, ev)
	// Close stores the head too; a store that is down only delays that to the service's
	// next anchoring.
	_ = al.Close()
	if rerr != nil {
		return fmt.Errorf("not recorded in the audit trail: %w", rerr)
	}
	return nil
}

// stdin is where --password-stdin reads; tests replace it.
var stdin io.Reader = os.Stdin

const userUsage = "user: want `user add|passwd|list|disable|enable|grant|roles --config FILE ...`"

// userCommand runs `straja user add|passwd|list|disable|enable|grant|roles`. It works while
// the service runs: the state database is SQLite in WAL mode and waits up to 10 s
// for the service's writes, and the service reads users from the database on every
// use, so a change counts at once.
func userCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(userUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("user "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (YAML)")
	var username, role, site, camera *string
	var fromStdin *bool
	switch sub {
	case "add", "passwd", "disable", "enable", "grant", "roles":
		username = fs.String("username", "", "the user's name: 1-64 characters of a-z, 0-9, '.', '_', '-'")
	case "list":
	default:
		return errors.New(userUsage)
	}
	switch sub {
	case "roles":
		role = fs.String("role", "", "the user's roles from now on: one or more of guard, admin, itc, comma-separated")
	case "add":
		role = fs.String("role", "", "guard, admin or itc; several comma-separated (guard,itc)")
		fallthrough
	case "passwd":
		fromStdin = fs.Bool("password-stdin", false, "read the password from the first line of stdin (default: a random one, printed once)")
	case "grant":
		site = fs.String("site", "", "grant every camera of this site")
		camera = fs.String("camera", "", "grant this camera")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("user %s: --config is required", sub)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("user %s: unexpected argument %q", sub, fs.Arg(0))
	}
	if username != nil && *username == "" {
		return fmt.Errorf("user %s: --username is required", sub)
	}
	var grant state.Grant
	if sub == "grant" {
		switch {
		case (*site == "") == (*camera == ""):
			return errors.New("user grant: give one of --site or --camera")
		case *site != "":
			grant = state.Grant{Kind: "site", Target: *site}
		default:
			grant = state.Grant{Kind: "camera", Target: *camera}
		}
	}
	var roles []string
	if role != nil {
		var err error
		if roles, err = auth.CheckRoles(splitList(*role)); err != nil {
			return fmt.Errorf("user %s: --role: %s", sub, strings.TrimPrefix(err.Error(), "roles: "))
		}
	}
	var password string
	if fromStdin != nil && *fromStdin {
		p, err := readPassword(stdin)
		if err != nil {
			return fmt.Errorf("user %s: --password-stdin: %w", sub, err)
		}
		password = p
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
	random := fromStdin != nil && password == ""
	if random {
		if password, err = auth.RandomPassword(); err != nil {
			return err
		}
	}
	switch sub {
	case "add":
		err = users.AddRoles(ctx, *username, roles, password)
	case "roles":
		_, err = users.SetRoles(ctx, *username, roles)
	case "passwd":
		err = users.SetPassword(ctx, *username, password)
	case "disable", "enable":
		err = users.SetDisabled(ctx, *username, sub == "disable")
	case "grant":
		err = users.Grant(ctx, *username, grant)
	case "list":
		return listUsers(ctx, users, stdout)
	}
	if err != nil {
		return fmt.Errorf("user %s: %s", sub, flagNamed(err))
	}
	ev := audit.Event{Action: map[string]string{"add": audit.ActionUserAdd, "passwd": audit.ActionUserPassword,
		"disable": audit.ActionUserDisable, "enable": audit.ActionUserEnable, "grant": audit.ActionUserGrants,
		"roles": audit.ActionUserRoles}[sub],
		Detail: map[string]any{"username": *username, "by": "straja user " + sub}}
	switch sub {
	case "add", "roles":
		ev.Detail["roles"] = roles
	case "grant":
		ev.Detail["grant"] = grant.String()
	}
	if err := recordCommand(ctx, cfg, users.DB, ev); err != nil {
		return fmt.Errorf("user %s: done, but %w", sub, err)
	}
	switch sub {
	case "add":
		fmt.Fprintf(stdout, "user %s added with role %s\n", *username, strings.Join(roles, ","))
	case "roles":
		fmt.Fprintf(stdout, "roles of %s: %s\n", *username, strings.Join(roles, ","))
	case "passwd":
		fmt.Fprintf(stdout, "password of %s changed\n", *username)
	case "disable":
		fmt.Fprintf(stdout, "user %s disabled\n", *username)
	case "enable":
		fmt.Fprintf(stdout, "user %s enabled\n", *username)
	case "grant":
		fmt.Fprintf(stdout, "%s may now see %s %s\n", *username, grant.Kind, grant.Target)
	}
	if random {
		fmt.Fprintf(stdout, "password of %s (shown only now): %s\n", *username, password)
	}
	return nil
}

// flagNamed turns auth's "field: why" into "--field: why", the flag the user typed.
func flagNamed(err error) string {
	msg := err.Error()
	if m, ok := strings.CutPrefix(msg, "roles: "); ok {
		return "--role: " + m
	}
	for _, f := range []string{"username", "role", "password", "site", "camera"} {
		if strings.HasPrefix(msg, f+": ") {
			return "--" + msg
		}
	}
	return msg
}

// openUsers opens the users in cfg's state database; grants may name the configured
// sites and cameras and those added at runtime.
func openUsers(ctx context.Context, cfg *configs.Config) (*auth.Users, func(), error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("data_dir: %w", err)
	}
	db, err := state.Open(ctx, statePath(cfg))
	if err != nil {
		return nil, nil, err
	}
	t, err := userTargets(ctx, cfg, db)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return auth.NewUsers(db, t), func() { db.Close() }, nil
}

func userTargets(ctx context.Context, cfg *configs.Config, db *state.State) (auth.Targets, error) {
	var t auth.Targets
	for _, s := range cfg.Sites {
		t.Sites = append(t.Sites, s.ID)
	}
	for _, c := range cfg.Cameras {
		t.Cameras = append(t.Cameras, c.ID)
	}
	sites, err := db.Sites(ctx)
	if err != nil {
		return t, err
	}
	for _, s := range sites {
		t.Sites = append(t.Sites, s.ID)
	}
	cams, err := db.Cameras(ctx)
	if err != nil {
		return t, err
	}
	for _, c := range cams {
		t.Cameras = append(t.Cameras, c.ID)
	}
	return t, nil
}

func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", errors.New("no password on stdin")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// splitList splits a comma-separated flag value, dropping spaces and empty items.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// listUsers prints users with roles, state and grants; never hashes.
func listUsers(ctx context.Context, users *auth.Users, stdout io.Writer) error {
	us, err := users.List(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "USERNAME\tROLES\tDISABLED\tGRANTS")
	for _, u := range us {
		grants := make([]string, len(u.Grants))
		for i, g := range u.Grants {
			grants[i] = g.String()
		}
		g := strings.Join(grants, ",")
		if g == "" {
			g = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%v\t%s\n", u.Username, strings.Join(u.Roles, ","), map[bool]string{true: "yes", false: "no"}[u.Disabled], g)
	}
	return w.Flush()
}

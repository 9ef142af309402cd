package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/auth"
)

// userConfig writes a config with two sites and a camera; its password need not be set.
func userConfig(t *testing.T) (path, dataDir string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "straja.yaml")
	dataDir = filepath.Join(dir, "data")
	yaml := "data_dir: " + dataDir + `
sites:
  - id: bastion
    name: Bastionul Theresia
  - id: palat
    name: Palatul Administrativ
cameras:
  - id: bastion-gate
    name: Poarta
    site: bastion
    url: rtsp://admin@10.0.0.5/a
    password_env: STRAJA_TEST_USERS_UNSET_PASSWORD
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, dataDir
}

// runUser runs `straja user ...` with input on stdin.
func runUser(t *testing.T, input string, args ...string) (string, error) {
	t.Helper()
	stdin = strings.NewReader(input)
	t.Cleanup(func() { stdin = os.Stdin })
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), append([]string{"user"}, args...), &stdout, &stderr)
	return stdout.String(), err
}

// signIn checks a password against the state database the way sign-in will.
func signIn(t *testing.T, dataDir, username, password string) (state.User, error) {
	t.Helper()
	db, err := state.Open(t.Context(), filepath.Join(dataDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return auth.NewUsers(db, auth.Targets{}).Authenticate(t.Context(), username, password)
}

var printedPassword = regexp.MustCompile(`password of (\S+) \(shown only now\): (\S+)\n`)

func TestUserCommandRoundTrip(t *testing.T) {
	cfg, dataDir := userConfig(t)
	must := func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := must(runUser(t, "Bastion-de-noapte\n", "add", "--config", cfg, "--username", "ana.pop", "--role", "guard", "--password-stdin"))
	if out != "user ana.pop added with role guard\n" {
		t.Errorf("add printed %q", out)
	}
	out = must(runUser(t, "", "add", "--config", cfg, "--username", "itc-1", "--role", "itc"))
	m := printedPassword.FindStringSubmatch(out)
	if m == nil || m[1] != "itc-1" {
		t.Fatalf("add without --password-stdin printed %q, want the random password once", out)
	}
	itcPassword := m[2]
	if u, err := signIn(t, dataDir, "itc-1", itcPassword); err != nil || !slices.Equal(u.Roles, []string{auth.RoleITC}) {
		t.Errorf("sign in with the printed password: %+v, %v", u, err)
	}
	must(runUser(t, "", "grant", "--config", cfg, "--username", "ana.pop", "--site", "bastion"))
	out = must(runUser(t, "", "grant", "--config", cfg, "--username", "ana.pop", "--camera", "bastion-gate"))
	if out != "ana.pop may now see camera bastion-gate\n" {
		t.Errorf("grant printed %q", out)
	}
	if u, err := signIn(t, dataDir, "ana.pop", "Bastion-de-noapte"); err != nil || !slices.Equal(u.Roles, []string{auth.RoleGuard}) {
		t.Errorf("sign in as ana.pop: %+v, %v", u, err)
	}
	must(runUser(t, "Alta-parola-de-zi\r\n", "passwd", "--config", cfg, "--username", "ana.pop", "--password-stdin"))
	if _, err := signIn(t, dataDir, "ana.pop", "Bastion-de-noapte"); err == nil {
		t.Error("the old password still signs in after passwd")
	}
	if _, err := signIn(t, dataDir, "ana.pop", "Alta-parola-de-zi"); err != nil {
		t.Errorf("the new password (given with CRLF) does not sign in: %v", err)
	}
	out = must(runUser(t, "", "passwd", "--config", cfg, "--username", "itc-1"))
	if m := printedPassword.FindStringSubmatch(out); m == nil || m[2] == itcPassword {
		t.Errorf("passwd without --password-stdin printed %q, want a new random password", out)
	} else if _, err := signIn(t, dataDir, "itc-1", m[2]); err != nil {
		t.Errorf("sign in with the new random password: %v", err)
	}
	must(runUser(t, "", "disable", "--config", cfg, "--username", "itc-1"))

	out = must(runUser(t, "", "list", "--config", cfg))
	want := regexp.MustCompile(`(?m)^USERNAME +ROLES +DISABLED +GRANTS\nana\.pop +guard +no +camera:bastion-gate,site:bastion\nitc-1 +itc +yes +-\n$`)
	if !want.MatchString(out) {
		t.Errorf("list printed\n%s\nwant ana.pop's grants and itc-1 disabled", out)
	}
	if strings.Contains(out, "argon2") || strings.Contains(out, "$") {
		t.Errorf("list shows hashes:\n%s", out)
	}
	if _, err := signIn(t, dataDir, "itc-1", itcPassword); err == nil {
		t.Error("a disabled user signs in")
	}
	must(runUser(t, "", "enable", "--config", cfg, "--username", "itc-1"))
	if out := must(runUser(t, "", "list", "--config", cfg)); !regexp.MustCompile(`(?m)^itc-1 +itc +no`).MatchString(out) {
		t.Errorf("after enable, list printed\n%s", out)
	}

	// Several roles: an ITC engineer who also watches the cameras needs one account.
	out = must(runUser(t, "Bastion-de-noapte\n", "add", "--config", cfg, "--username", "it.mihai", "--role", "itc, guard",
		"--password-stdin"))
	if out != "user it.mihai added with role guard,itc\n" {
		t.Errorf("add with two roles printed %q", out)
	}
	if u, err := signIn(t, dataDir, "it.mihai", "Bastion-de-noapte"); err != nil || !slices.Equal(u.Roles, []string{auth.RoleGuard, auth.RoleITC}) {
		t.Errorf("sign in as it.mihai: %+v, %v; want roles guard and itc", u, err)
	}
	out = must(runUser(t, "", "roles", "--config", cfg, "--username", "ana.pop", "--role", "admin,guard"))
	if out != "roles of ana.pop: guard,admin\n" {
		t.Errorf("roles printed %q", out)
	}
	if out := must(runUser(t, "", "list", "--config", cfg)); !regexp.MustCompile(`(?m)^ana\.pop +guard,admin +no`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^it\.mihai +guard,itc +no`).MatchString(out) {
		t.Errorf("list after roles printed\n%s", out)
	}
}

func TestUserCommandBadInput(t *testing.T) {
	cfg, _ := userConfig(t)
	if _, err := runUser(t, "Bastion-de-noapte\n", "add", "--config", cfg, "--username", "ana", "--role", "guard", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"add", "--username", "bob", "--role", "guard"}, "user add: --config is required"},
		{"", []string{"add", "--config", cfg, "--role", "guard"}, "user add: --username is required"},
		{"", []string{"add", "--config", cfg, "--username", "", "--role", "guard"}, "--username is required"},
		{"", []string{"add", "--config", cfg, "--username", strings.Repeat("x", 65), "--role", "guard"}, "--username: 65 characters, at most 64"},
		{"", []string{"add", "--config", cfg, "--username", "Bob", "--role", "guard"}, `--username: "Bob" has 'B'`},
		{"", []string{"add", "--config", cfg, "--username", "bob", "--role", "root"}, `--role: "root" is not a role; use guard, admin or itc`},
		{"", []string{"add", "--config", cfg, "--username", "bob", "--role", "guard,root"}, `user add: --role: "root" is not a role`},
		{"", []string{"add", "--config", cfg, "--username", "bob"}, "user add: --role: at least one role is needed"},
		{"", []string{"roles", "--config", cfg, "--username", "ana", "--role", ","}, "user roles: --role: at least one role is needed"},
		{"", []string{"roles", "--config", cfg, "--username", "nimeni", "--role", "guard"}, `user roles: --username: no user "nimeni"`},
		{"", []string{"add", "--config", cfg, "--username", "ana", "--role", "admin"}, `--username: "ana" is taken`},
		{"scurt\n", []string{"add", "--config", cfg, "--username", "bob", "--role", "guard", "--password-stdin"}, "--password: 5 characters, at least 12 needed"},
		{"bob.the.guard\n", []string{"add", "--config", cfg, "--username", "bob.the.guard", "--role", "guard", "--password-stdin"}, "--password: must not be the username"},
		{"aaaabbbbccccdddd\n", []string{"add", "--config", cfg, "--username", "bob", "--role", "guard", "--password-stdin"}, "--password: all characters are of one kind"},
		{"", []string{"add", "--config", cfg, "--username", "bob", "--role", "guard", "--password-stdin"}, "--password-stdin: no password on stdin"},
		{"", []string{"passwd", "--config", cfg, "--username", "nimeni"}, `--username: no user "nimeni"`},
		{"", []string{"disable", "--config", cfg, "--username", "nimeni"}, `--username: no user "nimeni"`},
		{"", []string{"grant", "--config", cfg, "--username", "ana"}, "give one of --site or --camera"},
		{"", []string{"grant", "--config", cfg, "--username", "ana", "--site", "bastion", "--camera", "bastion-gate"}, "give one of --site or --camera"},
		{"", []string{"grant", "--config", cfg, "--username", "ana", "--site", "turn"}, `--site: "turn" is not a configured site`},
		{"", []string{"grant", "--config", cfg, "--username", "ana", "--camera", "palat-hall"}, `--camera: "palat-hall" is not a configured camera`},
		{"", []string{"grant", "--config", cfg, "--username", "nimeni", "--site", "bastion"}, `--username: no user "nimeni"`},
		{"", []string{"delete", "--config", cfg}, "user: want `user add|passwd|list|disable|enable|grant|roles"},
		{"", []string{"list", "--config", cfg, "extra"}, `unexpected argument "extra"`},
	} {
		_, err := runUser(t, tc.stdin, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("user %v: %v\nwant an error containing %q", tc.args, err, tc.want)
		}
	}
	out, err := runUser(t, "", "list", "--config", cfg)
	if err != nil || strings.Count(out, "\n") != 2 {
		t.Errorf("after bad input, list printed %q, %v; want only ana", out, err)
	}
}

// TestFirstStartCreatesAdminOnce: the first start prints an admin's password on
// stdout, never in the log; the next start creates nobody.
func TestFirstStartCreatesAdminOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig(t, dir, nil, 0)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	start := func() (stdout, logs string) {
		var out bytes.Buffer
		l := &testutil.Buffer{}
		m := &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(l, nil)), Out: &out}
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Closing at once, while the recorder may still recover its spool, is a clean stop.
		if err := m.Close(); err != nil {
			t.Errorf("Close right after Run: %v", err)
		}
		return out.String(), l.String()
	}
	out, logs := start()
	m := regexp.MustCompile(`user admin was created with password (\S+)\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("first start printed %q, want the admin's password", out)
	}
	if strings.Contains(logs, m[1]) {
		t.Errorf("the admin's password is in the log:\n%s", logs)
	}
	if u, err := signIn(t, dir, "admin", m[1]); err != nil || !slices.Equal(u.Roles, []string{auth.RoleAdmin}) {
		t.Errorf("sign in with the printed password: %+v, %v", u, err)
	}
	if out, _ := start(); strings.Contains(out, "created") {
		t.Errorf("second start printed %q, want no new user", out)
	}
	cfgPath := writeConfig(t, cfg)
	if out, err := runUser(t, "", "list", "--config", cfgPath); err != nil || strings.Count(out, "\n") != 2 {
		t.Errorf("users after two starts:\n%s%v\nwant admin only", out, err)
	}
}

// TestDemoUsers: the demo makes guard, admin and itc with --demo-password, says that
// sign-in is not enforced yet, and a second run with another password resets them.
func TestDemoUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the demo")
	}
	data := t.TempDir()
	start := func(args ...string) string {
		m, err := demoMain(append([]string{"--listen", "127.0.0.1:0", "--data", data, "--cameras", "2"}, args...),
			&bytes.Buffer{}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		m.Out = &out
		if err := m.Run(t.Context()); err != nil {
			m.Sim.Close()
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("Close right after Run: %v", err)
		}
		return out.String()
	}
	out := start("--demo-password", "Demo-parola-1")
	if !strings.Contains(out, "Demo users guard (site bastion), admin (bastion, palat) and itc") ||
		!strings.Contains(out, "sign in as one of them") || strings.Contains(out, "Demo-parola-1") {
		t.Errorf("demo printed %q", out)
	}
	for _, role := range auth.Roles {
		if u, err := signIn(t, data, role, "Demo-parola-1"); err != nil || !slices.Equal(u.Roles, []string{role}) {
			t.Errorf("sign in as %s: %+v, %v", role, u, err)
		}
	}
	out = start()
	m := regexp.MustCompile(`all with password (\S+) \(made up`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("demo without --demo-password printed %q, want the random password", out)
	}
	u, err := signIn(t, data, "guard", m[1])
	if err != nil || len(u.Grants) != 1 || u.Grants[0] != (state.Grant{Kind: "site", Target: "bastion"}) {
		t.Errorf("guard after a second demo run: %+v, %v; want the new password and one grant", u, err)
	}
	if strings.Contains(out, "No users existed") {
		t.Errorf("the demo also made the first-start admin: %q", out)
	}
}

// TestUserCommandWhileServing: `straja user` works beside a running service.
func TestUserCommandWhileServing(t *testing.T) {
	m, _ := startBare(t, func(*configs.Config) {})
	path := writeConfig(t, m.Config)
	if _, err := runUser(t, "Bastion-de-noapte\n", "add", "--config", path, "--username", "ana", "--role", "guard", "--password-stdin"); err != nil {
		t.Fatalf("user add while the service runs: %v", err)
	}
	if u, err := auth.NewUsers(m.state, auth.Targets{}).Authenticate(t.Context(), "ana", "Bastion-de-noapte"); err != nil || u.Username != "ana" {
		t.Errorf("the running service's database does not see ana: %+v, %v", u, err)
	}
}

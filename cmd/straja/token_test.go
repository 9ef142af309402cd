package main

import (
	"bytes"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/audit"
)

func runToken(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), append([]string{"token"}, args...), &stdout, &stderr)
	return stdout.String(), err
}

// A token made by `straja token create` acts as its user on the running service
// until `straja token revoke`; list shows it without the secret.
func TestTokenCommands(t *testing.T) {
	m, _ := startBare(t, func(*configs.Config) {})
	path := writeConfig(t, m.Config)
	if _, err := runUser(t, "Bastion-de-noapte-1\n", "add", "--config", path, "--username", "ana", "--role", "itc", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	out, err := runToken(t, "create", "--config", path, "--user", "ana", "--name", "inventory")
	if err != nil {
		t.Fatal(err)
	}
	secret := regexp.MustCompile(`straja_[A-Za-z0-9_-]{43}`).FindString(out)
	if secret == "" {
		t.Fatalf("create printed %q, no token", out)
	}
	get := func() int {
		req, _ := http.NewRequest("GET", "http://"+m.Addr()+"/api/v1/users", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := anonClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != http.StatusOK {
		t.Fatalf("GET /api/v1/users with the itc token: %d", code)
	}
	out, err = runToken(t, "list", "--config", path)
	if err != nil || !strings.Contains(out, "ana") || !strings.Contains(out, "inventory") || strings.Contains(out, secret) {
		t.Errorf("list: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "--config", path, "--user", "ana", "--name", "inventory"}, "--name: user \"ana\" already has a token named \"inventory\""},
		{[]string{"create", "--config", path, "--user", "nobody", "--name", "x"}, "--user: no user \"nobody\""},
		{[]string{"create", "--config", path, "--user", "ana", "--name", "a b"}, "--name:"},
		{[]string{"create", "--config", path, "--user", "ana"}, "--name is required"},
		{[]string{"revoke", "--config", path, "--user", "ana", "--name", "other"}, "has no valid token named \"other\""},
	} {
		if _, err := runToken(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("token %v: %v, want %q", tc.args, err, tc.want)
		}
	}
	if _, err := runToken(t, "revoke", "--config", path, "--user", "ana", "--name", "inventory"); err != nil {
		t.Fatal(err)
	}
	// The service trusts its cache for at most 2 s.
	testutil.WaitFor(t, 10*time.Second, "the revoked token refused", func() bool { return get() == http.StatusUnauthorized })
	// The commands' changes are in the service's audit trail, chained with its own.
	var got []string
	if err := m.state.AuditRows(t.Context(), state.AuditQuery{}, func(r state.AuditRow) error {
		if r.Actor == audit.ActorLocal && r.Action != audit.ActionServiceStart {
			got = append(got, r.Action+":"+r.User)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got, " "); s != "user.add: token.create:ana token.revoke:ana" {
		t.Errorf("audit entries of the commands: %q", s)
	}
}

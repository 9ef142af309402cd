package main

import (
	"context"
	"net/http"
	"os"
	"sync"
	"testing"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/auth"
)

// Tests reach the API as a signed-in guard: http.DefaultClient (http.Get, http.Post)
// puts the token of the service a test started at that address on each request that
// carries no credentials of its own, and the metrics token on /metrics. anonClient
// sends requests as they are.
var (
	testTokens sync.Map // host:port -> API token
	anonClient = &http.Client{}
)

// testMetricsToken is metrics.token in test configurations.
const testMetricsToken = "metrics-token-of-the-tests-0123456789"

type signingTransport struct{ base http.RoundTripper }

func (s signingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Authorization") == "" && r.Header.Get("Cookie") == "" {
		tok := ""
		if v, ok := testTokens.Load(r.URL.Host); ok {
			tok = v.(string)
			if r.URL.Path == "/metrics" {
				tok = testMetricsToken
			}
		}
		if tok != "" {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	return s.base.RoundTrip(r)
}

func init() { http.DefaultClient.Transport = signingTransport{base: http.DefaultTransport} }

// userToken makes user username with role on m (unless it exists), granted every
// configured camera when grantAll, and returns a new API token of theirs.
func userToken(t testing.TB, m *Main, username, role string, grantAll bool) string {
	t.Helper()
	ctx := context.Background()
	if _, err := m.state.User(ctx, username); err != nil {
		if err := m.state.AddUser(ctx, username, role, "$argon2id$not-a-password"); err != nil {
			t.Fatal(err)
		}
	}
	if grantAll {
		var grants []state.Grant
		for _, c := range m.Config.Cameras {
			grants = append(grants, state.Grant{Kind: "camera", Target: c.ID})
		}
		if err := m.state.SetGrants(ctx, username, grants); err != nil {
			t.Fatal(err)
		}
	}
	tok, _, err := auth.NewSessions(m.state).CreateToken(ctx, username, "tests-"+randomName(t))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signInTests makes user "tester", a guard granted every configured camera, with an
// API token that http.DefaultClient sends to m, and returns the token.
func signInTests(t testing.TB, m *Main, addr ...string) string {
	t.Helper()
	tok := userToken(t, m, "tester", auth.RoleGuard, true)
	if len(addr) == 0 {
		addr = append(addr, m.Addr())
	}
	testTokens.Store(addr[0], tok)
	return tok
}

// signInBinary prepares, in the state database of the service a test is about to
// start from config, what signInTests makes for an in-process one.
func signInBinary(t testing.TB, config string) {
	t.Helper()
	cfg, err := configs.Load(config, configs.WithoutCameraSecrets())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(context.Background(), statePath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	signInTests(t, &Main{Config: cfg, state: db}, cfg.Listen)
}

func randomName(t testing.TB) string {
	p, err := auth.RandomPassword()
	if err != nil {
		t.Fatal(err)
	}
	return p[:8]
}

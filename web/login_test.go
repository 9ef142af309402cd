package web

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/straja-nvr/straja/web/audit"
	"github.com/straja-nvr/straja/web/auth"
)

const anaPassword = "Bastion-de-noapte-1"

// withAna adds guard ana (granted site bastion) with a real Argon2id hash.
func withAna(t *testing.T, s *Server) {
	t.Helper()
	if err := s.users.Add(context.Background(), "ana", auth.RoleGuard, anaPassword); err != nil {
		t.Fatal(err)
	}
}

func login(s *Server, username, password, addr string) *httptest.ResponseRecorder {
	body, _ := json.Marshal(map[string]string{"username": username, "password": password})
	r := newRequestAs("", "POST", "/api/v1/login", body)
	r.Header.Set("Content-Type", "application/json")
	if addr != "" {
		r.RemoteAddr = addr + ":40000"
	}
	return serve(s, r)
}

func withCookie(r *http.Request, c *http.Cookie) *http.Request { r.AddCookie(c); return r }

func sessionOf(t *testing.T, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", rec.Header())
	return nil
}

func TestLoginMeLogout(t *testing.T) {
	s := authServer(t)
	withAna(t, s)
	if rec := login(s, "ana", "wrong-password-1", ""); rec.Code != http.StatusUnauthorized ||
		!strings.Contains(rec.Body.String(), "wrong username or password") || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("wrong password: %d %s", rec.Code, rec.Body)
	}
	rec := login(s, "ana", anaPassword, "")
	if rec.Code != http.StatusNoContent {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	c := sessionOf(t, rec)
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.Path != "/" || len(c.Value) < 40 {
		t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP, a long secret", c)
	}
	me := serve(s, withCookie(newRequestAs("", "GET", "/api/v1/me", nil), c))
	if me.Code != 200 || !strings.Contains(me.Body.String(), `"username":"ana"`) {
		t.Fatalf("/me: %d %s", me.Code, me.Body)
	}
	if rec := serve(s, withCookie(newRequestAs("", "POST", "/api/v1/logout", nil), c)); rec.Code != http.StatusNoContent {
		t.Fatalf("logout: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(s, withCookie(newRequestAs("", "GET", "/api/v1/me", nil), c)); rec.Code != http.StatusUnauthorized {
		t.Errorf("the cookie after logout: %d, want 401", rec.Code)
	}
	// Over TLS the cookie is Secure.
	r := newRequestAs("", "POST", "/api/v1/login", []byte(`{"username":"ana","password":"`+anaPassword+`"}`))
	r.Header.Set("Content-Type", "application/json")
	r.TLS = &tls.ConnectionState{HandshakeComplete: true}
	if c := sessionOf(t, serve(s, r)); !c.Secure {
		t.Errorf("cookie over TLS %+v: want Secure", c)
	}
	var actions []string
	_ = s.audit.List(context.Background(), audit.Query{}, func(e audit.Entry) error {
		actions = append(actions, e.Action+":"+e.User)
		return nil
	})
	if got := strings.Join(actions, " "); got != "login.failed:ana login:ana logout:ana login:ana" {
		t.Errorf("audit: %s", got)
	}
}

// The 6th attempt within a minute is refused before the password is checked: even
// the right password gets 429. The lock-out is in the audit trail.
func TestLoginLockout(t *testing.T) {
	s := authServer(t)
	withAna(t, s)
	for i := range 5 {
		if rec := login(s, "ana", "guess-number-"+string(rune('a'+i)), "10.0.0.7"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %s", i+1, rec.Code, rec.Body)
		}
	}
	rec := login(s, "ana", anaPassword, "10.0.0.8")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("6th attempt with the right password: %d %s %v, want 429 with Retry-After and no session",
			rec.Code, rec.Body, rec.Header())
	}
	// The address is locked too, for any account.
	if rec := login(s, "guard", "whatever-pass-1", "10.0.0.7"); rec.Code != http.StatusTooManyRequests {
		t.Errorf("another account from the locked address: %d, want 429", rec.Code)
	}
	var failed, lockouts int
	_ = s.audit.List(context.Background(), audit.Query{}, func(e audit.Entry) error {
		switch e.Action {
		case audit.ActionLoginFailed:
			failed++
		case audit.ActionLockout:
			lockouts++
		}
		return nil
	})
	if failed != 5 || lockouts != 1 {
		t.Errorf("audit: %d failed, %d lock-outs; want 5 and 1", failed, lockouts)
	}
}

// Disabling a user or changing the password ends their sessions at once.
func TestDisableEndsSessions(t *testing.T) {
	s := authServer(t)
	withAna(t, s)
	c := sessionOf(t, login(s, "ana", anaPassword, ""))
	if rec := serve(s, withCookie(newRequestAs("", "GET", "/api/v1/cameras", nil), c)); rec.Code != 200 {
		t.Fatalf("before: %d", rec.Code)
	}
	r := newRequestAs("itc", "PATCH", "/api/v1/users/ana", []byte(`{"disabled":true}`))
	r.Header.Set("Content-Type", "application/json")
	if rec := serve(s, r); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"disabled":true`) {
		t.Fatalf("disable: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(s, withCookie(newRequestAs("", "GET", "/api/v1/cameras", nil), c)); rec.Code != http.StatusUnauthorized {
		t.Errorf("the disabled user's cookie: %d, want 401", rec.Code)
	}
	if rec := login(s, "ana", anaPassword, ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("a disabled user signs in: %d", rec.Code)
	}
}

// One user's cookie acts as that user only: the guard cannot end the admin's live
// session, read the audit trail, or see cameras not granted.
func TestCookieActsAsItsUserOnly(t *testing.T) {
	s := authServer(t)
	s.liveOwners.Store("admins-session", "admin")
	for _, m := range []string{"DELETE", "PATCH"} {
		r := newRequestAs("guard", m, sessionPath+"admins-session", nil)
		r.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
		if rec := serve(s, r); rec.Code != http.StatusNotFound {
			t.Errorf("guard %s on the admin's live session: %d, want 404", m, rec.Code)
		}
	}
	me := serve(s, newRequestAs("guard", "GET", "/api/v1/me", nil))
	if !strings.Contains(me.Body.String(), `"username":"guard"`) {
		t.Errorf("/me with guard's cookie: %s", me.Body)
	}
	// A made-up cookie is nobody.
	r := withCookie(newRequestAs("", "GET", "/api/v1/me", nil), &http.Cookie{Name: sessionCookie, Value: testSession("admin") + "x"})
	if rec := serve(s, r); rec.Code != http.StatusUnauthorized {
		t.Errorf("forged cookie: %d, want 401", rec.Code)
	}
}

// Bad input gets 4xx naming the field, and no internal detail.
func TestUsersAPIBadInput(t *testing.T) {
	s := authServer(t)
	post := func(path, ctype, body string) *httptest.ResponseRecorder {
		r := newRequestAs("itc", "POST", path, []byte(body))
		r.Header.Set("Content-Type", ctype)
		return serve(s, r)
	}
	long := strings.Repeat("a", 65)
	for _, c := range []struct {
		name, ctype, body string
		code              int
		field, msg        string
	}{
		{"empty username", "application/json", `{"username":"","role":"guard","password":"Bastion-de-noapte-1"}`, 400, "username", "empty"},
		{"long username", "application/json", `{"username":"` + long + `","role":"guard","password":"Bastion-de-noapte-1"}`, 400, "username", "at most 64"},
		{"short password", "application/json", `{"username":"ion","role":"guard","password":"short1A"}`, 400, "password", "at least 12"},
		{"one-kind password", "application/json", `{"username":"ion","role":"guard","password":"abcdefghijklmnop"}`, 400, "password", "one kind"},
		{"unknown role", "application/json", `{"username":"ion","role":"boss","password":"Bastion-de-noapte-1"}`, 400, "role", "not a role"},
		{"unknown camera", "application/json", `{"username":"ion","role":"guard","password":"Bastion-de-noapte-1","grants":[{"kind":"camera","target":"nope"}]}`, 400, "grants", "not a configured camera"},
		{"bad grant kind", "application/json", `{"username":"ion","role":"guard","password":"Bastion-de-noapte-1","grants":[{"kind":"city","target":"x"}]}`, 400, "grants", "neither site nor camera"},
		{"malformed json", "application/json", `{"username":`, 400, "", "malformed JSON"},
		{"unknown field", "application/json", `{"user":"ion"}`, 400, "", "unknown field"},
		{"wrong type", "application/json", `{"username":7}`, 400, "username", "must be a JSON string"},
		{"not json", "text/plain", `x`, 415, "", "application/json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkError(t, post("/api/v1/users", c.ctype, c.body), c.code, c.field, c.msg)
		})
	}
	if _, err := s.users.Get(context.Background(), "ion"); err == nil {
		t.Error("a refused request added user ion")
	}
	r := newRequestAs("", "POST", "/api/v1/login", []byte(`{"username":"","password":"x"}`))
	r.Header.Set("Content-Type", "application/json")
	checkError(t, serve(s, r), 400, "username", "empty")
	r = newRequestAs("itc", "PATCH", "/api/v1/users/nobody", []byte(`{"disabled":true}`))
	r.Header.Set("Content-Type", "application/json")
	checkError(t, serve(s, r), 404, "", "no user")
}

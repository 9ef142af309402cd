package web

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/auth"
)

// authServer serves two cameras, one per site; guard and admin are granted only
// bastion-gate (by its site), itc nothing.
func authServer(t *testing.T, opts ...func(*Options)) *Server {
	t.Helper()
	cams := fakeCameras{{ID: "bastion-gate", Site: "bastion"}, {ID: "palat-hall", Site: "palat"}}
	o := withTestUsers(t, Options{Cameras: cams, Segments: newCatalog(t), Listen: "127.0.0.1:8080",
		Auditor: newAuditLog(t), MetricsToken: "scrape-token-0123456789"})
	o.Users.Targets = auth.Targets{Sites: []string{"bastion", "palat"}, Cameras: []string{"bastion-gate", "palat-hall"}}
	for _, role := range []string{auth.RoleGuard, auth.RoleAdmin} {
		if err := o.Users.DB.SetGrants(context.Background(), role, []state.Grant{{Kind: "site", Target: "bastion"}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range opts {
		f(&o)
	}
	return New(o, slog.New(slog.DiscardHandler))
}

// concrete fills a route pattern's wildcards.
func concrete(pattern, camera string) string {
	p := strings.NewReplacer("{id}", camera, "{sid}", "no-such-session", "{username}", "guard", "{$}", "").Replace(pattern)
	if p == UIPrefix {
		p += "style.css"
	}
	return p
}

func serve(s *Server, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	return rec
}

// TestRouteAuthorization walks the route table: every route but sign-in, health and
// static assets refuses an anonymous request (401); a role-restricted route refuses
// every other role (403); a camera-scoped route refuses a user without that camera
// (403), and lets through a user with it.
func TestRouteAuthorization(t *testing.T) {
	s := authServer(t)
	denied := func(code int) bool { return code == http.StatusUnauthorized || code == http.StatusForbidden }
	for _, rt := range s.Routes() {
		path := concrete(rt.Pattern, "bastion-gate")
		t.Run(rt.String(), func(t *testing.T) {
			anon := serve(s, newRequestAs("", rt.Method, path, nil))
			switch rt.Permission.kind {
			case permAnonymous:
				if denied(anon.Code) {
					t.Errorf("anonymous %s %s: %d, want it open", rt.Method, path, anon.Code)
				}
				return
			case permMetrics:
				if anon.Code != http.StatusUnauthorized {
					t.Errorf("anonymous scrape: %d, want 401", anon.Code)
				}
				r := newRequestAs("", rt.Method, path, nil)
				r.Header.Set("Authorization", "Bearer scrape-token-0123456789")
				if rec := serve(s, r); rec.Code != http.StatusOK {
					t.Errorf("scrape with the token: %d, want 200", rec.Code)
				}
				for _, role := range auth.Roles {
					if rec := serve(s, newRequestAs(role, rt.Method, path, nil)); !denied(rec.Code) {
						t.Errorf("%s's session on /metrics: %d, want refused (the token only)", role, rec.Code)
					}
				}
				return
			}
			if anon.Code != http.StatusUnauthorized {
				t.Errorf("anonymous %s %s: %d %s, want 401", rt.Method, path, anon.Code, anon.Body)
			}
			for _, role := range auth.Roles {
				rec := serve(s, newRequestAs(role, rt.Method, path, []byte("{}")))
				if rt.Pattern == "/api/v1/logout" {
					restoreSession(t, s, role)
				}
				var want bool // may the role use the route on bastion-gate?
				switch rt.Permission.kind {
				case permUser:
					want = true
				case permRole:
					want = slicesContains(rt.Permission.roles, role)
				case permCamera:
					p := auth.Principal{Roles: []string{role}, Grants: []state.Grant{{Kind: "site", Target: "bastion"}}}
					if role == auth.RoleITC {
						p.Grants = nil
					}
					want = p.May(rt.Permission.right, "bastion-gate", "bastion")
					// The same user on the other site's camera is refused, whatever the role.
					other := concrete(rt.Pattern, "palat-hall")
					if r := serve(s, newRequestAs(role, rt.Method, other, nil)); r.Code != http.StatusForbidden &&
						!(role == auth.RoleITC && rt.Permission.right == auth.RightView) {
						t.Errorf("%s on %s %s (not granted): %d %s, want 403", role, rt.Method, other, r.Code, r.Body)
					}
				case permLiveSession:
					want = false // nobody owns no-such-session: 404 for all
					if rec.Code != http.StatusNotFound {
						t.Errorf("%s on a session not theirs: %d, want 404", role, rec.Code)
					}
					continue
				}
				if got := !denied(rec.Code); got != want {
					t.Errorf("%s %s %s: %d %s; allowed=%v, want %v", role, rt.Method, path, rec.Code,
						strings.TrimSpace(rec.Body.String()), got, want)
				}
				if !want && rec.Code != http.StatusForbidden {
					t.Errorf("%s refused with %d, want 403", role, rec.Code)
				}
			}
		})
	}
}

// restoreSession gives role its test session back after a logout.
func restoreSession(t *testing.T, s *Server, role string) {
	t.Helper()
	u, err := s.users.Get(context.Background(), role)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte(testSession(role)))
	if err := s.sessions.DB.AddSession(context.Background(), h[:], u.ID, "127.0.0.1", time.Now()); err != nil {
		t.Fatal(err)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// A guard granted one site sees only that site's cameras, and only them in /me.
func TestCameraListFilteredPerUser(t *testing.T) {
	s := authServer(t)
	for role, want := range map[string]string{"guard": "bastion-gate", "admin": "bastion-gate", "itc": "bastion-gate,palat-hall"} {
		rec := serve(s, newRequestAs(role, "GET", "/api/v1/cameras", nil))
		var cams []CameraInfo
		if err := json.Unmarshal(rec.Body.Bytes(), &cams); err != nil || rec.Code != 200 {
			t.Fatalf("%s: %d %s", role, rec.Code, rec.Body)
		}
		var ids []string
		for _, c := range cams {
			ids = append(ids, c.ID)
		}
		if got := strings.Join(ids, ","); got != want {
			t.Errorf("%s sees %q, want %q", role, got, want)
		}
	}
	rec := serve(s, newRequestAs("guard", "GET", "/api/v1/me", nil))
	var me meJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &me); err != nil {
		t.Fatal(err)
	}
	if me.Username != "guard" || me.Role != "guard" || strings.Join(me.Roles, ",") != "guard" || strings.Join(me.Cameras, ",") != "bastion-gate" ||
		me.Lookback != auth.DefaultLookback.Seconds() {
		t.Errorf("/me of guard = %+v", me)
	}
}

// Every response carries the security headers, errors and static files alike.
func TestSecurityHeaders(t *testing.T) {
	s := authServer(t)
	for _, path := range []string{"/", "/ui/style.css", "/api/v1/cameras", "/healthz", "/nope"} {
		rec := serve(s, newRequestAs("", "GET", path, nil))
		h := rec.Header()
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
			!strings.Contains(csp, "frame-ancestors 'none'") || h.Get("X-Frame-Options") != "DENY" ||
			h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", path, h)
		}
	}
}

// A browser page on another site cannot make a signed-in user's browser change
// anything: CrossOriginProtection refuses the request before any handler.
func TestCrossOriginRefused(t *testing.T) {
	s := authServer(t)
	for name, set := range map[string]func(r *http.Request){
		"sec-fetch-site": func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") },
		"origin":         func(r *http.Request) { r.Header.Set("Origin", "http://evil.example") },
	} {
		r := newRequestAs("itc", "POST", "/api/v1/users", []byte(`{"username":"mallory","role":"itc","password":"Xy-long-enough-1"}`))
		r.Header.Set("Content-Type", "application/json")
		set(r)
		rec := serve(s, r)
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "cross-origin") {
			t.Errorf("%s: %d %s, want 403 cross-origin", name, rec.Code, rec.Body)
		}
	}
	if _, err := s.users.Get(context.Background(), "mallory"); err == nil {
		t.Error("the cross-origin request added a user")
	}
	// The same request from the page itself goes through.
	r := newRequestAs("itc", "POST", "/api/v1/users", []byte(`{"username":"ana","role":"guard","password":"Bastion-de-noapte-1"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if rec := serve(s, r); rec.Code != http.StatusCreated {
		t.Errorf("same-origin add: %d %s", rec.Code, rec.Body)
	}
}

// cookieValue finds the session cookie as r.Cookie does, whatever else is sent.
func TestCookieValueAsRequestCookie(t *testing.T) {
	for _, header := range []string{
		"",
		"straja_session=abcDEF012-_",
		"theme=dark; straja_session=abc",
		"theme=dark;straja_session=abc;lang=ro",
		"straja_session=",
		`straja_session="quoted"`,
		"straja_session=bad value; straja_session=good",
		"straja_session=a;b; straja_session=second",
		"straja_session=x=y",
		"other_session=abc",
		"  straja_session=spaced  ",
		"straja_session=%41",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if header != "" {
			r.Header.Set("Cookie", header)
		}
		want, werr := r.Cookie(sessionCookie)
		got, ok := cookieValue(r, sessionCookie)
		if ok != (werr == nil) || ok && got != want.Value {
			t.Errorf("Cookie: %s: got %q %v, want %v %v", header, got, ok, want, werr)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Add("Cookie", "theme=dark")
	r.Header.Add("Cookie", "straja_session=second-line")
	if got, ok := cookieValue(r, sessionCookie); !ok || got != "second-line" {
		t.Errorf("two Cookie lines: got %q %v", got, ok)
	}
}

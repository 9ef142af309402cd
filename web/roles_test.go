package web

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/audit"
	"github.com/straja-nvr/straja/web/auth"
)

// addRolesUser adds a user holding roles with grants, and the session
// testSession(name), so newRequestAs(name, ...) acts as them.
func addRolesUser(t *testing.T, s *Server, name string, roles []string, grants ...state.Grant) {
	t.Helper()
	ctx := context.Background()
	db := s.users.DB
	if err := db.AddUserRoles(ctx, name, roles, "$argon2id$not-a-password"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetGrants(ctx, name, grants); err != nil {
		t.Fatal(err)
	}
	u, err := db.User(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte(testSession(name)))
	if err := db.AddSession(ctx, h[:], u.ID, "127.0.0.1", time.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestSeveralRoles: an itc who also guards watches the granted cameras live and
// manages cameras and users; an itc granted a site but holding no video role gets
// 403 on its video.
func TestSeveralRoles(t *testing.T) {
	s := authServer(t)
	bastion := state.Grant{Kind: "site", Target: "bastion"}
	addRolesUser(t, s, "it.guard", []string{auth.RoleGuard, auth.RoleITC}, bastion)
	addRolesUser(t, s, "it.only", []string{auth.RoleITC}, bastion)
	denied := func(code int) bool { return code == http.StatusUnauthorized || code == http.StatusForbidden }
	for _, tc := range []struct {
		user, method, path string
		allowed            bool
	}{
		{"it.guard", "POST", "/api/v1/cameras/bastion-gate/whep", true},
		{"it.guard", "POST", "/api/v1/cameras/palat-hall/whep", false}, // not granted
		{"it.guard", "GET", "/api/v1/cameras/bastion-gate/video.mp4", true},
		{"it.guard", "GET", "/api/v1/cameras/palat-hall/settings", true}, // itc: every camera's settings
		{"it.guard", "PUT", "/api/v1/cameras/bastion-gate", true},        // the cameras page's changes
		{"it.guard", "GET", "/api/v1/users", true},
		{"it.guard", "GET", "/api/v1/audit", false}, // admin only
		{"it.only", "POST", "/api/v1/cameras/bastion-gate/whep", false},
		{"it.only", "GET", "/api/v1/cameras/bastion-gate/video.mp4", false},
		{"it.only", "GET", "/api/v1/cameras/bastion-gate/segments", false},
		{"it.only", "GET", "/api/v1/cameras/bastion-gate/settings", true},
	} {
		rec := serve(s, jsonRequest(tc.user, tc.method, tc.path, "{}"))
		if got := !denied(rec.Code); got != tc.allowed {
			t.Errorf("%s %s %s: %d %s; allowed=%v, want %v", tc.user, tc.method, tc.path, rec.Code,
				strings.TrimSpace(rec.Body.String()), got, tc.allowed)
		}
	}
	rec := serve(s, newRequestAs("it.only", "POST", "/api/v1/cameras/bastion-gate/whep", nil))
	if !strings.Contains(rec.Body.String(), "may not watch live") {
		t.Errorf("itc-only on WHEP: %d %s", rec.Code, rec.Body)
	}

	var cams []struct{ ID string }
	if err := json.Unmarshal(serve(s, newRequestAs("it.guard", "GET", "/api/v1/cameras", nil)).Body.Bytes(), &cams); err != nil {
		t.Fatal(err)
	}
	if len(cams) != 2 {
		t.Errorf("itc+guard sees %v in /api/v1/cameras, want both cameras (itc manages every one)", cams)
	}
	var me meJSON
	if err := json.Unmarshal(serve(s, newRequestAs("it.guard", "GET", "/api/v1/me", nil)).Body.Bytes(), &me); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(me.Roles, []string{"guard", "itc"}) || me.Role != "guard" ||
		!slices.Equal(me.Cameras, []string{"bastion-gate"}) || me.Lookback != auth.DefaultLookback.Seconds() {
		t.Errorf("/me of itc+guard = %+v; want roles guard,itc, camera bastion-gate and the guard look-back", me)
	}
}

// TestLookbackOnlyForGuardAlone: an administrator who also guards plays footage
// older than the guard look-back; a guard alone, or with itc, does not.
func TestLookbackOnlyForGuardAlone(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	old := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	playbacktest.Record(t, st, cat, "bastion-gate", old, 1, 6*time.Second)
	s := newTestServer(t, cat, func(o *Options) { o.Player = playback.New(cat, st, nil) })
	s.sessions.Lookback = time.Hour
	gate := state.Grant{Kind: "camera", Target: "bastion-gate"}
	addRolesUser(t, s, "admin.guard", []string{auth.RoleGuard, auth.RoleAdmin}, gate)
	addRolesUser(t, s, "it.guard", []string{auth.RoleGuard, auth.RoleITC}, gate)
	url := videoURL(old, old.Add(6*time.Second))
	if rec := serve(s, newRequestAs("admin.guard", "GET", url, nil)); rec.Code != http.StatusOK {
		t.Errorf("admin+guard, 3 h back with a 1 h look-back: %d %s, want 200", rec.Code, rec.Body)
	}
	checkError(t, serve(s, newRequestAs("guard", "GET", url, nil)), 400, "from", "last 1h0m0s")
	checkError(t, serve(s, newRequestAs("it.guard", "GET", url, nil)), 400, "from", "last 1h0m0s")
}

// TestUserRolesAPI: an itc adds a user with several roles and changes them; bad sets
// are refused naming roles; the last enabled itc keeps itc; changes are audited.
func TestUserRolesAPI(t *testing.T) {
	s := authServer(t)
	do := func(method, path, body string) *http.Response {
		r := serve(s, jsonRequest("itc", method, path, body))
		if r.Code >= 300 {
			t.Logf("%s %s: %d %s", method, path, r.Code, r.Body)
		}
		return r.Result()
	}
	rec := serve(s, jsonRequest("itc", "POST", "/api/v1/users",
		`{"username":"it.mihai","roles":["itc","guard"],"password":"Bastion-de-noapte-1","grants":[{"kind":"site","target":"bastion"}]}`))
	var u userJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &u); err != nil || rec.Code != http.StatusCreated {
		t.Fatalf("add with roles: %d %s", rec.Code, rec.Body)
	}
	if !slices.Equal(u.Roles, []string{"guard", "itc"}) || u.Role != "guard" {
		t.Errorf("added user %+v; want roles guard,itc (documented order), role guard", u)
	}
	// The single role of older clients still works.
	if r := do("POST", "/api/v1/users", `{"username":"paznic","role":"guard","password":"Bastion-de-noapte-1"}`); r.StatusCode != 201 {
		t.Errorf("add with role: %d", r.StatusCode)
	}
	rec = serve(s, jsonRequest("itc", "PATCH", "/api/v1/users/it.mihai", `{"roles":["admin","guard"]}`))
	if err := json.Unmarshal(rec.Body.Bytes(), &u); err != nil || rec.Code != 200 || !slices.Equal(u.Roles, []string{"guard", "admin"}) {
		t.Errorf("patch roles: %d %s; want guard,admin", rec.Code, rec.Body)
	}
	for _, tc := range []struct{ name, method, path, body, msg string }{
		{"empty roles", "PATCH", "/api/v1/users/it.mihai", `{"roles":[]}`, "at least one role"},
		{"unknown role", "PATCH", "/api/v1/users/it.mihai", `{"roles":["guard","boss"]}`, `"boss" is not a role`},
		{"add empty roles", "POST", "/api/v1/users", `{"username":"ion","roles":[],"password":"Bastion-de-noapte-1"}`, "at least one role"},
		{"add unknown role", "POST", "/api/v1/users", `{"username":"ion","roles":["root"],"password":"Bastion-de-noapte-1"}`, "not a role"},
		{"role and roles", "POST", "/api/v1/users", `{"username":"ion","role":"guard","roles":["itc"],"password":"Bastion-de-noapte-1"}`, "not both"},
		{"last itc", "PATCH", "/api/v1/users/itc", `{"roles":["guard"]}`, "last enabled itc"},
		{"wrong type", "PATCH", "/api/v1/users/itc", `{"roles":"guard"}`, "must be a JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkError(t, serve(s, jsonRequest("itc", tc.method, tc.path, tc.body)), 400, "roles", tc.msg)
		})
	}
	if _, err := s.users.Get(context.Background(), "ion"); err == nil {
		t.Error("a refused request added user ion")
	}
	if got, _ := s.users.Get(context.Background(), "it.mihai"); !slices.Equal(got.Roles, []string{"guard", "admin"}) {
		t.Errorf("refused changes changed the roles to %v", got.Roles)
	}
	// With a second enabled itc the first may hand itc over.
	if r := do("PATCH", "/api/v1/users/it.mihai", `{"roles":["itc"]}`); r.StatusCode != 200 {
		t.Fatalf("give it.mihai itc: %d", r.StatusCode)
	}
	if r := do("PATCH", "/api/v1/users/itc", `{"roles":["guard","admin"]}`); r.StatusCode != 200 {
		t.Errorf("take itc from itc with another itc enabled: %d", r.StatusCode)
	}
	// The change counts at once: itc is now refused the users list.
	if rec := serve(s, newRequestAs("itc", "GET", "/api/v1/users", nil)); rec.Code != http.StatusForbidden {
		t.Errorf("users list after losing itc: %d, want 403", rec.Code)
	}
	var changes []string
	_ = s.audit.List(context.Background(), audit.Query{Action: audit.ActionUserRoles}, func(e audit.Entry) error {
		var d struct {
			Username string
			Roles    []string
		}
		if err := json.Unmarshal([]byte(e.Detail), &d); err != nil {
			t.Error(err)
		}
		changes = append(changes, d.Username+":"+strings.Join(d.Roles, ","))
		return nil
	})
	if want := []string{"it.mihai:guard,admin", "it.mihai:itc", "itc:guard,admin"}; !slices.Equal(changes, want) {
		t.Errorf("audited role changes %q, want %q", changes, want)
	}
}

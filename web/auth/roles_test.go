package auth

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage/state"
)

// TestSeveralRoles: rights are the union of the roles' rights; itc sees every
// camera's settings but video only through a video role and its grants.
func TestSeveralRoles(t *testing.T) {
	grants := []state.Grant{{Kind: "site", Target: "bastion"}}
	itcGuard := principal(state.User{Username: "it.mihai", Roles: []string{RoleGuard, RoleITC}, Grants: grants}, DefaultLookback)
	itc := principal(state.User{Username: "it.ana", Roles: []string{RoleITC}, Grants: grants}, DefaultLookback)
	for _, tc := range []struct {
		p            Principal
		right        Right
		camera, site string
		want         bool
	}{
		{itcGuard, RightLive, "bastion-gate", "bastion", true},
		{itcGuard, RightLive, "palat-hall", "palat", false}, // not granted
		{itcGuard, RightView, "palat-hall", "palat", true},  // itc sees every camera's settings
		{itcGuard, RightPlayback, "bastion-gate", "bastion", true},
		{itcGuard, RightExport, "bastion-gate", "bastion", false},
		{itc, RightLive, "bastion-gate", "bastion", false}, // granted, but no video role
		{itc, RightPlayback, "bastion-gate", "bastion", false},
		{itc, RightView, "palat-hall", "palat", true},
	} {
		if got := tc.p.May(tc.right, tc.camera, tc.site); got != tc.want {
			t.Errorf("%s (%v) may %s %s = %v, want %v", tc.p.Username, tc.p.Roles, tc.right, tc.camera, got, tc.want)
		}
	}
	if !itcGuard.HasRole(RoleAdmin, RoleITC) || itcGuard.HasRole(RoleAdmin) || itc.HasRole(RoleGuard) {
		t.Error("HasRole is not 'any of'")
	}
}

// TestLookbackBoundsGuardAlone: the look-back bounds playback only when it comes from
// guard alone; an administrator who also guards is not bounded.
func TestLookbackBoundsGuardAlone(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		roles []string
		want  time.Time
	}{
		{[]string{RoleGuard}, now.Add(-DefaultLookback)},
		{[]string{RoleGuard, RoleITC}, now.Add(-DefaultLookback)},
		{[]string{RoleGuard, RoleAdmin}, time.Time{}},
		{[]string{RoleAdmin}, time.Time{}},
	} {
		p := principal(state.User{Username: "u", Roles: tc.roles}, DefaultLookback)
		if got := p.EarliestPlayback(now); !got.Equal(tc.want) {
			t.Errorf("%v: earliest playback %v, want %v", tc.roles, got, tc.want)
		}
	}
	// A principal made by hand with a look-back is still not bounded when admin.
	p := Principal{Roles: []string{RoleAdmin, RoleGuard}, Lookback: time.Hour}
	if got := p.EarliestPlayback(now); !got.IsZero() {
		t.Errorf("admin+guard with a look-back: earliest %v, want no bound", got)
	}
}

func TestSetRoles(t *testing.T) {
	ctx := t.Context()
	u := newUsers(t)
	if err := u.AddRoles(ctx, "it.ana", []string{RoleITC, RoleGuard, RoleITC}, "Bastion-de-noapte"); err != nil {
		t.Fatal(err)
	}
	if got, err := u.Get(ctx, "it.ana"); err != nil || !slices.Equal(got.Roles, []string{RoleGuard, RoleITC}) {
		t.Fatalf("roles = %v, %v; want guard,itc (documented order, no repeats)", got.Roles, err)
	}
	for _, tc := range []struct {
		roles []string
		want  string
	}{
		{nil, "roles: at least one role"},
		{[]string{}, "roles: at least one role"},
		{[]string{RoleGuard, "root"}, `roles: "root" is not a role`},
		{[]string{""}, `roles: "" is not a role`},
	} {
		if _, err := u.SetRoles(ctx, "it.ana", tc.roles); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("set roles %q: %v, want %q", tc.roles, err, tc.want)
		}
		if err := u.AddRoles(ctx, "bob", tc.roles, "Bastion-de-noapte"); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("add with roles %q: %v, want %q", tc.roles, err, tc.want)
		}
	}
	if _, err := u.SetRoles(ctx, "nimeni", []string{RoleGuard}); !errors.Is(err, ErrNoUser) {
		t.Errorf("set roles of a missing user: %v", err)
	}
	// The only enabled itc keeps itc.
	if _, err := u.SetRoles(ctx, "it.ana", []string{RoleGuard}); !errors.Is(err, ErrLastITC) ||
		!strings.HasPrefix(err.Error(), "roles: it.ana is the last enabled itc user") {
		t.Errorf("take itc from the last itc: %v, want ErrLastITC naming roles", err)
	}
	// A disabled itc does not count; an enabled one does.
	if err := u.Add(ctx, "it.dan", RoleITC, "Bastion-de-noapte"); err != nil {
		t.Fatal(err)
	}
	if err := u.SetDisabled(ctx, "it.dan", true); err != nil {
		t.Fatal(err)
	}
	if _, err := u.SetRoles(ctx, "it.ana", []string{RoleGuard}); !errors.Is(err, ErrLastITC) {
		t.Errorf("take itc while the other itc is disabled: %v, want ErrLastITC", err)
	}
	if err := u.SetDisabled(ctx, "it.dan", false); err != nil {
		t.Fatal(err)
	}
	if got, err := u.SetRoles(ctx, "it.ana", []string{RoleAdmin, RoleGuard}); err != nil || !slices.Equal(got, []string{RoleGuard, RoleAdmin}) {
		t.Fatalf("set roles = %v, %v", got, err)
	}
	if got, err := u.Get(ctx, "it.ana"); err != nil || !slices.Equal(got.Roles, []string{RoleGuard, RoleAdmin}) {
		t.Errorf("stored roles = %v, %v; want guard,admin", got.Roles, err)
	}
}

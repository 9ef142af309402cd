package auth

import (
	"slices"
	"time"

	"github.com/straja-nvr/straja/storage/state"
)

// Right is something a user may do with one camera's video or settings.
type Right string

// Rights, and which role holds which (roleRights). A user holding several roles has
// the union of their rights. A role's rights reach only the cameras granted to the
// user (by camera or by site), except RightView for itc, who manage every camera but
// see no video unless they also hold a video role.
const (
	RightView     Right = "view"     // the camera's settings and status
	RightLive     Right = "live"     // live view
	RightPlayback Right = "playback" // recorded footage (segments, playback)
	RightExport   Right = "export"   // clip export
	RightHold     Right = "hold"     // evidence holds on its footage
)

var roleRights = map[string][]Right{
	RoleGuard: {RightView, RightLive, RightPlayback},
	RoleAdmin: {RightView, RightPlayback, RightExport, RightHold},
	RoleITC:   {RightView},
}

// DefaultLookback is how far back a guard may play footage when not configured.
// It bounds only a user whose playback right comes from guard alone: an administrator
// who also guards reviews recordings as an administrator.
const DefaultLookback = 7 * 24 * time.Hour

// Principal is the signed-in caller of a request.
type Principal struct {
	UserID   int64
	Username string
	Roles    []string // one or more
	Grants   []state.Grant
	// Lookback bounds how far back a guard may play footage (0: no bound); it counts
	// only when the playback right comes from guard alone (GuardBound).
	Lookback time.Duration
	// Via is "session" or "token"; TokenName names the token.
	Via       string
	TokenName string
}

// HasRole reports whether p holds any of roles.
func (p *Principal) HasRole(roles ...string) bool {
	if p == nil {
		return false
	}
	for _, r := range p.Roles {
		if slices.Contains(roles, r) {
			return true
		}
	}
	return false
}

// Holds reports whether one of p's roles carries right r (on granted cameras).
func (p *Principal) Holds(r Right) bool {
	if p == nil {
		return false
	}
	for _, role := range p.Roles {
		if slices.Contains(roleRights[role], r) {
			return true
		}
	}
	return false
}

// GuardBound reports whether p's playback right comes from guard alone, which the
// look-back bounds.
func (p *Principal) GuardBound() bool {
	if !p.HasRole(RoleGuard) {
		return false
	}
	for _, role := range p.Roles {
		if role != RoleGuard && slices.Contains(roleRights[role], RightPlayback) {
			return false
		}
	}
	return true
}

// Granted reports whether a grant covers the camera (directly or by its site).
func (p *Principal) Granted(camera, site string) bool {
	for _, g := range p.Grants {
		if g.Kind == "camera" && g.Target == camera || g.Kind == "site" && site != "" && g.Target == site {
			return true
		}
	}
	return false
}

// May reports whether p holds right r on the camera of that site.
func (p *Principal) May(r Right, camera, site string) bool {
	if !p.Holds(r) {
		return false
	}
	if r == RightView && p.HasRole(RoleITC) {
		return true
	}
	return p.Granted(camera, site)
}

// EarliestPlayback is the oldest time p may play footage from at now (zero: any).
func (p *Principal) EarliestPlayback(now time.Time) time.Time {
	if p == nil || p.Lookback <= 0 || !p.GuardBound() {
		return time.Time{}
	}
	return now.Add(-p.Lookback)
}

func principal(u state.User, lookback time.Duration) Principal {
	p := Principal{UserID: u.ID, Username: u.Username, Roles: u.Roles, Grants: u.Grants}
	if p.GuardBound() {
		p.Lookback = lookback
	}
	return p
}

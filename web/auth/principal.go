package auth

import (
	"slices"
	"time"

	"github.com/straja-nvr/straja/storage/state"
)

// Right is something a user may do with one camera's video or settings.
type Right string

// Rights, and which role holds which (roleRights). A role's rights reach only the
// cameras granted to the user (by camera or by site), except RightView for itc, who
// manage every camera but see no video.
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
const DefaultLookback = 7 * 24 * time.Hour

// Principal is the signed-in caller of a request.
type Principal struct {
	UserID   int64
	Username string
	Role     string
	Grants   []state.Grant
	// Lookback bounds how far back a guard may play footage (0: no bound).
	Lookback time.Duration
	// Via is "session" or "token"; TokenName names the token.
	Via       string
	TokenName string
}

// HasRole reports whether p holds one of roles.
func (p *Principal) HasRole(roles ...string) bool { return p != nil && slices.Contains(roles, p.Role) }

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
	if p == nil || !slices.Contains(roleRights[p.Role], r) {
		return false
	}
	if p.Role == RoleITC && r == RightView {
		return true
	}
	return p.Granted(camera, site)
}

// EarliestPlayback is the oldest time p may play footage from at now (zero: any).
func (p *Principal) EarliestPlayback(now time.Time) time.Time {
	if p == nil || p.Role != RoleGuard || p.Lookback <= 0 {
		return time.Time{}
	}
	return now.Add(-p.Lookback)
}

func principal(u state.User, lookback time.Duration) Principal {
	p := Principal{UserID: u.ID, Username: u.Username, Role: u.Role, Grants: u.Grants}
	if u.Role == RoleGuard {
		p.Lookback = lookback
	}
	return p
}

// Package retention decides and carries out which footage is deleted: policies (how
// long each camera's footage is kept), evidence holds (footage never deleted while
// held), the planner (a pure function from segments, holds, policies and now to what
// goes) and the runner that deletes on a schedule.
package retention

import (
	"slices"
	"time"
)

// Hold is an evidence hold: footage of its cameras (or of every camera of its site)
// overlapping [From, To) is never deleted while the hold is in force.
type Hold struct {
	ID      string
	Cameras []string // camera IDs; empty with Site set: every camera of Site
	Site    string
	From    time.Time
	To      time.Time
	Reason  string
	Expires time.Time // zero: until released
	Created time.Time
	By      string // the user who set it
}

// Active reports whether h is in force at now.
func (h Hold) Active(now time.Time) bool { return h.Expires.IsZero() || now.Before(h.Expires) }

// Covers reports whether h, in force at now, protects a segment of camera (of site)
// spanning [start, end).
func (h Hold) Covers(camera, site string, start, end, now time.Time) bool {
	if !h.Active(now) || !start.Before(h.To) || !end.After(h.From) {
		return false
	}
	return slices.Contains(h.Cameras, camera) || h.Site != "" && h.Site == site
}

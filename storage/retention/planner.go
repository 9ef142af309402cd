package retention

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/straja-nvr/straja/internal/days"
	"github.com/straja-nvr/straja/storage"
)

// DefaultSafetyShare is the share of a camera's footage a run may delete beyond what
// its policy's age implies before the safety stop holds it back.
const DefaultSafetyShare = 0.5

// Stats sums up one camera's footage.
type Stats struct {
	Segments int
	Bytes    int64
	Latest   time.Time // end of the newest segment
}

// Source is the footage the planner reads: one camera at a time, in (start, key)
// order, handed over as read so that memory does not grow with the catalog.
type Source interface {
	// Cameras lists the cameras that have footage.
	Cameras(ctx context.Context) ([]string, error)
	// Stats sums up camera's footage.
	Stats(ctx context.Context, camera string) (Stats, error)
	// Each calls fn with each of camera's segments in (start, key) order and stops at
	// fn's first error.
	Each(ctx context.Context, camera string, fn func(storage.Segment) error) error
}

// Camera is a camera the planner considers, with its site for site policies and holds.
type Camera struct {
	ID   string
	Site string
}

// Options change what a plan decides.
type Options struct {
	// SafetyShare is the share (0..1] of a camera's footage that may go beyond what
	// its policy's age implies; 0 means DefaultSafetyShare.
	SafetyShare float64
	// Force ignores the safety stop.
	Force bool
	// Policy, when set, plans only the cameras whose effective policy it is.
	Policy string
}

// CameraPlan is what a run does to one camera's footage, and why.
type CameraPlan struct {
	Camera   string        `json:"camera"`
	Site     string        `json:"site,omitempty"`
	Policy   string        `json:"policy"`
	MaxAge   time.Duration `json:"-"`
	MaxBytes int64         `json:"max_bytes,omitempty"`
	// Footage before the run.
	Segments int   `json:"segments"`
	Bytes    int64 `json:"bytes"`
	// What goes: count, bytes, and the time range from the first start to the last end.
	Delete      int       `json:"delete"`
	DeleteBytes int64     `json:"delete_bytes"`
	From        time.Time `json:"from,omitzero"`
	To          time.Time `json:"to,omitzero"`
	// OldestKept is the start of the oldest segment that stays (zero: none stays).
	OldestKept time.Time `json:"oldest_kept,omitzero"`
	// Held counts segments the policy would delete that a hold keeps.
	Held      int   `json:"held"`
	HeldBytes int64 `json:"held_bytes"`
	// UnexpectedBytes is what the deletions take beyond the policy's age measured
	// from the newest footage of any camera: after a clock jump, most of it.
	UnexpectedBytes int64 `json:"unexpected_bytes"`
	// SafetyStop, when set, says why nothing is deleted for this camera.
	SafetyStop string `json:"safety_stop,omitempty"`

	// The decision, replayed by Deletes.
	ageCut            time.Time // segments ending at or before it are expired
	sizeCutMS         int64     // unheld segments up to (sizeCutMS, sizeCutKey) go for size
	sizeCutKey        string
	holds             []Hold
	now               time.Time
	unexpectedCutTime time.Time // what ends after it goes only if the clock jumped
}

// MaxAgeText is MaxAge for people and JSON ("30d", "90s").
func (cp CameraPlan) MaxAgeText() string { return FormatAge(cp.MaxAge) }

// Plan is what a run would delete, per camera, at Now.
type Plan struct {
	Now     time.Time    `json:"now"`
	Cameras []CameraPlan `json:"cameras"`
}

// Totals sums the plan over cameras.
func (p *Plan) Totals() (count int, bytes int64, stops int) {
	for _, c := range p.Cameras {
		if c.SafetyStop == "" {
			count += c.Delete
			bytes += c.DeleteBytes
		} else {
			stops++
		}
	}
	return count, bytes, stops
}

// Deletes reports whether seg, a segment of cp's camera, goes in this plan. It
// replays the decision made when planning, so a run can stream the deletions in a
// second pass instead of keeping them.
func (cp *CameraPlan) Deletes(seg storage.Segment) bool {
	if cp.SafetyStop != "" || cp.held(seg) {
		return false
	}
	if !seg.End().After(cp.ageCut) {
		return true
	}
	ms := seg.Start.UnixMilli()
	return ms < cp.sizeCutMS || ms == cp.sizeCutMS && seg.Key <= cp.sizeCutKey
}

// Past reports whether seg, and every segment after it in (start, key) order, stays:
// a run's deletion pass stops there.
func (cp *CameraPlan) Past(seg storage.Segment) bool {
	if !seg.Start.After(cp.ageCut) {
		return false
	}
	ms := seg.Start.UnixMilli()
	return ms > cp.sizeCutMS || ms == cp.sizeCutMS && seg.Key > cp.sizeCutKey
}

func (cp *CameraPlan) held(seg storage.Segment) bool {
	for _, h := range cp.holds {
		if h.Covers(cp.Camera, cp.Site, seg.Start, seg.End(), cp.now) {
			return true
		}
	}
	return false
}

// Make plans a run at now: for each camera (those given and those with footage), the
// policy it resolves to, what that policy deletes (older than max_age, then the
// oldest beyond max_bytes), minus what holds keep, and whether the safety stop holds
// the camera back. It reads each camera's footage twice (stats, then segments) and
// keeps only per-camera sums, so memory does not depend on the catalog's size.
func Make(ctx context.Context, src Source, cams []Camera, pols *Policies, holds []Hold, now time.Time, opts Options) (*Plan, error) {
	share := opts.SafetyShare
	if share <= 0 || share > 1 {
		share = DefaultSafetyShare
	}
	with, err := src.Cameras(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	sites := make(map[string]string, len(cams))
	var all []Camera
	for _, c := range cams {
		if _, dup := sites[c.ID]; !dup {
			all = append(all, c)
		}
		sites[c.ID] = c.Site
	}
	for _, id := range with {
		if _, ok := sites[id]; !ok {
			all = append(all, Camera{ID: id}) // footage of a camera no longer configured
			sites[id] = ""
		}
	}
	// The newest footage of any camera is the time the recordings vouch for: a clock
	// jumped forward leaves it far behind now.
	stats := make([]Stats, len(all))
	var ref time.Time
	for i, c := range all {
		if stats[i], err = src.Stats(ctx, c.ID); err != nil {
			return nil, fmt.Errorf("plan %s: %w", c.ID, err)
		}
		if stats[i].Latest.After(ref) {
			ref = stats[i].Latest
		}
	}
	if ref.After(now) {
		ref = now
	}
	plan := &Plan{Now: now}
	for i, c := range all {
		pol := pols.Resolve(c.ID, c.Site)
		if opts.Policy != "" && pol.Name != opts.Policy {
			continue
		}
		cp, err := planCamera(ctx, src, c, stats[i], pol, holds, now, ref, share, opts.Force)
		if err != nil {
			return nil, err
		}
		plan.Cameras = append(plan.Cameras, cp)
	}
	return plan, nil
}

func planCamera(ctx context.Context, src Source, c Camera, st Stats, pol Policy, holds []Hold, now, ref time.Time,
	share float64, force bool) (CameraPlan, error) {
	cp := CameraPlan{Camera: c.ID, Site: c.Site, Policy: pol.Name, MaxAge: pol.MaxAge, MaxBytes: pol.MaxBytes,
		ageCut: now.Add(-pol.MaxAge), sizeCutMS: math.MinInt64, now: now}
	for _, h := range holds {
		if h.Active(now) && (containsString(h.Cameras, c.ID) || h.Site != "" && h.Site == c.Site) {
			cp.holds = append(cp.holds, h)
		}
	}
	cp.Segments, cp.Bytes = st.Segments, st.Bytes
	if st.Segments == 0 {
		return cp, nil
	}
	// Measured from the newest footage rather than the clock, the policy's age says
	// what a run should take; a clock jumped forward takes far more.
	cp.unexpectedCutTime = ref.Add(-pol.MaxAge)
	remaining := st.Bytes
	err := src.Each(ctx, c.ID, func(seg storage.Segment) error {
		expired := !seg.End().After(cp.ageCut)
		over := pol.MaxBytes > 0 && remaining > pol.MaxBytes
		switch {
		case !expired && !over:
			if cp.OldestKept.IsZero() {
				cp.OldestKept = seg.Start
			}
			if seg.Start.After(cp.ageCut) {
				// Every later segment starts, so ends, after the cut, and the size is
				// within bounds: nothing more goes. The plan costs what it deletes.
				return errStop
			}
			return nil
		case cp.held(seg):
			cp.Held++
			cp.HeldBytes += seg.Size
			if cp.OldestKept.IsZero() {
				cp.OldestKept = seg.Start
			}
			return nil
		}
		if !expired {
			cp.sizeCutMS, cp.sizeCutKey = seg.Start.UnixMilli(), seg.Key
		} else if seg.End().After(cp.unexpectedCutTime) {
			cp.UnexpectedBytes += seg.Size
		}
		remaining -= seg.Size
		cp.Delete++
		cp.DeleteBytes += seg.Size
		if cp.From.IsZero() {
			cp.From = seg.Start
		}
		if seg.End().After(cp.To) {
			cp.To = seg.End()
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return cp, fmt.Errorf("plan %s: %w", c.ID, err)
	}
	if !force && float64(cp.UnexpectedBytes) > share*float64(st.Bytes) {
		cp.SafetyStop = fmt.Sprintf("would delete %d of %d bytes (%.0f %%) beyond what max_age %s implies "+
			"from the newest footage of any camera (%s): is the clock right? nothing deleted; a forced run overrides",
			cp.UnexpectedBytes, st.Bytes, 100*float64(cp.UnexpectedBytes)/float64(st.Bytes), FormatAge(pol.MaxAge),
			ref.UTC().Format(time.RFC3339))
	}
	return cp, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// FormatAge writes d with a day unit for whole days ("30d", "1d12h", "90s").
func FormatAge(d time.Duration) string {
	if d < 0 {
		return "-" + days.Format(-d)
	}
	return days.Format(d)
}

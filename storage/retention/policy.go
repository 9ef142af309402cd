package retention

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/straja-nvr/straja/storage"
)

// Defaults of a policy and of the policy every camera falls back to.
const (
	// DefaultName is the policy that covers cameras no other policy names.
	DefaultName = "default"
	// DefaultMaxAge is how long footage is kept without a justification: Romanian
	// data-protection practice caps video-surveillance footage at 30 days (Legea
	// 190/2018 art. 5 for workplaces).
	DefaultMaxAge = 30 * 24 * time.Hour
	// DefaultSchedule is when a policy runs unless it says otherwise.
	DefaultSchedule = "@hourly"
)

// Sources of a policy.
const (
	SourceFile    = "file"    // the configuration file: read-only through the API
	SourceAPI     = "api"     // set through the API, kept in the state database
	SourceBuiltin = "builtin" // the default policy nobody configured
)

// Policy says how long the footage of some cameras is kept and when that is enforced.
type Policy struct {
	Name string
	// Sites and Cameras select the cameras the policy covers; the default policy
	// names none.
	Sites   []string
	Cameras []string
	// MaxAge is how long footage is kept after it was recorded (positive). In JSON
	// it is text such as "30d" or "90s".
	MaxAge time.Duration
	// MaxBytes, when positive, bounds each covered camera's footage: the oldest goes
	// first.
	MaxBytes int64
	// Schedule is a cron spec or descriptor (@hourly, @every 10m), read in the
	// retention time zone.
	Schedule string
	// Justification is required when MaxAge is longer than DefaultMaxAge.
	Justification string
	Source        string // SourceFile, SourceAPI or SourceBuiltin
	Updated       time.Time
	UpdatedBy     string

	badAge string // why max_age in JSON did not parse
}

// FieldError is a bad field of a policy; Field is its name as the API and the file
// spell it (schedule, max_age, cameras[1]).
type FieldError struct {
	Index int // of the policy in the list given to NewPolicies
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Known is what a policy may name: the cameras and their sites.
type Known struct {
	Cameras map[string]string // camera ID -> site ID
	Sites   map[string]bool
}

// Check reports every problem with p, naming the field. A zero Schedule is filled
// with DefaultSchedule first.
func (p *Policy) Check(known Known) []*FieldError {
	var errs []*FieldError
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if p.Schedule == "" {
		p.Schedule = DefaultSchedule
	}
	if len(p.Name) == 0 || len(p.Name) > 48 || !storage.ValidCameraID(p.Name) {
		bad("name", "%q must be 1-48 characters of a-z, 0-9 and '-', starting with a letter or digit", p.Name)
	}
	switch {
	case p.badAge != "":
		bad("max_age", "%s", p.badAge)
	case p.MaxAge <= 0:
		bad("max_age", "must be a positive duration such as 30d, 12h or 90s, got %s", FormatAge(p.MaxAge))
	case p.MaxAge > DefaultMaxAge && strings.TrimSpace(p.Justification) == "":
		bad("justification", "is required to keep footage longer than 30 days (Legea 190/2018 art. 5): say why")
	}
	if p.MaxBytes < 0 {
		bad("max_bytes", "must not be negative (0 or absent: no size limit)")
	}
	if _, err := ParseSchedule(p.Schedule, time.UTC); err != nil {
		bad("schedule", "%q is not a cron schedule (like \"30 3 * * *\", @hourly or @every 10m): %v", p.Schedule, err)
	}
	if p.Name == DefaultName && (len(p.Sites) > 0 || len(p.Cameras) > 0) {
		bad("name", "the default policy covers the cameras no other policy names: it names no sites or cameras")
	}
	if p.Name != DefaultName && len(p.Sites) == 0 && len(p.Cameras) == 0 {
		bad("cameras", "name at least one camera or site (or call the policy %q)", DefaultName)
	}
	for i, s := range p.Sites {
		if !known.Sites[s] {
			bad(fmt.Sprintf("sites[%d]", i), "unknown site %q", s)
		} else if slices.Index(p.Sites, s) < i {
			bad(fmt.Sprintf("sites[%d]", i), "site %q is named twice", s)
		}
	}
	for i, c := range p.Cameras {
		if _, ok := known.Cameras[c]; !ok {
			bad(fmt.Sprintf("cameras[%d]", i), "unknown camera %q", c)
		} else if slices.Index(p.Cameras, c) < i {
			bad(fmt.Sprintf("cameras[%d]", i), "camera %q is named twice", c)
		}
	}
	return errs
}

// ParseSchedule parses a five-field cron spec or a descriptor, read in loc.
func ParseSchedule(spec string, loc *time.Location) (cron.Schedule, error) {
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, fmt.Errorf("set the zone with retention.timezone, not in the spec")
	}
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, err
	}
	if ss, ok := s.(*cron.SpecSchedule); ok {
		ss.Location = loc
	}
	return s, nil
}

// Policies is a consistent set of policies: every camera resolves to exactly one.
type Policies struct {
	list     []Policy          // sorted by name; the default policy is always there
	byCamera map[string]string // camera ID -> policy name
	bySite   map[string]string
}

// NewPolicies checks ps as a whole (each policy, and that no camera or site is named
// by two policies) and adds the built-in default policy if ps has none. Each error's
// Index is that of the policy in ps.
func NewPolicies(ps []Policy, known Known) (*Policies, []*FieldError) {
	set := &Policies{byCamera: map[string]string{}, bySite: map[string]string{}}
	var errs []*FieldError
	names := map[string]bool{}
	for pi, p := range ps {
		for _, e := range p.Check(known) {
			e.Index = pi
			errs = append(errs, e)
		}
		if names[p.Name] {
			errs = append(errs, &FieldError{Index: pi, Field: "name", Msg: fmt.Sprintf("policy %q is defined twice", p.Name)})
		}
		names[p.Name] = true
		for i, c := range p.Cameras {
			if other, ok := set.byCamera[c]; ok && other != p.Name {
				errs = append(errs, &FieldError{Index: pi, Field: fmt.Sprintf("cameras[%d]", i),
					Msg: fmt.Sprintf("camera %q is already covered by policy %q: a camera has one policy", c, other)})
			}
			set.byCamera[c] = p.Name
		}
		for i, s := range p.Sites {
			if other, ok := set.bySite[s]; ok && other != p.Name {
				errs = append(errs, &FieldError{Index: pi, Field: fmt.Sprintf("sites[%d]", i),
					Msg: fmt.Sprintf("site %q is already covered by policy %q: a site has one policy", s, other)})
			}
			set.bySite[s] = p.Name
		}
		set.list = append(set.list, p)
	}
	if !names[DefaultName] {
		set.list = append(set.list, Policy{Name: DefaultName, MaxAge: DefaultMaxAge, Schedule: DefaultSchedule,
			Source: SourceBuiltin})
	}
	slices.SortFunc(set.list, func(a, b Policy) int { return strings.Compare(a.Name, b.Name) })
	return set, errs
}

// List returns the policies sorted by name.
func (ps *Policies) List() []Policy { return slices.Clone(ps.list) }

// Get returns the policy named name.
func (ps *Policies) Get(name string) (Policy, bool) {
	i := slices.IndexFunc(ps.list, func(p Policy) bool { return p.Name == name })
	if i < 0 {
		return Policy{}, false
	}
	return ps.list[i], true
}

// Resolve returns the policy of camera (of site): the one naming the camera, else
// the one naming its site, else the default.
func (ps *Policies) Resolve(camera, site string) Policy {
	name, ok := ps.byCamera[camera]
	if !ok {
		if name, ok = ps.bySite[site]; !ok {
			name = DefaultName
		}
	}
	p, _ := ps.Get(name)
	return p
}

// HoldSource gives the evidence holds in force: retention never deletes what one
// covers. Implementations are safe for concurrent use.
type HoldSource interface {
	Holds(ctx context.Context) ([]Hold, error)
}

// StaticHolds is a fixed list of holds.
type StaticHolds []Hold

// Holds returns the list.
func (h StaticHolds) Holds(context.Context) ([]Hold, error) { return h, nil }

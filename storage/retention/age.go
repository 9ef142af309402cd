package retention

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/straja-nvr/straja/internal/days"
)

// maxAgeDays bounds a policy's age: beyond a century, a number is a typing error.
const maxAgeDays = 100 * 365

// ParseAge parses a policy age: a Go duration ("90s", "1h30m") with an optional
// leading whole number of days ("30d", "1d12h"), and a leading '-'.
func ParseAge(s string) (time.Duration, error) {
	const examples = "90s, 10m, 12h, 30d"
	d, err := days.Parse(strings.TrimSpace(s), examples)
	if err == nil && (d >= (maxAgeDays+1)*days.Day || d <= -(maxAgeDays+1)*days.Day) {
		err = fmt.Errorf("%q is not a duration (examples: %s)", s, examples)
	}
	return d, err
}

// policyJSON is Policy as JSON: the age written as text ("30d").
type policyJSON struct {
	Name          string    `json:"name"`
	Sites         []string  `json:"sites,omitempty"`
	Cameras       []string  `json:"cameras,omitempty"`
	MaxAge        string    `json:"max_age"`
	MaxBytes      int64     `json:"max_bytes,omitempty"`
	Schedule      string    `json:"schedule,omitempty"`
	Justification string    `json:"justification,omitempty"`
	Source        string    `json:"source,omitempty"`
	Updated       time.Time `json:"updated,omitzero"`
	UpdatedBy     string    `json:"updated_by,omitempty"`
}

// MarshalJSON writes max_age as text, such as "30d".
func (p Policy) MarshalJSON() ([]byte, error) {
	return json.Marshal(policyJSON{Name: p.Name, Sites: p.Sites, Cameras: p.Cameras, MaxAge: FormatAge(p.MaxAge),
		MaxBytes: p.MaxBytes, Schedule: p.Schedule, Justification: p.Justification, Source: p.Source,
		Updated: p.Updated, UpdatedBy: p.UpdatedBy})
}

// UnmarshalJSON reads max_age as text ("30d", "90s"). A bad one is kept for Check
// to report, so that the error names the field.
func (p *Policy) UnmarshalJSON(b []byte) error {
	var j policyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*p = Policy{Name: j.Name, Sites: j.Sites, Cameras: j.Cameras, MaxBytes: j.MaxBytes, Schedule: j.Schedule,
		Justification: j.Justification, Source: j.Source, Updated: j.Updated, UpdatedBy: j.UpdatedBy}
	if j.MaxAge == "" {
		return nil // Check says it is required
	}
	d, err := ParseAge(j.MaxAge)
	if err != nil {
		p.badAge = err.Error()
	}
	p.MaxAge = d
	return nil
}

package configs

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // retention.timezone works on machines without a zoneinfo database

	"gopkg.in/yaml.v3"

	"github.com/straja-nvr/straja/storage/retention"
)

// FreeSpace is a free-space threshold: a percentage of the file system ("10%") or a
// size ("20GB").
type FreeSpace struct {
	Bytes   int64
	Percent float64
}

// IsZero reports whether no threshold is set.
func (f FreeSpace) IsZero() bool { return f.Bytes == 0 && f.Percent == 0 }

// String formats f so that UnmarshalText reads it back.
func (f FreeSpace) String() string {
	if f.Percent > 0 {
		return strconv.FormatFloat(f.Percent, 'f', -1, 64) + "%"
	}
	return ByteSize(f.Bytes).String()
}

// MarshalText implements encoding.TextMarshaler.
func (f FreeSpace) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *FreeSpace) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if num, ok := strings.CutSuffix(s, "%"); ok {
		p, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || p <= 0 || p >= 100 {
			return fmt.Errorf("%q is not a percentage between 0 and 100 (exclusive)", s)
		}
		*f = FreeSpace{Percent: p}
		return nil
	}
	n, err := ParseByteSize(s)
	if err != nil {
		return fmt.Errorf("%q is neither a percentage (10%%) nor a size (20GB)", s)
	}
	*f = FreeSpace{Bytes: int64(n)}
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (f *FreeSpace) UnmarshalYAML(n *yaml.Node) error { return unmarshalScalar(n, f) }

// Policy converts p for the retention package.
func (p RetentionPolicy) Policy() retention.Policy {
	return retention.Policy{Name: p.Name, Sites: p.Sites, Cameras: p.Cameras, MaxAge: time.Duration(p.MaxAge),
		MaxBytes: int64(p.MaxBytes), Schedule: p.Schedule, Justification: p.Justification, Source: retention.SourceFile}
}

// RetentionKnown is what the file's retention policies may name: its cameras and sites.
func (c *Config) RetentionKnown() retention.Known {
	k := retention.Known{Cameras: map[string]string{}, Sites: map[string]bool{}}
	for _, s := range c.Sites {
		k.Sites[s.ID] = true
	}
	for _, cam := range c.Cameras {
		k.Cameras[cam.ID] = cam.Site
	}
	return k
}

// RetentionPolicies returns the file's policies for the retention package.
func (c *Config) RetentionPolicies() []retention.Policy {
	out := make([]retention.Policy, len(c.Retention.Policies))
	for i, p := range c.Retention.Policies {
		out[i] = p.Policy()
	}
	return out
}

// Location is the zone of retention schedules (UTC if Timezone does not load, which
// Validate reports).
func (r Retention) Location() *time.Location {
	loc, err := time.LoadLocation(r.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

func (c *Config) validateRetention(bad func(path, format string, args ...any)) {
	r := c.Retention
	if _, err := time.LoadLocation(r.Timezone); err != nil || r.Timezone == "" || r.Timezone == "Local" {
		bad("retention.timezone", "%q is not a time zone name such as Europe/Bucharest or UTC", r.Timezone)
	}
	if p := r.SafetyStopPercent; p < 1 || p > 100 {
		bad("retention.safety_stop_percent", "must be 1..100, got %d", p)
	}
	if err := checkRange(r.GuardInterval, time.Second, 10*time.Minute); err != "" {
		bad("retention.guard_interval", "%s", err)
	}
	if r.MinFree.Bytes < 0 {
		bad("retention.min_free", "must not be negative")
	}
	if r.MaxBytes < 0 {
		bad("retention.max_bytes", "must not be negative")
	} else if r.MaxBytes > 0 && c.Storage.Backend != BackendS3 {
		bad("retention.max_bytes", "bounds an s3 bucket; with the disk backend use retention.min_free")
	}
	_, errs := retention.NewPolicies(c.RetentionPolicies(), c.RetentionKnown())
	for _, e := range errs {
		bad(fmt.Sprintf("retention.policies[%d].%s", e.Index, e.Field), "%s", e.Msg)
	}
}

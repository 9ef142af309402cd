package configs

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration that also accepts a day suffix ("30d", "1d12h"),
// because retention and timeouts are naturally written in days.
type Duration time.Duration

const day = 24 * time.Hour

// ParseDuration parses a Go duration ("90s", "1h30m") with an optional leading
// whole number of days ("30d", "1d12h").
func ParseDuration(s string) (Duration, error) {
	bad := fmt.Errorf("%q is not a duration (examples: 500ms, 10s, 5m, 2h, 30d)", s)
	neg := strings.HasPrefix(s, "-")
	rest := strings.TrimPrefix(s, "-")
	var d time.Duration
	if days, after, ok := strings.Cut(rest, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 32)
		if err != nil || n > uint64(1<<63-1)/uint64(day) {
			return 0, bad
		}
		d, rest = time.Duration(n)*day, after
		if rest == "" {
			rest = "0"
		}
	}
	r, err := time.ParseDuration(rest)
	if err != nil || r < 0 || d+r < d {
		return 0, bad
	}
	if d += r; neg {
		d = -d
	}
	return Duration(d), nil
}

// String formats d so that ParseDuration reads it back, using days for whole days
// and dropping zero units ("1h", not "1h0m0s").
func (d Duration) String() string {
	td := time.Duration(d)
	if td < day {
		return trimZeroUnits(td.String())
	}
	s := strconv.FormatInt(int64(td/day), 10) + "d"
	if rest := td % day; rest != 0 {
		s += trimZeroUnits(rest.String())
	}
	return s
}

func trimZeroUnits(s string) string {
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error { return unmarshalScalar(n, d) }

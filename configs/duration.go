package configs

import (
	"time"

	"gopkg.in/yaml.v3"

	"github.com/straja-nvr/straja/internal/days"
)

// Duration is a time.Duration that also accepts a day suffix ("30d", "1d12h"),
// because retention and timeouts are naturally written in days.
type Duration time.Duration

// ParseDuration parses a Go duration ("90s", "1h30m") with an optional leading
// whole number of days ("30d", "1d12h").
func ParseDuration(s string) (Duration, error) {
	d, err := days.Parse(s, "500ms, 10s, 5m, 2h, 30d")
	return Duration(d), err
}

// String formats d so that ParseDuration reads it back, using days for whole days
// and dropping zero units ("1h", not "1h0m0s").
func (d Duration) String() string { return days.Format(time.Duration(d)) }

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

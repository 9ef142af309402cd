// Package days reads and writes durations that may start with a whole number of days
// ("30d", "1d12h"), as retention periods and timeouts are naturally written. It is the
// one such format of the configuration file and the API.
package days

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Day is 24 hours: a calendar day is not meant.
const Day = 24 * time.Hour

// Parse parses a Go duration ("90s", "1h30m") with an optional leading whole number
// of days ("30d", "1d12h") and an optional leading '-'. examples ends the error
// message, so each caller names values that fit its field.
func Parse(s, examples string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a duration (examples: %s)", s, examples)
	rest, neg := strings.CutPrefix(s, "-")
	var d time.Duration
	if n, after, ok := strings.Cut(rest, "d"); ok {
		v, err := strconv.ParseUint(n, 10, 32)
		if err != nil || v > uint64(1<<63-1)/uint64(Day) {
			return 0, bad
		}
		d, rest = time.Duration(v)*Day, after
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
	return d, nil
}

// Format writes d so that Parse reads it back, with days for whole days and without
// zero units ("1h", not "1h0m0s"; "2d", not "48h0m0s"). A negative d is written
// without days.
func Format(d time.Duration) string {
	if d < Day {
		return trimZeroUnits(d.String())
	}
	s := strconv.FormatInt(int64(d/Day), 10) + "d"
	if rest := d % Day; rest != 0 {
		s += trimZeroUnits(rest.String())
	}
	return s
}

// trimZeroUnits drops trailing zero units: "1h0m0s" -> "1h", "10m0s" -> "10m".
func trimZeroUnits(s string) string {
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

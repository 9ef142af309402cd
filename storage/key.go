package storage

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxKeyLen keeps keys within the S3 object name limit once a store prefix is added.
const maxKeyLen = 900

// maxCameraIDLen bounds camera IDs, which appear in every key and path.
const maxCameraIDLen = 48

// ReservedPrefix starts the keys Straja keeps for itself next to the segments (state
// database backups, for one). '_' is not a camera ID character, so these keys never
// collide with segment keys; Rebuild passes over them.
const ReservedPrefix = "_straja/"

// SegmentKey names one recorded segment. Its string form carries camera, start and
// duration, so the catalog can be rebuilt from object keys alone.
type SegmentKey struct {
	Camera   string
	Start    time.Time     // UTC, millisecond precision
	Duration time.Duration // millisecond precision
}

// String encodes k as "camera/YYYY/MM/DD/YYYYMMDDtHHMMSS.mmmz_<ms>ms.mp4", e.g.
// "bastion-gate/2026/11/25/20261125t215507.123z_2000ms.mp4". Start is converted to
// UTC and, like Duration, truncated to the millisecond. The 't' and 'z' are lower
// case (as RFC 3339 allows) because keys are lower case only. The day folders keep
// directory sizes bounded and make a day a cheap List prefix.
func (k SegmentKey) String() string {
	t := k.Start.UTC().Truncate(time.Millisecond)
	return fmt.Sprintf("%s/%s/%s_%dms.mp4", k.Camera, t.Format("2006/01/02"),
		t.Format("20060102t150405.000z"), k.Duration.Milliseconds())
}

// Names reports whether key is k's key (what String makes). The catalog checks every
// row it hands out for reading or deleting with it: an edited row whose key names
// another camera's footage, or other footage of the same camera, must not be read or
// deleted as this segment. Cheap enough for every row of a month's timeline.
func (k SegmentKey) Names(key string) bool {
	var buf [128]byte
	if string(k.appendKey(buf[:0])) == key {
		return true
	}
	return key == k.String() // years the fast encoding does not cover
}

// appendKey appends String's encoding for a year of 0..9999, without fmt.
func (k SegmentKey) appendKey(b []byte) []byte {
	t := k.Start.UTC().Truncate(time.Millisecond)
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	digits := func(b []byte, n, w int) []byte {
		for i := w - 1; i >= 0; i-- {
			b = append(b, 0)
		}
		for i := len(b) - 1; i >= len(b)-w; i-- {
			b[i] = byte('0' + n%10)
			n /= 10
		}
		return b
	}
	b = append(append(b, k.Camera...), '/')
	b = append(digits(b, y, 4), '/')
	b = append(digits(b, int(mo), 2), '/')
	b = append(digits(b, d, 2), '/')
	b = digits(digits(digits(b, y, 4), int(mo), 2), d, 2)
	b = append(b, 't')
	b = digits(digits(digits(b, h, 2), mi, 2), s, 2)
	b = append(digits(append(b, '.'), t.Nanosecond()/int(time.Millisecond), 3), 'z', '_')
	b = strconv.AppendInt(b, k.Duration.Milliseconds(), 10)
	return append(b, "ms.mp4"...)
}

// ParseSegmentKey decodes a key made by SegmentKey.String. It is strict: exactly the
// strings String can produce for a valid camera ID and a non-negative duration are
// accepted, so a parsed key re-encodes to the identical string. Errors match
// ErrInvalidKey.
func ParseSegmentKey(s string) (SegmentKey, error) {
	fail := func(format string, args ...any) (SegmentKey, error) {
		return SegmentKey{}, fmt.Errorf("%w %q: %s", ErrInvalidKey, s, fmt.Sprintf(format, args...))
	}
	parts := strings.Split(s, "/")
	if len(parts) != 5 {
		return fail("want camera/YYYY/MM/DD/file, got %d path segments", len(parts))
	}
	camera, year, month, day, name := parts[0], parts[1], parts[2], parts[3], parts[4]
	if !ValidCameraID(camera) {
		return fail("camera ID %v", CheckCameraID(camera))
	}
	// name: YYYYMMDDtHHMMSS.mmmz_<ms>ms.mp4
	const stamp = len("20060102t150405.000z")
	if len(name) < stamp+len("_0ms.mp4") || name[stamp] != '_' || !strings.HasSuffix(name, "ms.mp4") {
		return fail("file name must be YYYYMMDDtHHMMSS.mmmz_<ms>ms.mp4")
	}
	ts, dur := name[:stamp], name[stamp+1:len(name)-len("ms.mp4")]
	if ts[8] != 't' || ts[15] != '.' || ts[19] != 'z' ||
		!allDigits(ts[:8]) || !allDigits(ts[9:15]) || !allDigits(ts[16:19]) {
		return fail("start must be YYYYMMDDtHHMMSS.mmmz")
	}
	if year != ts[0:4] || month != ts[4:6] || day != ts[6:8] {
		return fail("folders %s/%s/%s do not match start date %s", year, month, day, ts[:8])
	}
	atoi := func(d string) int { n, _ := strconv.Atoi(d); return n } // digits checked above
	y, mo, d := atoi(ts[0:4]), atoi(ts[4:6]), atoi(ts[6:8])
	h, mi, sec, ms := atoi(ts[9:11]), atoi(ts[11:13]), atoi(ts[13:15]), atoi(ts[16:19])
	start := time.Date(y, time.Month(mo), d, h, mi, sec, ms*int(time.Millisecond), time.UTC)
	if start.Year() != y || int(start.Month()) != mo || start.Day() != d ||
		start.Hour() != h || start.Minute() != mi || start.Second() != sec {
		return fail("start %s is not a valid UTC time", ts)
	}
	if !allDigits(dur) || (len(dur) > 1 && dur[0] == '0') {
		return fail("duration must be decimal milliseconds without leading zeros")
	}
	n, err := strconv.ParseInt(dur, 10, 64)
	if err != nil || n > int64(time.Duration(1<<63-1)/time.Millisecond) {
		return fail("duration %sms out of range", dur)
	}
	return SegmentKey{Camera: camera, Start: start, Duration: time.Duration(n) * time.Millisecond}, nil
}

// CheckCameraID is the one camera ID rule, for the configuration, runtime cameras, the
// supervisor and keys alike: 1..48 characters of [a-z0-9-], not starting with '-'.
// Camera IDs become object keys and file paths. The error states the rule.
func CheckCameraID(id string) error {
	if !ValidCameraID(id) {
		return fmt.Errorf("%q must be 1-%d characters of a-z, 0-9 and '-', starting with a letter or digit", id, maxCameraIDLen)
	}
	return nil
}

// ValidCameraID reports whether CheckCameraID accepts id.
func ValidCameraID(id string) bool {
	if len(id) == 0 || len(id) > maxCameraIDLen || id[0] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ValidKey checks the generic object key rule of the Store contract: non-empty
// '/'-separated segments of [a-z0-9._-], no "..", no "." segment, no leading or
// trailing '/'. Such a key is safe to join to a directory path. The error matches
// ErrInvalidKey.
func ValidKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > maxKeyLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, maxKeyLen)
	case strings.Contains(key, ".."):
		return fmt.Errorf("%w %q: holds \"..\"", ErrInvalidKey, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." {
			return fmt.Errorf("%w %q: empty or \".\" path segment", ErrInvalidKey, key)
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("%w %q: character %q not in [a-z0-9._-/]", ErrInvalidKey, key, c)
			}
		}
	}
	return nil
}

// validPrefix checks a List prefix: empty, a valid key, or a valid key plus '/'.
func validPrefix(prefix string) error {
	if p := strings.TrimSuffix(prefix, "/"); p != "" || prefix != "" {
		if err := ValidKey(p); err != nil {
			return fmt.Errorf("list prefix: %w", err)
		}
	}
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

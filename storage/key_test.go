package storage_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage"
)

func TestSegmentKeyString(t *testing.T) {
	bucharest := time.FixedZone("EET", 2*3600)
	k := storage.SegmentKey{
		Camera:   "bastion-gate",
		Start:    time.Date(2026, 11, 25, 23, 55, 7, 123_987_000, bucharest), // 21:55:07.123987 UTC
		Duration: 2*time.Second + 999*time.Microsecond,
	}
	const want = "bastion-gate/2026/11/25/20261125t215507.123z_2000ms.mp4"
	if got := k.String(); got != want {
		t.Fatalf("String() = %s, want %s", got, want)
	}
	got, err := storage.ParseSegmentKey(want)
	if err != nil {
		t.Fatal(err)
	}
	wantKey := storage.SegmentKey{Camera: "bastion-gate", Start: time.Date(2026, 11, 25, 21, 55, 7, 123_000_000, time.UTC), Duration: 2 * time.Second}
	if got != wantKey {
		t.Fatalf("ParseSegmentKey = %+v, want %+v", got, wantKey)
	}
	if err := storage.ValidKey(want); err != nil {
		t.Fatalf("a segment key breaks the Store key rule: %v", err)
	}
}

func TestSegmentKeyRoundTrip(t *testing.T) {
	for _, k := range []storage.SegmentKey{
		{Camera: "a", Start: time.Unix(0, 0).UTC(), Duration: 0},
		{Camera: "cam-01", Start: time.Date(2024, 2, 29, 23, 59, 59, 999_000_000, time.UTC), Duration: time.Millisecond},
		{Camera: strings.Repeat("z", 48), Start: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), Duration: 24 * time.Hour},
		{Camera: "c0", Start: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), Duration: 1<<63 - 1},
	} {
		s := k.String()
		got, err := storage.ParseSegmentKey(s)
		want := k
		want.Start, want.Duration = k.Start.Truncate(time.Millisecond), k.Duration.Truncate(time.Millisecond)
		if err != nil || got != want || got.String() != s {
			t.Errorf("ParseSegmentKey(%s) = %+v, %v; want %+v", s, got, err, want)
		}
	}
}

func TestParseSegmentKeyRejects(t *testing.T) {
	for _, c := range []struct{ key, why string }{
		{"", "path segments"},
		{"cam/2026/11/25/20261125t215507.123z_2000ms.mp4/x", "path segments"},
		{"Cam/2026/11/25/20261125t215507.123z_2000ms.mp4", "camera"},
		{"-cam/2026/11/25/20261125t215507.123z_2000ms.mp4", "camera"},
		{strings.Repeat("c", 49) + "/2026/11/25/20261125t215507.123z_2000ms.mp4", "camera"},
		{"cam/2026/11/25/20261125T215507.123Z_2000ms.mp4", "start"},
		{"cam/2026/11/25/20261125t215507z_2000ms.mp4", "file name"},
		{"cam/2026/11/25/20261125t215507.12z_2000ms.mp4", "file name"},
		{"cam/2026/11/26/20261125t215507.123z_2000ms.mp4", "do not match"},
		{"cam/2026/1/25/20260125t215507.123z_2000ms.mp4", "do not match"},
		{"cam/2026/02/30/20260230t215507.123z_2000ms.mp4", "not a valid"},
		{"cam/2026/11/25/20261125t245507.123z_2000ms.mp4", "not a valid"},
		{"cam/2026/11/25/20261125t215560.123z_2000ms.mp4", "not a valid"},
		{"cam/2026/11/25/20261125t215507.123z_02000ms.mp4", "leading zeros"},
		{"cam/2026/11/25/20261125t215507.123z_-5ms.mp4", "decimal"},
		{"cam/2026/11/25/20261125t215507.123z_+5ms.mp4", "decimal"},
		{"cam/2026/11/25/20261125t215507.123z_ms.mp4", "file name"},
		{"cam/2026/11/25/20261125t215507.123z_99999999999999999999ms.mp4", "out of range"},
		{"cam/2026/11/25/20261125t215507.123z_2000ms.mkv", "file name"},
		{"cam/2026/11/25/20261125t215507.123z_2000s.mp4", "file name"},
	} {
		_, err := storage.ParseSegmentKey(c.key)
		if !errors.Is(err, storage.ErrInvalidKey) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("ParseSegmentKey(%q) err = %v, want ErrInvalidKey saying %q", c.key, err, c.why)
		}
	}
}

func TestValidCameraID(t *testing.T) {
	for id, want := range map[string]bool{
		"bastion-gate": true, "a": true, "0": true, "cam-": true, strings.Repeat("a", 48): true,
		"": false, "-a": false, "Cam": false, "a_b": false, "a.b": false, "a/b": false, strings.Repeat("a", 49): false,
	} {
		if got := storage.ValidCameraID(id); got != want {
			t.Errorf("ValidCameraID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestValidKey(t *testing.T) {
	for key, ok := range map[string]bool{
		"a": true, "a/b": true, "a.b/c_d-e": true, ".hidden": true,
		"": false, "../x": false, "a/../x": false, "a..b": false, "/abs": false, "a/": false, "a//b": false,
		".": false, "a/./b": false, "A/B": false, "a b": false, "a\\b": false, "a~": false, strings.Repeat("a", 901): false,
	} {
		err := storage.ValidKey(key)
		if ok && err != nil || !ok && !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("ValidKey(%q) = %v, want valid=%v", key, err, ok)
		}
	}
}

func FuzzParseSegmentKey(f *testing.F) {
	f.Add("bastion-gate/2026/11/25/20261125t215507.123z_2000ms.mp4")
	f.Add("a/0001/01/01/00010101t000000.000z_0ms.mp4")
	f.Add("cam/2026/02/29/20260229t000000.000z_1ms.mp4")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := storage.ParseSegmentKey(s)
		if err != nil {
			if !errors.Is(err, storage.ErrInvalidKey) {
				t.Fatalf("ParseSegmentKey(%q) error %v does not match ErrInvalidKey", s, err)
			}
			return
		}
		if got := k.String(); got != s {
			t.Fatalf("ParseSegmentKey(%q) re-encodes as %q", s, got)
		}
		if err := storage.ValidKey(s); err != nil {
			t.Fatalf("parsed key %q breaks the Store key rule: %v", s, err)
		}
	})
}

// TestSegmentKeyNames: Names accepts exactly the key String makes.
func TestSegmentKeyNames(t *testing.T) {
	for _, start := range []time.Time{
		time.Date(2026, 11, 25, 21, 55, 7, 123456789, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("EET", 7200)),
		time.Date(1, 1, 1, 0, 0, 0, 1e6, time.UTC),
		time.Date(12026, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(-5, 1, 2, 3, 4, 5, 0, time.UTC),
	} {
		k := storage.SegmentKey{Camera: "bastion-gate", Start: start, Duration: 2001 * time.Millisecond}
		if !k.Names(k.String()) {
			t.Errorf("%v: Names(%q) = false", start, k.String())
		}
		for _, other := range []storage.SegmentKey{
			{Camera: "bastion-gat", Start: start, Duration: k.Duration},
			{Camera: k.Camera, Start: start.Add(time.Millisecond), Duration: k.Duration},
			{Camera: k.Camera, Start: start, Duration: k.Duration + time.Millisecond},
		} {
			if k.Names(other.String()) {
				t.Errorf("%v: Names(%q) = true for another key", start, other.String())
			}
		}
	}
}

package audit

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

// The chain hashes a detail's bytes: the writer's own encoding must give exactly
// json.Marshal's, whether it takes the plain path or falls back.
func TestDetailBytesAreJSONMarshals(t *testing.T) {
	bucharest := time.FixedZone("EET", 2*3600)
	odd := time.FixedZone("odd", 25*3600)
	details := []map[string]any{
		nil,
		{},
		{"from": "2026-11-30T08:00:00Z", "to": "2026-11-30T09:00:00Z"},
		{"from": time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC), "to": time.Date(2026, 11, 30, 9, 0, 0, 1500, time.UTC)},
		{"at": time.Date(2026, 3, 29, 3, 30, 0, 0, bucharest)},
		{"at": time.Date(2026, 3, 29, 3, 30, 0, 0, odd)},
		{"at": time.Date(12026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"at": time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"at": time.Time{}},
		{"seconds": 12.345, "tiny": 1e-7, "huge": 1e21, "zero": 0.0, "neg": -3.0, "e": 1.5e-10, "big": 123456789.0},
		{"nan": math.NaN()},
		{"inf": math.Inf(1)},
		{"n": 7, "m": int64(-1 << 62), "b": true, "c": false},
		{"reason": `quote " and \ backslash`, "html": "<b>&</b>", "nl": "a\nb", "utf": "Bastionul Theresia — poarta", "bad": "\xff", "sep": "\u2028"},
		{"k\"ey": "v"},
		{"<": 1},
		{"list": []string{"a", "b"}, "s": "x"},
		{"nested": map[string]any{"a": 1}},
		{"nil": nil},
		{"ptr": new(int)},
		{"f32": float32(0.1)},
		{"z": "last", "a": "first", "m": "middle", "A": "upper", "": "empty"},
	}
	var c chainer
	for _, d := range details {
		want, err := json.Marshal(d)
		if d == nil {
			want, err = []byte("{}"), nil
		}
		if err != nil {
			want = []byte(`{"error":"detail not encodable"}`)
		}
		got := c.appendDetail([]byte("prefix"), d)
		if string(got) != "prefix"+string(want) {
			t.Errorf("detail %v: got %s, want prefix%s", d, got, want)
		}
	}
}

func FuzzDetailBytesAreJSONMarshals(f *testing.F) {
	f.Add("from", "2026-11-30T08:00:00Z", int64(1), 2.5, int64(0))
	f.Fuzz(func(t *testing.T, k, v string, n int64, x float64, ns int64) {
		d := map[string]any{k: v, k + "n": n, k + "x": x, k + "t": time.Unix(0, ns).UTC()}
		want, err := json.Marshal(d)
		if err != nil {
			want = []byte(`{"error":"detail not encodable"}`)
		}
		var c chainer
		if got := c.appendDetail(nil, d); string(got) != string(want) {
			t.Errorf("got %s, want %s", got, want)
		}
	})
}

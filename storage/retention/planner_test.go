package retention

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage"
)

// memSource is footage in memory, for planner tables.
type memSource map[string][]storage.Segment

func (m memSource) Cameras(context.Context) ([]string, error) {
	var ids []string
	for id, segs := range m {
		if len(segs) > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (m memSource) Stats(_ context.Context, camera string) (Stats, error) {
	var st Stats
	for _, s := range m[camera] {
		st.Segments++
		st.Bytes += s.Size
		if s.End().After(st.Latest) {
			st.Latest = s.End()
		}
	}
	return st, nil
}

func (m memSource) Each(_ context.Context, camera string, fn func(storage.Segment) error) error {
	for _, s := range m[camera] {
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// footage makes n one-minute segments of 1000 bytes for camera, the last ending at end.
func footage(camera string, n int, end time.Time) []storage.Segment {
	segs := make([]storage.Segment, n)
	for i := range segs {
		start := end.Add(-time.Duration(n-i) * time.Minute)
		segs[i] = storage.Segment{Camera: camera, Start: start, Duration: time.Minute, Size: 1000,
			Key: storage.SegmentKey{Camera: camera, Start: start, Duration: time.Minute}.String()}
	}
	return segs
}

var planNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

var known = Known{
	Cameras: map[string]string{"bastion-gate": "bastion", "bastion-yard": "bastion", "palat-hall": "palat"},
	Sites:   map[string]bool{"bastion": true, "palat": true},
}

var cams = []Camera{{"bastion-gate", "bastion"}, {"bastion-yard", "bastion"}, {"palat-hall", "palat"}}

func TestPlan(t *testing.T) {
	hour := footage                             // readability: footage(cam, 60, t) is an hour
	live := footage("bastion-yard", 5, planNow) // a camera recording now
	for _, tc := range []struct {
		name     string
		src      memSource
		policies []Policy
		holds    []Hold
		now      time.Time
		opts     Options
		// want: camera -> segments deleted, and the safety stop for it
		want  map[string]int
		stops []string
		held  map[string]int
	}{
		{
			name: "age: the default 30 days",
			src: memSource{"bastion-gate": append(hour("bastion-gate", 60, planNow.Add(-31*24*time.Hour)),
				hour("bastion-gate", 60, planNow)...)},
			want: map[string]int{"bastion-gate": 60, "bastion-yard": 0, "palat-hall": 0},
		},
		{
			name:     "age in seconds, as the demo uses",
			src:      memSource{"palat-hall": hour("palat-hall", 10, planNow)}, // 10 min
			policies: []Policy{{Name: "short", Cameras: []string{"palat-hall"}, MaxAge: 4*time.Minute + 30*time.Second}},
			want:     map[string]int{"palat-hall": 5}, // those ending at or before now-4m30s
		},
		{
			name: "size: the oldest beyond max_bytes go",
			src:  memSource{"bastion-yard": hour("bastion-yard", 10, planNow)},
			policies: []Policy{{Name: "small", Cameras: []string{"bastion-yard"}, MaxAge: time.Hour,
				MaxBytes: 3500}},
			want: map[string]int{"bastion-yard": 7}, // 10000 bytes down to 3000
		},
		{
			name: "most specific wins: camera over site over default",
			src: memSource{
				"bastion-gate": hour("bastion-gate", 60, planNow),
				"bastion-yard": hour("bastion-yard", 60, planNow),
				"palat-hall":   hour("palat-hall", 60, planNow),
			},
			policies: []Policy{
				{Name: "gate", Cameras: []string{"bastion-gate"}, MaxAge: 10 * time.Minute},
				{Name: "bastion", Sites: []string{"bastion"}, MaxAge: 30 * time.Minute},
				{Name: "default", MaxAge: 50 * time.Minute},
			},
			want: map[string]int{"bastion-gate": 50, "bastion-yard": 30, "palat-hall": 10},
		},
		{
			name: "overlapping policies: site and camera both name the camera, the camera's wins",
			src:  memSource{"palat-hall": hour("palat-hall", 60, planNow)},
			policies: []Policy{
				{Name: "palat", Sites: []string{"palat"}, MaxAge: 5 * time.Minute},
				{Name: "hall", Cameras: []string{"palat-hall"}, Sites: []string{"bastion"}, MaxAge: 40 * time.Minute},
			},
			want: map[string]int{"palat-hall": 20},
		},
		{
			name: "a hold keeps what it covers",
			src: memSource{"bastion-gate": hour("bastion-gate", 60, planNow.Add(-40*24*time.Hour)),
				"bastion-yard": live},
			holds: []Hold{{Cameras: []string{"bastion-gate"}, From: planNow.Add(-40*24*time.Hour - 30*time.Minute),
				To: planNow.Add(-40*24*time.Hour - 20*time.Minute)}},
			want: map[string]int{"bastion-gate": 50},
			held: map[string]int{"bastion-gate": 10},
		},
		{
			name: "a site hold keeps every camera of the site",
			src: memSource{"bastion-gate": hour("bastion-gate", 10, planNow.Add(-40*24*time.Hour)),
				"palat-hall": hour("palat-hall", 10, planNow.Add(-40*24*time.Hour)), "bastion-yard": live},
			holds: []Hold{{Site: "bastion", From: planNow.Add(-41 * 24 * time.Hour), To: planNow}},
			want:  map[string]int{"bastion-gate": 0, "palat-hall": 10},
			held:  map[string]int{"bastion-gate": 10},
		},
		{
			name: "an expired hold keeps nothing",
			src: memSource{"bastion-gate": hour("bastion-gate", 60, planNow.Add(-40*24*time.Hour)),
				"bastion-yard": live},
			holds: []Hold{{Cameras: []string{"bastion-gate"}, From: planNow.Add(-41 * 24 * time.Hour), To: planNow,
				Expires: planNow.Add(-time.Minute)}},
			want: map[string]int{"bastion-gate": 60},
		},
		{
			name: "a hold also wins over max_bytes",
			src:  memSource{"bastion-yard": hour("bastion-yard", 10, planNow)},
			policies: []Policy{{Name: "small", Cameras: []string{"bastion-yard"}, MaxAge: time.Hour,
				MaxBytes: 3000}},
			holds: []Hold{{Cameras: []string{"bastion-yard"}, From: planNow.Add(-10 * time.Minute), To: planNow.Add(-8 * time.Minute)}},
			want:  map[string]int{"bastion-yard": 7}, // the two held stay and the next five too: 2000+3000 kept
			held:  map[string]int{"bastion-yard": 2},
		},
		{
			name: "clock jump: a year ahead would take everything, the safety stop keeps it",
			src:  memSource{"bastion-gate": hour("bastion-gate", 60, planNow)},
			now:  planNow.Add(365 * 24 * time.Hour),
			want: map[string]int{"bastion-gate": 0}, stops: []string{"bastion-gate"},
		},
		{
			name: "clock jump, forced",
			src:  memSource{"bastion-gate": hour("bastion-gate", 60, planNow)},
			now:  planNow.Add(365 * 24 * time.Hour),
			opts: Options{Force: true},
			want: map[string]int{"bastion-gate": 60},
		},
		{
			name: "clock jump within the share: deleted",
			src:  memSource{"bastion-gate": hour("bastion-gate", 60, planNow)},
			// 20 minutes of 60 beyond what max_age implies from the newest footage
			policies: []Policy{{Name: "short", Cameras: []string{"bastion-gate"}, MaxAge: 30 * time.Minute}},
			now:      planNow.Add(20 * time.Minute),
			want:     map[string]int{"bastion-gate": 50},
		},
		{
			name:     "only the policy asked for",
			src:      memSource{"bastion-gate": hour("bastion-gate", 60, planNow), "palat-hall": hour("palat-hall", 60, planNow)},
			policies: []Policy{{Name: "gate", Cameras: []string{"bastion-gate"}, MaxAge: 10 * time.Minute}},
			opts:     Options{Policy: "gate"},
			want:     map[string]int{"bastion-gate": 50},
		},
		{
			name: "footage of a camera no longer configured gets the default policy",
			src:  memSource{"old-cam": hour("old-cam", 60, planNow.Add(-31*24*time.Hour)), "bastion-yard": live},
			want: map[string]int{"old-cam": 60},
		},
		{
			name: "nothing recorded for longer than max_age anywhere: like a clock jump, the safety stop holds",
			src:  memSource{"bastion-gate": hour("bastion-gate", 60, planNow.Add(-40*24*time.Hour))},
			want: map[string]int{"bastion-gate": 0}, stops: []string{"bastion-gate"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pols, errs := NewPolicies(tc.policies, known)
			if len(errs) > 0 {
				t.Fatalf("policies: %v", errs)
			}
			now := tc.now
			if now.IsZero() {
				now = planNow
			}
			plan, err := Make(t.Context(), tc.src, cams, pols, tc.holds, now, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			var stops []string
			for _, cp := range plan.Cameras {
				// The second pass (what a run deletes) agrees with the plan.
				n := 0
				_ = tc.src.Each(t.Context(), cp.Camera, func(s storage.Segment) error {
					if cp.Past(s) {
						return errStop
					}
					if cp.Deletes(s) {
						n++
					}
					return nil
				})
				if cp.SafetyStop == "" && n != cp.Delete {
					t.Errorf("%s: Deletes picks %d segments, the plan says %d", cp.Camera, n, cp.Delete)
				}
				if cp.SafetyStop != "" {
					stops = append(stops, cp.Camera)
					if n != 0 {
						t.Errorf("%s: safety stop, yet Deletes picks %d segments", cp.Camera, n)
					}
					n = 0
				}
				got[cp.Camera] = n
				if want := tc.held[cp.Camera]; cp.Held != want {
					t.Errorf("%s: held %d, want %d", cp.Camera, cp.Held, want)
				}
				if n > 0 && cp.Delete == cp.Segments && !cp.OldestKept.IsZero() {
					t.Errorf("%s: everything goes, yet oldest kept is %v", cp.Camera, cp.OldestKept)
				}
			}
			for cam, want := range tc.want {
				if got[cam] != want {
					t.Errorf("%s: deletes %d segments, want %d (plan %+v)", cam, got[cam], want, plan.Cameras)
				}
			}
			if !slices.Equal(stops, tc.stops) {
				t.Errorf("safety stops %v, want %v", stops, tc.stops)
			}
		})
	}
}

func TestPlanSummary(t *testing.T) {
	src := memSource{"bastion-gate": footage("bastion-gate", 60, planNow)}
	pols, _ := NewPolicies([]Policy{{Name: "gate", Cameras: []string{"bastion-gate"}, MaxAge: 40 * time.Minute}}, known)
	plan, err := Make(t.Context(), src, nil, pols, nil, planNow, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cp := plan.Cameras[0]
	segs := src["bastion-gate"]
	if cp.Delete != 20 || cp.DeleteBytes != 20000 || cp.Segments != 60 || cp.Bytes != 60000 ||
		!cp.From.Equal(segs[0].Start) || !cp.To.Equal(segs[19].End()) || !cp.OldestKept.Equal(segs[20].Start) {
		t.Errorf("plan = %+v, want 20 segments, 20000 bytes from %v to %v, oldest kept %v",
			cp, segs[0].Start, segs[19].End(), segs[20].Start)
	}
}

func TestPolicyErrors(t *testing.T) {
	for _, tc := range []struct {
		p     Policy
		field string
	}{
		{Policy{Name: "x", Cameras: []string{"bastion-gate"}, MaxAge: -time.Hour}, "max_age"},
		{Policy{Name: "x", Cameras: []string{"bastion-gate"}, MaxAge: time.Hour, Schedule: "every day"}, "schedule"},
		{Policy{Name: "x", Cameras: []string{"bastion-gate"}, MaxAge: time.Hour, Schedule: "61 * * * *"}, "schedule"},
		{Policy{Name: "x", Cameras: []string{"no-such"}, MaxAge: time.Hour}, "cameras[0]"},
		{Policy{Name: "x", Sites: []string{"nowhere"}, MaxAge: time.Hour}, "sites[0]"},
		{Policy{Name: "x", Cameras: []string{"bastion-gate"}, MaxAge: 31 * 24 * time.Hour}, "justification"},
		{Policy{Name: "Bad Name", Cameras: []string{"bastion-gate"}, MaxAge: time.Hour}, "name"},
		{Policy{Name: "x", MaxAge: time.Hour}, "cameras"},
		{Policy{Name: "x", Cameras: []string{"bastion-gate"}, MaxAge: time.Hour, MaxBytes: -1}, "max_bytes"},
	} {
		errs := tc.p.Check(known)
		if len(errs) != 1 || errs[0].Field != tc.field {
			t.Errorf("%+v: errors %v, want one naming %s", tc.p, errs, tc.field)
		}
	}
	ok := Policy{Name: "long", Sites: []string{"palat"}, MaxAge: 60 * 24 * time.Hour, Justification: "ongoing inquiry",
		Schedule: "@every 10m"}
	if errs := ok.Check(known); len(errs) != 0 {
		t.Errorf("%+v: %v, want none", ok, errs)
	}
	_, errs := NewPolicies([]Policy{
		{Name: "a", Cameras: []string{"bastion-gate"}, MaxAge: time.Hour},
		{Name: "b", Cameras: []string{"bastion-gate"}, MaxAge: time.Hour},
	}, known)
	if len(errs) != 1 || errs[0].Index != 1 || errs[0].Field != "cameras[0]" || !strings.Contains(errs[0].Msg, `policy "a"`) {
		t.Errorf("two policies naming one camera: %v, want b.cameras[0] naming policy a", errs)
	}
}

func TestFormatAge(t *testing.T) {
	for d, want := range map[time.Duration]string{30 * 24 * time.Hour: "30d", 90 * time.Second: "1m30s",
		36 * time.Hour: "1d12h", 10 * time.Second: "10s", 2 * time.Hour: "2h", 10 * time.Minute: "10m",
		-time.Hour: "-1h", 24*time.Hour + 10*time.Minute: "1d10m", 0: "0s"} {
		if got := FormatAge(d); got != want {
			t.Errorf("FormatAge(%v) = %q, want %q", d, got, want)
		}
		if back, err := ParseAge(FormatAge(d)); err != nil || back != d {
			t.Errorf("ParseAge(%q) = %v, %v; want %v", FormatAge(d), back, err, d)
		}
	}
}

package ingest

import (
	"errors"
	"slices"
	"testing"
)

// TestDTSDeriver: decode times trail presentation times by one constant delay from
// the first unit of an epoch on, whatever the parameter sets say about reordering.
func TestDTSDeriver(t *testing.T) {
	const f = 3600 // one frame at 25 fps, in 90 kHz ticks
	// x264 -bf 3 with B-pyramid, in decode order: I0 P4 B2 b1 b3 P8 B6 b5 b7 I9 ...
	// (presentation index); it reorders 2 frames.
	var pyramid []int64
	for g := range 3 {
		for _, p := range []int64{0, 4, 2, 1, 3, 8, 6, 5, 7} {
			pyramid = append(pyramid, (int64(g)*9+p)*f+1000)
		}
	}
	plain := []int64{1000, 1000 + f, 1000 + 2*f, 1000 + 3*f, 1000 + 4*f, 1000 + 5*f, 1000 + 6*f, 1000 + 7*f, 1000 + 8*f}
	for _, tc := range []struct {
		name    string
		pts     []int64
		reorder int
		known   bool
		delay   int64 // PTS - DTS of the first unit
		hold    int   // units held before the first release
	}{
		{"B-frames, declared", pyramid, 2, true, 2 * f, 4},
		{"B-frames, learned", pyramid, 0, false, 2 * f, dtsLearnFrames},
		{"B-frames, overstated", pyramid, 3, true, 3 * f, 5},
		{"no reordering, declared", plain, 0, true, 0, 1},
		{"no reordering, learned", plain, 0, false, 0, dtsLearnFrames},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d dtsDeriver
			d.reset(tc.reorder, tc.known)
			var dts []int64
			for i, pts := range tc.pts {
				got, err := d.add(pts)
				if err != nil {
					t.Fatalf("unit %d: %v", i, err)
				}
				if len(dts) == 0 && len(got) > 0 && i+1 != tc.hold {
					t.Errorf("first release after %d units, want %d", i+1, tc.hold)
				}
				dts = append(dts, got...)
			}
			if want := len(tc.pts); len(dts) != want {
				t.Fatalf("%d decode times for %d units", len(dts), want)
			}
			sorted := slices.Sorted(slices.Values(tc.pts))
			for i := range dts {
				// Exact: the i-th decode time is the i-th presentation time less the delay.
				if want := sorted[i] - tc.delay; dts[i] != want {
					t.Errorf("unit %d: dts %d, want %d", i, dts[i], want)
				}
				if dts[i] > tc.pts[i] {
					t.Errorf("unit %d decoded (%d) after it is presented (%d)", i, dts[i], tc.pts[i])
				}
			}
		})
	}

	t.Run("deeper reordering than declared", func(t *testing.T) {
		var d dtsDeriver
		d.reset(1, true)
		var err error
		for _, pts := range pyramid {
			if _, err = d.add(pts); err != nil {
				break
			}
		}
		if !errors.Is(err, errDTSReorder) {
			t.Fatalf("err %v, want errDTSReorder", err)
		}
	})
	t.Run("timestamp jump", func(t *testing.T) {
		var d dtsDeriver
		d.reset(0, true)
		var err error
		for _, pts := range append(slices.Clone(plain), plain[len(plain)-1]+10*maxStep) {
			if _, err = d.add(pts); err != nil {
				break
			}
		}
		if err == nil {
			t.Fatal("a jump of 20 s went through")
		}
	})
}

// TestDTSDeriverAllocs: after the first units, deriving a decode time allocates
// nothing; it runs for every frame of every camera.
func TestDTSDeriverAllocs(t *testing.T) {
	var d dtsDeriver
	d.reset(2, true)
	pts := int64(0)
	pattern := []int64{0, 4, 2, 1, 3}
	n := 0
	add := func() {
		g, p := n/len(pattern), pattern[n%len(pattern)]
		pts = (int64(g)*5 + p) * 3600
		n++
		if _, err := d.add(pts); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 {
		add()
	}
	if a := testing.AllocsPerRun(1000, add); a != 0 {
		t.Errorf("%v allocations per unit, want 0", a)
	}
}

func TestPTSHeap(t *testing.T) {
	var h ptsHeap
	in := []int64{5, 3, 9, 1, 7, 3, 8, 2}
	for _, v := range in {
		h.push(v)
	}
	var out []int64
	for len(h) > 0 {
		out = append(out, h.pop())
	}
	if want := slices.Sorted(slices.Values(in)); !slices.Equal(out, want) {
		t.Errorf("popped %v, want %v", out, want)
	}
}

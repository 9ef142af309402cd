package streaming

import (
	"slices"
	"testing"
)

// The cache holds the GOP from its keyframe, starts over at the next keyframe without
// touching a slice already handed out, and drops a GOP that grows past MaxGOP until the
// next keyframe.
func TestGOP(t *testing.T) {
	var g GOP[int]
	g.Add(1, false) // no keyframe yet: nothing to start from
	if len(g.Units()) != 0 {
		t.Fatalf("cached %v before a keyframe", g.Units())
	}
	g.Add(2, true)
	g.Add(3, false)
	first := g.Units()
	g.Add(4, true)
	g.Add(5, false)
	if !slices.Equal(first, []int{2, 3}) || !slices.Equal(g.Units(), []int{4, 5}) {
		t.Fatalf("first GOP %v (want [2 3]), second %v (want [4 5])", first, g.Units())
	}
	for i := len(g.Units()); i < MaxGOP; i++ {
		g.Add(0, false)
	}
	if len(g.Units()) != MaxGOP {
		t.Fatalf("%d units, want %d", len(g.Units()), MaxGOP)
	}
	g.Add(0, false)
	g.Add(0, false)
	if len(g.Units()) != 0 {
		t.Fatalf("a GOP past MaxGOP still cached: %d units", len(g.Units()))
	}
	g.Add(9, true)
	if !slices.Equal(g.Units(), []int{9}) {
		t.Fatalf("after the next keyframe: %v", g.Units())
	}
}

func TestKeyGate(t *testing.T) {
	var g KeyGate
	if !g.Admit(false) {
		t.Fatal("an open gate refused a unit")
	}
	g.WaitKey()
	if g.Admit(false) || !g.Waiting() {
		t.Fatal("a waiting gate admitted a delta unit")
	}
	if !g.Admit(true) || g.Waiting() || !g.Admit(false) {
		t.Fatal("a keyframe did not open the gate")
	}
}

package streaming

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// testGOP is the GOP length of the test units: unit i is a keyframe when i%testGOP == 0.
const testGOP = 10

// frameTicks is one 25 fps frame in ClockRate ticks; a unit's number is PTS/frameTicks.
const frameTicks = ClockRate / 25

// guard bounds how long a test waits for something that should happen at once; it only
// turns a hang into a failure.
const guard = 10 * time.Second

func unit(i int) *Unit {
	return &Unit{
		Epoch: 1,
		PTS:   int64(i) * frameTicks,
		DTS:   int64(i) * frameTicks,
		Time:  time.Unix(1700000000, 0).Add(time.Duration(i) * 40 * time.Millisecond).UTC(),
		Key:   i%testGOP == 0,
		NALUs: [][]byte{{0x65, byte(i)}},
	}
}

func seq(u *Unit) int { return int(u.PTS / frameTicks) }

// writeRange writes units from..to-1 and, after each one, runs each.
func writeRange(s *Stream, from, to int, each func()) {
	for i := from; i < to; i++ {
		s.Write(unit(i))
		if each != nil {
			each()
		}
	}
}

// drain returns what is queued on r without blocking.
func drain(r *Reader) []Delivery {
	var out []Delivery
	for {
		select {
		case d, ok := <-r.C():
			if !ok {
				return out
			}
			out = append(out, d)
		default:
			return out
		}
	}
}

// drainClosed reads r until its channel is closed, failing if that does not happen.
func drainClosed(t *testing.T, r *Reader) []Delivery {
	t.Helper()
	var out []Delivery
	deadline := time.After(guard)
	for {
		select {
		case d, ok := <-r.C():
			if !ok {
				return out
			}
			out = append(out, d)
		case <-deadline:
			t.Fatalf("reader channel not closed after %d deliveries", len(out))
			return out
		}
	}
}

func seqs(ds []Delivery) []int {
	out := make([]int, len(ds))
	for i, d := range ds {
		out[i] = seq(d.Unit)
	}
	return out
}

func span(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkDeliveries asserts what a decoder relies on: a reader starts at a keyframe, and
// each delivery follows the previous one after exactly Lost missed units (so it resumes
// at a keyframe whenever it lost any). It works for one writer of consecutive units.
func checkDeliveries(ds []Delivery) error {
	for i, d := range ds {
		n := seq(d.Unit)
		if i == 0 {
			if !d.Unit.Key {
				return fmt.Errorf("first delivery is unit %d, not a keyframe", n)
			}
			continue
		}
		prev := seq(ds[i-1].Unit)
		if want := prev + 1 + int(d.Lost); n != want {
			return fmt.Errorf("delivery %d: unit %d after unit %d with Lost %d, want unit %d", i, n, prev, d.Lost, want)
		}
		if d.Lost > 0 && !d.Unit.Key {
			return fmt.Errorf("delivery %d: resumed after %d lost units at unit %d, not a keyframe", i, d.Lost, n)
		}
	}
	return nil
}

func TestFastReaderGetsEveryUnitFromFirstKey(t *testing.T) {
	tests := []struct {
		name       string
		firstUnit  int  // the stream's first unit (a camera may start mid-GOP)
		subscribed int  // units written before Subscribe
		fromGOP    bool // Subscribe's fromGOP
		want       []int
	}{
		{name: "subscribed before any unit", want: span(0, 35)},
		{name: "stream starts mid-GOP", firstUnit: 3, want: span(10, 35)},
		{name: "subscribed mid-GOP live only", subscribed: 5, want: span(10, 35)},
		{name: "subscribed mid-GOP from GOP", subscribed: 5, fromGOP: true, want: span(0, 35)},
		{name: "subscribed at a keyframe live only", subscribed: 10, want: span(10, 35)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			writeRange(s, tc.firstUnit, tc.firstUnit+tc.subscribed, nil)
			r := s.Subscribe(testGOP, tc.fromGOP)
			var got []Delivery
			got = append(got, drain(r)...)
			writeRange(s, tc.firstUnit+tc.subscribed, 35, func() { got = append(got, drain(r)...) })
			if !equalInts(seqs(got), tc.want) {
				t.Fatalf("received units %v, want %v", seqs(got), tc.want)
			}
			for _, d := range got {
				if d.Lost != 0 {
					t.Fatalf("unit %d delivered with Lost %d to a reader that kept up", seq(d.Unit), d.Lost)
				}
			}
			if err := checkDeliveries(got); err != nil {
				t.Fatal(err)
			}
			if r.Dropped() != 0 {
				t.Fatalf("Dropped = %d for a reader that kept up", r.Dropped())
			}
		})
	}
}

func TestStalledReaderDoesNotBlockWrite(t *testing.T) {
	const n, queue = 10000, 8
	s := New()
	r := s.Subscribe(queue, false)
	done := make(chan struct{})
	go func() {
		defer close(done)
		writeRange(s, 0, n, nil)
	}()
	select {
	case <-done:
	case <-time.After(guard):
		t.Fatalf("Write blocked on a reader that never reads: %d of %d units written", s.Written(), n)
	}
	if got := s.Written(); got != n {
		t.Errorf("Written = %d, want %d", got, n)
	}
	if got := r.Dropped(); got != n-queue {
		t.Errorf("Dropped = %d, want %d", got, n-queue)
	}
	if got := seqs(drain(r)); !equalInts(got, span(0, queue)) {
		t.Errorf("queued units %v, want %v", got, span(0, queue))
	}
}

func TestStalledReaderResumesAtKeyWithExactLost(t *testing.T) {
	const queue = 8
	tests := []struct {
		name       string
		stalled    int // units 0..stalled-1 are written while the reader does not read
		wantResume int // first unit delivered after the queued ones
		wantLost   uint64
	}{
		{name: "queue exactly full loses nothing", stalled: queue, wantResume: queue},
		{name: "one lost mid-GOP", stalled: queue + 1, wantResume: 10, wantLost: 2},
		{name: "drained just before a keyframe", stalled: 10, wantResume: 10, wantLost: 2},
		{name: "keyframe itself lost", stalled: 11, wantResume: 20, wantLost: 12},
		{name: "several GOPs lost", stalled: 25, wantResume: 30, wantLost: 22},
		{name: "long stall", stalled: 1000, wantResume: 1000, wantLost: 992},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const end = 1050
			s := New()
			slow := s.Subscribe(queue, false)
			fast := s.Subscribe(queue, false)
			var fastGot []Delivery
			keepUp := func() { fastGot = append(fastGot, drain(fast)...) }

			writeRange(s, 0, tc.stalled, keepUp)
			queued := drain(slow)
			if !equalInts(seqs(queued), span(0, queue)) {
				t.Fatalf("queued units %v, want %v", seqs(queued), span(0, queue))
			}
			var resumed []Delivery
			writeRange(s, tc.stalled, end, func() { keepUp(); resumed = append(resumed, drain(slow)...) })

			if len(resumed) == 0 {
				t.Fatal("stalled reader got nothing after it drained")
			}
			first := resumed[0]
			if seq(first.Unit) != tc.wantResume || first.Lost != tc.wantLost {
				t.Fatalf("resumed at unit %d with Lost %d, want unit %d with Lost %d",
					seq(first.Unit), first.Lost, tc.wantResume, tc.wantLost)
			}
			if tc.wantLost > 0 && !first.Unit.Key {
				t.Fatalf("resumed after a loss at unit %d, not a keyframe", seq(first.Unit))
			}
			if !equalInts(seqs(resumed), span(tc.wantResume, end)) {
				t.Fatalf("after resuming got %d units, want units %d..%d", len(resumed), tc.wantResume, end-1)
			}
			if err := checkDeliveries(append(queued, resumed...)); err != nil {
				t.Fatal(err)
			}
			if got := slow.Dropped(); got != tc.wantLost {
				t.Fatalf("Dropped = %d, want %d", got, tc.wantLost)
			}

			if !equalInts(seqs(fastGot), span(0, end)) {
				t.Fatalf("fast reader next to a stalled one got %d units, want all %d", len(fastGot), end)
			}
			if fast.Dropped() != 0 {
				t.Fatalf("fast reader Dropped = %d, want 0", fast.Dropped())
			}
		})
	}
}

func TestLostIsPerGapDroppedIsTotal(t *testing.T) {
	s := New()
	r := s.Subscribe(4, false)
	var got []Delivery
	writeRange(s, 0, 7, nil) // 0..3 queued, 4..6 lost
	got = append(got, drain(r)...)
	writeRange(s, 7, 25, func() { got = append(got, drain(r)...) }) // resumes at 10
	writeRange(s, 25, 33, nil)                                      // 25..28 queued, 29..32 lost
	got = append(got, drain(r)...)
	writeRange(s, 33, 45, func() { got = append(got, drain(r)...) }) // resumes at 40

	if err := checkDeliveries(got); err != nil {
		t.Fatal(err)
	}
	var lost []uint64
	for _, d := range got {
		if d.Lost > 0 {
			lost = append(lost, d.Lost)
		}
	}
	if len(lost) != 2 || lost[0] != 6 || lost[1] != 11 {
		t.Fatalf("Lost per gap = %v, want [6 11]", lost)
	}
	if r.Dropped() != 17 {
		t.Fatalf("Dropped = %d, want 17", r.Dropped())
	}
}

func TestSubscribeFromGOP(t *testing.T) {
	tests := []struct {
		name       string
		firstUnit  int
		written    int // units written before Subscribe, from firstUnit
		queue      int
		wantReplay []int // delivered at once by Subscribe
		wantLive   int   // first unit delivered by later writes
		wantLost   uint64
	}{
		{name: "empty stream", queue: 32, wantLive: 0},
		{name: "no keyframe yet", firstUnit: 3, written: 5, queue: 32, wantLive: 10},
		{name: "just after a keyframe", written: 11, queue: 32, wantReplay: []int{10}, wantLive: 11},
		{name: "mid GOP", written: 16, queue: 32, wantReplay: span(10, 16), wantLive: 16},
		{name: "at GOP end", written: 20, queue: 32, wantReplay: span(10, 20), wantLive: 20},
		{name: "queue smaller than GOP", written: 16, queue: 3, wantReplay: span(10, 13), wantLive: 20, wantLost: 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			start := tc.firstUnit + tc.written
			writeRange(s, tc.firstUnit, start, nil)
			r := s.Subscribe(tc.queue, true)
			replay := drain(r)
			if !equalInts(seqs(replay), tc.wantReplay) {
				t.Fatalf("replayed units %v, want %v", seqs(replay), tc.wantReplay)
			}
			var live []Delivery
			writeRange(s, start, 40, func() { live = append(live, drain(r)...) })
			if len(live) == 0 {
				t.Fatal("no live units after the replay")
			}
			if seq(live[0].Unit) != tc.wantLive || live[0].Lost != tc.wantLost {
				t.Fatalf("first live unit %d with Lost %d, want %d with Lost %d",
					seq(live[0].Unit), live[0].Lost, tc.wantLive, tc.wantLost)
			}
			if !equalInts(seqs(live), span(tc.wantLive, 40)) {
				t.Fatalf("live units %v, want %d..39", seqs(live), tc.wantLive)
			}
			if err := checkDeliveries(append(replay, live...)); err != nil {
				t.Fatal(err)
			}
			if r.Dropped() != tc.wantLost {
				t.Fatalf("Dropped = %d, want %d", r.Dropped(), tc.wantLost)
			}
		})
	}
}

func TestGOPLongerThanMaxGOPIsBounded(t *testing.T) {
	tests := []struct {
		name      string
		gopLen    int
		wantFirst int // first unit a fromGOP reader receives
	}{
		{name: "short GOP replayed whole", gopLen: MaxGOP - 1, wantFirst: 0},
		{name: "GOP of exactly MaxGOP replayed whole", gopLen: MaxGOP, wantFirst: 0},
		// A partial GOP replay would be followed by live units after a gap the reader
		// is not told about, so an overlong GOP is not replayed at all.
		{name: "one over MaxGOP waits for the next keyframe", gopLen: MaxGOP + 1, wantFirst: MaxGOP + 1},
		{name: "huge GOP waits for the next keyframe", gopLen: 5 * MaxGOP, wantFirst: 5 * MaxGOP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			key := func(i int) *Unit { u := unit(i); u.Key = i%tc.gopLen == 0; return u }
			for i := 0; i < tc.gopLen; i++ {
				s.Write(key(i))
			}
			s.mu.Lock()
			kept := len(s.gop.Units())
			s.mu.Unlock()
			if kept > MaxGOP {
				t.Fatalf("stream keeps %d units of the current GOP, more than MaxGOP %d", kept, MaxGOP)
			}
			r := s.Subscribe(tc.gopLen+10, true)
			end := tc.gopLen + 5
			for i := tc.gopLen; i < end; i++ {
				s.Write(key(i))
			}
			got := drain(r)
			if !equalInts(seqs(got), span(tc.wantFirst, end)) {
				first := -1
				if len(got) > 0 {
					first = seq(got[0].Unit)
				}
				t.Fatalf("fromGOP reader got %d units starting at %d, want units %d..%d",
					len(got), first, tc.wantFirst, end-1)
			}
			for i, d := range got {
				if i > 0 && (seq(d.Unit) != seq(got[i-1].Unit)+1 || d.Lost != 0) {
					t.Fatalf("gap before unit %d (Lost %d)", seq(d.Unit), d.Lost)
				}
			}
			if !got[0].Unit.Key {
				t.Fatalf("fromGOP reader starts at unit %d, not a keyframe", seq(got[0].Unit))
			}
		})
	}
}

func TestCloseClosesReadersAfterQueuedUnits(t *testing.T) {
	s := New()
	live := s.Subscribe(16, false)
	writeRange(s, 0, 5, nil)
	gop := s.Subscribe(16, true)
	writeRange(s, 5, 8, nil)
	s.Close()

	if got := seqs(drainClosed(t, live)); !equalInts(got, span(0, 8)) {
		t.Errorf("live reader got %v before close, want %v", got, span(0, 8))
	}
	if got := seqs(drainClosed(t, gop)); !equalInts(got, span(0, 8)) {
		t.Errorf("fromGOP reader got %v before close, want %v", got, span(0, 8))
	}

	// After Close nothing panics and nothing more is delivered.
	writeRange(s, 8, 20, nil)
	late := s.Subscribe(16, true)
	if got := drainClosed(t, late); len(got) != 0 {
		t.Errorf("reader subscribed after Close got %v", seqs(got))
	}
	late.Close()
	live.Close()
	live.Close()
	s.Close()
}

func TestReaderCloseTwice(t *testing.T) {
	s := New()
	r := s.Subscribe(16, false)
	other := s.Subscribe(16, false)
	writeRange(s, 0, 3, nil)
	r.Close()
	r.Close()
	if got := seqs(drainClosed(t, r)); !equalInts(got, span(0, 3)) {
		t.Fatalf("closed reader yielded %v, want its queued units %v", got, span(0, 3))
	}
	writeRange(s, 3, 12, nil) // must not send on r's closed channel
	if r.Dropped() != 0 {
		t.Fatalf("unsubscribed reader counts Dropped = %d", r.Dropped())
	}
	if got := seqs(drain(other)); !equalInts(got, span(0, 12)) {
		t.Fatalf("other reader got %v, want %v", got, span(0, 12))
	}
	s.Close()
	r.Close()
}

// TestConcurrentWriteSubscribeClose runs Write, Subscribe, reading, Reader.Close and
// Close at once; run it with -race. Whatever the interleaving, every reader must see a
// decodable sequence and every reader channel must be closed in the end.
func TestConcurrentWriteSubscribeClose(t *testing.T) {
	const units, closeAfter, subscribers = 20000, 5000, 6
	s := New()
	halfway := make(chan struct{})
	errs := make(chan error, subscribers)
	var wg sync.WaitGroup

	wg.Add(1)
	go func() { // the ingest; it keeps writing after Close
		defer wg.Done()
		for i := 0; i < units; i++ {
			s.Write(unit(i))
			if i == closeAfter {
				close(halfway)
			}
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-halfway
		s.Close()
	}()
	for g := 0; g < subscribers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := 0; ; round++ {
				r := s.Subscribe(1+(g+round)%16, (g+round)%2 == 0)
				if g == 0 { // a viewer that leaves without reading
					r.Close()
					for range r.C() { // queued units, then closed
					}
					if s.Written() >= closeAfter {
						return
					}
					continue
				}
				var got []Delivery
				closedByStream := true
				for d := range r.C() {
					got = append(got, d)
					if len(got) == 50+g*10 {
						closedByStream = false
						break
					}
				}
				if err := checkDeliveries(got); err != nil {
					errs <- err
					return
				}
				r.Close()
				r.Close()
				if closedByStream {
					return
				}
			}
		}()
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * guard):
		t.Fatal("writers, subscribers and Close did not finish")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s.Written() != units {
		t.Errorf("Written = %d, want %d", s.Written(), units)
	}
}

// BenchmarkStreamWrite measures the ingest's cost per unit with 1, 10 and 100 readers,
// both for readers that keep up (drained in the loop, so the receive is included) and
// for readers that stalled (the drop path).
func BenchmarkStreamWrite(b *testing.B) {
	gop := make([]*Unit, 50)
	for i := range gop {
		gop[i] = unit(i)
		gop[i].Key = i == 0
	}
	for _, stalled := range []bool{false, true} {
		for _, n := range []int{1, 10, 100} {
			name := fmt.Sprintf("readers=%d", n)
			if stalled {
				name = "stalled/" + name
			}
			b.Run(name, func(b *testing.B) {
				const queue, drainEvery = 256, 128
				s := New()
				readers := make([]*Reader, n)
				for i := range readers {
					readers[i] = s.Subscribe(queue, false)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					s.Write(gop[i%len(gop)])
					if !stalled && i%drainEvery == drainEvery-1 {
						for _, r := range readers {
							for len(r.c) > 0 {
								<-r.c
							}
						}
					}
				}
				b.StopTimer()
				if !stalled {
					for _, r := range readers {
						if r.Dropped() != 0 {
							b.Fatalf("drained reader dropped %d units", r.Dropped())
						}
					}
				}
				s.Close()
			})
		}
	}
}

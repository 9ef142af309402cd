package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"

	"github.com/straja-nvr/straja/storage"
)

// randomSegment makes fragments of random samples laid out as the recorder writes
// them, and the sample table a writer builds for them.
func randomSegment(rng *rand.Rand, w *storage.SampleTableWriter) ([]storage.Fragment, [][]storage.Sample, []byte) {
	w.Reset()
	var frags []storage.Fragment
	var want [][]storage.Sample
	off := int64(700) // the init
	for range 1 + rng.IntN(8) {
		f := storage.Fragment{Offset: off}
		dataOff := int64(100 + rng.IntN(400))
		w.Fragment(dataOff)
		pos := off + dataOff
		var ss []storage.Sample
		for range 1 + rng.IntN(30) {
			s := storage.Sample{Offset: pos, Size: uint32(rng.IntN(1 << uint(rng.IntN(24)))), Duration: 3600,
				PTSOffset: int32(rng.IntN(3) * 3600), Sync: rng.IntN(10) == 0}
			if rng.IntN(4) == 0 {
				s.Duration = uint32(rng.IntN(1 << 20))
			}
			if rng.IntN(8) == 0 {
				s.PTSOffset = -int32(rng.IntN(1 << 20))
			}
			w.Add(s.Size, s.Duration, s.PTSOffset, s.Sync)
			ss = append(ss, s)
			pos += int64(s.Size)
		}
		f.Size = pos - off + int64(rng.IntN(2)) // sometimes bytes after the samples
		off += f.Size
		frags = append(frags, f)
		want = append(want, ss)
	}
	return frags, want, w.Table()
}

// decode collects what DecodeSamples yields, per fragment.
func decode(table []byte, frags []storage.Fragment) ([][]storage.Sample, error) {
	out := make([][]storage.Sample, len(frags))
	n, err := storage.DecodeSamples(table, frags, func(i int, s storage.Sample) { out[i] = append(out[i], s) })
	if err != nil {
		return nil, err
	}
	if m, _ := storage.DecodeSamples(table, frags, nil); m != n {
		return nil, fmt.Errorf("%d samples counted, %d decoded", m, n)
	}
	return out, nil
}

func TestSampleTableRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var w storage.SampleTableWriter // the zero value, then reused
	for i := range 500 {
		frags, want, table := randomSegment(rng, &w)
		got, err := decode(table, frags)
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("segment %d: decoded\n%v\nwant\n%v", i, got, want)
		}
	}
}

// An hour at 25 fps in 1 s fragments, sizes of a 4 Mbit/s camera with a keyframe
// every 2 s, takes about 3 bytes a sample.
func TestSampleTableSize(t *testing.T) {
	var w storage.SampleTableWriter
	w.Reset()
	for i := range 3600 {
		w.Fragment(8 + 8 + 16 + 20 + 20 + 25*12 + 8)
		for j := range 25 {
			size := uint32(18000 + (i*25+j)%7*500) // 3.6 Mbit/s of P-frames

			if j == 0 && i%2 == 0 {
				size = 120000
			}
			w.Add(size, 3600, 0, j == 0 && i%2 == 0)
		}
	}
	n := len(w.Table())
	t.Logf("an hour at 25 fps: %d bytes (%.2f a sample)", n, float64(n)/90000)
	if n > 4*90000 {
		t.Errorf("an hour's sample table takes %d bytes, want at most 4 a sample", n)
	}
}

func TestSampleTableWriterLimits(t *testing.T) {
	var w storage.SampleTableWriter
	if w.Table() != nil {
		t.Error("a table of no samples")
	}
	w.Reset()
	w.Fragment(100)
	w.Fragment(100)
	w.Add(10, 1, 0, true)
	if w.Table() != nil {
		t.Error("a table with a fragment without samples")
	}
	w.Reset()
	w.Add(10, 1, 0, true)
	if w.Table() != nil {
		t.Error("a table with a sample outside any fragment")
	}
	w.Reset()
	w.Fragment(100)
	for range storage.MaxSegmentSamples + 1 {
		w.Add(1, 1, 0, false)
	}
	if w.Table() != nil {
		t.Errorf("a table of more than %d samples", storage.MaxSegmentSamples)
	}
	w.Reset()
	w.Fragment(100)
	w.Add(10, 1, 0, false)
	if w.Table() == nil {
		t.Error("Reset did not clear the previous segment's state")
	}
}

func TestDecodeSamplesRejects(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var w storage.SampleTableWriter
	frags, _, table := randomSegment(rng, &w)
	for n := range len(table) {
		if _, err := decode(table[:n], frags); !errors.Is(err, storage.ErrSampleTable) {
			t.Fatalf("table cut to %d of %d bytes: %v, want ErrSampleTable", n, len(table), err)
		}
	}
	if _, err := decode(append(bytes.Clone(table), 0), frags); !errors.Is(err, storage.ErrSampleTable) {
		t.Errorf("trailing byte: %v", err)
	}
	if _, err := decode(table, frags[:len(frags)-1]); !errors.Is(err, storage.ErrSampleTable) {
		t.Errorf("one fragment fewer: %v", err)
	}
	short := slices.Clone(frags)
	short[0].Size -= 300
	if _, err := decode(table, short); !errors.Is(err, storage.ErrSampleTable) {
		t.Errorf("samples past the fragment's end: %v", err)
	}
	// A fragment claiming a billion samples is refused before anything is allocated.
	huge := []byte{1, 1, 100, 0x80, 0x94, 0xeb, 0xdc, 0x03}
	huge = append(huge, make([]byte, 64)...)
	if _, err := storage.DecodeSamples(huge, []storage.Fragment{{Offset: 0, Size: 1 << 40}}, nil); !errors.Is(err, storage.ErrSampleTable) {
		t.Errorf("a billion samples: %v", err)
	}
	// A million samples claimed by a short table: refused before anything is made for
	// them (the error itself allocates a little; the race detector adds to it).
	big := []byte{1, 1, 100, 0x80, 0x80, 0x40}
	big = append(big, make([]byte, 64)...)
	called := false
	n := bytesPerRun(10, func() {
		if _, err := storage.DecodeSamples(big, []storage.Fragment{{Size: 1 << 40}}, func(int, storage.Sample) { called = true }); err == nil {
			t.Error("a short table claiming a million samples was accepted")
		}
	})
	if n > 4<<10 || called {
		t.Errorf("refusing a claim of a million samples allocated %d bytes (samples yielded: %v)", n, called)
	}
}

// bytesPerRun is the mean of the bytes f allocates, measured as testing.AllocsPerRun
// counts allocations: on one P, after a warm-up call.
func bytesPerRun(runs int, f func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// FuzzDecodeSamples feeds arbitrary tables to the decoder: it never panics, never
// yields more samples than the table has bytes, and what it accepts the writer
// encodes back to a table that decodes the same.
func FuzzDecodeSamples(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	var w storage.SampleTableWriter
	for range 8 {
		frags, _, table := randomSegment(rng, &w)
		f.Add(table, int64(len(frags)), frags[0].Size)
	}
	f.Fuzz(func(t *testing.T, table []byte, nfrags int64, size int64) {
		nfrags = min(max(nfrags, 0), 64)
		frags := make([]storage.Fragment, nfrags)
		for i := range frags {
			frags[i] = storage.Fragment{Offset: int64(i) * size, Size: size}
		}
		got, err := decode(table, frags)
		if err != nil {
			if !errors.Is(err, storage.ErrSampleTable) {
				t.Fatalf("error %v does not match ErrSampleTable", err)
			}
			return
		}
		var w storage.SampleTableWriter
		w.Reset()
		n := 0
		for i, ss := range got {
			w.Fragment(ss[0].Offset - frags[i].Offset)
			for _, s := range ss {
				w.Add(s.Size, s.Duration, s.PTSOffset, s.Sync)
				n++
			}
		}
		if n > len(table) {
			t.Fatalf("%d samples from %d bytes", n, len(table))
		}
		again, err := decode(w.Table(), frags)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("re-encoded and decoded again: %v, %v; first decoded %v", again, err, got)
		}
	})
}

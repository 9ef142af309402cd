package playback

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
)

// FuzzParseInit feeds the init reader (ftyp+moov of a segment, read from the store)
// with mutations of a real one: it may refuse, never panic or hang.
func FuzzParseInit(f *testing.F) {
	seg := playbacktest.SegmentBytes(f, 0, 50)
	idx := playbacktest.Segment(f, "gate", t0Fuzz, seg)
	f.Add(seg[:idx.Fragments[0].Offset])
	f.Add([]byte{0, 0, 0, 8, 'm', 'o', 'o', 'v'})
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := parseInit(b)
		if err == nil && (in.timescale == 0 || len(in.stsd) < 24) {
			t.Fatalf("accepted an init without timescale or sample description: %+v", in)
		}
	})
}

// memObjects is an ObjectReader over byte slices in memory.
type memObjects map[string][]byte

func (m memObjects) Get(_ context.Context, key string, off, n int64) (io.ReadCloser, error) {
	b, ok := m[key]
	if !ok || off < 0 || off > int64(len(b)) {
		return nil, storage.ErrNotFound
	}
	b = b[off:]
	if n >= 0 && n < int64(len(b)) {
		b = b[:n]
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// FuzzFragment feeds the moof reader the movie builds its sample tables with: a
// fragment's bytes as the store returns them. It may refuse, never panic, and every
// sample it accepts lies inside the fragment.
func FuzzFragment(f *testing.F) {
	seg := playbacktest.SegmentBytes(f, 0, 50)
	idx := playbacktest.Segment(f, "gate", t0Fuzz, seg)
	in, err := parseInit(seg[:idx.Fragments[0].Offset])
	if err != nil {
		f.Fatal(err)
	}
	for _, fr := range idx.Fragments {
		f.Add(seg[fr.Offset : fr.Offset+fr.Size])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		src := source{seg: storage.Segment{Camera: "gate", Start: t0Fuzz, Key: "k"}}
		p := New(nil, memObjects{"k": b}, nil)
		fr, err := p.fragment(context.Background(), src, storage.Fragment{Size: int64(len(b))}, in)
		if err != nil {
			return
		}
		for _, s := range fr.samples {
			if s.off < 0 || s.off+int64(s.size) > int64(len(b)) {
				t.Fatalf("sample at %d+%d outside the %d-byte fragment", s.off, s.size, len(b))
			}
		}
	})
}

var t0Fuzz = mustTime("2026-11-30T10:00:00Z")

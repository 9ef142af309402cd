package playback

import (
	"fmt"
	"sort"

	"github.com/straja-nvr/straja/storage"
)

// A segment catalogued with its init section and sample table (recorded when it was
// written, or by a catalog rebuild) needs no read of the store to make a movie's
// header: these build from them exactly what reading its init and moofs would.

// recordedInit parses the init section the catalog has for src; false when it has
// none.
func (p *Player) recordedInit(src source) (*initInfo, bool, error) {
	if len(src.seg.Init) == 0 {
		return nil, false, nil
	}
	k := cacheKey{camera: src.seg.Camera, start: src.seg.Start.UnixMilli()}
	if e, ok := p.cache.get(k); ok {
		return e.init, true, nil
	}
	in, err := parseInit(src.seg.Init)
	if err != nil {
		return nil, true, fmt.Errorf("segment %s: recorded init: %w", src.seg.Key, err)
	}
	p.cache.put(k, cacheEntry{init: in})
	return in, true, nil
}

// recordedTables decodes the sample tables of a movie's sources, once per source.
type recordedTables struct {
	frags map[int][]*fragment // by source index: per fragment of the segment
}

// fragment returns the samples of fragment f of source i (srcs[i]) from its sample
// table; false when the catalog has no table for it.
func (t *recordedTables) fragment(srcs []source, i int, f storage.Fragment) (*fragment, bool, error) {
	seg := srcs[i].seg
	if len(seg.Samples) == 0 {
		return nil, false, nil
	}
	frags, ok := t.frags[i]
	if !ok {
		// Checked whole first, then decoded straight into the segment's samples.
		n, err := storage.DecodeSamples(seg.Samples, seg.Fragments, nil)
		if err != nil {
			return nil, true, fmt.Errorf("segment %s: %w", seg.Key, err)
		}
		all := make([]sample, 0, n)
		ends := make([]int, len(seg.Fragments))
		storage.DecodeSamples(seg.Samples, seg.Fragments, func(j int, s storage.Sample) {
			all = append(all, sample{off: s.Offset, size: s.Size, dur: s.Duration, cto: s.PTSOffset, sync: s.Sync})
			ends[j] = len(all)
		})
		holders := make([]fragment, len(ends))
		frags = make([]*fragment, len(ends))
		at := 0
		for j, end := range ends {
			holders[j].samples = all[at:end:end]
			frags[j] = &holders[j]
			at = end
		}
		if t.frags == nil {
			t.frags = make(map[int][]*fragment)
		}
		t.frags[i] = frags
	}
	j := sort.Search(len(seg.Fragments), func(j int) bool { return seg.Fragments[j].Offset >= f.Offset })
	if j == len(seg.Fragments) || seg.Fragments[j].Offset != f.Offset {
		return nil, true, fmt.Errorf("segment %s: no fragment at %d", seg.Key, f.Offset)
	}
	return frags[j], true, nil
}

package playback

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/straja-nvr/straja/storage"
)

// countedObject serves one object from memory and counts the reads.
type countedObject struct {
	data  []byte
	reads atomic.Int32
}

func (m *countedObject) Get(_ context.Context, _ string, off, n int64) (io.ReadCloser, error) {
	m.reads.Add(1)
	return io.NopCloser(bytes.NewReader(m.data[off : off+n])), nil
}

// access unit of length-prefixed H.265 NAL units of the given types and sizes.
func hevcAU(types ...int) []byte {
	var b []byte
	for _, typ := range types {
		n := 20
		if typ >= hevcVCL {
			n = 300 // a large SEI or parameter set: the slice header is past the first read
		}
		b = binary.BigEndian.AppendUint32(b, uint32(n))
		b = append(b, byte(typ<<1), 1)
		b = append(b, make([]byte, n-2)...)
	}
	return b
}

// TestLeading: after a CRA keyframe, the leading pictures that reference footage
// before it (RASL) are left out and the decodable ones (RADL) kept, found by reading
// sample headers only, once; a closed group costs no read.
func TestLeading(t *testing.T) {
	const frame, delay = 3600, 7200
	type pic struct {
		types []int
		shown int64 // presentation index; decode index is the position
	}
	const cra, idr, trail, rasl, radl, sei, vps = 21, 19, 1, 8, 7, 39, 32
	for name, tc := range map[string]struct {
		codec    string
		pics     []pic
		drop     []int
		earliest int64
		reads    int32
	}{
		"open": {codec: "hvc1", pics: []pic{{[]int{vps, vps, vps, cra}, 4}, {[]int{rasl + 1}, 2}, {[]int{sei, rasl}, 0},
			{[]int{sei, rasl}, 1}, {[]int{rasl}, 3}, {[]int{trail}, 6}, {[]int{trail}, 5}},
			drop: []int{1, 2, 3, 4}, earliest: 4 * frame, reads: 6},
		"decodable leading pictures stay": {codec: "hvc1", pics: []pic{{[]int{cra}, 3}, {[]int{rasl}, 1}, {[]int{radl}, 0},
			{[]int{radl}, 2}, {[]int{trail}, 4}},
			drop: []int{1}, earliest: 0, reads: 3},
		"closed": {codec: "hvc1", pics: []pic{{[]int{vps, idr}, 0}, {[]int{trail}, 2}, {[]int{trail}, 1}},
			reads: 0},
		"h264": {codec: "avc1", pics: []pic{{[]int{5}, 1}, {[]int{1}, 0}, {[]int{1}, 2}}, reads: 0},
	} {
		t.Run(name, func(t *testing.T) {
			var obj countedObject
			var samples []sample
			var dts []int64
			for i, p := range tc.pics {
				au := hevcAU(p.types...)
				samples = append(samples, sample{off: int64(len(obj.data)), size: uint32(len(au)), dur: frame,
					cto: int32(p.shown*frame + delay - int64(i)*frame), sync: i == 0})
				dts = append(dts, int64(i)*frame)
				obj.data = append(obj.data, au...)
			}
			p := New(nil, &obj, nil)
			srcs := []source{{seg: storage.Segment{Key: "gate/x.mp4"}}}
			li, err := p.leading(t.Context(), srcs, &initInfo{codec: tc.codec}, samples, make([]int, len(samples)), dts)
			if err != nil {
				t.Fatal(err)
			}
			if li.delay != delay {
				t.Errorf("delay %d, want %d", li.delay, delay)
			}
			if !slices.Equal(li.drop, tc.drop) || li.earliest != tc.earliest {
				t.Errorf("drop %v earliest %d, want %v %d", li.drop, li.earliest, tc.drop, tc.earliest)
			}
			if n := obj.reads.Load(); n != tc.reads {
				t.Errorf("%d reads, want %d", n, tc.reads)
			}
			// The next Range request of the movie reads nothing more.
			again, err := p.leading(t.Context(), srcs, &initInfo{codec: tc.codec}, samples, make([]int, len(samples)), dts)
			if err != nil || !slices.Equal(again.drop, li.drop) || obj.reads.Load() != tc.reads {
				t.Errorf("again: drop %v, %d reads in all, %v; want %v, %d", again.drop, obj.reads.Load(), err, li.drop, tc.reads)
			}
		})
	}
}

package playback

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
)

// H.265 NAL unit types a movie's start looks at: leading pictures (shown before the
// keyframe they follow in decode order) that are decodable (RADL) or that reference
// pictures before the keyframe (RASL), which a movie starting there does not have.
const (
	hevcRADLN = 6
	hevcRADLR = 7
	hevcRASLN = 8
	hevcRASLR = 9
	hevcVCL   = 32 // types below are picture slices
)

// maxLeading bounds the leading pictures looked at: a GOP's reordering is a few frames.
const maxLeading = 64

// leadInfo says how a movie starts.
type leadInfo struct {
	// delay is the presentation time of the keyframe's group's earliest picture
	// (kept or not) minus the keyframe's decode time: the stream's decode delay,
	// what the movie's time axis is offset by (the recorder dates a segment by it).
	delay int64
	// earliest is how long after the group's earliest picture the earliest picture
	// the movie keeps is shown: 0 unless leading pictures are left out.
	earliest int64
	// drop lists the samples to leave out, ascending.
	drop []int
}

// leading finds the leading pictures after the movie's first sample (a keyframe) and
// which of them reference footage before it (H.265 RASL, after a CRA keyframe): those
// are left out, since a decoder starting at the keyframe cannot make them. It reads
// only the first bytes of each leading sample; closed groups (no picture after the
// keyframe shown before it) cost no read at all.
func (p *Player) leading(ctx context.Context, srcs []source, in *initInfo, samples []sample, srcOf []int, dts []int64) (leadInfo, error) {
	keyPTS := dts[0] + int64(samples[0].cto)
	minPTS := keyPTS
	n := 1
	for n < len(samples) && n <= maxLeading && dts[n]+int64(samples[n].cto) < keyPTS {
		minPTS = min(minPTS, dts[n]+int64(samples[n].cto))
		n++
	}
	li := leadInfo{delay: minPTS - dts[0]}
	if n == 1 || (in.codec != "hvc1" && in.codec != "hev1") {
		return li, nil
	}
	types := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		src := srcs[srcOf[i]]
		k := cacheKey{camera: src.seg.Camera, start: src.seg.Start.UnixMilli(), offset: samples[i].off}
		if typ, ok := p.leads.get(k); ok {
			types[i] = typ
			continue
		}
		wg.Go(func() {
			if types[i], errs[i] = p.pictureType(ctx, src, samples[i]); errs[i] == nil {
				p.leads.put(k, types[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return li, err
	}
	kept := keyPTS
	for i := 1; i < n; i++ {
		if types[i] == hevcRASLN || types[i] == hevcRASLR {
			li.drop = append(li.drop, i)
			continue
		}
		kept = min(kept, dts[i]+int64(samples[i].cto))
	}
	li.earliest = kept - minPTS
	return li, nil
}

// pictureType returns the H.265 NAL unit type of the first picture slice of s, reading
// NAL unit headers only: a sample's first bytes, then further on past a large non-slice
// unit (parameter sets, SEI); -1 if it has none, and the sample is kept.
func (p *Player) pictureType(ctx context.Context, src source, s sample) (int, error) {
	const chunk = 256
	for at := int64(0); at+5 <= int64(s.size); {
		buf, err := p.readAll(ctx, src, s.off+at, min(chunk, int64(s.size)-at))
		if err != nil {
			return 0, err
		}
		for len(buf) >= 5 { // a 4-byte length, then the NAL unit header
			typ := int(buf[4]>>1) & 0x3f
			if typ < hevcVCL {
				return typ, nil
			}
			n := int64(binary.BigEndian.Uint32(buf)) + 4
			at += n
			if n > int64(len(buf)) {
				break
			}
			buf = buf[n:]
		}
	}
	return -1, nil
}

// drop returns xs without the elements at the ascending indices in idx.
func drop[T any](xs []T, idx []int) []T {
	if len(idx) == 0 {
		return xs
	}
	out := xs[:0] // in place: the layout is the movie's own
	j := 0
	for i, x := range xs {
		if j < len(idx) && idx[j] == i {
			j++
			continue
		}
		out = append(out, x)
	}
	return out
}

// maxLeadTypes bounds the picture types kept: a few per keyframe a movie started at.
const maxLeadTypes = 1 << 14

// leadCache keeps the picture types of leading samples, which never change once
// written, so that the Range requests of one movie read them once. The zero value is
// ready; safe for concurrent use.
type leadCache struct {
	mu sync.Mutex
	m  map[cacheKey]int
}

func (c *leadCache) get(k cacheKey) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	typ, ok := c.m[k]
	return typ, ok
}

func (c *leadCache) put(k cacheKey, typ int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxLeadTypes {
		c.m = make(map[cacheKey]int) // start over rather than track age
	}
	c.m[k] = typ
}

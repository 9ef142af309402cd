package ingest

import (
	"errors"
	"fmt"
	"slices"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/straja-nvr/straja/streaming"
)

// dtsLearnFrames is how many units a session holds back at its start to learn how
// deeply the camera reorders frames, when its parameter sets do not say: about 0.3 s
// once per session, in exchange for exact timestamps from the first frame.
const dtsLearnFrames = 8

// errDTSReorder reports a unit presented earlier than the reorder depth allows.
var errDTSReorder = errors.New("frame reordered deeper than the stream declared")

// dtsDeriver gives units decode timestamps with one constant delay behind their
// presentation timestamps for a whole epoch, from its first unit on: the decode
// time of unit i is the (i-R)-th smallest presentation time, R being how many frames
// the camera reorders. A constant delay makes every segment last exactly as long as
// its frames, so segments join without a hole. (mediacommon's DTSExtractor learns the
// reordering as frames come and fills in 1-tick steps meanwhile, which made each
// session's first segment of a B-frame camera short by the delay.)
//
// The first units wait until the delay is known: R+2 units when the parameter sets
// give R (enough to see the frame interval), dtsLearnFrames when they do not, none
// when there is no reordering.
type dtsDeriver struct {
	reorder int     // R
	known   bool    // R came from the parameter sets
	held    []int64 // presentation times of the units not yet given a decode time
	queue   ptsHeap // presentation times not yet used as a decode time
	out     []int64 // add's result, reused
	n       int     // units seen this epoch
	prev    int64
	started bool // a decode time was given
}

// reset starts an epoch whose camera reorders reorder frames (known) or an unknown
// number of frames, at least reorder.
func (d *dtsDeriver) reset(reorder int, known bool) {
	*d = dtsDeriver{reorder: reorder, known: known, held: d.held[:0], queue: d.queue[:0], out: d.out[:0]}
}

// add takes the next unit's presentation time, in decode order, and returns the
// decode times of the units that are ready, oldest first: none while the first units
// are held back, all of them when the hold ends, else just this unit's. The result is
// valid until the next call.
func (d *dtsDeriver) add(pts int64) ([]int64, error) {
	d.n++
	d.queue.push(pts)
	if d.started {
		return d.next(pts)
	}
	d.held = append(d.held, pts)
	wait := d.reorder + 2
	if d.reorder == 0 && d.known {
		wait = 1
	}
	if !d.known {
		wait = max(wait, dtsLearnFrames)
	}
	if len(d.held) < wait {
		return nil, nil
	}
	return d.release()
}

// release ends the hold: it settles R and the frame interval from the held units and
// gives each its decode time.
func (d *dtsDeriver) release() ([]int64, error) {
	if !d.known {
		d.reorder = max(d.reorder, dtsLateness(d.held))
	}
	sorted := slices.Sorted(slices.Values(d.held))
	var frame int64
	for i := 1; i < len(sorted); i++ {
		if gap := sorted[i] - sorted[i-1]; gap > 0 && (frame == 0 || gap < frame) {
			frame = gap
		}
	}
	if d.reorder > 0 && frame == 0 {
		return nil, errors.New("no frame interval in the first frames")
	}
	if d.reorder >= len(d.held) {
		return nil, fmt.Errorf("%w: %d frames", errDTSReorder, d.reorder)
	}
	// Units before R get decode times one frame apart, ending one frame before the
	// smallest presentation time among units 0..R, which unit R gets.
	base := slices.Min(d.held[:d.reorder+1])
	out := d.out[:0]
	for i, pts := range d.held {
		var dts int64
		if i < d.reorder {
			dts = base - int64(d.reorder-i)*frame
		} else {
			dts = d.queue.pop()
		}
		if err := d.check(dts, pts); err != nil {
			return nil, err
		}
		out = append(out, dts)
	}
	d.held, d.out = d.held[:0], out
	return out, nil
}

// next gives one unit after the hold its decode time.
func (d *dtsDeriver) next(pts int64) ([]int64, error) {
	dts := d.queue.pop()
	if err := d.check(dts, pts); err != nil {
		return nil, err
	}
	d.out = append(d.out[:0], dts)
	return d.out, nil
}

// check accepts dts for a unit presented at pts after the previous decode time.
func (d *dtsDeriver) check(dts, pts int64) error {
	switch {
	case dts > pts:
		return fmt.Errorf("%w (%d frames)", errDTSReorder, d.reorder)
	case d.started && dts == d.prev:
		return errors.New("dts repeated")
	case d.started && dts < d.prev && d.prev-dts <= maxStep:
		// A frame presented before one already decoded: reordered more than assumed.
		return fmt.Errorf("%w (%d frames): dts went back by %s", errDTSReorder, d.reorder, ticksToDuration(d.prev-dts))
	case d.started && dts <= d.prev:
		return fmt.Errorf("dts went back by %s", ticksToDuration(d.prev-dts))
	case d.started && dts-d.prev > maxStep:
		return fmt.Errorf("dts jumped by %s", ticksToDuration(dts-d.prev))
	}
	d.prev, d.started = dts, true
	return nil
}

// dtsLateness is how many frames the most reordered unit of pts (in decode order)
// comes after frames presented later than it.
func dtsLateness(pts []int64) int {
	most := 0
	for j, p := range pts {
		n := 0
		for _, q := range pts[:j] {
			if q > p {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}

// dtsReorder reads from a codec's sequence parameter set how many frames it may
// reorder; known is false when the SPS does not say.
func dtsReorder(codec streaming.Codec, sps []byte) (reorder int, known bool) {
	if codec == streaming.H265 {
		var s h265.SPS
		if s.Unmarshal(sps) != nil || len(s.MaxNumReorderPics) == 0 {
			return 0, false
		}
		return int(s.MaxNumReorderPics[len(s.MaxNumReorderPics)-1]), true
	}
	var s h264.SPS
	if s.Unmarshal(sps) != nil {
		return 0, false
	}
	switch {
	case s.ProfileIdc == 66 || s.PicOrderCntType == 2: // baseline, or output order = decode order
		return 0, true
	case s.VUI != nil && s.VUI.BitstreamRestriction != nil:
		return int(s.VUI.BitstreamRestriction.MaxNumReorderFrames), true
	}
	return 0, false
}

// ptsHeap is a min-heap of presentation times, without container/heap's boxing: it
// holds a handful of values and is used once per frame.
type ptsHeap []int64

func (h *ptsHeap) push(v int64) {
	*h = append(*h, v)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if q[p] <= q[i] {
			break
		}
		q[p], q[i] = q[i], q[p]
		i = p
	}
}

func (h *ptsHeap) pop() int64 {
	q := *h
	top, n := q[0], len(q)-1
	q[0] = q[n]
	q = q[:n]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < n && q[l] < q[small] {
			small = l
		}
		if r := l + 1; r < n && q[r] < q[small] {
			small = r
		}
		if small == i {
			break
		}
		q[i], q[small] = q[small], q[i]
		i = small
	}
	*h = q
	return top
}

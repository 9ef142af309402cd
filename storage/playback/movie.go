package playback

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/straja-nvr/straja/internal/mp4"
	"github.com/straja-nvr/straja/storage"
)

// Movie is a virtual progressive MP4 of one camera over a time range: ftyp, moov
// (sample tables built from the segments' moofs, an edit list so that playback starts
// at the requested time), then one mdat whose bytes are the segments' sample data,
// read on demand with ranged reads. Timestamps are continuous across segments: the
// movie's time is wall-clock time since Start (a gap in the recording holds the last
// picture). Immutable; safe for concurrent use.
type Movie struct {
	p          *Player
	camera     string
	start, end time.Time
	header     []byte // ftyp, moov, mdat header
	chunks     []chunk
	srcs       []source
	used       []storage.Segment
	size       int64
	etag       string
	footage    footageSum // the segments it was built from (moviecache.go)
}

// chunk is a run of contiguous sample bytes of one source.
type chunk struct {
	vOff   int64 // in the movie
	objOff int64 // in the source object
	n      int64
	src    int // index into Movie.srcs
}

// initInfo is what a movie takes from a segment's init (ftyp+moov).
type initInfo struct {
	timescale uint32
	trex      mp4.TrackDefaults
	stsd      []byte // the whole box
	hdlr      []byte // the whole box
	vmhd      []byte
	dinf      []byte
	width     uint32 // tkhd 16.16
	height    uint32
	codec     string // sample entry type
}

// sample is one video sample of a fragment, as the movie needs it.
type sample struct {
	off  int64 // in the object
	size uint32
	dur  uint32
	cto  int32
	sync bool
}

// fragment is one parsed moof of the reference track.
type fragment struct {
	samples []sample
}

// fetchers bounds the ranged reads of moofs in flight for one movie.
const fetchers = 32

// Movie makes the movie of camera's footage in [from, to). It starts at the keyframe
// at or before from (or at the first keyframe after it when from falls in a gap),
// with an edit list so that playback starts at from, and ends at to or at the end of
// the footage. Footage whose codec parameters change ends the movie early: End says
// where. Errors: *RangeError for a bad range, ErrNoFootage when nothing is recorded.
func (p *Player) Movie(ctx context.Context, camera string, from, to time.Time) (*Movie, error) {
	if err := CheckRange(from, to); err != nil {
		return nil, err
	}
	footage, err := p.footageNow(ctx, camera, from, to)
	if err != nil {
		return nil, fmt.Errorf("movie %s: %w", camera, err)
	}
	k := movieKey{camera: camera, from: from.UnixNano(), to: to.UnixNano()}
	return p.movies.get(ctx, k, footage, func(ctx context.Context) (*Movie, footageSum, error) {
		m, err := p.movie(ctx, camera, from, to, false)
		if err != nil {
			return nil, footageSum{}, err
		}
		return m, m.footage, nil
	})
}

// Still makes a movie of one picture: the keyframe at or before at, for previews
// the browser decodes. ErrNoFootage when at is not recorded.
func (p *Player) Still(ctx context.Context, camera string, at time.Time) (*Movie, error) {
	if at.IsZero() {
		return nil, &RangeError{Field: "at", Msg: "is required"}
	}
	m, err := p.movie(ctx, camera, at, at.Add(time.Millisecond), true)
	if err == nil && m.start.After(at) {
		err = fmt.Errorf("still %s at %s: %w", camera, at.UTC().Format(time.RFC3339), ErrNoFootage)
	}
	return m, err
}

func (p *Player) movie(ctx context.Context, camera string, from, to time.Time, still bool) (*Movie, error) {
	p.builds.Add(1)
	srcs, footage, err := p.segments(ctx, camera, from, to)
	if err != nil {
		return nil, fmt.Errorf("movie %s: %w", camera, err)
	}
	// Pick the fragments: from the last keyframe at or before from, to the first one
	// starting at or after to.
	type pick struct {
		src  int
		frag storage.Fragment
	}
	nfrags := 0
	for _, s := range srcs {
		nfrags += len(s.seg.Fragments)
	}
	picks := make([]pick, 0, nfrags)
	for i, s := range srcs {
		first := 0
		if len(picks) == 0 {
			first = -1
			for j, f := range s.seg.Fragments {
				if !f.Key {
					continue
				}
				if !s.seg.Start.Add(f.Start).After(from) || first < 0 {
					first = j
				}
				if s.seg.Start.Add(f.Start).After(from) {
					break
				}
			}
			if first < 0 {
				continue
			}
		}
		for _, f := range s.seg.Fragments[first:] {
			if !s.seg.Start.Add(f.Start).Before(to) {
				// And the next one: with reordering, the pictures it decodes first
				// may be shown before to (the layout below takes only those).
				if !still && len(picks) > 0 {
					picks = append(picks, pick{i, f})
				}
				break
			}
			picks = append(picks, pick{i, f})
			if still {
				break
			}
		}
		if still && len(picks) > 0 {
			break
		}
	}
	if len(picks) == 0 {
		return nil, fmt.Errorf("movie %s %s to %s: %w", camera, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), ErrNoFootage)
	}

	// Read the inits and moofs, a few at a time.
	inits := make(map[int]*initInfo)
	for _, pk := range picks {
		if _, ok := inits[pk.src]; !ok {
			in, err := p.init(ctx, srcs[pk.src])
			if err != nil {
				return nil, fmt.Errorf("movie %s: %w", camera, err)
			}
			inits[pk.src] = in
		}
	}
	frags := make([]*fragment, len(picks))
	errs := make([]error, len(picks))
	var wg sync.WaitGroup
	sem := make(chan struct{}, fetchers)
	var tables recordedTables
	for i, pk := range picks {
		fr, ok, err := tables.fragment(srcs, pk.src, pk.frag)
		if err != nil {
			return nil, fmt.Errorf("movie %s: %w", camera, err)
		}
		if ok {
			frags[i] = fr
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			frags[i], errs[i] = p.fragment(ctx, srcs[pk.src], pk.frag, inits[pk.src])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("movie %s: %w", camera, err)
	}

	// Lay out samples on the movie's time axis.
	ref := inits[picks[0].src]
	ts := int64(ref.timescale)
	t0 := srcs[picks[0].src].seg.Start.Add(picks[0].frag.Start)
	toTicks := func(d time.Duration) int64 { return d.Nanoseconds() / 1000 * ts / 1_000_000 }
	// The layout holds at most every sample of the picked fragments: size it once.
	total := 0
	for _, fr := range frags {
		total += len(fr.samples)
	}
	var (
		dts     = make([]int64, 0, total)
		samples = make([]sample, 0, total)
		srcOf   = make([]int, 0, total)
	)
	wall := func(ticks int64) time.Time { return t0.Add(time.Duration(ticks) * time.Second / time.Duration(ts)) }
	// With reordering, frames decoded up to a decode delay after to are shown before
	// it: take them too (the edit list still ends the movie at to). The first
	// keyframe's composition offset is at least that delay.
	slack := int64(frags[0].samples[0].cto)
picks:
	for i, pk := range picks {
		// Footage with other codec parameters ends the movie: one sample
		// description serves all samples.
		if !bytes.Equal(inits[pk.src].stsd, ref.stsd) || inits[pk.src].timescale != ref.timescale {
			break
		}
		base := toTicks(srcs[pk.src].seg.Start.Add(pk.frag.Start).Sub(t0))
		for _, s := range frags[i].samples {
			if n := len(dts); n > 0 && base <= dts[n-1] {
				base = dts[n-1] + 1
			}
			if !wall(base - slack).Before(to) {
				break picks
			}
			dts = append(dts, base)
			samples = append(samples, s)
			srcOf = append(srcOf, pk.src)
			base += int64(s.dur)
			if still {
				break picks
			}
		}
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("movie %s: %w", camera, ErrNoFootage)
	}
	// A movie that starts at a keyframe whose leading pictures reference footage
	// before it leaves them out.
	lead := leadInfo{delay: int64(samples[0].cto)}
	if !still {
		if lead, err = p.leading(ctx, srcs, ref, samples, srcOf, dts); err != nil {
			return nil, fmt.Errorf("movie %s: %w", camera, err)
		}
		samples, dts, srcOf = drop(samples, lead.drop), drop(dts, lead.drop), drop(srcOf, lead.drop)
	}
	durs := make([]uint32, len(samples))
	for i := range samples {
		if i+1 < len(samples) {
			durs[i] = uint32(dts[i+1] - dts[i])
		} else {
			durs[i] = max(samples[i].dur, 1)
		}
	}
	mediaEnd := dts[len(dts)-1] + int64(durs[len(durs)-1])
	start := from
	if first := wall(lead.earliest); first.After(from) {
		start = first
	}
	end := wall(mediaEnd)
	if still {
		start = t0
	} else if end.After(to) {
		end = to
	}
	if !end.After(start) {
		return nil, fmt.Errorf("movie %s: %w", camera, ErrNoFootage)
	}

	// Chunks: runs of contiguous samples of one source.
	m := &Movie{p: p, camera: camera, start: start, end: end, srcs: srcs, footage: footage, chunks: make([]chunk, 0, len(picks))}
	chunkSamples := make([]uint32, 0, len(picks))
	for i, s := range samples {
		if n := len(m.chunks); n > 0 {
			c := &m.chunks[n-1]
			if c.src == srcOf[i] && c.objOff+c.n == s.off {
				c.n += int64(s.size)
				chunkSamples[n-1]++
				continue
			}
		}
		m.chunks = append(m.chunks, chunk{objOff: s.off, n: int64(s.size), src: srcOf[i]})
		chunkSamples = append(chunkSamples, 1)
	}
	seen := make(map[int]bool)
	for _, c := range m.chunks {
		if !seen[c.src] {
			seen[c.src] = true
			m.used = append(m.used, srcs[c.src].seg)
		}
	}

	edit := movieTables{
		timescale:  ref.timescale,
		mediaTime:  toTicks(start.Sub(t0)) + lead.delay,
		editTicks:  toTicks(end.Sub(start)),
		mediaTicks: mediaEnd,
		created:    start,
		in:         ref,
		samples:    samples,
		durs:       durs,
		perChunk:   chunkSamples,
	}
	// The header's size does not depend on the chunk offsets: build it once, then
	// fill them in.
	var dataSize int64
	m.header, dataSize = edit.header(m.chunks)
	m.size = int64(len(m.header)) + dataSize

	// The ETag names the bytes: the header (all sample tables) and where each chunk
	// comes from, by segment start rather than key, so footage moving from the spool
	// to the store keeps its tag.
	h := sha256.New()
	h.Write(m.header)
	var b [24]byte
	for _, c := range m.chunks {
		binary.BigEndian.PutUint64(b[0:], uint64(srcs[c.src].seg.Start.UnixMilli()))
		binary.BigEndian.PutUint64(b[8:], uint64(c.objOff))
		binary.BigEndian.PutUint64(b[16:], uint64(c.n))
		h.Write(b[:])
	}
	m.etag = `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
	// Reading needs only where each source is: let go of its tables and fragment
	// list, which a cached movie would otherwise hold.
	for i := range m.srcs {
		m.srcs[i].seg = bare(m.srcs[i].seg)
	}
	for i := range m.used {
		m.used[i] = bare(m.used[i])
	}
	return m, nil
}

// bare returns s without its fragment list, init section and sample table.
func bare(s storage.Segment) storage.Segment {
	s.Fragments, s.Init, s.Samples = nil, nil, nil
	return s
}

// init reads and parses a segment's ftyp+moov.
func (p *Player) init(ctx context.Context, src source) (*initInfo, error) {
	if in, ok, err := p.recordedInit(src); ok {
		return in, err
	}
	k := cacheKey{camera: src.seg.Camera, start: src.seg.Start.UnixMilli()}
	if e, ok := p.cache.get(k); ok {
		return e.init, nil
	}
	n := src.seg.Fragments[0].Offset
	if n <= 0 || n > 1<<20 {
		return nil, fmt.Errorf("segment %s: init of %d bytes", src.seg.Key, n)
	}
	buf, err := p.readAll(ctx, src, 0, n)
	if err != nil {
		return nil, err
	}
	in, err := parseInit(buf)
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", src.seg.Key, err)
	}
	p.cache.put(k, cacheEntry{init: in})
	return in, nil
}

func parseInit(buf []byte) (*initInfo, error) {
	moov, ok := mp4.Child(buf, "moov")
	if !ok {
		return nil, errors.New("no moov")
	}
	mv, err := mp4.ParseMoov(moov)
	if err != nil {
		return nil, err
	}
	var tr *mp4.Track
	for i := range mv.Tracks {
		if mv.Tracks[i].Handler == "vide" {
			tr = &mv.Tracks[i]
			break
		}
	}
	if tr == nil || tr.TimeScale == 0 {
		return nil, errors.New("no video track with a timescale")
	}
	trak, err := mp4.FindTrak(moov, tr.ID)
	if err != nil {
		return nil, err
	}
	in := &initInfo{timescale: tr.TimeScale, trex: mv.TrackDefaults(tr.ID)}
	tkhd, _ := mp4.Child(trak, "tkhd")
	if len(tkhd) >= 8 {
		in.width = binary.BigEndian.Uint32(tkhd[len(tkhd)-8:])
		in.height = binary.BigEndian.Uint32(tkhd[len(tkhd)-4:])
	}
	mdia, ok := mp4.Child(trak, "mdia")
	if !ok {
		return nil, errors.New("trak without mdia")
	}
	in.hdlr = rawChild(mdia, "hdlr")
	minf, _ := mp4.Child(mdia, "minf")
	in.vmhd, in.dinf = rawChild(minf, "vmhd"), rawChild(minf, "dinf")
	stbl, _ := mp4.Child(minf, "stbl")
	in.stsd = rawChild(stbl, "stsd")
	if in.stsd == nil || len(in.stsd) < 24 {
		return nil, errors.New("no sample description")
	}
	in.codec = string(in.stsd[20:24])
	if in.codec == "hev1" {
		in.stsd = hvc1(in.stsd)
		in.codec = string(in.stsd[20:24])
	}
	return in, nil
}

// hvc1 returns a copy of an H.265 stsd whose hev1 sample entry, parameter sets in its
// hvcC, is declared hvc1 (all parameter sets in the sample description), as Apple's
// players need. An entry it cannot read is returned unchanged.
func hvc1(stsd []byte) []byte {
	const entryAt = 16 // stsd header, version and flags, entry count
	out := slices.Clone(stsd)
	entry, err := mp4.ReadBoxes(out[entryAt:])
	if err != nil || len(entry) != 1 || len(entry[0].Body) < 78 {
		return stsd
	}
	boxes, err := mp4.ReadBoxes(entry[0].Body[78:])
	if err != nil {
		return stsd
	}
	for _, b := range boxes {
		if b.Type != "hvcC" || len(b.Body) < 23 {
			continue
		}
		rec := b.Body
		n, at := int(rec[22]), 23
		for range n {
			if at+3 > len(rec) {
				return stsd
			}
			rec[at] |= 0x80 // array_completeness: no parameter set of this type only in band
			count := int(be.Uint16(rec[at+1:]))
			at += 3
			for range count {
				if at+2 > len(rec) {
					return stsd
				}
				at += 2 + int(be.Uint16(rec[at:]))
			}
		}
		copy(out[entryAt+4:], "hvc1")
		return out
	}
	return stsd
}

// rawChild returns the first child box of type typ in body, header included.
func rawChild(body []byte, typ string) []byte {
	boxes, err := mp4.ReadBoxes(body)
	if err != nil {
		return nil
	}
	for _, b := range boxes {
		if b.Type == typ {
			hdr := mp4.HeaderSize
			if binary.BigEndian.Uint32(body[b.Offset:]) == 1 {
				hdr = 16
			}
			return body[b.Offset : b.Offset+hdr+len(b.Body)]
		}
	}
	return nil
}

// maxMoof bounds the moof read for one fragment.
const maxMoof = 4 << 20

// fragment reads and parses the moof of f.
func (p *Player) fragment(ctx context.Context, src source, f storage.Fragment, in *initInfo) (*fragment, error) {
	k := cacheKey{camera: src.seg.Camera, start: src.seg.Start.UnixMilli(), offset: f.Offset}
	if e, ok := p.cache.get(k); ok {
		return e.frag, nil
	}
	if f.Offset < 0 || f.Size < 16 {
		return nil, fmt.Errorf("segment %s: fragment at %d of %d bytes is too small", src.seg.Key, f.Offset, f.Size)
	}
	n := min(f.Size, 4<<10) // a moof of a second at 60 fps fits; a larger one takes a second read
	buf, err := p.readAll(ctx, src, f.Offset, n)
	if err != nil {
		return nil, err
	}
	size := int64(binary.BigEndian.Uint32(buf))
	if string(buf[4:8]) != "moof" || size < 8 || size > min(f.Size, maxMoof) {
		return nil, fmt.Errorf("segment %s: no moof at %d", src.seg.Key, f.Offset)
	}
	if size > n {
		if buf, err = p.readAll(ctx, src, f.Offset, size); err != nil {
			return nil, err
		}
	}
	trafs, err := mp4.ParseMoof(buf[8:size], uint64(f.Offset), in.trex)
	if err != nil {
		return nil, fmt.Errorf("segment %s: moof at %d: %w", src.seg.Key, f.Offset, err)
	}
	fr := &fragment{}
	for _, tf := range trafs {
		for _, s := range tf.Samples {
			if s.Offset < uint64(f.Offset) || s.Offset+uint64(s.Size) > uint64(f.Offset+f.Size) {
				return nil, fmt.Errorf("segment %s: moof at %d: sample outside the fragment", src.seg.Key, f.Offset)
			}
			fr.samples = append(fr.samples, sample{off: int64(s.Offset), size: s.Size, dur: s.Duration, cto: s.PTSOffset, sync: s.Sync()})
		}
	}
	if len(fr.samples) == 0 {
		return nil, fmt.Errorf("segment %s: moof at %d has no samples", src.seg.Key, f.Offset)
	}
	p.cache.put(k, cacheEntry{frag: fr})
	return fr, nil
}

// Camera returns the movie's camera.
func (m *Movie) Camera() string { return m.camera }

// Start returns when playback starts: the requested from, or the first picture
// recorded after it (a keyframe, or after an H.265 CRA keyframe its first leading
// picture that does not need footage before it).
func (m *Movie) Start() time.Time { return m.start }

// End returns when playback ends: the requested to, or the end of the footage.
func (m *Movie) End() time.Time { return m.end }

// Size returns the movie's length in bytes.
func (m *Movie) Size() int64 { return m.size }

// ETag returns a strong entity tag (quoted) that changes whenever the bytes would.
func (m *Movie) ETag() string { return m.etag }

// Segments returns the segments the movie reads, in order, with their keys and
// SHA-256 sums from write time (not their fragment lists or tables). A segment still being written in the spool has a
// zero SHA-256.
func (m *Movie) Segments() []storage.Segment { return m.used }

// WriteRange writes n bytes of the movie from off to w, reading only those byte
// ranges of the segment objects.
func (m *Movie) WriteRange(ctx context.Context, w io.Writer, off, n int64) error {
	if off < 0 || n < 0 || off+n > m.size {
		return fmt.Errorf("movie range %d+%d outside its %d bytes", off, n, m.size)
	}
	for n > 0 {
		rc, got, err := m.open(ctx, off, n)
		if err != nil {
			return err
		}
		c, err := io.Copy(w, rc)
		rc.Close()
		if err == nil && c != got {
			err = fmt.Errorf("read %d of %d bytes at %d: %w", c, got, off, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return fmt.Errorf("movie %s: %w", m.camera, err)
		}
		off, n = off+got, n-got
	}
	return nil
}

// open returns a reader of up to n bytes from off that come from one place: the
// header or one object; got is how many it yields.
func (m *Movie) open(ctx context.Context, off, n int64) (io.ReadCloser, int64, error) {
	if h := int64(len(m.header)); off < h {
		got := min(n, h-off)
		return io.NopCloser(bytes.NewReader(m.header[off : off+got])), got, nil
	}
	i := sort.Search(len(m.chunks), func(i int) bool { return m.chunks[i].vOff+m.chunks[i].n > off })
	first := m.chunks[i]
	objStart := first.objOff + off - first.vOff
	// Extend over the following chunks of the same object, skipping the bytes
	// between them (moofs) as they stream past.
	var spans []int64 // keep, skip, keep, ...
	keep := min(first.n-(off-first.vOff), n)
	got := keep
	objEnd := objStart + keep
	spans = append(spans, keep)
	for j := i + 1; j < len(m.chunks) && got < n; j++ {
		c := m.chunks[j]
		if c.src != first.src || c.objOff < objEnd || c.objOff-objEnd > 1<<20 {
			break
		}
		k := min(c.n, n-got)
		spans = append(spans, c.objOff-objEnd, k)
		got += k
		objEnd = c.objOff + k
	}
	rc, err := m.p.get(ctx, m.srcs[first.src], objStart, objEnd-objStart)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", m.srcs[first.src].seg.Key, err)
	}
	if len(spans) == 1 {
		return rc, got, nil
	}
	return &skipReader{rc: rc, spans: spans}, got, nil
}

// skipReader passes on the keep spans of an object read and drops the skip spans.
type skipReader struct {
	rc    io.ReadCloser
	spans []int64 // keep, skip, keep, ...
}

func (s *skipReader) Read(p []byte) (int, error) {
	for len(s.spans) > 0 && s.spans[0] == 0 {
		s.spans = s.spans[1:]
		if len(s.spans) == 0 {
			break
		}
		if _, err := io.CopyN(io.Discard, s.rc, s.spans[0]); err != nil {
			return 0, err
		}
		s.spans = s.spans[1:]
	}
	if len(s.spans) == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.spans[0] {
		p = p[:s.spans[0]]
	}
	n, err := s.rc.Read(p)
	s.spans[0] -= int64(n)
	if err == io.EOF && (s.spans[0] > 0 || len(s.spans) > 1) {
		err = io.ErrUnexpectedEOF
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (s *skipReader) Close() error { return s.rc.Close() }

// NewReader returns an io.ReadSeeker over the movie for http.ServeContent. It reads
// ahead in windows that double while reading is sequential, so a player's small
// Range requests cost few object reads and a long read few round trips. It holds
// ctx (the request's) because io.ReadSeeker has no place for one; close it when done.
func (m *Movie) NewReader(ctx context.Context) *Reader {
	return &Reader{m: m, ctx: ctx}
}

// Reader reads a Movie; see Movie.NewReader. Not safe for concurrent use.
type Reader struct {
	m      *Movie
	ctx    context.Context
	pos    int64
	cur    io.ReadCloser
	curPos int64 // where cur is
	curEnd int64
	window int64
}

const (
	minWindow = 256 << 10
	maxWindow = 16 << 20
)

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.pos >= r.m.size {
		return 0, io.EOF
	}
	if r.cur != nil && (r.curPos != r.pos || r.curPos >= r.curEnd) {
		r.cur.Close()
		r.cur = nil
	}
	if r.cur == nil {
		if r.window == 0 {
			r.window = minWindow
		}
		rc, got, err := r.m.open(r.ctx, r.pos, min(r.window, r.m.size-r.pos))
		if err != nil {
			return 0, err
		}
		r.cur, r.curPos, r.curEnd = rc, r.pos, r.pos+got
		r.window = min(2*r.window, maxWindow)
	}
	if want := r.curEnd - r.curPos; int64(len(p)) > want {
		p = p[:want]
	}
	n, err := r.cur.Read(p)
	r.pos += int64(n)
	r.curPos += int64(n)
	if err == io.EOF {
		if r.curPos < r.curEnd {
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker; it reads nothing.
func (r *Reader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += r.pos
	case io.SeekEnd:
		off += r.m.size
	}
	if off < 0 {
		return 0, errors.New("seek before the start of the movie")
	}
	if off != r.pos {
		r.window = 0
	}
	r.pos = off
	return off, nil
}

// Close releases the object read in progress.
func (r *Reader) Close() error {
	if r.cur != nil {
		r.cur.Close()
		r.cur = nil
	}
	return nil
}

package export

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/playback"
)

// Errors of an export.
var (
	// ErrNoFootage: the range holds no recorded footage.
	ErrNoFootage = errors.New("no recorded footage")
	// ErrTampered: a source segment's bytes differ from the SHA-256 the catalog took
	// when it was written.
	ErrTampered = errors.New("segment does not match its catalogued sha-256")
	// ErrNoSpace: the export's disk has too little free space for the clip.
	ErrNoSpace = errors.New("not enough free disk space")
)

// Request is what to export, and who asks and why.
type Request struct {
	ID                 string // export id, in the manifest; "" for a command-line export
	Camera, CameraName string
	Site, SiteName     string
	From, To           time.Time
	Reason             string
	User               string
}

// Builder makes the clip, manifest and signature of one export.
type Builder struct {
	Store   storage.Store
	Catalog SegmentSource
	Keys    *Keys
	// MinFree is the free space left on the export's disk after the clip.
	MinFree int64
}

// SegmentSource lists one camera's catalogued segments overlapping [from, to), with
// their fragments (*storage.Catalog).
type SegmentSource interface {
	Segments(ctx context.Context, camera string, from, to time.Time) ([]storage.Segment, error)
}

// Build stitches the clip of the range with playback's virtual MP4 (from the keyframe
// at or before From, with an edit list so that it plays from From) straight from the
// store, reading each source segment once, whole and in order: every byte of it,
// those the clip takes and those it skips, goes through the segment's SHA-256, which
// must match the one the catalog took when it was written, and bytes read earlier to
// build the clip's tables must match those streamed. It writes the clip to out.Clip
// only when every segment checked out, then the manifest and its signature. So the
// clip holds exactly the bytes that were checked, and the hour is never held in memory
// nor copied to disk first. progress, if not nil, is called with bytes done of total
// as it goes. On error nothing is left at out's paths. Errors: ErrNoFootage,
// ErrTampered (naming the segment), ErrNoSpace.
func (b *Builder) Build(ctx context.Context, req Request, out Files, progress func(done, total int64)) (*Manifest, error) {
	list := b.Catalog.Segments
	if t, ok := b.Catalog.(interface {
		SegmentsWithTables(ctx context.Context, camera string, from, to time.Time) ([]storage.Segment, error)
	}); ok {
		list = t.SegmentsWithTables // the recorded tables save reading every moof first
	}
	segs, err := list(ctx, req.Camera, req.From, req.To)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("%w: camera %s, %s to %s", ErrNoFootage, req.Camera,
			req.From.UTC().Format(time.RFC3339), req.To.UTC().Format(time.RFC3339))
	}
	// Room for a clip of about the segments' size.
	if err := checkSpace(filepath.Dir(out.Clip), total+b.MinFree); err != nil {
		return nil, err
	}
	var done int64
	report := func(n int64) {
		done += n
		if progress != nil {
			progress(done, total)
		}
	}
	report(0)
	src := &checked{store: b.Store, segs: segs, read: make(map[string][]span)}
	movie, err := playback.New(src, src, nil).Movie(ctx, req.Camera, req.From, req.To)
	if errors.Is(err, playback.ErrNoFootage) {
		return nil, fmt.Errorf("%w: %w", ErrNoFootage, err)
	}
	if err != nil {
		return nil, err
	}
	total = movie.Size()
	entries := make([]SourceEntry, 0, len(movie.Segments()))
	for _, s := range movie.Segments() {
		entries = append(entries, SourceEntry{Key: s.Key, Start: s.Start.UTC(), End: s.End().UTC(), Size: s.Size,
			SHA256: hex.EncodeToString(s.SHA256[:])})
	}
	src.streaming = true
	sum, err := writeClip(ctx, movie, out.Clip, report, func() error { return src.finish(ctx) })
	src.close()
	if err != nil {
		return nil, err
	}
	keyID, priv, err := b.Keys.Signer()
	if err != nil {
		os.Remove(out.Clip)
		return nil, err
	}
	m := &Manifest{Format: ManifestFormat, ID: req.ID, Camera: Named{req.Camera, req.CameraName},
		Site: Named{req.Site, req.SiteName}, Requested: TimeRange{req.From.UTC(), req.To.UTC()},
		Actual: TimeRange{movie.Start().UTC(), movie.End().UTC()}, Segments: entries,
		Clip:    ClipEntry{File: filepath.Base(out.Clip), Size: movie.Size(), SHA256: sum},
		Created: time.Now().UTC().Truncate(time.Millisecond), Reason: req.Reason, User: req.User,
		Version: Version(), KeyID: keyID}
	mb, err := m.Marshal()
	if err == nil {
		err = writeFileAtomic(out.Manifest, mb, 0o644)
	}
	if err == nil {
		err = writeFileAtomic(out.Signature, Sign(priv, mb), 0o644)
	}
	if err != nil {
		os.Remove(out.Clip)
		os.Remove(out.Manifest)
		return nil, err
	}
	return m, nil
}

// checked is an export's segments as playback's catalog and object reader. While the
// movie is built (its tables, leading pictures), reads go to the store and their bytes
// are kept. Once streaming, each segment is read from the store once, from its start,
// as the clip asks for its bytes in order: everything read or skipped goes through the
// segment's SHA-256 and is compared with the bytes kept earlier, and the segment is
// checked against the catalog when the clip moves on to the next (or at finish).
type checked struct {
	store     storage.Store
	segs      []storage.Segment
	streaming bool // set before the clip is written; reads are then sequential

	mu   sync.Mutex
	read map[string][]span // bytes read before streaming, by key

	cur   *stream         // the segment being streamed
	done  map[string]bool // segments streamed and checked
	spare [][]byte        // the blocks of the last stream, for the next
}

// span is bytes of an object read while the movie was built.
type span struct {
	off  int64
	data []byte
}

// stream is one segment being read whole. A goroutine reads it ahead in blocks and
// hashes them, so reading and hashing the source overlap writing the clip.
type stream struct {
	seg  storage.Segment
	kept []span
	pos  int64  // bytes passed on
	skb  []byte // for skip

	rc     io.ReadCloser
	h      hash.Hash // written by the reader goroutine only
	blocks chan block
	free   chan []byte
	stop   chan struct{}
	wg     sync.WaitGroup
	closed bool

	block, data []byte // the block being passed on, and its part not yet passed
	err         error  // the reader's error after data: io.EOF at the end
}

type block struct {
	buf []byte
	n   int
	err error
}

// readAhead is how many blocks of readBlock bytes a stream reads ahead.
const (
	readAhead = 4
	readBlock = 256 << 10
)

// newStream starts reading rc, with the blocks of spare (readAhead+1 of them) or new ones.
func newStream(seg storage.Segment, rc io.ReadCloser, kept []span, spare [][]byte) *stream {
	for len(spare) < readAhead+1 {
		spare = append(spare, make([]byte, readBlock))
	}
	s := &stream{seg: seg, kept: kept, rc: rc, h: sha256.New(), blocks: make(chan block, readAhead),
		free: make(chan []byte, readAhead+1), stop: make(chan struct{}), skb: spare[readAhead]}
	for _, b := range spare[:readAhead] {
		s.free <- b
	}
	s.wg.Go(s.readAhead)
	return s
}

func (s *stream) readAhead() {
	for {
		var buf []byte
		select {
		case buf = <-s.free:
		case <-s.stop:
			return
		}
		n, err := io.ReadFull(s.rc, buf)
		s.h.Write(buf[:n])
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		select {
		case s.blocks <- block{buf, n, err}:
		case <-s.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

// close stops the reader, waits for it and returns the stream's blocks.
func (s *stream) close() [][]byte {
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.stop)
	s.rc.Close() // ends a read in progress
	s.wg.Wait()
	bufs := [][]byte{s.skb}
	if s.block != nil {
		bufs = append(bufs, s.block)
	}
	for len(s.free) > 0 {
		bufs = append(bufs, <-s.free)
	}
	for len(s.blocks) > 0 {
		bufs = append(bufs, (<-s.blocks).buf)
	}
	// Back in newStream's order: readAhead blocks, then skip's buffer.
	return append(bufs[1:], bufs[0])
}

func (c *checked) Segments(_ context.Context, camera string, from, to time.Time) ([]storage.Segment, error) {
	var out []storage.Segment
	for _, s := range c.segs {
		if s.Camera == camera && s.Start.Before(to) && s.End().After(from) {
			out = append(out, s)
		}
	}
	return out, nil
}

// SegmentsWithTables is Segments: the segments carry the tables the catalog has.
func (c *checked) SegmentsWithTables(ctx context.Context, camera string, from, to time.Time) ([]storage.Segment, error) {
	return c.Segments(ctx, camera, from, to)
}

func (c *checked) ListSegments(ctx context.Context, q storage.SegmentQuery, fn func(storage.Segment) error) error {
	segs, _ := c.Segments(ctx, q.Camera, q.From, q.To)
	n := 0
	for _, s := range segs {
		if q.After != "" && s.Key <= q.After || n >= q.Limit {
			continue
		}
		n++
		s.Fragments = nil
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

func (c *checked) segment(key string) (storage.Segment, bool) {
	for _, s := range c.segs {
		if s.Key == key {
			return s, true
		}
	}
	return storage.Segment{}, false
}

func (c *checked) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	seg, ok := c.segment(key)
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, storage.ErrNotFound)
	}
	if !c.streaming {
		// Building the movie's tables: read and keep, to compare once streamed.
		rc, err := c.store.Get(ctx, key, off, length)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.read[key] = append(c.read[key], span{off, data})
		c.mu.Unlock()
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	if c.cur == nil || c.cur.seg.Key != key {
		if c.cur != nil {
			if err := c.check(); err != nil {
				return nil, err
			}
		}
		if c.done[key] {
			return nil, fmt.Errorf("read segment %s again at %d: an export reads each once", key, off)
		}
		rc, err := c.store.Get(ctx, key, 0, -1)
		if err != nil {
			return nil, fmt.Errorf("read segment %s: %w", key, err)
		}
		c.cur = newStream(seg, rc, c.read[key], c.spare)
		c.spare = nil
	}
	s := c.cur
	if off < s.pos {
		return nil, fmt.Errorf("read segment %s at %d after %d: an export reads each once, in order", key, off, s.pos)
	}
	if err := s.skip(ctx, off-s.pos); err != nil {
		return nil, err
	}
	if length < 0 {
		length = seg.Size - off
	}
	return io.NopCloser(&window{ctx: ctx, s: s, n: length}), nil
}

// check reads the rest of the current segment and compares its SHA-256 and size with
// the catalog's.
func (c *checked) check() error {
	s := c.cur
	c.cur = nil
	defer s.close()
	if err := s.skip(context.Background(), -1); err != nil {
		return err
	}
	c.spare = s.close() // the reader is done: its hash is complete
	if c.done == nil {
		c.done = make(map[string]bool)
	}
	c.done[s.seg.Key] = true
	var got [32]byte
	s.h.Sum(got[:0])
	if got != s.seg.SHA256 || s.pos != s.seg.Size {
		return fmt.Errorf("%w: segment %s: stored bytes have SHA-256 %s (%d bytes), catalogued at write time as %s "+
			"(%d bytes)", ErrTampered, s.seg.Key, hex.EncodeToString(got[:]), s.pos, hex.EncodeToString(s.seg.SHA256[:]),
			s.seg.Size)
	}
	return nil
}

// finish checks the segment being streamed and streams every other one not yet
// checked (segments of the range the clip took nothing from are evidence too).
func (c *checked) finish(ctx context.Context) error {
	for _, seg := range c.segs {
		if c.cur != nil && c.cur.seg.Key == seg.Key || c.done[seg.Key] {
			continue
		}
		rc, err := c.Get(ctx, seg.Key, 0, 0)
		if err != nil {
			return err
		}
		rc.Close()
	}
	if c.cur != nil {
		return c.check()
	}
	return nil
}

// close lets go of a segment left open by a failure.
func (c *checked) close() {
	if c.cur != nil {
		c.cur.close()
		c.cur = nil
	}
}

// skip passes n bytes (all that is left if n < 0) through the hash.
func (s *stream) skip(ctx context.Context, n int64) error {
	for n != 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := s.skb
		if n > 0 && int64(len(p)) > n {
			p = p[:n]
		}
		k, err := s.read(p)
		n -= int64(k)
		if err == io.EOF {
			if n <= 0 { // n < 0: to the end
				return nil
			}
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return fmt.Errorf("read segment %s: %w", s.seg.Key, err)
		}
	}
	return nil
}

// read reads into p, hashing the bytes and comparing them with those kept.
func (s *stream) read(p []byte) (int, error) {
	for len(s.data) == 0 && s.err == nil {
		if s.block != nil {
			s.free <- s.block
		}
		b := <-s.blocks
		s.block, s.data, s.err = b.buf, b.buf[:b.n], b.err
	}
	k := copy(p, s.data)
	s.data = s.data[k:]
	var err error
	if len(s.data) == 0 {
		err = s.err
	}
	p = p[:k]
	for _, sp := range s.kept {
		lo, hi := max(sp.off, s.pos), min(sp.off+int64(len(sp.data)), s.pos+int64(k))
		if lo < hi && !bytes.Equal(p[lo-s.pos:hi-s.pos], sp.data[lo-sp.off:hi-sp.off]) {
			return k, fmt.Errorf("%w: segment %s changed at byte %d while it was exported", ErrTampered, s.seg.Key, lo)
		}
	}
	s.pos += int64(k)
	return k, err
}

// window is the next n bytes of a stream.
type window struct {
	ctx context.Context // checked between reads: a long export stops on cancel
	s   *stream
	n   int64
}

func (w *window) Read(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, io.EOF
	}
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	if int64(len(p)) > w.n {
		p = p[:w.n]
	}
	k, err := w.s.read(p)
	w.n -= int64(k)
	if err == io.EOF {
		if w.n > 0 {
			err = io.ErrUnexpectedEOF
		} else {
			err = nil
		}
	}
	if err != nil {
		return k, fmt.Errorf("read segment %s: %w", w.s.seg.Key, err)
	}
	return k, nil
}

// writeClip writes movie to path through a temporary file, returning its SHA-256.
// check, called once the clip's bytes are written, must pass before it is kept.
func writeClip(ctx context.Context, movie *playback.Movie, path string, report func(int64), check func() error) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".clip-*")
	if err != nil {
		return "", fmt.Errorf("write clip: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", err
	}
	h := sha256.New()
	bw := bufio.NewWriterSize(&hashingFile{f: f, h: h}, 1<<20)
	if err := movie.WriteRange(ctx, &progressWriter{w: bw, report: report}, 0, movie.Size()); err != nil {
		return fail(fmt.Errorf("write clip: %w", err))
	}
	if err := bw.Flush(); err != nil {
		return fail(fmt.Errorf("write clip: %w", err))
	}
	if err := check(); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(fmt.Errorf("write clip: %w", err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("write clip: %w", err))
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write clip: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write clip: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashingFile writes to f and hashes the same bytes meanwhile, on another core: the
// clip's SHA-256 then costs an hour's export no time beside its writes.
type hashingFile struct {
	f *os.File
	h hash.Hash
}

func (w *hashingFile) Write(p []byte) (int, error) {
	var wg sync.WaitGroup
	wg.Go(func() { w.h.Write(p) })
	n, err := w.f.Write(p)
	wg.Wait()
	return n, err
}

type progressWriter struct {
	w      io.Writer
	report func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.report(int64(n))
	return n, err
}

// checkSpace fails with ErrNoSpace when dir's filesystem has less than need bytes free.
func checkSpace(dir string, need int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("free space of %s: %w", dir, err)
	}
	if free := int64(st.Bavail) * int64(st.Bsize); free < need {
		return fmt.Errorf("%w: the clip needs %d MB, %s has %d MB free", ErrNoSpace, need>>20, dir, free>>20)
	}
	return nil
}

// Version is this Straja's version: the module version it was built as, or the VCS
// revision of a development build.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel-" + rev
}

// InputError is a bad export request; Field names the field at fault ("from", "to", "reason").
type InputError struct{ Field, Msg string }

func (e *InputError) Error() string { return e.Field + ": " + e.Msg }

// CheckRange checks an export range: from before to, at most max long, not in the future.
func CheckRange(from, to time.Time, max time.Duration) error {
	switch {
	case from.IsZero():
		return &InputError{"from", "is required"}
	case to.IsZero():
		return &InputError{"to", "is required"}
	case !to.After(from):
		return &InputError{"to", "must be after from"}
	case to.Sub(from) > max:
		return &InputError{"to", fmt.Sprintf("the range is %v long; an export may cover at most %v", to.Sub(from), max)}
	case from.After(time.Now()):
		return &InputError{"from", "is in the future"}
	}
	return nil
}

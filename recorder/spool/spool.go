package spool

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/internal/durable"
	"github.com/straja-nvr/straja/internal/mp4"
	"github.com/straja-nvr/straja/recorder/internal/metrics"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/streaming"
)

// Options configure a Spool.
type Options struct {
	Dir string
	// MaxBytes caps the spool; recording pauses (a "spool_full" gap) rather than delete
	// footage that is not yet uploaded. 0 means no cap.
	MaxBytes int64
	// SegmentDuration and FragmentDuration default to DefaultSegmentDuration and
	// DefaultFragmentDuration.
	SegmentDuration, FragmentDuration time.Duration
	// OnRecording, if set, hears when a camera's recording stops being written (cause
	// "spool_full" or "write_error", at the start of the episode) and when it is
	// written again (cause ""). It must not block.
	OnRecording func(camera, cause string, at time.Time)
}

// Spool is the local disk between the segmenters and the store. A segment being
// written is <dir>/<camera>/<startUnixMillis>.part, fsynced after every fragment; a
// closed one is renamed to <dir>/<storage key>, so a restart finds everything it needs
// in file names and contents. Safe for concurrent use.
type Spool struct {
	opts Options
	m    *metrics.Metrics
	log  *slog.Logger
	wake chan struct{} // a segment became ready for upload
	// syncDir makes a directory's entries durable; tests observe and fail it.
	syncDir func(dir string) error

	// dirMu keeps the uploader from removing an empty day folder that a segmenter is
	// about to rename a segment into.
	dirMu sync.Mutex

	mu         sync.Mutex
	bytes      int64                    // all files in the spool
	full       bool                     // the cap was hit; writing waits for uploads to reach the low-water mark
	failing    map[string]error         // camera -> why its recording cannot be written now
	lag        map[string]time.Duration // camera -> capture to durable, of its last fragment
	ready      []*spooled               // closed segments, oldest start first
	live       map[string]liveSegment   // camera -> segment being written, for near-live playback
	readyBytes int64
}

// spooled is one closed segment waiting for upload.
type spooled struct {
	path     string
	seg      storage.Segment
	stored   bool // the store has the bytes; only the catalog entry is missing
	failures int  // consecutive failed uploads; only the uploader uses it
}

// Open creates the spool directory. Call Recover once, before recording or
// uploading. m and log may be nil.
func Open(opts Options, m *metrics.Metrics, log *slog.Logger) (*Spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("spool: no directory")
	}
	if opts.MaxBytes < 0 {
		return nil, fmt.Errorf("spool: negative max bytes %d", opts.MaxBytes)
	}
	if err := durable.MkdirAll(opts.Dir, durable.SyncDir); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Spool{opts: opts, m: metricsOrNop(m), log: log.With("component", "spool"), wake: make(chan struct{}, 1),
		syncDir: durable.SyncDir}, nil
}

// metricsOrNop lets tests and tools pass nil metrics.
func metricsOrNop(m *metrics.Metrics) *metrics.Metrics {
	if m == nil {
		return metrics.New(prometheus.NewRegistry())
	}
	return m
}

// Recover finalises what a previous run left: each .part file is cut back to its last
// complete fragment and closed (or removed if it has none), and every closed segment
// is queued for upload. Problems with single files are logged, not returned.
func (s *Spool) Recover(ctx context.Context) error {
	var parts, closed []string
	var total int64
	err := filepath.WalkDir(s.opts.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(s.opts.Dir, path)
		if err != nil {
			return err
		}
		switch rel = filepath.ToSlash(rel); {
		case strings.HasSuffix(rel, ".part"):
			parts = append(parts, rel)
		case strings.HasSuffix(rel, ".mp4"):
			closed = append(closed, rel)
		default:
			s.log.Warn("unknown file in spool left alone", "file", rel)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recover spool %s: %w", s.opts.Dir, err)
	}
	var ready []*spooled
	for _, rel := range parts {
		sp, err := s.recoverPart(rel)
		if err != nil {
			s.log.Error("spool file not recovered", "file", rel, "err", err)
			total += fileSize(filepath.Join(s.opts.Dir, rel))
		}
		if sp != nil {
			ready = append(ready, sp)
		}
	}
	for _, rel := range closed {
		sp, err := s.scanClosed(rel)
		if err != nil {
			s.log.Error("spooled segment not queued", "file", rel, "err", err)
			total += fileSize(filepath.Join(s.opts.Dir, rel))
			continue
		}
		ready = append(ready, sp)
	}
	s.mu.Lock()
	for _, sp := range ready {
		total += sp.seg.Size
		s.insertLocked(sp)
	}
	s.bytes += total
	s.m.SpoolBytes.Set(float64(s.bytes))
	s.mu.Unlock()
	if len(ready) > 0 {
		s.log.Info("spool recovered", "segments", len(ready), "bytes", total)
		s.notify()
	}
	return nil
}

// recoverPart truncates a crashed segment to its complete fragments and closes it.
// A nil result with a nil error means the file held no complete fragment and is gone.
// A file that cannot be read is left for a later attempt.
func (s *Spool) recoverPart(rel string) (*spooled, error) {
	camera, name, ok := strings.Cut(rel, "/")
	ms, err := strconv.ParseInt(strings.TrimSuffix(name, ".part"), 10, 64)
	if !ok || strings.Contains(name, "/") || !storage.ValidCameraID(camera) || err != nil {
		return nil, errors.New("not <camera>/<unix millis>.part")
	}
	path := filepath.Join(s.opts.Dir, filepath.FromSlash(rel))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	er := &errReader{r: f}
	idx, err := storage.ScanSegment(er)
	if er.err != nil {
		return nil, fmt.Errorf("read: %w", er.err)
	}
	if len(idx.Fragments) == 0 {
		s.log.Warn("spool file without a complete fragment removed", "file", rel, "err", err)
		return nil, os.Remove(path)
	}
	// On a parse error too, the fragments before the problem were fsynced and are kept.
	if err != nil || idx.Complete < fi.Size() {
		reason := "torn fragment"
		if err != nil {
			reason = err.Error()
		}
		if err := f.Truncate(idx.Complete); err != nil {
			return nil, fmt.Errorf("truncate: %w", err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("sync: %w", err)
		}
		// The hash must cover exactly what stays.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		if idx, err = storage.ScanSegment(f); err != nil {
			return nil, fmt.Errorf("rescan: %w", err)
		}
		s.log.Warn("spool file cut after its last complete fragment", "file", rel, "fragments", len(idx.Fragments),
			"kept", idx.Size, "cut", fi.Size()-idx.Size, "reason", reason)
	}
	seg := storage.Segment{Camera: camera, Start: time.UnixMilli(ms).UTC(), Duration: idx.Duration,
		Size: idx.Size, SHA256: idx.SHA256, Fragments: idx.Fragments, Init: idx.Init, Samples: idx.Samples}
	return s.finalise(path, seg)
}

// scanClosed indexes a closed segment left by a previous run.
func (s *Spool) scanClosed(rel string) (*spooled, error) {
	key, err := storage.ParseSegmentKey(rel)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(s.opts.Dir, filepath.FromSlash(rel))
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	idx, err := storage.ScanSegment(f)
	if err != nil {
		return nil, err
	}
	return &spooled{path: path, seg: storage.Segment{Camera: key.Camera, Start: key.Start, Duration: idx.Duration,
		Key: rel, Size: idx.Size, SHA256: idx.SHA256, Fragments: idx.Fragments, Init: idx.Init, Samples: idx.Samples}}, nil
}

// errKeysTaken reports a closed segment whose storage key, and every key after
// it that finalise tried, already belongs to another file.
var errKeysTaken = errors.New("storage keys taken")

// keyTries bounds how many milliseconds finalise moves a segment's start to find
// a free key.
const keyTries = 1000

// finalise renames the .part file at part to its storage key, which seg.Key receives.
// It never replaces a file: when every key it tries is taken it returns an error and
// leaves the .part where it is.
func (s *Spool) finalise(part string, seg storage.Segment) (*spooled, error) {
	// A key already taken (the clock went back) moves to the next free millisecond
	// rather than replace footage that is not uploaded yet.
	first := seg.Start
	var dst, dir string
	err := errKeysTaken
	s.dirMu.Lock()
	for range keyTries {
		seg.Key = storage.SegmentKey{Camera: seg.Camera, Start: seg.Start, Duration: seg.Duration}.String()
		dst = filepath.Join(s.opts.Dir, filepath.FromSlash(seg.Key))
		dir = filepath.Dir(dst)
		if err = s.mkdirs(dir); err != nil {
			break
		}
		if err = durable.RenameNoReplace(part, dst); !errors.Is(err, fs.ErrExist) {
			break
		}
		seg.Start = seg.Start.Add(time.Millisecond)
	}
	s.dirMu.Unlock()
	if errors.Is(err, fs.ErrExist) {
		err = fmt.Errorf("%w: %s and the next %d ms", errKeysTaken, first.Format(time.RFC3339Nano), keyTries-1)
	}
	if err != nil {
		return nil, fmt.Errorf("finalise %s: %w", part, err)
	}
	// The rename happened: queue the segment whatever the syncs say, or it would sit
	// unqueued until the next restart.
	if err := s.syncDir(dir); err != nil {
		s.log.Error("sync spool folder after rename", "file", seg.Key, "err", err)
	}
	if err := s.syncDir(filepath.Dir(part)); err != nil {
		s.log.Error("sync spool folder after rename", "file", seg.Key, "err", err)
	}
	return &spooled{path: dst, seg: seg}, nil
}

// insertLocked queues sp in start order; s.mu is held.
func (s *Spool) insertLocked(sp *spooled) {
	i, _ := slices.BinarySearchFunc(s.ready, sp, func(a, b *spooled) int { return a.seg.Start.Compare(b.seg.Start) })
	s.ready = slices.Insert(s.ready, i, sp)
	s.readyBytes += sp.seg.Size
}

func (s *Spool) enqueue(sp *spooled) {
	s.mu.Lock()
	s.insertLocked(sp)
	s.mu.Unlock()
	s.notify()
}

func (s *Spool) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// next returns the oldest closed segment without removing it from the queue.
func (s *Spool) next() (*spooled, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ready) == 0 {
		return nil, false
	}
	return s.ready[0], true
}

// requeue moves a queued segment to the back of the upload queue.
func (s *Spool) requeue(sp *spooled) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.ready, sp); i >= 0 {
		s.ready = append(slices.Delete(s.ready, i, i+1), sp)
	}
}

// remove deletes an uploaded segment's file and forgets it.
func (s *Spool) remove(sp *spooled) error {
	err := os.Remove(sp.path)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if err == nil {
		// Empty day, month and year folders go too, not the camera's.
		s.dirMu.Lock()
		for dir := filepath.Dir(sp.path); len(dir) > len(filepath.Join(s.opts.Dir, sp.seg.Camera)); dir = filepath.Dir(dir) {
			if os.Remove(dir) != nil {
				break
			}
		}
		s.dirMu.Unlock()
	}
	s.mu.Lock()
	if i := slices.Index(s.ready, sp); i >= 0 {
		s.ready = slices.Delete(s.ready, i, i+1)
		s.readyBytes -= sp.seg.Size
		if err == nil {
			s.addBytesLocked(-sp.seg.Size)
		}
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("remove %s from spool: %w", sp.seg.Key, err)
	}
	return nil
}

// FootageEnd returns when the latest of camera's segments waiting for upload ends.
func (s *Spool) FootageEnd(camera string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var end time.Time
	for _, sp := range s.ready {
		if e := sp.seg.Start.Add(sp.seg.Duration); sp.seg.Camera == camera && e.After(end) {
			end = e
		}
	}
	return end
}

// pending reports the closed segments waiting for upload.
func (s *Spool) pending() (int, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ready), s.readyBytes
}

// setFailing records why camera's recording cannot be written, or nil once it can.
func (s *Spool) setFailing(camera string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.failing, camera)
		return
	}
	if s.failing == nil {
		s.failing = map[string]error{}
	}
	s.failing[camera] = err
}

// setLag records how long camera's last fragment took from capture to durable.
func (s *Spool) setLag(camera string, d time.Duration) {
	d = max(d, 0)
	s.m.RecordingLag.WithLabelValues(camera).Set(d.Seconds())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lag == nil {
		s.lag = map[string]time.Duration{}
	}
	s.lag[camera] = d
}

func (s *Spool) forgetLag(camera string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.lag, camera)
}

// Lag returns how long camera's last fragment took from capture (its last frame's
// end) to being durable in the spool; false while the camera records nothing.
func (s *Spool) Lag(camera string) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.lag[camera]
	return d, ok
}

// WriteError returns why some camera's recording cannot be written now (the first
// camera by ID), or nil.
func (s *Spool) WriteError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cams := slices.Sorted(maps.Keys(s.failing))
	if len(cams) == 0 {
		return nil
	}
	return fmt.Errorf("spool, camera %s: %w", cams[0], s.failing[cams[0]])
}

// Full reports whether the spool reached its cap and recording is paused.
func (s *Spool) Full() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.full
}

// Bytes returns how many bytes the spool holds, open segments included.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// reserve accounts for n more bytes unless that would pass the cap. Once the cap is
// hit, writing stays refused until uploads bring the spool down to 90% of it, so
// recording resumes with room for whole segments rather than in scraps.
func (s *Spool) reserve(n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if max := s.opts.MaxBytes; max > 0 {
		if s.full || s.bytes+n > max {
			s.full = true
			return fmt.Errorf("%w: %d of %d bytes used", ErrFull, s.bytes, max)
		}
	}
	s.addBytesLocked(n)
	return nil
}

// addBytesLocked adjusts the byte total; s.mu is held. Whatever frees the space, not
// only an upload, ends a spool-full pause once the low-water mark is reached.
func (s *Spool) addBytesLocked(n int64) {
	s.bytes += n
	s.m.SpoolBytes.Set(float64(s.bytes))
	if s.full && s.bytes <= s.opts.MaxBytes/10*9 {
		s.full = false
	}
}

// RecordCamera segments one camera's units from r into the spool until ctx is done or
// r's channel closes, then closes the open segment. The caller closes r. Write
// failures and a full spool become counted gaps, never an error: recording resumes at
// the next keyframe once writing succeeds.
func (s *Spool) RecordCamera(ctx context.Context, camera string, r *streaming.Reader) error {
	return s.record(ctx, camera, r.C())
}

func (s *Spool) record(ctx context.Context, camera string, c <-chan streaming.Delivery) error {
	return s.recordWith(ctx, camera, c, openSegmentFile)
}

// recordWith is record with the spool files opened by open.
func (s *Spool) recordWith(ctx context.Context, camera string, c <-chan streaming.Delivery,
	open func(path string) (segmentFile, error)) error {
	if !storage.ValidCameraID(camera) {
		return fmt.Errorf("record: invalid camera ID %q", camera)
	}
	log := s.log.With("camera", camera)
	w := &writer{s: s, camera: camera, log: log, open: open}
	seg := newSegmenter(s.opts.SegmentDuration, s.opts.FragmentDuration, w, segmenterEvents{
		gap: func(cause string, err error) {
			s.m.Gaps.WithLabelValues(camera, cause).Inc()
			log.Warn("recording gap", "cause", cause, "err", err)
			if cause == metrics.GapWriteError || cause == metrics.GapSpoolFull {
				s.setFailing(camera, err)
				if s.opts.OnRecording != nil {
					s.opts.OnRecording(camera, cause, time.Now())
				}
			}
		},
		resumed: func(cause string) {
			log.Info("recording resumed", "after", cause)
			s.setFailing(camera, nil)
			if s.opts.OnRecording != nil {
				s.opts.OnRecording(camera, "", time.Now())
			}
		},
	})
	defer s.forgetLag(camera)
	defer s.setFailing(camera, nil)
	defer seg.close()
	for {
		select {
		case <-ctx.Done():
			return nil
		case d, ok := <-c:
			if !ok {
				return nil
			}
			seg.write(d)
		}
	}
}

// segmentFile is what writer needs of an *os.File; tests inject failures through it.
type segmentFile interface {
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Close() error
}

func openSegmentFile(path string) (segmentFile, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
}

// writeBuffer sizes the buffer a fragment's NALUs are gathered in on their way to
// the file: big enough for few writes per fragment, small next to a camera's GOP.
const writeBuffer = 32 << 10

// writer is the segmentSink that writes one camera's segments into the spool,
// hashing and indexing them as they are written so the uploader never reads them twice.
type writer struct {
	s      *Spool
	camera string
	log    *slog.Logger
	open   func(path string) (segmentFile, error)

	f     segmentFile // nil when no segment is open
	path  string
	start time.Time
	// prevStart and prevEnd are the last closed segment's: the next one never starts
	// before it ends, nor at its start.
	prevStart, prevEnd time.Time
	size               int64 // bytes written and synced
	hash               sha256State
	frags              []storage.Fragment
	init               []byte                    // the open segment's
	table              storage.SampleTableWriter // the synced fragments' samples
	broken             bool                      // bytes past size could not be cut off: leave the file to Recover

	out    fileAppender
	bw     *bufio.Writer // over out
	hstate []byte        // hash state before the fragment being written
	prft   []byte        // the prft box before the fragment being written
}

// sha256State is a SHA-256 whose state can be saved and restored, so that a fragment
// that fails half-written can be taken back out of the segment's hash.
type sha256State interface {
	hash.Hash
	encoding.BinaryAppender
	encoding.BinaryUnmarshaler
}

// fileAppender writes at off and on, hashing what reaches the file.
type fileAppender struct {
	f   io.WriterAt
	off int64
	h   hash.Hash
}

func (a *fileAppender) Write(p []byte) (int, error) {
	n, err := a.f.WriteAt(p, a.off)
	a.off += int64(n)
	a.h.Write(p[:n])
	return n, err
}

func (w *writer) startSegment(start time.Time, init []byte) error {
	if err := w.s.reserve(int64(len(init))); err != nil {
		return err
	}
	start = start.Truncate(time.Millisecond)
	if !w.prevEnd.IsZero() {
		// Overlapping segments, or two keys with one start, would be two recordings of
		// one instant: evidence that contradicts itself. Ingest never asks for it; should
		// it, the segment moves to where the previous one ends.
		floor := w.prevEnd.Truncate(time.Millisecond)
		if next := w.prevStart.Add(time.Millisecond); floor.Before(next) {
			floor = next
		}
		if start.Before(floor) {
			w.log.Warn("segment would overlap the previous one; starting it where that one ends",
				"start", start, "previous_start", w.prevStart, "previous_end", w.prevEnd)
			start = floor
		}
	}
	err := w.create(start, init)
	if err != nil {
		w.s.mu.Lock()
		w.s.addBytesLocked(-int64(len(init)))
		w.s.mu.Unlock()
	}
	return err
}

func (w *writer) create(start time.Time, init []byte) error {
	dir := filepath.Join(w.s.opts.Dir, w.camera)
	if err := w.s.mkdirs(dir); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	var f segmentFile
	var path string
	var err error
	for range 1000 { // a start already used (the clock went back) takes the next millisecond
		path = filepath.Join(dir, strconv.FormatInt(start.UnixMilli(), 10)+".part")
		if f, err = w.open(path); !errors.Is(err, fs.ErrExist) {
			break
		}
		start = start.Add(time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err = f.WriteAt(init, 0); err == nil {
		err = w.s.syncDir(dir) // the new name must survive a crash too
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("spool %s: %w", path, err)
	}
	if w.hash == nil {
		w.hash = sha256.New().(sha256State) // documented to implement both
	}
	w.hash.Reset()
	w.hash.Write(init)
	w.table.Reset()
	w.init = init
	w.f, w.path, w.start, w.size, w.frags, w.broken = f, path, start, int64(len(init)), nil, false
	return nil
}

// writeFragment streams frag from the units' NALUs through a small buffer into the
// file, hashing as it goes, and syncs.
func (w *writer) writeFragment(frag *mp4.Fragment, fi fragmentInfo) error {
	// A prft before each moof dates the fragment, so a segment file alone says when
	// it was recorded.
	w.prft = mp4.AppendPrft(w.prft[:0], mp4.Prft{TrackID: mp4.TrackID, Flags: mp4.PrftCaptureTime,
		Time: w.start.Add(fi.Shown), MediaTime: uint64(max(fi.PTS, 0))})
	size := int64(len(w.prft)) + frag.Size()
	if err := w.s.reserve(size); err != nil {
		return err
	}
	w.hstate, _ = w.hash.AppendBinary(w.hstate[:0]) // never fails for SHA-256
	w.out = fileAppender{f: w.f, off: w.size, h: w.hash}
	if w.bw == nil {
		w.bw = bufio.NewWriterSize(&w.out, writeBuffer)
	}
	w.bw.Reset(&w.out) // also clears the error of a previous failed fragment
	_, err := w.bw.Write(w.prft)
	if err == nil {
		_, err = frag.WriteTo(w.bw)
	}
	if err == nil {
		err = w.bw.Flush()
	}
	if n := w.out.off - w.size; err == nil && n != size {
		err = fmt.Errorf("wrote %d bytes of a %d-byte fragment", n, size)
	}
	if err == nil {
		err = w.f.Sync()
	}
	if err != nil {
		// Cut the failed fragment off so the file stays valid up to the last one, and
		// take it out of the hash.
		kept := w.out.off - w.size
		if kept > 0 {
			if terr := w.f.Truncate(w.size); terr != nil {
				w.broken = true
			} else {
				kept = 0
			}
		}
		if herr := w.hash.UnmarshalBinary(w.hstate); herr != nil {
			w.broken = true // cannot happen: the state is our own
		}
		w.s.mu.Lock()
		w.s.addBytesLocked(kept - size)
		w.s.mu.Unlock()
		return fmt.Errorf("spool %s: %w", w.path, err)
	}
	w.frags = append(w.frags, storage.Fragment{Offset: w.size + int64(len(w.prft)), Size: frag.Size(),
		Start: fi.Start, Duration: fi.Duration, Key: fi.Key})
	w.table.Fragment(frag.DataOffset())
	for i := range frag.Len() {
		w.table.Add(frag.Sample(i))
	}
	w.s.setLag(w.camera, time.Since(w.start.Add(fi.Start+fi.Duration)))
	w.size += size
	start := w.start.Truncate(time.Millisecond)
	dur := (fi.Start + fi.Duration).Truncate(time.Millisecond)
	w.s.publishLive(w.camera, w.path, storage.Segment{Camera: w.camera, Start: start, Duration: dur,
		Key:  storage.SegmentKey{Camera: w.camera, Start: start, Duration: dur}.String(),
		Size: w.size, Fragments: w.frags})
	return nil
}

func (w *writer) endSegment() {
	if w.f == nil {
		return
	}
	defer w.s.clearLive(w.camera) // after the segment is queued, so it is never missing
	err := w.f.Close()
	w.f = nil
	if n := len(w.frags); n > 0 { // kept, whether closed here or left for recovery
		w.prevStart, w.prevEnd = w.start, w.start.Add(w.frags[n-1].Start+w.frags[n-1].Duration)
	}
	switch {
	case w.broken:
		w.log.Error("spool file left for recovery at next start", "file", w.path)
		return
	case err != nil:
		w.log.Error("spool file left for recovery at next start", "file", w.path, "err", err)
		return
	case len(w.frags) == 0:
		if err := os.Remove(w.path); err != nil {
			w.log.Error("remove empty spool file", "file", w.path, "err", err)
			return
		}
		w.s.mu.Lock()
		w.s.addBytesLocked(-w.size)
		w.s.mu.Unlock()
		return
	}
	last := w.frags[len(w.frags)-1]
	seg := storage.Segment{Camera: w.camera, Start: w.start, Duration: last.Start + last.Duration,
		Size: w.size, Fragments: w.frags, Init: w.init, Samples: w.table.Table()}
	w.hash.Sum(seg.SHA256[:0])
	sp, err := w.s.finalise(w.path, seg)
	if err != nil {
		w.log.Error("spool file left for recovery at next start", "file", w.path, "err", err)
		return
	}
	w.prevStart, w.prevEnd = sp.seg.Start, sp.seg.Start.Add(sp.seg.Duration) // finalise may move it
	w.s.m.SegmentsWritten.WithLabelValues(w.camera).Inc()
	w.s.enqueue(sp)
}

// fileSize is the size of path, or 0 if it cannot be read.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// mkdirs creates dir durably, syncing with s.syncDir.
func (s *Spool) mkdirs(dir string) error {
	return durable.MkdirAll(dir, s.syncDir)
}

// errReader remembers the first error of r other than io.EOF, telling a file that
// could not be read from one that could be read and is broken.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

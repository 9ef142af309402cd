package spool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/straja-nvr/straja/internal/durable"
	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/recorder/internal/metrics"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/streaming"
)

const testCamera = "cam1"

// rig is a spool, a disk store, a catalog and an uploader, all real, in temp dirs.
type rig struct {
	t     *testing.T
	m     *metrics.Metrics
	spool *Spool
	store *flakyStore
	cat   *storage.Catalog
	up    *Uploader
	dir   string
}

func newRig(t *testing.T, opts Options) *rig {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = filepath.Join(t.TempDir(), "spool")
	}
	if opts.SegmentDuration == 0 {
		opts.SegmentDuration = 2 * time.Second
	}
	m := metrics.New(prometheus.NewRegistry())
	sp, err := Open(opts, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	disk, err := storage.NewDisk(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := storage.OpenCatalog(filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	st := &flakyStore{Store: disk}
	up := NewUploader(sp, st, cat, m, nil)
	up.minBackoff, up.maxBackoff = time.Millisecond, 5*time.Millisecond
	return &rig{t: t, m: m, spool: sp, store: st, cat: cat, up: up, dir: opts.Dir}
}

// record runs the spool's segmenter over units until they are all consumed.
func (r *rig) record(units []*streaming.Unit, lost map[int]uint64) {
	r.t.Helper()
	c := make(chan streaming.Delivery, len(units))
	for i, u := range units {
		c <- streaming.Delivery{Unit: u, Lost: lost[i]}
	}
	close(c)
	if err := r.spool.record(context.Background(), testCamera, c); err != nil {
		r.t.Fatal(err)
	}
}

// startUploader runs the uploader until the test ends.
func (r *rig) startUploader() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.up.Run(ctx); err != nil {
			r.t.Errorf("uploader: %v", err)
		}
	}()
	r.t.Cleanup(func() { cancel(); <-done })
}

// drain waits until the uploader has emptied the spool.
func (r *rig) drain() {
	r.t.Helper()
	defer func() {
		if r.t.Failed() {
			n, b := r.up.Pending()
			r.t.Logf("pending %d segments of %d bytes, spool %d bytes, last error %v", n, b, r.spool.Bytes(), r.up.LastError())
		}
	}()
	testutil.WaitFor(r.t, 10*time.Second, "spool drained", func() bool {
		n, _ := r.up.Pending()
		return n == 0 && r.spool.Bytes() == 0
	})
	if files := spoolFiles(r.t, r.dir); len(files) > 0 {
		r.t.Fatalf("spool still holds %v", files)
	}
}

func (r *rig) segments() []storage.Segment {
	r.t.Helper()
	segs, err := r.cat.Segments(context.Background(), testCamera, time.Time{}, clipEpoch.Add(24*time.Hour))
	if err != nil {
		r.t.Fatal(err)
	}
	return segs
}

func (r *rig) gaps(cause string) float64 {
	return counterValue(r.t, r.m.Gaps.WithLabelValues(testCamera, cause))
}

func counterValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var pb dto.Metric
	if err := c.Write(&pb); err != nil {
		t.Fatal(err)
	}
	switch {
	case pb.Counter != nil:
		return pb.Counter.GetValue()
	case pb.Gauge != nil:
		return pb.Gauge.GetValue()
	}
	t.Fatal("not a counter or gauge")
	return 0
}

// spoolFiles lists the files (not folders) under dir.
func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// getObject reads a stored segment.
func getObject(t *testing.T, st storage.Store, key string) []byte {
	t.Helper()
	rc, err := st.Get(context.Background(), key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkContiguous asserts each segment starts where the previous one ends (to the
// millisecond of the key) and returns the total duration.
func checkContiguous(t *testing.T, segs []storage.Segment) time.Duration {
	t.Helper()
	var total time.Duration
	for i, s := range segs {
		total += s.Duration
		if i == 0 {
			continue
		}
		end := segs[i-1].Start.Add(segs[i-1].Duration)
		if d := s.Start.Sub(end); d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("segment %d starts at %v, %v after the previous one ends", i, s.Start, d)
		}
	}
	return total
}

func TestSpoolRecordsUploadsAndCatalogues(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffprobe on every segment")
	}
	testutil.NeedTool(t, "ffprobe")
	for _, tc := range []struct{ clip, codec string }{{"h264", "h264"}, {"h265", "hevc"}} {
		t.Run(tc.clip, func(t *testing.T) {
			r := newRig(t, Options{})
			c := loadClip(t, tc.clip)
			r.startUploader()
			r.record(c.loop(2, 1, 0), nil) // 16 s
			r.drain()

			segs := r.segments()
			if len(segs) != 8 {
				t.Fatalf("catalogued %d segments, want 8 of 2 s from 16 s", len(segs))
			}
			if total := checkContiguous(t, segs); total != 16*time.Second {
				t.Errorf("catalogued %v, want 16s", total)
			}
			if got := counterValue(t, r.m.SegmentsStored.WithLabelValues(testCamera)); got != 8 {
				t.Errorf("segments stored metric %v, want 8", got)
			}
			tmp := t.TempDir()
			for i, s := range segs {
				b := getObject(t, r.store, s.Key)
				// What the writer indexed on the fly must be what a reader finds.
				idx, err := storage.ScanSegment(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				// The catalog keeps milliseconds.
				if idx.SHA256 != s.SHA256 || idx.Size != s.Size || idx.Complete != s.Size ||
					idx.Duration.Truncate(time.Millisecond) != s.Duration || !equalFragments(idx.Fragments, s.Fragments) {
					t.Errorf("segment %d: catalog %+v does not match the stored object's index %+v", i, s, idx)
				}
				path := filepath.Join(tmp, strconv.Itoa(i)+".mp4")
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Fatal(err)
				}
				p := testutil.FFprobe(t, path)
				if p.Codec != tc.codec || p.Width != 640 || p.Height != 360 {
					t.Errorf("segment %d: ffprobe sees %s %dx%d", i, p.Codec, p.Width, p.Height)
				}
				if d := p.Duration - s.Duration; d < -40*time.Millisecond || d > 40*time.Millisecond {
					t.Errorf("segment %d: ffprobe duration %v, catalog %v", i, p.Duration, s.Duration)
				}
				if !p.FirstKey {
					t.Errorf("segment %d does not start with a keyframe", i)
				}
			}
		})
	}
}

func equalFragments(a, b []storage.Fragment) bool {
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

func TestSpoolStartsNewSegmentOnLossAndEpoch(t *testing.T) {
	c := loadClip(t, "h264")
	pass := len(c.units)
	cases := []struct {
		name       string
		units      func() []*streaming.Unit
		lost       map[int]uint64
		wantStarts []time.Duration // from clipEpoch
		wantTotal  time.Duration
		overflow   float64
	}{
		{
			name: "lost",
			// 8 s, then the reader loses 2 s and resumes at the 10 s keyframe.
			units:      func() []*streaming.Unit { u := c.loop(2, 1, 0); return append(u[:pass], u[pass+50:]...) },
			lost:       map[int]uint64{pass: 50},
			wantStarts: []time.Duration{0, 10 * time.Second},
			wantTotal:  14 * time.Second,
			overflow:   1,
		},
		{
			name: "epoch",
			// The camera reconnects: a new epoch whose timestamps start again at 0.
			units: func() []*streaming.Unit {
				a, b := c.loop(1, 1, 0), c.loop(1, 2, 0)
				for _, u := range b {
					u.Time = u.Time.Add(8 * time.Second)
				}
				return append(a, b...)
			},
			wantStarts: []time.Duration{0, 8 * time.Second},
			wantTotal:  16 * time.Second,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Options{SegmentDuration: time.Minute})
			r.startUploader()
			r.record(tc.units(), tc.lost)
			r.drain()
			segs := r.segments()
			var starts []time.Duration
			var total time.Duration
			for _, s := range segs {
				starts = append(starts, s.Start.Sub(clipEpoch))
				total += s.Duration
			}
			if !slicesEqual(starts, tc.wantStarts) || total != tc.wantTotal {
				t.Errorf("segments start at %v lasting %v in all, want %v and %v", starts, total, tc.wantStarts, tc.wantTotal)
			}
			if got := r.gaps(metrics.GapOverflow); got != tc.overflow {
				t.Errorf("overflow gaps %v, want %v", got, tc.overflow)
			}
		})
	}
}

func slicesEqual[T comparable](a, b []T) bool {
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

// segmentBytes builds a real segment of the clip with 1 s fragments, in memory.
func segmentBytes(t *testing.T, c *clip, seconds int) *memSegment {
	t.Helper()
	var sink memSink
	s := newSegmenter(time.Hour, time.Second, &sink, segmenterEvents{})
	feed(s, c.loop(1, 1, 0)[:seconds*25+1])
	s.close()
	return sink.segs[0]
}

func TestRecoverAfterCrash(t *testing.T) {
	c := loadClip(t, "h264")
	seg := segmentBytes(t, c, 5)
	b := seg.data.Bytes()
	idx, err := storage.ScanSegment(bytes.NewReader(b))
	if err != nil || len(idx.Fragments) < 4 {
		t.Fatalf("test segment: %v, %d fragments", err, len(idx.Fragments))
	}
	f3 := idx.Fragments[3]
	crashed := b[:f3.Offset+f3.Size/2] // 3 fragments and half of the fourth

	dir := filepath.Join(t.TempDir(), "spool")
	start := clipEpoch
	write := func(rel string, data []byte) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	write(testCamera+"/"+strconv.FormatInt(start.UnixMilli(), 10)+".part", crashed)
	// A crash right after creating the next segment: half an init, nothing to keep.
	write(testCamera+"/"+strconv.FormatInt(start.Add(time.Minute).UnixMilli(), 10)+".part", b[:idx.InitSize/2])
	// A segment closed before the crash but not uploaded.
	closedKey := storage.SegmentKey{Camera: testCamera, Start: start.Add(-5 * time.Second), Duration: 5 * time.Second}.String()
	write(closedKey, b[:idx.Fragments[4].Offset+idx.Fragments[4].Size])

	r := newRig(t, Options{Dir: dir})
	if err := r.spool.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, size := r.up.Pending(); n != 2 || size != int64(f3.Offset)+idx.Fragments[4].Offset+idx.Fragments[4].Size {
		t.Errorf("pending %d segments of %d bytes after recovery", n, size)
	}
	r.startUploader()
	r.drain()

	segs := r.segments()
	if len(segs) != 2 {
		t.Fatalf("catalogued %d segments, want 2", len(segs))
	}
	if segs[0].Key != closedKey || segs[0].Duration != 5*time.Second {
		t.Errorf("closed segment catalogued as %s lasting %v", segs[0].Key, segs[0].Duration)
	}
	got := segs[1]
	if !got.Start.Equal(start) || got.Duration != 3*time.Second || len(got.Fragments) != 3 || got.Size != f3.Offset {
		t.Errorf("crashed segment catalogued from %v lasting %v with %d fragments, %d bytes; want 3 s, 3 fragments, %d bytes",
			got.Start, got.Duration, len(got.Fragments), got.Size, f3.Offset)
	}
	stored := getObject(t, r.store, got.Key)
	if !bytes.Equal(stored, b[:f3.Offset]) {
		t.Error("stored object is not the crashed file cut after its third fragment")
	}
	// Recovered segments are catalogued with the init section and sample table of
	// what was kept, as a catalog rebuild would read them.
	tabled, err := r.cat.SegmentsWithTables(context.Background(), testCamera, time.Time{}, clipEpoch.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range tabled {
		idx, err := storage.ScanSegment(bytes.NewReader(getObject(t, r.store, s.Key)))
		if err != nil {
			t.Fatal(err)
		}
		if s.Samples == nil || !bytes.Equal(s.Samples, idx.Samples) || s.Init == nil || !bytes.Equal(s.Init, idx.Init) {
			t.Errorf("%s catalogued with sample table %x and a %d-byte init; the stored object has %x and %d bytes",
				s.Key, s.Samples, len(s.Init), idx.Samples, len(idx.Init))
		}
	}
}

func TestSpoolCapPausesRecordingWithoutDeleting(t *testing.T) {
	c := loadClip(t, "h264")
	// The cap holds the first two 2 s segments and not a byte of a third.
	probeRig := newRig(t, Options{})
	probeRig.record(c.loop(1, 1, 0)[:100], nil)
	_, twoSegs := probeRig.up.Pending()
	maxBytes := twoSegs + 100

	r := newRig(t, Options{MaxBytes: maxBytes})
	r.record(c.loop(2, 1, 0), nil) // 16 s, no uploader yet
	before := spoolFiles(t, r.dir)
	if len(before) != 2 {
		t.Fatalf("spooled %v before the cap, want 2 segments", before)
	}
	if got := r.gaps(metrics.GapSpoolFull); got != 1 {
		t.Errorf("spool_full gaps %v, want 1 episode", got)
	}
	if b := r.spool.Bytes(); b != twoSegs || counterValue(t, r.m.SpoolBytes) != float64(b) {
		t.Errorf("spool holds %d bytes (metric %v), want %d", b, counterValue(t, r.m.SpoolBytes), twoSegs)
	}

	// Uploads free space; everything spooled before the cap reaches the store.
	r.startUploader()
	r.drain()
	segs := r.segments()
	var keys []string
	for _, s := range segs {
		keys = append(keys, s.Key)
	}
	if !slicesEqual(keys, before) || checkContiguous(t, segs) != 4*time.Second {
		t.Errorf("catalogued %v, spooled %v before the cap", keys, before)
	}
	// And recording goes on.
	r.record(c.loop(1, 1, 2*c.duration)[:100], nil)
	r.drain()
	if got := len(r.segments()); got != 4 {
		t.Errorf("%d segments after recording resumed, want 4", got)
	}
	if got := r.gaps(metrics.GapSpoolFull); got != 1 {
		t.Errorf("spool_full gaps %v after space was freed, want still 1", got)
	}
}

// failingFile fails every write while full is set, after writing half of it, as a
// filling disk does.
type failingFile struct {
	*os.File
	full *atomic.Bool
}

func (f failingFile) WriteAt(b []byte, off int64) (int, error) {
	if !f.full.Load() {
		return f.File.WriteAt(b, off)
	}
	n, _ := f.File.WriteAt(b[:len(b)/2], off)
	return n, syscall.ENOSPC
}

func TestSpoolWriteErrorIsAGap(t *testing.T) {
	c := loadClip(t, "h264")
	r := newRig(t, Options{})
	var full atomic.Bool
	units := c.loop(2, 1, 0)
	in := make(chan streaming.Delivery)
	done := make(chan error, 1)
	go func() {
		open := func(path string) (segmentFile, error) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
			if err != nil {
				return nil, err
			}
			return failingFile{File: f, full: &full}, nil
		}
		done <- r.spool.recordWith(context.Background(), testCamera, in, open)
	}()
	for i, u := range units {
		switch i {
		case 90: // 3.6 s: the disk fills in the middle of the second segment
			full.Store(true)
		case 160: // 6.4 s: space again; recording resumes at the 8 s keyframe
			if err := r.spool.WriteError(); !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("spool write error while its disk is full: %v, want ENOSPC (health's disk_full)", err)
			}
			full.Store(false)
		case 300: // recording resumed at 8 s
			if err := r.spool.WriteError(); err != nil {
				t.Errorf("spool still failing after recording resumed: %v", err)
			}
		}
		in <- streaming.Delivery{Unit: u}
	}
	close(in)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := r.gaps(metrics.GapWriteError); got != 1 {
		t.Errorf("write_error gaps %v, want 1", got)
	}
	r.startUploader()
	r.drain()
	var starts []time.Duration
	var total time.Duration
	for _, s := range r.segments() {
		starts = append(starts, s.Start.Sub(clipEpoch))
		total += s.Duration
	}
	// [0,2) whole, [2,3) up to the last complete fragment, then from 8 s on.
	want := []time.Duration{0, 2 * time.Second, 8 * time.Second, 10 * time.Second, 12 * time.Second, 14 * time.Second}
	if !slicesEqual(starts, want) || total != 11*time.Second {
		t.Errorf("segments start at %v, %v in all; want %v, 11s", starts, total, want)
	}
}

func TestRecordCameraStopsCleanly(t *testing.T) {
	c := loadClip(t, "h264")
	r := newRig(t, Options{})
	checkGoroutines := testutil.CheckGoroutines(t)

	st := streaming.New()
	rd := st.Subscribe(1024, false)
	ctx, cancel := context.WithCancel(context.Background())
	upCtx, upCancel := context.WithCancel(context.Background())
	recDone, upDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(recDone)
		if err := r.spool.RecordCamera(ctx, testCamera, rd); err != nil {
			t.Error(err)
		}
	}()
	go func() {
		defer close(upDone)
		r.up.Run(upCtx)
	}()
	for _, u := range c.loop(1, 1, 0)[:120] { // 4.8 s: two closed segments and an open one
		st.Write(u)
	}
	testutil.WaitFor(t, 10*time.Second, "units consumed", func() bool { return len(rd.C()) == 0 })
	testutil.WaitFor(t, 10*time.Second, "two segments stored", func() bool { return len(r.segments()) == 2 })
	cancel()
	<-recDone
	testutil.WaitFor(t, 10*time.Second, "open segment closed and stored", func() bool { return len(r.segments()) == 3 })
	upCancel()
	<-upDone
	rd.Close()
	st.Close()

	segs := r.segments()
	if d := segs[2].Duration; d != 800*time.Millisecond {
		t.Errorf("segment closed on cancel lasts %v, want the 0.8 s received", d)
	}
	checkGoroutines()
}

// TestRecoverKeepsFragmentsBeforeCorruption: a crash that leaves stale bytes inside
// the last moof (not zeros, not a clean cut) costs that fragment, not the segment.
func TestRecoverKeepsFragmentsBeforeCorruption(t *testing.T) {
	c := loadClip(t, "h264")
	b := segmentBytes(t, c, 5).data.Bytes()
	idx, err := storage.ScanSegment(bytes.NewReader(b))
	if err != nil || len(idx.Fragments) < 5 {
		t.Fatalf("test segment: %v, %d fragments", err, len(idx.Fragments))
	}
	f3 := idx.Fragments[3]
	crashed := slices.Clone(b)
	rnd := rand.New(rand.NewPCG(7, 7))
	for i := f3.Offset + 8; i < f3.Offset+min(f3.Size, 200); i++ {
		crashed[i] = byte(rnd.Uint32() | 1)
	}
	dir := filepath.Join(t.TempDir(), "spool")
	part := filepath.Join(dir, testCamera, strconv.FormatInt(clipEpoch.UnixMilli(), 10)+".part")
	if err := os.MkdirAll(filepath.Dir(part), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(part, crashed, 0o640); err != nil {
		t.Fatal(err)
	}

	r := newRig(t, Options{Dir: dir})
	if err := r.spool.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, size := r.up.Pending(); n != 1 || size != f3.Offset {
		t.Fatalf("pending %d segments of %d bytes after recovery, want 1 of %d", n, size, f3.Offset)
	}
	r.startUploader()
	r.drain()
	segs := r.segments()
	if len(segs) != 1 || len(segs[0].Fragments) != 3 || segs[0].Duration != 3*time.Second {
		t.Fatalf("catalogued %+v, want one 3 s segment of 3 fragments", segs)
	}
	if !bytes.Equal(getObject(t, r.store, segs[0].Key), b[:f3.Offset]) {
		t.Error("stored object is not the crashed file cut after its third fragment")
	}
}

// TestSpoolQueuesSegmentWhenDirSyncFails: once a segment is renamed to its key, a
// failed directory sync must not keep it from upload until the next restart.
func TestSpoolQueuesSegmentWhenDirSyncFails(t *testing.T) {
	c := loadClip(t, "h264")
	r := newRig(t, Options{})
	r.spool.syncDir = func(dir string) error {
		// Only day folders fail: they are synced after the rename.
		if rel, _ := filepath.Rel(r.dir, dir); strings.Count(filepath.ToSlash(rel), "/") == 3 {
			return syscall.EIO
		}
		return durable.SyncDir(dir)
	}
	r.record(c.loop(1, 1, 0)[:100], nil) // 4 s: two segments
	if n, _ := r.up.Pending(); n != 2 {
		t.Fatalf("%d segments queued for upload, want 2 (spool holds %v)", n, spoolFiles(t, r.dir))
	}
	r.startUploader()
	r.drain()
	if got := len(r.segments()); got != 2 {
		t.Errorf("catalogued %d segments, want 2", got)
	}
}

// TestSpoolResumesWhenSpaceFreedWithoutUpload: bytes released by anything but an
// upload (here a segment that ended without a fragment) must end a spool-full pause
// too, or recording stays paused with nothing left to upload.
func TestSpoolResumesWhenSpaceFreedWithoutUpload(t *testing.T) {
	sp := newRig(t, Options{MaxBytes: 1000}).spool
	w1 := &writer{s: sp, camera: testCamera, log: sp.log, open: openSegmentFile}
	w2 := &writer{s: sp, camera: "cam2", log: sp.log, open: openSegmentFile}
	init := make([]byte, 600)
	if err := w1.startSegment(clipEpoch, init); err != nil {
		t.Fatal(err)
	}
	if err := w2.startSegment(clipEpoch, init); !errors.Is(err, ErrFull) {
		t.Fatalf("second camera's segment over the cap: %v, want ErrSpoolFull", err)
	}
	w1.endSegment() // no fragment: the file goes
	if b := sp.Bytes(); b != 0 {
		t.Fatalf("spool holds %d bytes, want 0", b)
	}
	if n, _ := sp.pending(); n != 0 {
		t.Fatalf("%d segments pending, want none", n)
	}
	if err := w2.startSegment(clipEpoch, init); err != nil {
		t.Fatalf("recording still refused with an empty spool: %v", err)
	}
	w2.endSegment()
}

// TestSpoolSyncsNewDirectories: every folder the spool creates is fsynced into its
// parent, so a crash cannot lose a segment by losing the folder it was renamed into.
func TestSpoolSyncsNewDirectories(t *testing.T) {
	c := loadClip(t, "h264")
	r := newRig(t, Options{})
	var mu sync.Mutex
	synced := map[string]bool{}
	r.spool.syncDir = func(dir string) error {
		rel, _ := filepath.Rel(r.dir, dir)
		mu.Lock()
		synced[filepath.ToSlash(rel)] = true
		mu.Unlock()
		return durable.SyncDir(dir)
	}
	r.record(c.loop(1, 1, 0)[:50], nil) // one 2 s segment
	files := spoolFiles(t, r.dir)
	if len(files) != 1 {
		t.Fatalf("spool holds %v, want one segment", files)
	}
	mu.Lock()
	defer mu.Unlock()
	for dir := path.Dir(files[0]); ; dir = path.Dir(dir) {
		if !synced[dir] {
			t.Errorf("folder %q of %s never synced (synced: %v)", dir, files[0], synced)
		}
		if dir == "." {
			break
		}
	}
}

// TestSpoolNeverReplacesASegment: when a closed segment's key and every key after it
// that the spool tries are taken by segments not uploaded yet, finalising fails and
// keeps the .part; no waiting segment is overwritten.
func TestSpoolNeverReplacesASegment(t *testing.T) {
	r := newRig(t, Options{})
	seg := storage.Segment{Camera: testCamera, Start: clipEpoch, Duration: 2 * time.Second}
	taken := map[string]string{}
	for i := range keyTries {
		key := storage.SegmentKey{Camera: testCamera, Start: clipEpoch.Add(time.Duration(i) * time.Millisecond),
			Duration: seg.Duration}.String()
		path := filepath.Join(r.dir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("waiting "+key), 0o644); err != nil {
			t.Fatal(err)
		}
		taken[path] = "waiting " + key
	}
	part := filepath.Join(r.dir, testCamera, strconv.FormatInt(clipEpoch.UnixMilli(), 10)+".part")
	if err := os.MkdirAll(filepath.Dir(part), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(part, []byte("new footage"), 0o644); err != nil {
		t.Fatal(err)
	}

	if sp, err := r.spool.finalise(part, seg); !errors.Is(err, errKeysTaken) {
		t.Fatalf("finalise with every key taken = %+v, %v; want errSpoolKeysTaken", sp, err)
	}
	if b, err := os.ReadFile(part); err != nil || string(b) != "new footage" {
		t.Errorf(".part after the failed finalise: %q, %v; want it kept", b, err)
	}
	for path, want := range taken {
		if b, err := os.ReadFile(path); err != nil || string(b) != want {
			t.Fatalf("%s = %q, %v: a waiting segment was replaced", path, b, err)
		}
	}

	// One key free after the taken ones is used, and nothing else changes.
	last := filepath.Join(r.dir, filepath.FromSlash(storage.SegmentKey{Camera: testCamera,
		Start: clipEpoch.Add((keyTries - 1) * time.Millisecond), Duration: seg.Duration}.String()))
	if err := os.Remove(last); err != nil {
		t.Fatal(err)
	}
	delete(taken, last)
	sp, err := r.spool.finalise(part, seg)
	if err != nil || sp.path != last {
		t.Fatalf("finalise with one key free = %+v, %v; want it at %s", sp, err, last)
	}
	if b, _ := os.ReadFile(last); string(b) != "new footage" {
		t.Errorf("finalised segment holds %q", b)
	}
	for path, want := range taken {
		if b, err := os.ReadFile(path); err != nil || string(b) != want {
			t.Fatalf("%s = %q, %v: a waiting segment was replaced", path, b, err)
		}
	}
}

// Two time bases whose segments would overlap (the second starts 6 s into 8 s of
// footage, at the same instant as its last segment): every segment is kept, none
// replaces or duplicates another's start, and none overlaps the one before.
func TestSpoolNeverOverlapsSegments(t *testing.T) {
	c := loadClip(t, "h264")
	a, b := c.loop(1, 1, 0), c.loop(1, 2, 0)
	for _, u := range b {
		u.Time = u.Time.Add(6 * time.Second)
	}
	r := newRig(t, Options{SegmentDuration: 2 * time.Second})
	r.startUploader()
	r.record(append(a, b...), nil)
	r.drain()
	segs := r.segments()
	if len(segs) != 8 {
		t.Fatalf("%d segments catalogued, want 8 (4 per time base)", len(segs))
	}
	if total := checkContiguous(t, segs); total != 16*time.Second {
		t.Errorf("%v recorded, want 16 s", total)
	}
	for i := 1; i < len(segs); i++ {
		if !segs[i].Start.After(segs[i-1].Start) {
			t.Errorf("segments %s and %s: same or earlier start", segs[i-1].Key, segs[i].Key)
		}
	}
}

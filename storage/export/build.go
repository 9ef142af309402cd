package export

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
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
	// MinFree is the free space left on the export's disk after the clip and the
	// copies of its segments.
	MinFree int64
}

// SegmentSource lists one camera's catalogued segments overlapping [from, to), with
// their fragments (*storage.Catalog).
type SegmentSource interface {
	Segments(ctx context.Context, camera string, from, to time.Time) ([]storage.Segment, error)
}

// Build copies every source segment of the range from the store beside out.Clip,
// checking each against the SHA-256 the catalog took when it was written, then
// stitches the clip from those verified copies with playback's virtual MP4 (from the
// keyframe at or before From, with an edit list so that it plays from From), and
// writes it to out.Clip, then the manifest and its signature. Each segment is read
// from the store once, and the clip holds exactly the bytes that were checked.
// progress, if not nil, is called with bytes done of total as it goes. On error
// nothing is left at out's paths. Errors: ErrNoFootage, ErrTampered (naming the
// segment), ErrNoSpace.
func (b *Builder) Build(ctx context.Context, req Request, out Files, progress func(done, total int64)) (*Manifest, error) {
	segs, err := b.Catalog.Segments(ctx, req.Camera, req.From, req.To)
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
	dir := filepath.Dir(out.Clip)
	// Room for the copies and a clip of about their size.
	if err := checkSpace(dir, 2*total+b.MinFree); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(dir, ".segments-")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	defer os.RemoveAll(tmp)
	total *= 2 // the copies, then the clip
	var done atomic.Int64
	report := func(n int64) {
		if progress != nil {
			progress(done.Add(n), total)
		}
	}
	report(0)
	local := &verified{dir: tmp, files: make(map[string]string, len(segs)), segs: segs}
	for i, s := range segs {
		if err := b.copySegment(ctx, s, filepath.Join(tmp, fmt.Sprintf("%06d.mp4", i)), report); err != nil {
			return nil, err
		}
		local.files[s.Key] = filepath.Join(tmp, fmt.Sprintf("%06d.mp4", i))
	}
	movie, err := playback.New(local, local, nil).Movie(ctx, req.Camera, req.From, req.To)
	if errors.Is(err, playback.ErrNoFootage) {
		return nil, fmt.Errorf("%w: %w", ErrNoFootage, err)
	}
	if err != nil {
		return nil, err
	}
	total += movie.Size() - total/2 // the clip's real size
	entries := make([]SourceEntry, 0, len(movie.Segments()))
	for _, s := range movie.Segments() {
		entries = append(entries, SourceEntry{Key: s.Key, Start: s.Start.UTC(), End: s.End().UTC(), Size: s.Size,
			SHA256: hex.EncodeToString(s.SHA256[:])})
	}
	sum, err := writeClip(ctx, movie, out.Clip, report)
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

// copySegment copies one object to path, failing with ErrTampered when its bytes
// differ from the catalog's record of them.
func (b *Builder) copySegment(ctx context.Context, s storage.Segment, path string, report func(int64)) error {
	rc, err := b.Store.Get(ctx, s.Key, 0, -1)
	if err != nil {
		return fmt.Errorf("read segment %s: %w", s.Key, err)
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), &progressReader{r: rc, ctx: ctx, report: report})
	if err != nil {
		return fmt.Errorf("read segment %s: %w", s.Key, err)
	}
	var got [32]byte
	h.Sum(got[:0])
	if got != s.SHA256 || n != s.Size {
		return fmt.Errorf("%w: segment %s: stored bytes have SHA-256 %s (%d bytes), catalogued at write time as %s "+
			"(%d bytes)", ErrTampered, s.Key, hex.EncodeToString(got[:]), n, hex.EncodeToString(s.SHA256[:]), s.Size)
	}
	return nil
}

// verified is the checked copies of an export's segments, as playback's catalog and
// object reader: the movie sees those segments and reads only those bytes.
type verified struct {
	dir   string
	files map[string]string // key -> copy
	segs  []storage.Segment
}

func (v *verified) Segments(_ context.Context, camera string, from, to time.Time) ([]storage.Segment, error) {
	var out []storage.Segment
	for _, s := range v.segs {
		if s.Camera == camera && s.Start.Before(to) && s.End().After(from) {
			out = append(out, s)
		}
	}
	return out, nil
}

// SegmentsWithTables is Segments: the copies' moofs are read from local files.
func (v *verified) SegmentsWithTables(ctx context.Context, camera string, from, to time.Time) ([]storage.Segment, error) {
	return v.Segments(ctx, camera, from, to)
}

func (v *verified) ListSegments(ctx context.Context, q storage.SegmentQuery, fn func(storage.Segment) error) error {
	segs, _ := v.Segments(ctx, q.Camera, q.From, q.To)
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

func (v *verified) Get(_ context.Context, key string, off, length int64) (io.ReadCloser, error) {
	p, ok := v.files[key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, storage.ErrNotFound)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	if length < 0 {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, length), f}, nil
}

// writeClip writes movie to path through a temporary file, returning its SHA-256.
func writeClip(ctx context.Context, movie *playback.Movie, path string, report func(int64)) (string, error) {
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
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	if err := movie.WriteRange(ctx, &progressWriter{w: bw, report: report}, 0, movie.Size()); err != nil {
		return fail(fmt.Errorf("write clip: %w", err))
	}
	if err := bw.Flush(); err != nil {
		return fail(fmt.Errorf("write clip: %w", err))
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

type progressReader struct {
	r      io.Reader
	ctx    context.Context // checked between reads: a long export stops on cancel
	report func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.report(int64(n))
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

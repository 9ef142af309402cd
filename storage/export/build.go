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
)

// Clip is one camera's footage over a range, stitched into one MP4 without
// re-encoding (*playback.Movie).
type Clip interface {
	Size() int64
	// WriteRange writes n bytes of the clip from offset off.
	WriteRange(ctx context.Context, w io.Writer, off, n int64) error
	// Segments are the catalogued segments the clip is made from, in order.
	Segments() []storage.Segment
	// Start and End are the times the clip covers.
	Start() time.Time
	End() time.Time
}

// ClipSource stitches clips; an error matching ErrNoFootage means the range holds no
// recording.
type ClipSource interface {
	Clip(ctx context.Context, camera string, from, to time.Time) (Clip, error)
}

// ClipFunc adapts a function to ClipSource.
type ClipFunc func(ctx context.Context, camera string, from, to time.Time) (Clip, error)

// Clip implements ClipSource.
func (f ClipFunc) Clip(ctx context.Context, camera string, from, to time.Time) (Clip, error) {
	return f(ctx, camera, from, to)
}

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
	Store storage.Store
	Clips ClipSource
	Keys  *Keys
	// MinFree is the free space left on the export's disk after the clip.
	MinFree int64
}

// Build checks every source segment against its catalogued SHA-256, writes the clip
// (to out.Clip, through a temporary file), then the manifest and its signature.
// progress, if not nil, is called with bytes done of total as it goes (reading the
// segments, then writing the clip). On error nothing is left at out's paths.
func (b *Builder) Build(ctx context.Context, req Request, out Files, progress func(done, total int64)) (*Manifest, error) {
	clip, err := b.Clips.Clip(ctx, req.Camera, req.From, req.To)
	if err != nil {
		return nil, err
	}
	segs := clip.Segments()
	var total int64 = clip.Size()
	for _, s := range segs {
		total += s.Size
	}
	var done atomic.Int64
	report := func(n int64) {
		if progress != nil {
			progress(done.Add(n), total)
		}
	}
	if progress != nil {
		progress(0, total)
	}
	if err := checkSpace(filepath.Dir(out.Clip), clip.Size()+b.MinFree); err != nil {
		return nil, err
	}
	entries := make([]SourceEntry, 0, len(segs))
	for _, s := range segs {
		if err := b.checkSegment(ctx, s, report); err != nil {
			return nil, err
		}
		entries = append(entries, SourceEntry{Key: s.Key, Start: s.Start.UTC(), End: s.End().UTC(), Size: s.Size,
			SHA256: hex.EncodeToString(s.SHA256[:])})
	}
	sum, err := writeClip(ctx, clip, out.Clip, report)
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
		Actual: TimeRange{clip.Start().UTC(), clip.End().UTC()}, Segments: entries,
		Clip:    ClipEntry{File: filepath.Base(out.Clip), Size: clip.Size(), SHA256: sum},
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

// checkSegment reads the whole object and compares it with the catalog's record of it.
func (b *Builder) checkSegment(ctx context.Context, s storage.Segment, report func(int64)) error {
	rc, err := b.Store.Get(ctx, s.Key, 0, -1)
	if err != nil {
		return fmt.Errorf("read segment %s: %w", s.Key, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, &progressReader{r: rc, ctx: ctx, report: report})
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

// writeClip writes clip to path through a temporary file, returning its SHA-256.
func writeClip(ctx context.Context, clip Clip, path string, report func(int64)) (string, error) {
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
	if err := clip.WriteRange(ctx, &progressWriter{w: bw, report: report}, 0, clip.Size()); err != nil {
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

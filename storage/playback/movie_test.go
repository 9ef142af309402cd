package playback_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/mp4"
	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
	"github.com/straja-nvr/straja/storage/storetest"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/clip"
)

const frame = 40 * time.Millisecond

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// movieBytes writes the whole movie through WriteRange.
func movieBytes(t *testing.T, m *playback.Movie) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := m.WriteRange(t.Context(), &buf, 0, m.Size()); err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) != m.Size() {
		t.Fatalf("wrote %d bytes, Size says %d", buf.Len(), m.Size())
	}
	return buf.Bytes()
}

// packets returns the video packets' presentation and decode times and key flags as
// ffprobe reads them.
type packet struct {
	pts, dts float64
	key      bool
}

func probePackets(t *testing.T, path string) []packet {
	t.Helper()
	bin := testutil.NeedTool(t, "ffprobe")
	out, err := exec.Command(bin, "-v", "error", "-select_streams", "v", "-show_entries",
		"packet=pts_time,dts_time,flags", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets: %v", err)
	}
	var ps []packet
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			t.Fatalf("ffprobe packet line %q", line)
		}
		pts, err1 := strconv.ParseFloat(f[0], 64)
		dts, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("ffprobe packet line %q", line)
		}
		ps = append(ps, packet{pts: pts, dts: dts, key: strings.HasPrefix(f[2], "K")})
	}
	return ps
}

// checkMovie checks with ffprobe and ffmpeg that the movie over [from, to) plays
// from from to to: its duration within a frame, decode times that step one frame at
// a time (or hold a picture over a gap, never go back), a keyframe first and an
// edit list that puts from at time 0.
func checkMovie(t *testing.T, data []byte, from, to, keyframe time.Time) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "movie.mp4")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testutil.NeedTool(t, "ffprobe"), "-v", "error", "-show_entries", "format=duration",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q: %v", out, err)
	}
	if d := time.Duration(secs*float64(time.Second)) - to.Sub(from); d < -frame || d > frame {
		t.Errorf("ffprobe duration %.3f s, want %v within a frame", secs, to.Sub(from))
	}
	checkPrft(t, data, from)
	ps := probePackets(t, path)
	if !ps[0].key {
		t.Error("first packet is not a keyframe")
	}
	// The edit list: the keyframe's picture is (from - keyframe) before time 0.
	if want := -from.Sub(keyframe).Seconds(); ps[0].pts > want+frame.Seconds() || ps[0].pts < want-frame.Seconds() {
		t.Errorf("first packet at %.3f s, want %.3f s (edit list starting at from)", ps[0].pts, want)
	}
	for i := 1; i < len(ps); i++ {
		if d := ps[i].dts - ps[i-1].dts; d <= 0 {
			t.Fatalf("packet %d: decode time %.3f after %.3f", i, ps[i].dts, ps[i-1].dts)
		}
	}
	if out, err := exec.Command(testutil.NeedTool(t, "ffmpeg"), "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("ffmpeg decoding the movie: %v %s", err, out)
	}
}

// checkPrft checks that the movie dates its first picture shown: a prft box before the
// mdat says when it was captured, at the media time where the edit list starts.
func checkPrft(t *testing.T, data []byte, shown time.Time) {
	t.Helper()
	boxes, err := mp4.ReadBoxes(data)
	if err != nil {
		t.Fatal(err)
	}
	var elst []byte
	for i, b := range boxes {
		switch b.Type {
		case "moov":
			elst, _ = mp4.Path(b.Body, "trak", "edts", "elst")
		case "prft":
			if i+1 >= len(boxes) || boxes[i+1].Type != "mdat" || len(elst) < 24 {
				t.Fatalf("prft at %d is not between the moov (with an edit list) and the mdat", b.Offset)
			}
			p, err := mp4.ParsePrft(b.Body)
			if err != nil {
				t.Fatal(err)
			}
			if media := binary.BigEndian.Uint64(elst[16:]); !p.Time.Equal(shown) || p.MediaTime != media {
				t.Errorf("prft says %v at media time %d, want %v at %d (the edit list's start)", p.Time, p.MediaTime, shown, media)
			}
			return
		}
	}
	t.Error("the movie has no prft box")
}

func TestMovieAcrossSegments(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	playbacktest.Record(t, st, cat, "gate", t0, 4, 6*time.Second)
	p := playback.New(cat, st, nil)
	// From mid-frame in a GOP of the first segment to the fourth segment.
	from, to := t0.Add(3*time.Second+500*time.Millisecond), t0.Add(20*time.Second)
	m, err := p.Movie(t.Context(), "gate", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Start().Equal(from) || !m.End().Equal(to) {
		t.Errorf("movie %v to %v, want %v to %v", m.Start(), m.End(), from, to)
	}
	if n := len(m.Segments()); n != 4 {
		t.Errorf("movie reads %d segments, want 4", n)
	}
	data := movieBytes(t, m)
	checkMovie(t, data, from, to, t0.Add(2*time.Second))
	ps := probePackets(t, writeTemp(t, data))
	for i := 1; i < len(ps); i++ {
		if d := ps[i].dts - ps[i-1].dts; d < 0.039 || d > 0.041 {
			t.Errorf("packet %d: decode time steps %.3f s, want one frame (segment boundaries are seamless)", i, d)
		}
	}
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "movie.mp4")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMovieOverGap checks that a hole in the recording keeps the movie's time equal
// to wall-clock time: the last picture holds over the gap.
func TestMovieOverGap(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	playbacktest.Record(t, st, cat, "gate", t0, 3, 6*time.Second, 1)
	p := playback.New(cat, st, nil)
	from, to := t0.Add(4*time.Second), t0.Add(16*time.Second)
	m, err := p.Movie(t.Context(), "gate", from, to)
	if err != nil {
		t.Fatal(err)
	}
	data := movieBytes(t, m)
	checkMovie(t, data, from, to, t0.Add(4*time.Second))
	ps := probePackets(t, writeTemp(t, data))
	// The first packet of the third segment plays at its wall-clock time: 12 s - 4 s.
	found := false
	for _, pk := range ps {
		if pk.pts > 7.99 && pk.pts < 8.01 {
			found = pk.key
		}
	}
	if !found {
		t.Error("no keyframe at 8 s: the segment after the gap is not at its recorded time")
	}
}

func TestMovieStartsInGap(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	playbacktest.Record(t, st, cat, "gate", t0, 2, 6*time.Second, 0)
	p := playback.New(cat, st, nil)
	m, err := p.Movie(t.Context(), "gate", t0.Add(time.Second), t0.Add(9*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Start().Equal(t0.Add(6 * time.Second)) {
		t.Errorf("movie starts %v, want the first recorded keyframe %v", m.Start(), t0.Add(6*time.Second))
	}
	checkMovie(t, movieBytes(t, m), m.Start(), m.End(), m.Start())
}

func TestMovieBadRange(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	playbacktest.Record(t, st, cat, "gate", t0, 1, 6*time.Second)
	p := playback.New(cat, st, nil)
	for _, tc := range []struct {
		name     string
		from, to time.Time
		field    string
	}{
		{"to before from", t0.Add(time.Second), t0, "to"},
		{"empty", t0, t0, "to"},
		{"over an hour", t0, t0.Add(time.Hour + time.Second), "to"},
		{"no from", time.Time{}, t0, "from"},
	} {
		_, err := p.Movie(t.Context(), "gate", tc.from, tc.to)
		var re *playback.RangeError
		if !errors.As(err, &re) || re.Field != tc.field {
			t.Errorf("%s: %v, want a RangeError naming %q", tc.name, err, tc.field)
		}
	}
	for _, tc := range []struct {
		camera   string
		from, to time.Time
	}{
		{"gate", t0.Add(-time.Hour), t0.Add(-time.Minute)},
		{"gate", t0.Add(time.Hour), t0.Add(2 * time.Hour)},
		{"other", t0, t0.Add(time.Minute)},
	} {
		if _, err := p.Movie(t.Context(), tc.camera, tc.from, tc.to); !errors.Is(err, playback.ErrNoFootage) {
			t.Errorf("%s %v: %v, want ErrNoFootage", tc.camera, tc.from, err)
		}
	}
}

// TestMovieRanges checks that any byte range, through WriteRange or the Reader, is
// exactly that slice of the whole movie, and that the ETag names the bytes.
func TestMovieRanges(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	playbacktest.Record(t, st, cat, "gate", t0, 3, 6*time.Second)
	testRanges(t, st, cat)
}

func testRanges(t *testing.T, st playback.ObjectReader, cat playback.Catalog) {
	p := playback.New(cat, st, nil)
	from, to := t0.Add(time.Second), t0.Add(17*time.Second)
	m, err := p.Movie(t.Context(), "gate", from, to)
	if err != nil {
		t.Fatal(err)
	}
	full := movieBytes(t, m)
	rng := rand.New(rand.NewPCG(1, 2))
	r := m.NewReader(t.Context())
	defer r.Close()
	for i := range 200 {
		off := rng.Int64N(m.Size())
		n := rng.Int64N(min(m.Size()-off, 1<<uint(rng.IntN(21)))) + 1
		if i%10 == 0 { // to the end
			n = m.Size() - off
		}
		var buf bytes.Buffer
		if err := m.WriteRange(t.Context(), &buf, off, n); err != nil {
			t.Fatalf("WriteRange(%d, %d): %v", off, n, err)
		}
		if !bytes.Equal(buf.Bytes(), full[off:off+n]) {
			t.Fatalf("WriteRange(%d, %d) differs from the whole movie's bytes there", off, n)
		}
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, n)
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatalf("Reader at %d, %d bytes: %v", off, n, err)
		}
		if !bytes.Equal(got, full[off:off+n]) {
			t.Fatalf("Reader at %d, %d bytes differs from the whole movie's bytes there", off, n)
		}
	}
	if err := m.WriteRange(t.Context(), io.Discard, m.Size()-1, 2); err == nil {
		t.Error("WriteRange past the end: no error")
	}
	again, err := p.Movie(t.Context(), "gate", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if again.ETag() != m.ETag() || again.Size() != m.Size() {
		t.Errorf("the same range gives ETag %s (%d bytes), then %s (%d bytes)", m.ETag(), m.Size(), again.ETag(), again.Size())
	}
	other, err := p.Movie(t.Context(), "gate", from, to.Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if other.ETag() == m.ETag() {
		t.Error("a different range has the same ETag")
	}
}

// countingStore counts the bytes the movie reads (concurrently, while it is made).
type countingStore struct {
	storage.Store
	read atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if n < 0 {
		return nil, errors.New("whole-object read")
	}
	c.read.Add(n)
	return c.Store.Get(ctx, key, off, n)
}

// TestMovieReadsOnlyTheRange checks that a byte range of the movie reads about that
// many bytes of the objects, never whole objects.
func TestMovieReadsOnlyTheRange(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	segs := playbacktest.Record(t, st, cat, "gate", t0, 3, 6*time.Second)
	cs := &countingStore{Store: st}
	p := playback.New(cat, cs, nil)
	m, err := p.Movie(t.Context(), "gate", t0, t0.Add(18*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var moofs int64 // the movie's making reads inits and moofs
	for _, s := range segs {
		moofs += s.Fragments[0].Offset + int64(len(s.Fragments))*16<<10
	}
	if cs.read.Load() > moofs {
		t.Errorf("making the movie read %d bytes, more than the inits and moofs (%d)", cs.read.Load(), moofs)
	}
	cs.read.Store(0)
	if err := m.WriteRange(t.Context(), io.Discard, m.Size()/2, 1000); err != nil {
		t.Fatal(err)
	}
	if n := cs.read.Load(); n < 1000 || n > 1000+4096 { // plus a moof it may stream past
		t.Errorf("1000 bytes of the movie read %d bytes of objects", n)
	}
	cs.read.Store(0)
	if err := m.WriteRange(t.Context(), io.Discard, 0, m.Size()); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, s := range segs {
		total += s.Size
	}
	if cs.read.Load() > total {
		t.Errorf("the whole movie read %d bytes, more than the %d of its segments", cs.read.Load(), total)
	}
}

func TestMovieS3(t *testing.T) {
	if testing.Short() {
		t.Skip("MinIO")
	}
	st, err := storage.NewS3(t.Context(), storetest.S3FromEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	_, cat := playbacktest.NewDisk(t)
	playbacktest.Record(t, st, cat, "gate", t0, 3, 6*time.Second)
	testRanges(t, st, cat)
	m, err := playback.New(cat, st, nil).Movie(t.Context(), "gate", t0.Add(5*time.Second), t0.Add(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	checkMovie(t, movieBytes(t, m), t0.Add(5*time.Second), t0.Add(15*time.Second), t0.Add(4*time.Second))
}

func TestStill(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	playbacktest.Record(t, st, cat, "gate", t0, 2, 6*time.Second)
	p := playback.New(cat, st, nil)
	m, err := p.Still(t.Context(), "gate", t0.Add(9*time.Second+300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Start().Equal(t0.Add(8 * time.Second)) {
		t.Errorf("still of %v, want the keyframe at %v", m.Start(), t0.Add(8*time.Second))
	}
	data := movieBytes(t, m)
	if len(data) > 100<<10 {
		t.Errorf("still is %d bytes", len(data))
	}
	ps := probePackets(t, writeTemp(t, data))
	if len(ps) != 1 || !ps[0].key {
		t.Errorf("still has packets %+v, want one keyframe", ps)
	}
	out, err := exec.Command(testutil.NeedTool(t, "ffmpeg"), "-v", "error", "-i", writeTemp(t, data), "-f", "framemd5", "-").CombinedOutput()
	if err != nil || strings.Count(string(out), "\n0,") != 1 {
		t.Errorf("ffmpeg decoding the still: %v %s", err, out)
	}
	if _, err := p.Still(t.Context(), "gate", t0.Add(-time.Second)); !errors.Is(err, playback.ErrNoFootage) {
		t.Errorf("still before the footage: %v, want ErrNoFootage", err)
	}
}

// TestMovieH265 stitches H.265 footage: the sample description is the segments' own.
func TestMovieH265(t *testing.T) {
	st, cat := playbacktest.NewDisk(t)
	c, err := clip.Embedded(streaming.H265)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		data := playbacktest.ClipSegment(t, c, i*100, 100) // 4 s each
		playbacktest.Store(t, st, cat, playbacktest.Segment(t, "gate", t0.Add(time.Duration(i)*4*time.Second), data), data)
	}
	m, err := playback.New(cat, st, nil).Movie(t.Context(), "gate", t0.Add(time.Second), t0.Add(7*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	data := movieBytes(t, m)
	path := writeTemp(t, data)
	out, err := exec.Command(testutil.NeedTool(t, "ffprobe"), "-v", "error", "-show_entries", "stream=codec_name,codec_tag_string",
		"-of", "csv=p=0", path).Output()
	if err != nil || strings.TrimSpace(string(out)) != "hevc,hvc1" {
		t.Fatalf("ffprobe: %v %s", err, out)
	}
	t.Logf("sample entry: %s", out)
	checkMovie(t, data, t0.Add(time.Second), t0.Add(7*time.Second), t0)
}

// TestMovieBFrames stitches footage with B-frames: composition offsets are kept and
// the edit list still starts playback at from.
func TestMovieBFrames(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes a clip")
	}
	c := bframeClip(t, 8)
	st, cat := playbacktest.NewDisk(t)
	for i := range 2 {
		data := playbacktest.ClipSegment(t, c, i*100, 100)
		playbacktest.Store(t, st, cat, playbacktest.Segment(t, "gate", t0.Add(time.Duration(i)*4*time.Second), data), data)
	}
	from, to := t0.Add(2500*time.Millisecond), t0.Add(7*time.Second)
	m, err := playback.New(cat, st, nil).Movie(t.Context(), "gate", from, to)
	if err != nil {
		t.Fatal(err)
	}
	data := movieBytes(t, m)
	checkMovie(t, data, from, to, t0.Add(2*time.Second))
	ps := probePackets(t, writeTemp(t, data))
	reordered := false
	for i := 1; i < len(ps); i++ {
		reordered = reordered || ps[i].pts < ps[i-1].pts
	}
	if !reordered {
		t.Error("no packet presented before the one decoded ahead of it: composition offsets lost")
	}
}

// TestMovieBFramesEndAtFragmentBoundary checks that a movie of B-frame footage whose
// end falls just before a fragment boundary still shows every picture before to:
// pictures decoded in the next fragment are shown before it.
func TestMovieBFramesEndAtFragmentBoundary(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes a clip")
	}
	c := bframeClip(t, 4)
	st, cat := playbacktest.NewDisk(t)
	data := playbacktest.ClipSegment(t, c, 0, 100) // fragments of 25 frames: one a second
	playbacktest.Store(t, st, cat, playbacktest.Segment(t, "gate", t0, data), data)
	for _, to := range []time.Time{t0.Add(time.Second - 20*time.Millisecond), t0.Add(time.Second + 20*time.Millisecond), t0.Add(3*time.Second - 60*time.Millisecond)} {
		from := t0
		m, err := playback.New(cat, st, nil).Movie(t.Context(), "gate", from, to)
		if err != nil {
			t.Fatal(err)
		}
		shown := make(map[int]bool)
		for _, p := range probePackets(t, writeTemp(t, movieBytes(t, m))) {
			shown[int(math.Round(p.pts*1000/40))] = true
		}
		for slot := 0; time.Duration(slot)*frame < to.Sub(from); slot++ {
			if !shown[slot] {
				t.Errorf("to %v: the picture at %v is missing", to.Sub(t0), time.Duration(slot)*frame)
			}
		}
	}
}

// bframeClip encodes seconds of 25 fps H.264 with two B-frames and a keyframe every
// 2 s (50 frames) with ffmpeg.
func bframeClip(t *testing.T, seconds int) *clip.Clip {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bframes.mp4")
	out, err := exec.Command(testutil.NeedTool(t, "ffmpeg"), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-t", strconv.Itoa(seconds), "-pix_fmt", "yuv420p", "-c:v", "libx264", "-bf", "2", "-g", "50", "-keyint_min", "50",
		"-sc_threshold", "0", "-b:v", "1000k", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v %s", err, out)
	}
	c, err := clip.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

package spool

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/streaming"
)

var _ playback.Spool = (*Spool)(nil)

// TestNearLivePlayback plays footage while its segment is still being written, then
// once it waits for upload, then from the store: the same movie each time.
func TestNearLivePlayback(t *testing.T) {
	ffprobe := testutil.NeedTool(t, "ffprobe")
	r := newRig(t, Options{SegmentDuration: time.Minute})
	c := loadClip(t, "h264")
	units := c.loop(1, 1, 0) // 8 s
	in := make(chan streaming.Delivery, len(units))
	for _, u := range units[:len(units)*3/4] { // 6 s: the segment stays open
		in <- streaming.Delivery{Unit: u}
	}
	done := make(chan error, 1)
	go func() { done <- r.spool.record(context.Background(), testCamera, in) }()
	var stop sync.Once
	finish := func() error {
		var err error
		stop.Do(func() { close(in); err = <-done })
		return err
	}
	defer finish()
	far := clipEpoch.Add(time.Hour)
	var segs []storage.Segment
	testutil.WaitFor(t, 10*time.Second, "five fragments of the open segment", func() bool {
		segs = r.spool.Footage(testCamera, time.Time{}, far)
		return len(segs) == 1 && len(segs[0].Fragments) >= 5
	})
	p := playback.New(r.cat, r.store, r.spool)
	from, to := segs[0].Start.Add(1500*time.Millisecond), segs[0].Start.Add(5*time.Second)
	play := func(when string) []byte {
		t.Helper()
		m, err := p.Movie(t.Context(), testCamera, from, to)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		var buf bytes.Buffer
		if err := m.WriteRange(t.Context(), &buf, 0, m.Size()); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		path := filepath.Join(t.TempDir(), "movie.mp4")
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
		if err != nil {
			t.Fatalf("%s: ffprobe: %v", when, err)
		}
		secs, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if d := time.Duration(secs*float64(time.Second)) - to.Sub(from); d.Abs() > 40*time.Millisecond {
			t.Errorf("%s: ffprobe duration %.3f s, want %v", when, secs, to.Sub(from))
		}
		return buf.Bytes()
	}
	live := play("while recording")
	tl, err := p.Timeline(t.Context(), testCamera, segs[0].Start, segs[0].Start.Add(10*time.Second), 10, nil)
	if err != nil || len(tl.Recorded) != 1 || tl.Recorded[0].End.Sub(segs[0].Start) < 5*time.Second {
		t.Errorf("timeline while recording: %v %+v", err, tl)
	}

	if err := finish(); err != nil {
		t.Fatal(err)
	}
	if got := play("waiting for upload"); !bytes.Equal(got, live) {
		t.Error("the movie changed when its segment closed")
	}
	r.startUploader()
	r.drain()
	if len(r.spool.Footage(testCamera, time.Time{}, far)) != 0 {
		t.Error("the spool still offers uploaded footage")
	}
	if got := play("from the store"); !bytes.Equal(got, live) {
		t.Error("the movie changed when its segment was uploaded")
	}
}

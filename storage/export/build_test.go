package export_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/export"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
)

// noTables hides the catalog's recorded tables, so the clip's tables are built from
// the segments' moofs, read before the clip is written.
type noTables struct{ cat *storage.Catalog }

func (n noTables) Segments(ctx context.Context, camera string, from, to time.Time) ([]storage.Segment, error) {
	return n.cat.Segments(ctx, camera, from, to)
}

// twoFaced serves other bytes to the 4 KiB reads of moofs than to whole reads: a
// store changing under the export.
type twoFaced struct{ storage.Store }

func (s twoFaced) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	rc, err := s.Store.Get(ctx, key, off, length)
	if err != nil || length != 4<<10 {
		return rc, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	b[len(b)-1] ^= 0xff // past the moof: the tables still parse
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Build checks every byte of every source segment as it streams it, those the clip
// leaves out too, and the bytes its tables were built from: a flipped byte anywhere
// fails the export naming the segment and leaves nothing behind.
func TestBuildChecksEveryByte(t *testing.T) {
	build := func(t *testing.T, st storage.Store, cat export.SegmentSource) error {
		keys, err := export.OpenKeys(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		b := &export.Builder{Store: st, Catalog: cat, Keys: keys}
		m, err := b.Build(t.Context(), export.Request{Camera: "gate", From: t0.Add(time.Second), To: t0.Add(5 * time.Second),
			Reason: "r"}, export.Files{Clip: filepath.Join(out, "c.mp4"), Manifest: filepath.Join(out, "m.json"),
			Signature: filepath.Join(out, "m.json.sig")}, nil)
		entries, _ := os.ReadDir(out)
		if err != nil && len(entries) != 0 {
			t.Errorf("a failed export left %d files", len(entries))
		}
		if err == nil && (len(m.Segments) != 3 || len(entries) != 3) {
			t.Errorf("export of 3 segments: manifest names %d, %d files written", len(m.Segments), len(entries))
		}
		return err
	}
	for _, tables := range []bool{true, false} {
		name := map[bool]string{true: "recorded tables", false: "tables from moofs"}[tables]
		t.Run(name, func(t *testing.T) {
			st, cat := playbacktest.NewDisk(t)
			segs := playbacktest.Record(t, st, cat, "gate", t0, 3, 2*time.Second)
			var src export.SegmentSource = cat
			if !tables {
				src = noTables{cat}
			}
			if err := build(t, st, src); err != nil {
				t.Fatalf("export of untouched footage: %v", err)
			}
			if !tables {
				err := build(t, twoFaced{st}, src)
				if !errors.Is(err, export.ErrTampered) || !strings.Contains(err.Error(), segs[0].Key) {
					t.Errorf("export from a store whose bytes changed after the tables were read: %v, want ErrTampered naming %s",
						err, segs[0].Key)
				}
			}
			// Bytes the clip takes (media of the middle segment) and bytes it leaves out
			// (the init of the first, the end of the last).
			for _, at := range []struct {
				seg int
				off func(size int64) int64
			}{{1, func(n int64) int64 { return n / 2 }}, {0, func(int64) int64 { return 10 }}, {2, func(n int64) int64 { return n - 1 }}} {
				key := segs[at.seg].Key
				flip(t, st, key, at.off(segs[at.seg].Size))
				err := build(t, st, src)
				if !errors.Is(err, export.ErrTampered) || !strings.Contains(err.Error(), key) {
					t.Errorf("export over %s with byte %d flipped: %v, want ErrTampered naming it", key, at.off(segs[at.seg].Size), err)
				}
				flip(t, st, key, at.off(segs[at.seg].Size))
			}
		})
	}
}

// flip inverts one byte of a stored object.
func flip(t *testing.T, st storage.Store, key string, off int64) {
	t.Helper()
	rc, err := st.Get(t.Context(), key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0xff
	if err := st.Put(t.Context(), key, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

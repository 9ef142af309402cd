package export

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/straja-nvr/straja/internal/mp4"
	"github.com/straja-nvr/straja/storage"
)

// Concat is a ClipSource that joins whole segments: the first segment's init, then
// every fragment of every segment overlapping the range, each moof renumbered and its
// decode time moved by the segment's start, so timestamps run on across segments. It
// does not trim to the range; playback's Movie does.
type Concat struct {
	Catalog SegmentSource
	Store   storage.Store
}

// SegmentSource lists one camera's catalogued segments overlapping [from, to), with
// their fragments (*storage.Catalog).
type SegmentSource interface {
	Segments(ctx context.Context, camera string, from, to time.Time) ([]storage.Segment, error)
}

// Clip implements ClipSource.
func (c Concat) Clip(ctx context.Context, camera string, from, to time.Time) (Clip, error) {
	segs, err := c.Catalog.Segments(ctx, camera, from, to)
	if err != nil {
		return nil, err
	}
	var keep []storage.Segment
	for _, s := range segs {
		if len(s.Fragments) > 0 {
			keep = append(keep, s)
		}
	}
	if len(keep) == 0 {
		return nil, fmt.Errorf("%w: camera %s has no recorded footage from %s to %s", ErrNoFootage, camera,
			from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	cl := &concatClip{store: c.Store, segs: keep}
	init, err := c.readInit(ctx, keep[0])
	if err != nil {
		return nil, err
	}
	cl.init = init
	moov, ok := findBox(init, "moov")
	if !ok {
		return nil, fmt.Errorf("segment %s: no moov", keep[0].Key)
	}
	mv, err := mp4.ParseMoov(moov)
	if err != nil || len(mv.Tracks) == 0 || mv.Tracks[0].TimeScale == 0 {
		return nil, fmt.Errorf("segment %s: no track timescale in moov (%v)", keep[0].Key, err)
	}
	cl.timescale = mv.Tracks[0].TimeScale
	cl.size = int64(len(init))
	for _, s := range keep {
		for _, f := range s.Fragments {
			cl.size += f.Size
		}
	}
	return cl, nil
}

func (c Concat) readInit(ctx context.Context, s storage.Segment) ([]byte, error) {
	n := s.Fragments[0].Offset
	if n <= 0 || n > 16<<20 {
		return nil, fmt.Errorf("segment %s: init of %d bytes", s.Key, n)
	}
	rc, err := c.Store.Get(ctx, s.Key, 0, n)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.Key, err)
	}
	defer rc.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("read %s: %w", s.Key, err)
	}
	return b, nil
}

type concatClip struct {
	store     storage.Store
	segs      []storage.Segment
	init      []byte
	timescale uint32
	size      int64
}

func (c *concatClip) Size() int64                 { return c.size }
func (c *concatClip) Segments() []storage.Segment { return c.segs }
func (c *concatClip) Start() time.Time            { return c.segs[0].Start }
func (c *concatClip) End() time.Time              { return c.segs[len(c.segs)-1].End() }

// WriteRange writes the whole clip; a part of it is not needed by exports.
func (c *concatClip) WriteRange(ctx context.Context, w io.Writer, off, n int64) error {
	if off != 0 || n != c.size {
		return errors.New("concat clip: only the whole clip can be written")
	}
	if _, err := w.Write(c.init); err != nil {
		return err
	}
	seq := uint32(0)
	for _, s := range c.segs {
		// Segment fragments restart at their own base: shift them to the segment's
		// place in the clip, by wall clock.
		shift := uint64(s.Start.Sub(c.segs[0].Start).Seconds()*float64(c.timescale) + 0.5)
		first := s.Fragments[0]
		last := s.Fragments[len(s.Fragments)-1]
		rc, err := c.store.Get(ctx, s.Key, first.Offset, last.Offset+last.Size-first.Offset)
		if err != nil {
			return fmt.Errorf("read %s: %w", s.Key, err)
		}
		br := bufio.NewReaderSize(rc, 256<<10)
		var base uint64
		for i, f := range s.Fragments {
			if i > 0 && f.Offset != s.Fragments[i-1].Offset+s.Fragments[i-1].Size {
				rc.Close()
				return fmt.Errorf("segment %s: fragments are not contiguous", s.Key)
			}
			buf := make([]byte, 8)
			if _, err := io.ReadFull(br, buf); err != nil {
				rc.Close()
				return fmt.Errorf("read %s: %w", s.Key, err)
			}
			moofSize := int64(binary.BigEndian.Uint32(buf))
			if string(buf[4:]) != "moof" || moofSize < 8 || moofSize > f.Size {
				rc.Close()
				return fmt.Errorf("segment %s: no moof at %d", s.Key, f.Offset)
			}
			moof := append(buf, make([]byte, moofSize-8)...)
			if _, err := io.ReadFull(br, moof[8:]); err != nil {
				rc.Close()
				return fmt.Errorf("read %s: %w", s.Key, err)
			}
			seq++
			t, err := patchMoof(moof, seq)
			if err != nil {
				rc.Close()
				return fmt.Errorf("segment %s fragment at %d: %w", s.Key, f.Offset, err)
			}
			if i == 0 {
				base = t.get()
			}
			t.set(t.get() - base + shift)
			if _, err := w.Write(moof); err != nil {
				rc.Close()
				return err
			}
			if _, err := io.CopyN(w, br, f.Size-moofSize); err != nil {
				rc.Close()
				return fmt.Errorf("copy %s: %w", s.Key, err)
			}
		}
		rc.Close()
	}
	return nil
}

// tfdtField is the decode time inside a moof buffer.
type tfdtField struct {
	b  []byte
	v1 bool
}

func (t tfdtField) get() uint64 {
	if t.v1 {
		return binary.BigEndian.Uint64(t.b)
	}
	return uint64(binary.BigEndian.Uint32(t.b))
}

func (t tfdtField) set(v uint64) {
	if t.v1 {
		binary.BigEndian.PutUint64(t.b, v)
	} else {
		binary.BigEndian.PutUint32(t.b, uint32(v))
	}
}

// patchMoof sets the sequence number of a whole moof box and returns its (first)
// traf's tfdt.
func patchMoof(moof []byte, seq uint32) (tfdtField, error) {
	boxes, err := mp4.ReadBoxes(moof[8:])
	if err != nil {
		return tfdtField{}, err
	}
	var t tfdtField
	found := false
	for _, b := range boxes {
		switch b.Type {
		case "mfhd":
			if len(b.Body) >= 8 {
				binary.BigEndian.PutUint32(b.Body[4:8], seq)
			}
		case "traf":
			if found {
				continue
			}
			inner, err := mp4.ReadBoxes(b.Body)
			if err != nil {
				return t, err
			}
			for _, ib := range inner {
				if ib.Type == "tfdt" && len(ib.Body) >= 8 {
					t.v1 = ib.Body[0] == 1
					if t.v1 && len(ib.Body) < 12 {
						return t, errors.New("short tfdt")
					}
					t.b = ib.Body[4:]
					found = true
				}
			}
		}
	}
	if !found {
		return t, errors.New("moof without tfdt")
	}
	return t, nil
}

func findBox(buf []byte, typ string) ([]byte, bool) {
	boxes, err := mp4.ReadBoxes(buf)
	if err != nil {
		return nil, false
	}
	for _, b := range boxes {
		if b.Type == typ {
			return b.Body, true
		}
	}
	return nil, false
}

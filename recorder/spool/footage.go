package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/straja-nvr/straja/storage"
)

// This file lets playback read footage before it reaches the store (near-live
// replay): the segments waiting for upload, and the one being written up to its
// last synced fragment.

// liveSegment is the segment a camera's writer has open.
type liveSegment struct {
	path string
	seg  storage.Segment // Fragments: those written and synced so far
}

// publishLive records the open segment of camera after a fragment is synced. frags
// is only ever appended to, so sharing it is safe.
func (s *Spool) publishLive(camera, path string, seg storage.Segment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == nil {
		s.live = make(map[string]liveSegment)
	}
	s.live[camera] = liveSegment{path: path, seg: seg}
}

// clearLive forgets camera's open segment, once it is queued or given up.
func (s *Spool) clearLive(camera string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, camera)
}

// Footage returns camera's spooled segments overlapping [from, to), ordered by
// start: those waiting for upload, then the one being written with its synced
// fragments, keyed by its start and its duration so far. Their fragment lists are
// shared: do not modify them.
func (s *Spool) Footage(camera string, from, to time.Time) []storage.Segment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.Segment
	overlaps := func(seg storage.Segment) bool {
		return seg.Camera == camera && seg.Start.Before(to) && seg.End().After(from) && len(seg.Fragments) > 0
	}
	for _, sp := range s.ready {
		if overlaps(sp.seg) {
			out = append(out, sp.seg)
		}
	}
	if l, ok := s.live[camera]; ok && overlaps(l.seg) {
		out = append(out, l.seg)
	}
	return out
}

// Get reads length bytes (< 0: to the end) from off of a segment Footage returned,
// by its key. A segment no longer in the spool (uploaded) gives an error matching
// storage.ErrNotFound.
func (s *Spool) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	k, err := storage.ParseSegmentKey(key)
	if err != nil {
		return nil, err
	}
	// The open segment may be renamed between the look-up and the open: look again.
	for range 2 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		path, ok := s.footagePath(k)
		if !ok {
			break
		}
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("spool read %s: %w", key, err)
		}
		rc, err := storage.FileRange(f, off, length)
		if err != nil {
			return nil, fmt.Errorf("spool read %s: %w", key, err)
		}
		return rc, nil
	}
	return nil, fmt.Errorf("spool read %s: %w", key, storage.ErrNotFound)
}

// footagePath finds the file of the spooled segment of k's camera that starts at
// k's start.
func (s *Spool) footagePath(k storage.SegmentKey) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.live[k.Camera]; ok && l.seg.Start.Equal(k.Start) {
		return l.path, true
	}
	for _, sp := range s.ready {
		if sp.seg.Camera == k.Camera && sp.seg.Start.Equal(k.Start) {
			return sp.path, true
		}
	}
	return "", false
}

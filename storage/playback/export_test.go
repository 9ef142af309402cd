package playback

import (
	"context"
	"time"
)

// BuildMovie makes a movie the way Movie does, past the movie cache.
func (p *Player) BuildMovie(ctx context.Context, camera string, from, to time.Time) (*Movie, error) {
	return p.movie(ctx, camera, from, to, false)
}

// Builds returns how many movies p has built.
func (p *Player) Builds() int64 { return p.builds.Load() }

// MovieCacheStats returns the number of movies cached and the bytes they hold.
func (p *Player) MovieCacheStats() (int, int64) { return p.movies.stats() }

// SetMovieCache replaces p's movie cache by an empty one with these bounds.
func (p *Player) SetMovieCache(maxBytes int64, maxEntries int) {
	p.movies = newMovieCache(maxBytes, maxEntries)
}

// HeaderSize returns the length of m's header (ftyp, moov, mdat header).
func (m *Movie) HeaderSize() int { return len(m.header) }

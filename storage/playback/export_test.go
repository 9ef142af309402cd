package playback

import (
	"context"
	"time"
)

// BuildMovie makes a movie the way Movie does, past the movie cache.
func (p *Player) BuildMovie(ctx context.Context, camera string, from, to time.Time) (*Movie, error) {
	return p.movie(ctx, camera, from, to, false)
}

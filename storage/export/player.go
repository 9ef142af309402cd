package export

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/straja-nvr/straja/storage/playback"
)

// FromPlayer makes clips with playback's virtual MP4: from the keyframe at or before
// from, with an edit list so that the clip plays from from. Give it a Player without
// a spool: an export holds only footage in the store, whose SHA-256 the catalog took
// when it was written.
func FromPlayer(p *playback.Player) ClipSource {
	return ClipFunc(func(ctx context.Context, camera string, from, to time.Time) (Clip, error) {
		m, err := p.Movie(ctx, camera, from, to)
		if errors.Is(err, playback.ErrNoFootage) {
			return nil, fmt.Errorf("%w: %w", ErrNoFootage, err)
		}
		if err != nil {
			return nil, err
		}
		for _, s := range m.Segments() {
			if s.SHA256 == ([32]byte{}) {
				return nil, fmt.Errorf("segment %s has no catalogued SHA-256: it is not stored yet", s.Key)
			}
		}
		return m, nil
	})
}

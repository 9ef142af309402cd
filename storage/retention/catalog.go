package retention

import (
	"context"
	"time"

	"github.com/straja-nvr/straja/storage"
)

// CatalogSource reads footage from the catalog, a keyset page at a time.
type CatalogSource struct {
	Catalog *storage.Catalog
}

var _ Source = CatalogSource{}

// pageSize is how many rows one catalog query reads.
const pageSize = 5000

// Cameras lists the cameras with catalogued footage.
func (s CatalogSource) Cameras(ctx context.Context) ([]string, error) { return s.Catalog.Cameras(ctx) }

// Stats sums up camera's footage.
func (s CatalogSource) Stats(ctx context.Context, camera string) (Stats, error) {
	f, err := s.Catalog.Footage(ctx, camera)
	return Stats{Segments: f.Segments, Bytes: f.Bytes, Latest: f.Latest}, err
}

// Each pages through camera's segments in (start, key) order.
func (s CatalogSource) Each(ctx context.Context, camera string, fn func(storage.Segment) error) error {
	q := storage.SegmentQuery{Camera: camera, From: time.UnixMilli(0), To: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
		Limit: pageSize}
	for {
		n := 0
		err := s.Catalog.ListSegments(ctx, q, func(seg storage.Segment) error {
			n++
			q.After = seg.Key
			return fn(seg)
		})
		if err != nil || n < pageSize {
			return err
		}
	}
}

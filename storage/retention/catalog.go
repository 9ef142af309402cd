package retention

import (
	"context"

	"github.com/straja-nvr/straja/storage"
)

// CatalogSource reads footage from the catalog, a keyset page at a time.
type CatalogSource struct {
	Catalog *storage.Catalog
}

var _ Source = CatalogSource{}

// Cameras lists the cameras with catalogued footage.
func (s CatalogSource) Cameras(ctx context.Context) ([]string, error) { return s.Catalog.Cameras(ctx) }

// Stats sums up camera's footage.
func (s CatalogSource) Stats(ctx context.Context, camera string) (Stats, error) {
	f, err := s.Catalog.Footage(ctx, camera)
	return Stats{Segments: f.Segments, Bytes: f.Bytes, Latest: f.Latest}, err
}

// Each walks camera's segments in (start, key) order.
func (s CatalogSource) Each(ctx context.Context, camera string, fn func(storage.Segment) error) error {
	return s.Catalog.Walk(ctx, camera, fn)
}

package playback_test

import (
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
)

// BenchmarkMovieBuild is the cost of building an hour's movie from the catalog's
// sample tables (60 one-minute segments, 25 fps, 1 s fragments), past the movie
// cache: what every video.mp4 request paid before the cache.
func BenchmarkMovieBuild(b *testing.B) {
	st, cat := playbacktest.NewDisk(b)
	hourOfFootage(b, st, cat)
	p := playback.New(cat, st, nil)
	from := t0.Add(30 * time.Second)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.BuildMovie(b.Context(), "gate", from, from.Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	m, err := p.Movie(b.Context(), "gate", from, from.Add(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	_, held := p.MovieCacheStats()
	b.ReportMetric(float64(held), "cached-B")
	b.ReportMetric(float64(m.HeaderSize()), "header-B")
}

// BenchmarkConcurrentRanges is what one Range request of 64 KiB costs while 32 run
// at once over the same hour, as a browser's <video> and several viewers make them:
// the movie (built for every request as before the cache, or from the cache), then
// the ranged read from disk.
func BenchmarkConcurrentRanges(b *testing.B) {
	st, cat := playbacktest.NewDisk(b)
	hourOfFootage(b, st, cat)
	from := t0.Add(30 * time.Second)
	for _, cached := range []bool{false, true} {
		name := "build"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			p := playback.New(cat, st, nil)
			movie := p.BuildMovie
			if cached {
				movie = p.Movie
			}
			var seed atomic.Uint64
			b.ReportAllocs()
			b.SetParallelism(16) // 2 cores: 32 at once
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(seed.Add(1), 9))
				for pb.Next() {
					m, err := movie(b.Context(), "gate", from, from.Add(time.Hour))
					if err != nil {
						b.Error(err)
						return
					}
					const n = 64 << 10
					if err := m.WriteRange(b.Context(), io.Discard, rng.Int64N(m.Size()-n), n); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(p.Builds())/float64(b.N), "builds/op")
		})
	}
}

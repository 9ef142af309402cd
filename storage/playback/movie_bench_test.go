package playback_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
	"github.com/straja-nvr/straja/storage/storetest"
)

// hourOfFootage stores an hour of one camera: 60 one-minute segments of the
// embedded clip (1 Mbit/s, 25 fps, 1 s fragments).
func hourOfFootage(b *testing.B, st storage.Store, cat *storage.Catalog) {
	b.Helper()
	data := playbacktest.SegmentBytes(b, 0, 60*25)
	for i := range 60 {
		seg := playbacktest.Segment(b, "gate", t0.Add(time.Duration(i)*time.Minute), data)
		if err := st.Put(b.Context(), seg.Key, bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
		if err := cat.Add(b.Context(), seg); err != nil {
			b.Fatal(err)
		}
	}
}

func benchStores(b *testing.B, fn func(b *testing.B, st storage.Store, cat *storage.Catalog)) {
	b.Run("disk", func(b *testing.B) {
		st, cat := playbacktest.NewDisk(b)
		hourOfFootage(b, st, cat)
		fn(b, st, cat)
	})
	b.Run("minio", func(b *testing.B) {
		st, err := storage.NewS3(b.Context(), storetest.S3FromEnv(b))
		if err != nil {
			b.Fatal(err)
		}
		_, cat := playbacktest.NewDisk(b)
		hourOfFootage(b, st, cat)
		fn(b, st, cat)
	})
}

// BenchmarkFirstByte is the time to the first byte of video.mp4 at a random offset,
// for an hour and for the page's 5-minute window: making the movie from the catalog
// and the moofs (cold: a new player, nothing cached; warm: the player has read
// them), then the ranged read.
func BenchmarkFirstByte(b *testing.B) {
	benchStores(b, func(b *testing.B, st storage.Store, cat *storage.Catalog) {
		for _, span := range []time.Duration{time.Hour, 5 * time.Minute, time.Minute} {
			for _, warm := range []bool{false, true} {
				name := "cold"
				if warm {
					name = "warm"
				}
				b.Run(fmt.Sprintf("%v/%s", span, name), func(b *testing.B) {
					rng := rand.New(rand.NewPCG(5, 6))
					from := t0.Add(20 * time.Minute)
					p := playback.New(cat, st, nil)
					if warm {
						if _, err := p.Movie(b.Context(), "gate", from, from.Add(span)); err != nil {
							b.Fatal(err)
						}
					}
					for b.Loop() {
						if !warm {
							p = playback.New(cat, st, nil)
						}
						m, err := p.Movie(b.Context(), "gate", from, from.Add(span))
						if err != nil {
							b.Fatal(err)
						}
						r := m.NewReader(b.Context())
						if _, err := r.Seek(rng.Int64N(m.Size()-1), io.SeekStart); err != nil {
							b.Fatal(err)
						}
						var one [1]byte
						if _, err := io.ReadFull(r, one[:]); err != nil {
							b.Fatal(err)
						}
						r.Close()
					}
				})
			}
		}
	})
}

// BenchmarkRangedReads is the throughput of 4 MiB ranges of the movie at random
// offsets, as a player seeking around reads them.
func BenchmarkRangedReads(b *testing.B) {
	benchStores(b, func(b *testing.B, st storage.Store, cat *storage.Catalog) {
		m, err := playback.New(cat, st, nil).Movie(b.Context(), "gate", t0, t0.Add(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		const n = 4 << 20
		rng := rand.New(rand.NewPCG(7, 8))
		b.SetBytes(n)
		for b.Loop() {
			if err := m.WriteRange(b.Context(), io.Discard, rng.Int64N(m.Size()-n), n); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHourTables reports what an hour of the test footage (60 one-minute
// segments, 25 fps, 1 s fragments) adds to the catalog: its sample tables and
// the init section every segment of a session shares, and how long decoding an hour
// of tables takes.
func BenchmarkHourTables(b *testing.B) {
	data := playbacktest.SegmentBytes(b, 0, 60*25)
	seg := playbacktest.Segment(b, "gate", t0, data)
	var n int
	for b.Loop() {
		for range 60 {
			m, err := storage.DecodeSamples(seg.Samples, seg.Fragments, func(int, storage.Sample) {})
			if err != nil {
				b.Fatal(err)
			}
			n = m
		}
	}
	b.ReportMetric(float64(60*len(seg.Samples)), "table-B/hour")
	b.ReportMetric(float64(len(seg.Samples))/float64(n), "B/sample")
	b.ReportMetric(float64(len(seg.Init)), "init-B")
	b.ReportMetric(float64(len(data))*8/60/1e6, "Mbit/s")
}

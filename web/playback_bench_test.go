package web

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/storage/playback/playbacktest"
)

// BenchmarkVideoRanges is what one Range request of video.mp4 (64 KiB at a random
// offset) costs while 32 of one user run at once over the same hour (60 one-minute
// segments of the test footage on disk), as a <video> element seeking and reading
// ahead makes them: the whole handler, sign-in check, audit and the movie included.
func BenchmarkVideoRanges(b *testing.B) {
	st, cat := playbacktest.NewDisk(b)
	p0 := time.Now().Add(-2 * time.Hour).Truncate(time.Minute)
	data := playbacktest.SegmentBytes(b, 0, 60*25)
	for i := range 60 {
		playbacktest.Store(b, st, cat, playbacktest.Segment(b, "bastion-gate", p0.Add(time.Duration(i)*time.Minute), data), data)
	}
	s := newTestServer(b, cat, func(o *Options) { o.Player = playback.New(cat, st, nil) })
	url := videoURL(p0.Add(30*time.Second), p0.Add(time.Hour+30*time.Second))
	head := httptest.NewRecorder()
	s.ServeHTTP(head, newRequest("HEAD", url, nil))
	size := head.Result().ContentLength
	if head.Code != http.StatusOK || size <= 0 {
		b.Fatalf("HEAD video: %d, %d bytes", head.Code, size)
	}
	var seed atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(16) // 2 cores: 32 at once, a user's limit
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(seed.Add(1), 11))
		for pb.Next() {
			const n = 64 << 10
			a := rng.Int64N(size - n)
			r := newRequest("GET", url, nil)
			r.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", a, a+n-1))
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, r)
			if rec.Code != http.StatusPartialContent || rec.Body.Len() != n {
				b.Errorf("Range at %d: %d, %d bytes", a, rec.Code, rec.Body.Len())
				return
			}
		}
	})
}

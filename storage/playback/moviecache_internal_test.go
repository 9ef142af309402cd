package playback

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
)

// A request waiting for another's build of the same movie is not failed by that
// request's end: it builds the movie itself.
func TestMovieCacheBuilderGone(t *testing.T) {
	c := newMovieCache(1<<20, 10)
	k := movieKey{camera: "gate", from: 1, to: 2}
	var sum footageSum
	want := &Movie{header: make([]byte, 10)}

	first, cancel := context.WithCancel(t.Context())
	firstDone := make(chan error, 1)
	go func() {
		_, err := c.get(first, k, sum, func(ctx context.Context) (*Movie, footageSum, error) {
			<-ctx.Done()
			return nil, sum, ctx.Err()
		})
		firstDone <- err
	}()
	testutil.WaitFor(t, 5*time.Second, "the first build", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.flights[flightKey{k, sum}] != nil
	})

	secondDone := make(chan error, 1)
	builds := 0
	go func() {
		m, err := c.get(t.Context(), k, sum, func(ctx context.Context) (*Movie, footageSum, error) {
			builds++
			return want, sum, nil
		})
		if err == nil && m != want {
			err = errors.New("another movie")
		}
		secondDone <- err
	}()
	testutil.WaitFor(t, 5*time.Second, "the second request waiting", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		f := c.flights[flightKey{k, sum}]
		return f != nil && f.waiters == 1
	})
	cancel()
	if err := <-firstDone; !errors.Is(err, context.Canceled) {
		t.Errorf("the cancelled request: %v, want context.Canceled", err)
	}
	if err := <-secondDone; err != nil || builds != 1 {
		t.Errorf("the waiting request: %v after %d builds of its own, want its own movie", err, builds)
	}
	if n, _ := c.stats(); n != 1 {
		t.Errorf("%d movies cached, want the second request's", n)
	}
}

package state

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
)

// TestAddFirstUserOnce: two processes starting at once on one database add one first
// user between them.
func TestAddFirstUserOnce(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	var dbs [4]*State
	for i := range dbs {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		dbs[i] = s
	}
	var wg sync.WaitGroup
	added := make([]bool, len(dbs))
	for i, s := range dbs {
		wg.Go(func() {
			ok, err := s.AddFirstUser(ctx, "admin", "admin", "h")
			if err != nil {
				t.Errorf("add first user: %v", err)
			}
			added[i] = ok
		})
	}
	wg.Wait()
	n := 0
	for _, a := range added {
		if a {
			n++
		}
	}
	if c, err := dbs[0].CountUsers(ctx); n != 1 || c != 1 || err != nil {
		t.Errorf("%d reported adding, %d users (%v); want 1 and 1", n, c, err)
	}
	if err := dbs[0].AddUser(ctx, "admin", "itc", "h"); !errors.Is(err, ErrExists) {
		t.Errorf("add a taken username: %v, want ErrExists", err)
	}
	if err := dbs[0].SetDisabled(ctx, "nobody", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("disable a missing user: %v, want ErrNotFound", err)
	}
	if err := dbs[0].AddGrant(ctx, "nobody", Grant{"site", "s"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("grant to a missing user: %v, want ErrNotFound", err)
	}
	if err := dbs[0].AddUser(ctx, "x", "root", "h"); err == nil {
		t.Error("the database took an unknown role")
	}
}

package storage_test

import (
	"fmt"
	"iter"
	"path/filepath"
	"testing"
	"time"

	"github.com/straja-nvr/straja/storage"
)

// BenchmarkCatalogDeleteMany forgets 20,000 one-minute rows in one call, as a
// retention run does, from a catalog of 40,000 whose hour-long sessions each share
// an init section (dropped with its last row).
//
//	go test -run '^$' -bench CatalogDeleteMany -benchtime 3x ./storage
func BenchmarkCatalogDeleteMany(b *testing.B) {
	rows := func(n int) iter.Seq[storage.Segment] {
		return func(yield func(storage.Segment) bool) {
			for i := range n {
				s := seg("gate", time.Duration(i)*time.Minute, time.Minute)
				s.Init = []byte(fmt.Sprintf("init of session %d", i/60))
				if !yield(s) {
					return
				}
			}
		}
	}
	for b.Loop() {
		b.StopTimer()
		cat := openCatalog(b, filepath.Join(b.TempDir(), "catalog.db"))
		if err := cat.AddAll(b.Context(), rows(40000)); err != nil {
			b.Fatal(err)
		}
		var keys []string
		for s := range rows(20000) {
			keys = append(keys, s.Key)
		}
		b.StartTimer()
		if err := cat.DeleteMany(b.Context(), keys); err != nil {
			b.Fatal(err)
		}
	}
}

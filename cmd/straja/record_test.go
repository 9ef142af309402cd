package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/storage"
)

// TestRecordEndToEnd records four simulated cameras (one H.265) with 2 s segments and
// checks every segment with ffprobe, contiguity, catalog == storage, and rebuild.
func TestRecordEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: records for ~10 s")
	}
	needTool(t, "ffprobe")
	for _, backend := range []string{"disk", "s3"} {
		t.Run(backend, func(t *testing.T) {
			sim := startSim(t, 4, camsimOpts())
			cfg := baseConfig(t, t.TempDir(), sim, 4)
			if backend == "s3" {
				useS3(t, cfg)
			}
			m := startMain(t, cfg)
			waitFor(t, 40*time.Second, "3 segments per camera", func() bool {
				for _, c := range cfg.Cameras {
					if len(segmentsOf(t, m.Addr(), c.ID)) < 3 {
						return false
					}
				}
				return true
			})
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}

			st, err := recorder.OpenStore(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			cat, err := storage.OpenCatalog(recorder.CatalogPath(cfg))
			if err != nil {
				t.Fatal(err)
			}
			var catKeys []string
			for i, c := range cfg.Cameras {
				segs, err := cat.Segments(context.Background(), c.ID, time.Unix(0, 0), time.Now().Add(time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				if len(segs) < 3 {
					t.Fatalf("%s: %d segments after shutdown, want >= 3", c.ID, len(segs))
				}
				wantCodec := "h264"
				if i == 3 {
					wantCodec = "hevc"
				}
				for j, s := range segs {
					catKeys = append(catKeys, s.Key)
					p := ffprobe(t, fetch(t, st, s.Key))
					if p.Codec != wantCodec || p.Width != 640 || p.Height != 360 {
						t.Errorf("%s: got %s %dx%d, want %s 640x360", s.Key, p.Codec, p.Width, p.Height, wantCodec)
					}
					if d := p.Duration - s.Duration; d > frame || d < -frame {
						t.Errorf("%s: ffprobe duration %v, catalog %v: differ by more than one frame", s.Key, p.Duration, s.Duration)
					}
					if !p.FirstKey {
						t.Errorf("%s: does not start on a keyframe", s.Key)
					}
					if j > 0 {
						if hole := s.Start.Sub(segs[j-1].End()); hole > frame || hole < -frame {
							t.Errorf("%s: %v between %s and it, want contiguous", c.ID, hole, segs[j-1].Key)
						}
					}
				}
			}
			cat.Close()
			keys := listKeys(t, st)
			if !sameSet(keys, catKeys) {
				t.Fatalf("catalog keys %v\n != storage keys %v", catKeys, keys)
			}

			before := catalogRows(t, cfg)
			out, err := exec.Command(strajaBinary(t), "catalog", "rebuild", "--config", writeConfig(t, cfg)).CombinedOutput()
			if err != nil {
				t.Fatalf("catalog rebuild: %v\n%s", err, out)
			}
			if after := catalogRows(t, cfg); !reflect.DeepEqual(before, after) {
				t.Fatalf("rebuilt catalog differs:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

var _ = filepath.Join
var _ configs.Config

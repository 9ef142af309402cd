package spool

import (
	"os"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/mp4"
	"github.com/straja-nvr/straja/streaming"
)

// Every fragment is dated by a prft box before its moof: the capture time of its
// first sample, so a segment file alone says when it was recorded. B-frames included:
// the first sample in decode order is not the first presented.
func TestSpoolDatesEveryFragment(t *testing.T) {
	for _, bframes := range []bool{false, true} {
		units := loadClip(t, "h264").loop(1, 1, 0)
		byTime := make(map[time.Time]*streaming.Unit)
		byDTS := make(map[int64]*streaming.Unit)
		for i, u := range units {
			if bframes {
				u.PTS = u.DTS + []int64{2 * 3600, 3 * 3600, 1 * 3600}[i%3]
			}
			u.Time = clipEpoch.Add(ticksToDuration(u.PTS))
			byTime[u.Time], byDTS[u.DTS] = u, u
		}
		sp := openTestSpool(t)
		recordUnits(t, sp, units, openSegmentFile, nil)
		var frags int
		for {
			s, ok := sp.next()
			if !ok {
				break
			}
			data, err := os.ReadFile(s.path)
			if err != nil {
				t.Fatal(err)
			}
			top, err := mp4.ReadBoxes(data)
			if err != nil {
				t.Fatal(err)
			}
			var def mp4.TrackDefaults
			// A segment starts at its earliest picture: its keyframe, or a picture
			// decoded after the keyframe and shown before it.
			earliest := byTime[s.seg.Start]
			var key *streaming.Unit // the segment's first sample
			for _, u := range units {
				if earliest != nil && u.Key && u.DTS <= earliest.DTS {
					key = u
				}
			}
			if key == nil {
				t.Fatalf("segment %s starts at no keyframe's or its leading picture's capture time", s.seg.Key)
			}
			for i, b := range top {
				switch b.Type {
				case "moov":
					m, err := mp4.ParseMoov(b.Body)
					if err != nil {
						t.Fatal(err)
					}
					def = m.TrackDefaults(mp4.TrackID)
				case "moof":
					if i == 0 || top[i-1].Type != "prft" {
						t.Fatalf("b-frames %v: segment %s: moof at %d has no prft before it", bframes, s.seg.Key, b.Offset)
					}
					p, err := mp4.ParsePrft(top[i-1].Body)
					if err != nil {
						t.Fatal(err)
					}
					trafs, err := mp4.ParseMoof(b.Body, uint64(b.Offset), def)
					if err != nil || len(trafs) != 1 || len(trafs[0].Samples) == 0 {
						t.Fatalf("moof: %v, %v", trafs, err)
					}
					first := trafs[0].DecodeTime + uint64(int64(trafs[0].Samples[0].PTSOffset))
					if p.MediaTime != first || p.TrackID != mp4.TrackID || p.Flags != mp4.PrftCaptureTime {
						t.Errorf("prft %+v, want media time %d (tfdt %d + cto)", p, first, trafs[0].DecodeTime)
					}
					// The fragment's first sample in decode order, and when it was captured.
					u := byDTS[key.DTS+int64(trafs[0].DecodeTime)]
					if u == nil || !p.Time.Equal(u.Time) {
						t.Errorf("b-frames %v: prft time %v, want the capture time of the fragment's first sample (%v)", bframes, p.Time, u)
					}
					if p.Time.Before(s.seg.Start) || !p.Time.Before(s.seg.End()) {
						t.Errorf("prft time %v outside its segment [%v, %v)", p.Time, s.seg.Start, s.seg.End())
					}
					frags++
				}
			}
			if err := sp.remove(s); err != nil {
				t.Fatal(err)
			}
		}
		if frags < 8 {
			t.Errorf("b-frames %v: %d fragments checked, want the 8 of the clip", bframes, frags)
		}
	}
}

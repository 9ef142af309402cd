package mp4

import (
	"testing"
	"time"
)

func TestPrftRoundTrip(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2026, 11, 30, 13, 5, 7, 123456789, time.UTC),
		time.Date(2026, 11, 30, 13, 5, 7, 999999999, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 1, time.UTC),
	} {
		b := AppendPrft(nil, Prft{TrackID: TrackID, Flags: PrftCaptureTime, Time: at, MediaTime: 1 << 40})
		if len(b) != PrftSize {
			t.Fatalf("box is %d bytes, want %d", len(b), PrftSize)
		}
		boxes, err := ReadBoxes(b)
		if err != nil || len(boxes) != 1 || boxes[0].Type != "prft" {
			t.Fatalf("ReadBoxes = %v, %v", boxes, err)
		}
		p, err := ParsePrft(boxes[0].Body)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Time.Equal(at) || p.MediaTime != 1<<40 || p.TrackID != TrackID || p.Flags != PrftCaptureTime {
			t.Errorf("read back %+v, wrote %v", p, at)
		}
	}
}

func TestPrftNTPEpoch(t *testing.T) {
	// 2026-01-01T00:00:00Z is 3976214400 seconds after 1900-01-01 (RFC 5905 era 0).
	at := time.Date(2026, 1, 1, 0, 0, 0, 500_000_000, time.UTC)
	if got := ntpTime(at); got>>32 != 3976214400 || got&0xffffffff != 1<<31 {
		t.Errorf("ntpTime = %d.%d, want 3976214400 and half a second", got>>32, got&0xffffffff)
	}
}

func TestParsePrftRejects(t *testing.T) {
	for _, body := range [][]byte{nil, {1, 0, 0, 24}, {2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}} {
		if _, err := ParsePrft(body); err == nil {
			t.Errorf("ParsePrft(%x) accepted", body)
		}
	}
}

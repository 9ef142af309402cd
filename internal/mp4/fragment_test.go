package mp4_test

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"

	"github.com/straja-nvr/straja/internal/mp4"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/clip"
)

// clipUnits returns one pass of the embedded clip of codec as the ingest delivers it.
func clipUnits(t testing.TB, codec string) []*streaming.Unit {
	t.Helper()
	c, err := clip.Embedded(streaming.Codec(codec))
	if err != nil {
		t.Fatal(err)
	}
	return c.Units(1, 1, time.Time{})
}

// checkParseMoof reads a fragment written by Fragment back with ParseMoof.
func checkParseMoof(t *testing.T, frag []byte, base uint64, units []*streaming.Unit, ticks []int64) {
	t.Helper()
	boxes, err := mp4.ReadBoxes(frag)
	if err != nil || len(boxes) != 2 || boxes[0].Type != "moof" || boxes[1].Type != "mdat" {
		t.Fatalf("fragment is not moof+mdat: %v", err)
	}
	trafs, err := mp4.ParseMoof(boxes[0].Body, 0, mp4.TrackDefaults{TrackID: mp4.TrackID})
	if err != nil || len(trafs) != 1 {
		t.Fatalf("ParseMoof: %d trafs, %v", len(trafs), err)
	}
	tf := trafs[0]
	if !tf.HasDecodeTime || tf.DecodeTime != base || len(tf.Samples) != len(units) {
		t.Fatalf("ParseMoof: decode time %d (%v), %d samples; want %d, %d", tf.DecodeTime, tf.HasDecodeTime,
			len(tf.Samples), base, len(units))
	}
	data := uint64(boxes[1].Offset + mp4.HeaderSize)
	for i, s := range tf.Samples {
		u := units[i]
		if s.Duration != uint32(ticks[i]) || s.PTSOffset != int32(u.PTS-u.DTS) || s.Sync() != u.Key || s.Offset != data {
			t.Fatalf("sample %d read back as %+v", i, s)
		}
		data += uint64(s.Size)
	}
	if data != uint64(len(frag)) {
		t.Errorf("samples end at %d, fragment at %d", data, len(frag))
	}
}

// partMarshal is what the recorder wrote before fragments were streamed: mediacommon's
// fmp4.Part.Marshal of the same samples.
func partMarshal(t *testing.T, seq uint32, base uint64, units []*streaming.Unit, ticks []int64) []byte {
	t.Helper()
	track := &fmp4.PartTrack{ID: mp4.TrackID, BaseTime: base}
	for i, u := range units {
		var payload []byte
		for _, n := range u.NALUs {
			payload = binary.BigEndian.AppendUint32(payload, uint32(len(n)))
			payload = append(payload, n...)
		}
		track.Samples = append(track.Samples, &fmp4.Sample{Duration: uint32(ticks[i]),
			PTSOffset: int32(u.PTS - u.DTS), IsNonSyncSample: !u.Key, Payload: payload})
	}
	part := fmp4.Part{SequenceNumber: seq, Tracks: []*fmp4.PartTrack{track}}
	var buf seekablebuffer.Buffer
	if err := part.Marshal(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Players and ScanSegment were checked against mediacommon's output, so ours must be
// byte for byte the same: sample flags, composition offsets (B-frames, negative too),
// data offset, 64-bit decode times.
func TestFragmentMatchesMediacommon(t *testing.T) {
	bframes := func(us []*streaming.Unit) {
		for i, u := range us {
			u.PTS = u.DTS + []int64{2 * 3600, 3 * 3600, 1 * 3600}[i%3]
		}
	}
	cases := []struct {
		name   string
		codec  string
		from   int
		n      int
		seq    uint32
		base   uint64
		mutate func([]*streaming.Unit)
	}{
		{name: "h264 GOP start", codec: "h264", n: 25, seq: 1},
		{name: "h265 GOP start", codec: "h265", n: 25, seq: 7, base: 90000},
		{name: "h264 non-sync only", codec: "h264", from: 3, n: 25, seq: 2, base: 3600},
		{name: "h264 one keyframe", codec: "h264", n: 1, seq: 3},
		{name: "h264 B-frames", codec: "h264", n: 30, seq: 4, base: 1 << 40, mutate: bframes},
		{name: "h265 B-frames", codec: "h265", from: 40, n: 30, seq: 5, mutate: bframes},
		{name: "h264 negative offsets", codec: "h264", n: 10, seq: 6, mutate: func(us []*streaming.Unit) {
			for i, u := range us {
				u.PTS = u.DTS - int64(i%2)*3600
			}
		}},
		{name: "no samples with offsets but the last", codec: "h265", n: 12, seq: 8, mutate: func(us []*streaming.Unit) {
			us[len(us)-1].PTS += 1800
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			units := clipUnits(t, tc.codec)[tc.from : tc.from+tc.n]
			if tc.mutate != nil {
				tc.mutate(units)
			}
			var f mp4.Fragment
			ticks := make([]int64, len(units))
			for i, u := range units {
				ticks[i] = 3600 + int64(i%3) // uneven durations
				f.Add(u.NALUs, uint32(ticks[i]), int32(u.PTS-u.DTS), u.Key)
			}
			f.Seq, f.BaseTime = tc.seq, tc.base
			if err := f.MarshalHeader(); err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			n, err := f.WriteTo(&got)
			if err != nil || n != f.Size() || int64(got.Len()) != f.Size() {
				t.Fatalf("writeTo wrote %d bytes (%v), buffer has %d, size says %d", n, err, got.Len(), f.Size())
			}
			want := partMarshal(t, tc.seq, tc.base, units, ticks)
			if !bytes.Equal(got.Bytes(), want) {
				i := 0
				for i < min(got.Len(), len(want)) && got.Bytes()[i] == want[i] {
					i++
				}
				t.Fatalf("fragment differs from fmp4.Part.Marshal at byte %d of %d (want %d)\ngot  % x\nwant % x",
					i, got.Len(), len(want), head(got.Bytes(), i), head(want, i))
			}
			// And it reads back as the samples that went in, by mediacommon and by ParseMoof.
			var parts fmp4.Parts
			if err := parts.Unmarshal(got.Bytes()); err != nil {
				t.Fatal(err)
			}
			if s := parts[0].Tracks[0].Samples; len(s) != len(units) || s[0].IsNonSyncSample == units[0].Key {
				t.Errorf("read back %d samples, first sync %v", len(s), !s[0].IsNonSyncSample)
			}
			checkParseMoof(t, got.Bytes(), tc.base, units, ticks)

			// Reused for the next fragment, nothing of this one is left.
			f.Reset()
			f.Add(units[0].NALUs, 3600, int32(units[0].PTS-units[0].DTS), units[0].Key)
			f.Seq, f.BaseTime = tc.seq+1, 0
			if err := f.MarshalHeader(); err != nil {
				t.Fatal(err)
			}
			got.Reset()
			if _, err := f.WriteTo(&got); err != nil {
				t.Fatal(err)
			}
			if want := partMarshal(t, tc.seq+1, 0, units[:1], []int64{3600}); !bytes.Equal(got.Bytes(), want) {
				t.Error("reused fragment differs from fmp4.Part.Marshal")
			}
		})
	}
}

// head returns b around i, for failure messages.
func head(b []byte, i int) []byte {
	return b[max(0, i-16):min(len(b), i+16)]
}

// TestSpoolSegmentIndexMatchesScan records B-frame H.264 and H.265 through the spool
// and checks that the index and hash made while writing are those ScanSegment finds
// in the file, which is what recovery and export rely on.

// FuzzParseMoof feeds mutated fragments to the moof reader, which reads segments from
// the store and clips from operators: it must return an error, never panic or
// allocate beyond its bounds.
func FuzzParseMoof(f *testing.F) {
	units := clipUnits(f, "h264")[:5]
	var frag mp4.Fragment
	for _, u := range units {
		frag.Add(u.NALUs, 3600, int32(u.PTS-u.DTS), u.Key)
	}
	if err := frag.MarshalHeader(); err != nil {
		f.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := frag.WriteTo(&b); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		boxes, err := mp4.ReadBoxes(in)
		if err != nil || len(boxes) == 0 {
			return
		}
		trafs, err := mp4.ParseMoof(boxes[0].Body, 0, mp4.TrackDefaults{TrackID: mp4.TrackID})
		if err != nil {
			return
		}
		n := 0
		for _, tf := range trafs {
			n += len(tf.Samples)
		}
		if n > mp4.MaxMoofSamples {
			t.Fatalf("%d samples from a %d-byte moof", n, len(boxes[0].Body))
		}
	})
}

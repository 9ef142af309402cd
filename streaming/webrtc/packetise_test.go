package webrtc

import (
	"errors"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"

	"github.com/straja-nvr/straja/streaming"
)

// A browser learns SPS and PPS only in band: a keyframe from a camera that sent
// them out of band (in the SDP) must get them from Params, once, before the IDR.
func TestPacketiseAddsParamsToKeyframes(t *testing.T) {
	src := loadClip(t).unit(0)
	bare := *src
	bare.NALUs = nil
	for _, n := range src.NALUs {
		if typ := n[0] & 0x1f; typ != 7 && typ != 8 {
			bare.NALUs = append(bare.NALUs, n)
		}
	}
	enc := &rtph264.Encoder{PayloadType: 96}
	if err := enc.Init(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   *streaming.Unit
	}{{"without params", &bare}, {"with params", src}} {
		p, err := packetise(enc, tc.in, 0)
		if err != nil {
			t.Fatal(err)
		}
		dec := &rtph264.Decoder{}
		if err := dec.Init(); err != nil {
			t.Fatal(err)
		}
		var au [][]byte
		for _, pkt := range p.pkts {
			if au, err = dec.Decode(pkt); err != nil && !errors.Is(err, rtph264.ErrMorePacketsNeeded) {
				t.Fatal(err)
			}
		}
		var types []byte
		for _, n := range au {
			types = append(types, n[0]&0x1f)
		}
		if len(types) < 3 || types[0] != 7 || types[1] != 8 || types[2] == 7 || types[2] == 8 || !p.key {
			t.Errorf("%s: NAL unit types %v (key %v), want SPS, PPS, then the picture", tc.name, types, p.key)
		}
	}
}

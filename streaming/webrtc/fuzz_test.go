package webrtc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/streaming"
)

// FuzzOffer feeds arbitrary offers to the offer handling: it must answer or fail with
// one of the client errors, never panic, and never leave a session behind on failure.
// Offers that pass the checks build a real peer connection (~10 ms), so minimising a
// new input takes a while: fuzz for minutes, not seconds.
func FuzzOffer(f *testing.F) {
	good := makeOffer(f, newClientPC(f, nil))
	f.Add(good)
	f.Add(strings.ReplaceAll(good, "H264", "VP8"))
	f.Add(strings.ReplaceAll(good, "packetization-mode=1", "packetization-mode=0"))
	f.Add(strings.ReplaceAll(good, "a=fingerprint", "a=x"))
	f.Add(strings.ReplaceAll(good, "m=video", "m=audio"))
	f.Add("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n")
	f.Add("")
	f.Add("v=0\r\n")
	srv := newTestServer(f)
	st := streaming.New()
	st.Write(loadClip(f).unit(0))
	f.Fuzz(func(t *testing.T, offer string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		before := srv.Sessions()
		_, sid, err := srv.Offer(ctx, OfferRequest{CameraID: "cam", Stream: st, SDP: []byte(offer)})
		if err != nil {
			if !errors.Is(err, ErrBadOffer) && !errors.Is(err, ErrNoH264) {
				t.Fatalf("offer failed with a non-client error: %v", err)
			}
			if n := srv.Sessions(); n != before {
				t.Fatalf("failed offer left a session: %d -> %d", before, n)
			}
			return
		}
		if err := srv.Delete(sid); err != nil {
			t.Fatal(err)
		}
	})
}

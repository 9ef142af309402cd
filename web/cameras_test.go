package web

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/recorder/ingest"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/webrtc"
)

// What the API shows of a camera, and the advice a browser gets when it cannot play
// one live.
func TestCameraInfo(t *testing.T) {
	online := ingest.Status{State: ingest.StateOnline, Codec: streaming.H264, Width: 1920, Height: 1080,
		LastFrame: time.Date(2026, 11, 30, 9, 0, 0, 0, time.FixedZone("EET", 2*3600))}
	h265 := online
	h265.Codec = streaming.H265
	bframes := online
	bframes.BFrames = true
	audio := online
	audio.Audio = []string{"G711"}
	stalled := online
	stalled.State = ingest.StateStalled
	for _, tc := range []struct {
		name   string
		cs     recorder.CameraStatus
		live   bool
		reason string // part of LiveReason
		json   string // part of the JSON
	}{
		{"online", recorder.CameraStatus{ID: "gate", Stream: online, Live: online}, true, "",
			`"state":"online","codec":"h264","width":1920,"height":1080`},
		{"last frame in UTC", recorder.CameraStatus{ID: "gate", Stream: online, Live: online}, true, "",
			`"last_frame":"2026-11-30T07:00:00Z"`},
		{"h265", recorder.CameraStatus{ID: "gate", Stream: h265, Live: h265}, false,
			"configure live_url with an H.264 substream", `"live_codec":"h265"`},
		{"h265 substream", recorder.CameraStatus{ID: "gate", Stream: online, Live: h265, LiveSubstream: true}, false,
			"the live_url substream sends H.265", `"codec":"h264"`},
		{"substream down", recorder.CameraStatus{ID: "gate", Stream: online, Live: stalled, LiveSubstream: true}, false,
			"camera is stalled", `"state":"online"`},
		{"b-frames", recorder.CameraStatus{ID: "gate", Stream: bframes, Live: bframes}, false, webrtc.ReasonBFrames, `"live":false`},
		{"audio", recorder.CameraStatus{ID: "gate", Stream: audio, Live: audio}, true, "", `"audio":"not_recorded"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ci := cameraInfo(tc.cs)
			b, err := json.Marshal(ci)
			if err != nil {
				t.Fatal(err)
			}
			if ci.Live != tc.live || !strings.Contains(ci.LiveReason, tc.reason) || (tc.live && ci.LiveReason != "") ||
				!strings.Contains(string(b), tc.json) {
				t.Errorf("got %s\nwant live %v, reason with %q, JSON with %s", b, tc.live, tc.reason, tc.json)
			}
			if tc.name != "audio" && strings.Contains(string(b), `"audio"`) {
				t.Errorf("camera without audio shows %s", b)
			}
		})
	}
}

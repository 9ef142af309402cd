package web

import (
	"time"

	"github.com/straja-nvr/straja/recorder"
	"github.com/straja-nvr/straja/recorder/ingest"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/webrtc"
)

// CameraInfo is what the API shows of a camera: its settings without credentials, its
// ingest status, and whether a browser can show it live, with advice when it cannot.
type CameraInfo struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Site       string          `json:"site"`
	SiteName   string          `json:"site_name"`
	Record     bool            `json:"record"`
	State      ingest.State    `json:"state"`
	Codec      streaming.Codec `json:"codec,omitempty"`
	Width      int             `json:"width,omitempty"`
	Height     int             `json:"height,omitempty"`
	FPS        float64         `json:"fps"`
	BitrateBps float64         `json:"bitrate_bps"`
	LastFrame  *time.Time      `json:"last_frame,omitempty"`
	Reconnects uint64          `json:"reconnects"`
	LastError  string          `json:"last_error,omitempty"`
	// Reason says why the camera is not online, as ingest.Reason words.
	Reason ingest.Reason `json:"reason,omitempty"`
	// Live says whether a browser can show the camera now; LiveCodec is what live view
	// gets (the live_url substream when configured).
	Live       bool            `json:"live"`
	LiveCodec  streaming.Codec `json:"live_codec,omitempty"`
	LiveReason string          `json:"live_reason,omitempty"`
	// Source is where the camera comes from: SourceConfig (the file) or SourceAPI.
	Source string `json:"source,omitempty"`
	// Audio is "not_recorded" when the camera offers audio: Straja records video only.
	Audio string `json:"audio,omitempty"`
	// RetentionPolicy names the policy that decides how long the camera's footage is
	// kept: its own, else its site's, else the default.
	RetentionPolicy string `json:"retention_policy,omitempty"`
}

// AudioNotRecorded is CameraInfo.Audio for a camera that offers audio.
const AudioNotRecorded = "not_recorded"

// cameraInfo is cs as the API shows it.
func cameraInfo(cs recorder.CameraStatus) CameraInfo {
	st := cs.Stream
	ci := CameraInfo{ID: cs.ID, Name: cs.Name, Site: cs.Site, SiteName: cs.SiteName, Record: cs.Record,
		State: st.State, Codec: st.Codec, Width: st.Width, Height: st.Height, FPS: st.FPS,
		BitrateBps: st.BitrateBps, Reconnects: st.Reconnects, LastError: st.LastError, Reason: st.Reason}
	if len(st.Audio) > 0 {
		ci.Audio = AudioNotRecorded
	}
	if !st.LastFrame.IsZero() {
		t := st.LastFrame.UTC()
		ci.LastFrame = &t
	}
	live := cs.Live
	ci.LiveCodec = live.Codec
	switch {
	case live.Codec == streaming.H265 && cs.LiveSubstream:
		ci.LiveReason = "the live_url substream sends H.265, which browsers cannot play live; configure an H.264 substream"
	case live.Codec == streaming.H265:
		ci.LiveReason = "this camera sends H.265, which browsers cannot play live; configure live_url with an H.264 substream"
	case live.State != ingest.StateOnline:
		ci.LiveReason = "camera is " + string(live.State)
	case live.BFrames:
		ci.LiveReason = webrtc.ReasonBFrames
	default:
		ci.Live = true
	}
	return ci
}

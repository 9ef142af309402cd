package recorder

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/testutil"
)

// TestAudioNotRecordedIsShown: a camera that offers an audio track (G.711 here)
// records video only, and says so: the API shows "audio": "not_recorded" and the log
// says it once per session. A camera without audio shows nothing.
func TestAudioNotRecordedIsShown(t *testing.T) {
	if testing.Short() {
		t.Skip("streams real video")
	}
	withAudio := newIngestTestCam(t, streaming.H264, ingestWithAudio())
	videoOnly := newIngestTestCam(t, streaming.H264)
	cfg := superviseConfig(t, t.TempDir(),
		configs.Camera{ID: "gate", Name: "Poarta", Site: "bastion", URL: withAudio.URL(), Transport: configs.TransportTCP},
		configs.Camera{ID: "yard", Name: "Curte", Site: "bastion", URL: videoOnly.URL(), Transport: configs.TransportTCP})
	logs := &testutil.Buffer{}
	r, err := New(context.Background(), cfg, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Error(err)
		}
	}()

	testutil.WaitFor(t, 10*time.Second, "both cameras online", func() bool {
		a, _ := r.Camera("gate")
		b, _ := r.Camera("yard")
		return a.State == StateOnline && b.State == StateOnline
	})
	a, _ := r.Camera("gate")
	if b, _ := json.Marshal(a); !strings.Contains(string(b), `"audio":"not_recorded"`) {
		t.Errorf("camera with audio shown as %s, want \"audio\":\"not_recorded\"", b)
	}
	if b, _ := r.Camera("yard"); b.Audio != "" {
		t.Errorf("camera without audio: audio %q, want none", b.Audio)
	}
	var lines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "not recorded") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], "level=INFO") || !strings.Contains(lines[0], "camera=gate") ||
		!strings.Contains(lines[0], "audio=G711") {
		t.Errorf("log lines about audio not recorded: %q, want one INFO line for gate naming G711", lines)
	}
}

package main

import (
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/straja-nvr/straja/internal/testutil"
)

func TestRunRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-cameras", "0"}, "cameras"},
		{[]string{"-codec", "vp8"}, "vp8"},
		{[]string{"-h265", "4,x"}, "-h265"},
		{[]string{"-h265", "9"}, "camera 9"},
		{[]string{"-flap", "cam9:1s/2s"}, "only 4 cameras"},
		{[]string{"-flap", "cam1:5s/2s"}, "period"},
		{[]string{"-flap", "cam1"}, "camN:DOWN/EVERY"},
		{[]string{"-user", "admin"}, "password"},
		{[]string{"-clip", "/nonexistent.mp4"}, "nonexistent.mp4"},
		{[]string{"serve"}, "unexpected argument"},
	} {
		err := run(context.Background(), append([]string{"-listen", "127.0.0.1:0"}, tc.args...), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tc.args, err, tc.want)
		}
	}
}

// describeStatus returns 200 or the error status of a DESCRIBE.
func describeStatus(t *testing.T, rawURL string) base.StatusCode {
	t.Helper()
	u, err := base.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
	if err := c.Start2(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _, err = c.Describe(u)
	var bad liberrors.ErrClientBadStatusCode
	switch {
	case err == nil:
		return base.StatusOK
	case errors.As(err, &bad):
		return bad.Code
	default:
		t.Fatalf("describe %s: %v", rawURL, err)
		return 0
	}
}

func TestRunServesFlapsAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the simulator for a few seconds")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout testutil.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-cameras", "2", "-h265", "2",
			"-flap", "cam1:400ms/800ms"}, &stdout, io.Discard)
	}()

	urlRE := regexp.MustCompile(`rtsp://\S+/cam(\d)\t(h26[45]) 640x360`)
	var lines [][]string
	testutil.WaitFor(t, 5*time.Second, "two camera URLs on stdout", func() bool {
		lines = urlRE.FindAllStringSubmatch(stdout.String(), -1)
		return len(lines) >= 2
	})
	if lines[0][1] != "1" || lines[0][2] != "h264" || lines[1][1] != "2" || lines[1][2] != "h265" {
		t.Errorf("printed %q, want cam1 h264 and cam2 h265", stdout.String())
	}
	cam1 := strings.Fields(lines[0][0])[0]

	// The flapping camera is seen both down (404) and back up.
	seen := map[base.StatusCode]bool{}
	testutil.WaitFor(t, 5*time.Second, "cam1 answering both 200 and 404 while flapping", func() bool {
		seen[describeStatus(t, cam1)] = true
		return seen[base.StatusOK] && seen[base.StatusNotFound]
	})

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
)

// TestTwoDemosAtOnce: two demos on one machine must not fight over a port; the
// WebRTC media ports are free ones unless the flags name them.
func TestTwoDemosAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	var addrs []string
	for i := range 2 {
		m, err := demoMain([]string{"--listen", "127.0.0.1:0", "--data", t.TempDir(), "--cameras", "1"}, io.Discard, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Run(t.Context()); err != nil {
			m.Sim.Close()
			t.Fatalf("demo %d: %v", i+1, err)
		}
		t.Cleanup(func() { _ = m.Close() })
		signInTests(t, m)
		addrs = append(addrs, m.Addr())
	}
	for _, addr := range addrs {
		testutil.WaitFor(t, 20*time.Second, "demo camera online at "+addr, func() bool {
			return cameraOf(t, addr, "bastion-gate").State == "online"
		})
		if resp, err := http.Get("http://" + addr + "/"); err != nil || resp.StatusCode != 200 {
			t.Errorf("live page of the demo at %s: %v %v", addr, resp, err)
		} else {
			resp.Body.Close()
		}
	}
}

// TestDemoFlagErrors: a bad value given by a flag is blamed on the flag, not on the
// embedded demo.yaml the user never wrote.
func TestDemoFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "0.0.0.0:8080"}, `--listen: "0.0.0.0:8080" is reachable from other machines`},
		{[]string{"--segment-duration", "1s"}, "--segment-duration: 1s is outside the allowed range"},
		{[]string{"--webrtc-udp-port", "70000"}, "--webrtc-udp-port: must be a port number"},
		{[]string{"--webrtc-tcp-port", "-2"}, "--webrtc-tcp-port: must be a port number"},
		{[]string{"--demo-password", "scurta"}, "--demo-password: 6 characters, at least 12 needed"},
		{[]string{"--demo-password", "guard"}, "--demo-password: 5 characters"},
	} {
		args := append(tc.args, "--data", t.TempDir())
		m, err := demoMain(args, io.Discard, testLogger(t))
		if err == nil {
			m.Sim.Close()
			t.Fatalf("demo %v started", tc.args)
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "demo.yaml") {
			t.Errorf("demo %v: %v\nwant it to contain %q and not blame demo.yaml", tc.args, err, tc.want)
		}
	}
}

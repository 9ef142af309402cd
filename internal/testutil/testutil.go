// Package testutil holds what Straja's tests share: polling with a deadline, free
// loopback ports, checks for the outside tools the tests run against (ffmpeg, ffprobe,
// Chromium), what ffprobe says of a file, a goroutine-leak check and a buffer for a
// child's output.
//
// It lives in the module's internal/ folder, beside the other leaves every package may
// use, and no product code imports it.
package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// RequireToolsEnv names the environment variable that turns a missing tool from a
// skip into a failure; test.sh sets it, so a machine without ffmpeg cannot pass silently.
const RequireToolsEnv = "STRAJA_TEST_REQUIRE_TOOLS"

// WaitFor polls cond until it holds, failing tb when d passes first. what says what
// was awaited, for the failure message.
func WaitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !poll(d, cond) {
		tb.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// poll reports whether cond held before d passed. The interval grows from 1 ms to
// 50 ms: quick conditions are seen at once, slow ones are not polled in a busy loop.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	interval := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval) // poll interval, not a wait for an event
		interval = min(2*interval, 50*time.Millisecond)
	}
	return true
}

// FreePort returns a loopback port on which nothing listens right now, for network
// "tcp" or "udp". Another process may take it before the caller binds it; tests
// use it only where the code under test must be given a fixed port.
func FreePort(tb testing.TB, network string) int {
	tb.Helper()
	switch network {
	case "tcp":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("free tcp port: %v", err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("free udp port: %v", err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	tb.Fatalf("free port: network %q, want tcp or udp", network)
	return 0
}

// FreeAddr returns "127.0.0.1:port" with a port from FreePort.
func FreeAddr(tb testing.TB, network string) string {
	tb.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePort(tb, network))
}

// FreeUDPPair returns two loopback addresses on free UDP ports n and n+1, n even, as
// an RTSP server wants them for RTP and RTCP.
func FreeUDPPair(tb testing.TB) (rtp, rtcp string) {
	tb.Helper()
	for range 100 {
		a, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("free udp pair: %v", err)
		}
		port := a.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 || port == 65535 {
			a.Close()
			continue
		}
		b, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port+1))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", port+1)
	}
	tb.Fatal("free udp pair: none found in 100 tries")
	return "", ""
}

// NeedTool returns the path of the named program (ffmpeg, ffprobe, minio…). When it
// is missing the test is skipped, or fails if RequireToolsEnv is set.
func NeedTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(tb, name)
	}
	return p
}

// ChromiumPath is where Debian's chromium package puts the browser.
const ChromiumPath = "/usr/bin/chromium"

// NeedChromium returns the path of Chromium for browser tests; when it is missing the
// test is skipped, or fails if RequireToolsEnv is set.
func NeedChromium(tb testing.TB) string {
	tb.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		missing(tb, ChromiumPath)
	}
	return ChromiumPath
}

func missing(tb testing.TB, name string) {
	tb.Helper()
	if v := os.Getenv(RequireToolsEnv); v != "" && v != "0" {
		tb.Fatalf("%s not installed, and %s is set (./test.sh installs it)", name, RequireToolsEnv)
	}
	tb.Skipf("%s not installed; ./test.sh installs it", name)
}

// LeakWait is how long CheckGoroutines waits for goroutines to end. Real components
// end theirs after Close returns (a socket reader sees the closed socket, a timer
// fires), so the check waits for them rather than failing at the first look.
const LeakWait = 10 * time.Second

// CheckGoroutines notes the goroutines running now and returns a check that fails tb
// if any other goroutine is still running LeakWait after the check is called. Call the
// check after the code under test was closed. Goroutines of the testing package and the
// runtime are not counted; opts adds goleak options, such as goroutines to ignore.
// Tests using it must not run in parallel with others.
func CheckGoroutines(tb testing.TB, opts ...goleak.Option) func() {
	tb.Helper()
	return checkGoroutines(tb, LeakWait, opts...)
}

func checkGoroutines(tb testing.TB, wait time.Duration, opts ...goleak.Option) func() {
	opts = append(opts, goleak.IgnoreCurrent())
	return func() {
		tb.Helper()
		var err error
		if !poll(wait, func() bool { err = goleak.Find(opts...); return err == nil }) {
			tb.Errorf("goroutines still running %v after close: %v", wait, err)
		}
	}
}

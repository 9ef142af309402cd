package testutil

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a testing.TB that records failures and skips instead of acting on them.
// Fatal and Skip end the calling goroutine, as testing's do.
type recorder struct {
	testing.TB
	mu      sync.Mutex
	failed  []string
	skipped []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = append(r.failed, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...); runtime.Goexit() }
func (r *recorder) Fatal(args ...any)                 { r.Errorf("%s", fmt.Sprint(args...)); runtime.Goexit() }
func (r *recorder) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.skipped = append(r.skipped, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	runtime.Goexit()
}

// run calls f with a fresh recorder in its own goroutine, so Fatal and Skip can end it.
func run(t *testing.T, f func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestWaitFor(t *testing.T) {
	start := time.Now()
	r := run(t, func(tb testing.TB) {
		WaitFor(tb, 50*time.Millisecond, "never", func() bool { return false })
	})
	if len(r.failed) != 1 || !strings.Contains(r.failed[0], "never") {
		t.Errorf("a condition that never holds: failures %q, want one naming it", r.failed)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Error("gave up before the deadline")
	}
	n := 0
	r = run(t, func(tb testing.TB) {
		WaitFor(tb, 5*time.Second, "third look", func() bool { n++; return n == 3 })
	})
	if len(r.failed) != 0 || n != 3 {
		t.Errorf("a condition true at the third look: failures %q after %d looks", r.failed, n)
	}
}

func TestFreePort(t *testing.T) {
	l, err := net.Listen("tcp", FreeAddr(t, "tcp"))
	if err != nil {
		t.Fatalf("tcp: %v", err)
	}
	l.Close()
	c, err := net.ListenPacket("udp", FreeAddr(t, "udp"))
	if err != nil {
		t.Fatalf("udp: %v", err)
	}
	c.Close()
	rtp, rtcp := FreeUDPPair(t)
	for _, a := range []string{rtp, rtcp} {
		c, err := net.ListenPacket("udp", a)
		if err != nil {
			t.Fatalf("udp pair: %v", err)
		}
		c.Close()
	}
	var p1, p2 int
	fmt.Sscanf(rtp, "127.0.0.1:%d", &p1)
	fmt.Sscanf(rtcp, "127.0.0.1:%d", &p2)
	if p1%2 != 0 || p2 != p1+1 {
		t.Errorf("udp pair %s %s: want an even port and the next one", rtp, rtcp)
	}
	if r := run(t, func(tb testing.TB) { FreePort(tb, "sctp") }); len(r.failed) != 1 {
		t.Errorf("unknown network: failures %q, want one", r.failed)
	}
}

func TestNeedTool(t *testing.T) {
	const absent = "straja-no-such-tool"
	t.Setenv(RequireToolsEnv, "")
	if r := run(t, func(tb testing.TB) { NeedTool(tb, absent) }); len(r.skipped) != 1 || len(r.failed) != 0 {
		t.Errorf("missing tool: skips %q, failures %q; want a skip", r.skipped, r.failed)
	}
	t.Setenv(RequireToolsEnv, "1")
	if r := run(t, func(tb testing.TB) { NeedTool(tb, absent) }); len(r.failed) != 1 || !strings.Contains(r.failed[0], absent) {
		t.Errorf("missing tool with %s=1: failures %q, want one naming it", RequireToolsEnv, r.failed)
	}
	if p := NeedTool(t, "go"); p == "" {
		t.Error("go itself not found")
	}
}

func TestCheckGoroutinesSeesALeak(t *testing.T) {
	stop := make(chan struct{})
	var leaked sync.WaitGroup
	r := run(t, func(tb testing.TB) {
		check := checkGoroutines(tb, time.Second)
		leaked.Go(func() { <-stop })
		go func() { // ends soon after the check starts: not a leak
			time.Sleep(100 * time.Millisecond)
		}()
		start := time.Now()
		check()
		if time.Since(start) < time.Second {
			tb.Errorf("check gave up after %v, before its wait", time.Since(start))
		}
	})
	close(stop)
	leaked.Wait()
	if len(r.failed) != 1 || !strings.Contains(r.failed[0], "TestCheckGoroutinesSeesALeak") {
		t.Errorf("a goroutine left running: failures %q, want one showing its stack", r.failed)
	}
	r = run(t, func(tb testing.TB) { CheckGoroutines(tb)() })
	if len(r.failed) != 0 {
		t.Errorf("no goroutine left: failures %q", r.failed)
	}
}

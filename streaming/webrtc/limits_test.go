package webrtc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	dto "github.com/prometheus/client_model/go"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/streaming"
)

var loopback = net.IPv4(127, 0, 0, 1)

// answerCandidates returns the a=candidate values of an SDP answer.
func answerCandidates(tb testing.TB, answer []byte) []string {
	tb.Helper()
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(answer); err != nil {
		tb.Fatalf("answer is not SDP: %v", err)
	}
	var cands []string
	for _, md := range sd.MediaDescriptions {
		for _, a := range md.Attributes {
			if a.Key == sdp.AttrKeyCandidate {
				cands = append(cands, a.Value)
			}
		}
	}
	return cands
}

// Every ICE candidate appears once in the answer: no copy for component 2 (RTCP rides
// on component 1 with rtcp-mux) and no same address twice.
func TestAnswerHasNoDuplicateCandidates(t *testing.T) {
	e := newEnv(t)
	answer, _, err := e.srv.Offer(context.Background(), OfferRequest{CameraID: "cam1", Stream: e.stream,
		SDP: []byte(makeOffer(t, newClientPC(t, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	cands := answerCandidates(t, answer)
	if len(cands) == 0 {
		t.Fatalf("answer has no candidates:\n%s", answer)
	}
	lines, addrs := map[string]bool{}, map[string]string{}
	for _, c := range cands {
		f := strings.Fields(c) // foundation component transport priority address port typ ...
		if len(f) < 8 {
			t.Fatalf("short candidate %q", c)
		}
		if f[1] != "1" {
			t.Errorf("candidate for component %s (rtcp-mux is required): %q", f[1], c)
		}
		key := strings.ToLower(f[2]) + " " + f[4] + " " + f[5]
		if lines[c] {
			t.Errorf("candidate line twice: %q", c)
		} else if prev, dup := addrs[key]; dup {
			t.Errorf("address %s twice:\n%q\n%q", key, prev, c)
		}
		lines[c], addrs[key] = true, c
	}
	// The browser still gets both ways in: UDP and ICE-TCP.
	if !strings.Contains(string(answer), " udp ") || !strings.Contains(string(answer), " tcp ") {
		t.Fatalf("answer lacks a UDP or TCP candidate:\n%s", answer)
	}
}

// With a bind address, media listens and is announced there only, and live view works.
func TestMediaBindsToBindAddress(t *testing.T) {
	e := newEnvOpts(t, Options{BindAddress: loopback, TCPPort: 0})
	for _, a := range e.srv.UDPAddrs() {
		if ip := a.(*net.UDPAddr).IP; !ip.Equal(loopback) {
			t.Errorf("udp mux listens on %v", a)
		}
	}
	if ip := e.srv.TCPAddr().(*net.TCPAddr).IP; !ip.Equal(loopback) {
		t.Errorf("ice-tcp listens on %v", e.srv.TCPAddr())
	}
	answer, _, err := e.srv.Offer(context.Background(), OfferRequest{CameraID: "cam1", Stream: e.stream,
		SDP: []byte(makeOffer(t, newClientPC(t, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range answerCandidates(t, answer) {
		if f := strings.Fields(c); f[4] != "127.0.0.1" {
			t.Errorf("candidate outside the bind address: %q", c)
		}
	}
	w := newFrameWatcher()
	v := e.connect(t, "cam1", w.onRTP)
	defer v.close(t, e)
	testutil.WaitFor(t, 5*time.Second, "first keyframe", func() bool { return w.state().firstKey >= 0 })
}

// openFDs counts this process's open file descriptors.
func openFDs(tb testing.TB) int {
	tb.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Skipf("cannot count open files: %v", err)
	}
	return len(ents)
}

const floodEnv = "STRAJA_TEST_ICETCP_FLOOD"

// floodConns is how many idle connections the flooding process holds.
const floodConns = 500

// TestICETCPFloodProcess is not a test: it is the attacker of
// TestIdleICETCPConnectionsBounded, run as a separate process so that its own sockets
// do not count among the server's file descriptors. It opens floodConns idle
// connections from 127.0.0.2, says "ready", and keeps opening new ones (closing its
// oldest) until a line arrives on stdin; then it holds them until stdin closes.
func TestICETCPFloodProcess(t *testing.T) {
	addr := os.Getenv(floodEnv)
	if addr == "" {
		t.Skip("helper process for TestIdleICETCPConnectionsBounded")
	}
	stop, exit := make(chan struct{}), make(chan struct{})
	go func() {
		r := bufio.NewReader(os.Stdin)
		if _, err := r.ReadString('\n'); err == nil {
			close(stop)
			_, _ = io.Copy(io.Discard, r)
		}
		close(exit)
	}()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	var conns []net.Conn
	ready := false
flood:
	for {
		select {
		case <-stop:
			break flood
		case <-exit:
			break flood
		default:
		}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(1)
		}
		conns = append(conns, c)
		if len(conns) > floodConns {
			_ = conns[0].Close()
			conns = conns[1:]
		}
		if !ready && len(conns) == floodConns {
			ready = true
			fmt.Println("ready")
		}
	}
	<-exit
	for _, c := range conns {
		_ = c.Close()
	}
}

// Idle ICE-TCP connections cannot exhaust file descriptors: while another process holds
// 500 idle connections and keeps opening more, the server's descriptors stay bounded
// and a viewer still connects over ICE-TCP; idle connections are closed after the
// first-STUN timeout.
func TestIdleICETCPConnectionsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a port from another process")
	}
	const maxPending = 64
	e := newEnvOpts(t, Options{BindAddress: loopback, TCPPort: 0, MaxPendingTCP: maxPending,
		FirstSTUNTimeout: 2 * time.Second})
	// Warm up pion's lazily started parts so the baseline holds them.
	warm := e.connect(t, "cam1", func(*rtp.Packet) {})
	warm.close(t, e)
	testutil.WaitFor(t, 10*time.Second, "warm-up session to end", func() bool { return e.srv.Sessions() == 0 })
	base := openFDs(t)

	cmd := exec.Command(os.Args[0], "-test.run=^TestICETCPFloodProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), floodEnv+"="+e.srv.TCPAddr().String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		_ = stdin.Close()
		if !exited {
			_ = cmd.Wait()
		}
	}()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("flooding process: %q %v", lines.Text(), lines.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	testutil.WaitFor(t, 20*time.Second, "the server to accept the flood", func() bool {
		return e.srv.tcpLn.counts().accepted >= floodConns
	})
	fds, c := openFDs(t), e.srv.tcpLn.counts()
	t.Logf("%d connections accepted, %d pending, %d open; %d fds (baseline %d)", c.accepted, c.pending, c.open, fds, base)
	if c.pending > maxPending || fds > base+maxPending+16 {
		t.Fatalf("during the flood: %d pending connections (max %d), %d open fds (baseline %d)",
			c.pending, maxPending, fds, base)
	}

	// A real viewer gets in over ICE-TCP while the flood goes on.
	w := newFrameWatcher()
	v := e.connectPC(t, newClientPCNet(t, nil, webrtc.NetworkTypeTCP4), "cam1", w.onRTP)
	testutil.WaitFor(t, 10*time.Second, "first keyframe over ice-tcp during the flood",
		func() bool { return w.state().firstKey >= 0 })

	// The flood stops but holds its connections: the idle ones are closed by the
	// server, the viewer's stay (one per address pair pion tried: a few).
	if _, err := io.WriteString(stdin, "stop\n"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 15*time.Second, "idle connections to be closed", func() bool {
		c := e.srv.tcpLn.counts()
		return c.pending == 0 && c.open <= 8
	})
	if w.state().holes > 0 || e.srv.Sessions() != 1 {
		t.Fatalf("viewer disturbed: %+v, %d sessions", w.state(), e.srv.Sessions())
	}
	// Operators see it in the metrics.
	for _, reason := range []string{"idle", "pending_full"} {
		var pb dto.Metric
		if err := e.srv.m.tcpClosed.WithLabelValues(reason).Write(&pb); err != nil || pb.GetCounter().GetValue() == 0 {
			t.Errorf("straja_live_ice_tcp_closed_total{reason=%q} = 0 (%v)", reason, err)
		}
	}
	v.close(t, e)
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("flooding process: %v", err)
	}
	exited = true
}

// One client address gets at most MaxSessionsPerClient sessions; another still gets one.
func TestPerClientSessionCap(t *testing.T) {
	srv := newTestServerOpts(t, Options{IncludeLoopback: true, TCPPort: -1, MaxSessionsPerClient: 2,
		ConnectTimeout: time.Minute})
	st := streaming.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := feed(ctx, t, st)
	defer func() { cancel(); <-done }()
	offer := []byte(makeOffer(t, newClientPC(t, nil)))
	req := func(client string) error {
		_, _, err := srv.Offer(context.Background(), OfferRequest{CameraID: "cam", Stream: st, SDP: offer, Client: client})
		return err
	}
	for i := range 2 {
		if err := req("192.0.2.7"); err != nil {
			t.Fatalf("offer %d from one client: %v", i+1, err)
		}
	}
	err := req("192.0.2.7")
	if !errors.Is(err, ErrTooManyClientSessions) {
		t.Fatalf("third offer from one client: %v, want ErrTooManyClientSessions", err)
	}
	if err := req("192.0.2.8"); err != nil {
		t.Fatalf("offer from another client: %v", err)
	}
	if n := srv.Sessions(); n != 3 {
		t.Fatalf("%d sessions, want 3", n)
	}
}

// A session whose viewer never connects frees its slot, and its client's, after
// ConnectTimeout.
func TestUnconnectedSessionFreesSlot(t *testing.T) {
	srv := newTestServerOpts(t, Options{IncludeLoopback: true, TCPPort: -1, MaxSessions: 1, MaxSessionsPerClient: 1,
		ConnectTimeout: 300 * time.Millisecond})
	st := streaming.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := feed(ctx, t, st)
	defer func() { cancel(); <-done }()
	offer := []byte(makeOffer(t, newClientPC(t, nil)))
	req := OfferRequest{CameraID: "cam", Stream: st, SDP: offer, Client: "192.0.2.7"}
	if _, _, err := srv.Offer(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Offer(context.Background(), req); !errors.Is(err, ErrTooManySessions) {
		t.Fatalf("second offer while the first negotiates: %v, want ErrTooManySessions", err)
	}
	testutil.WaitFor(t, 10*time.Second, "the unconnected session to end", func() bool { return srv.Sessions() == 0 })
	if _, _, err := srv.Offer(context.Background(), req); err != nil {
		t.Fatalf("offer after the timeout freed the slot: %v", err)
	}
}

// A connected session ends at MaxSessionDuration.
func TestMaxSessionDurationEndsSession(t *testing.T) {
	e := newEnvOpts(t, Options{IncludeLoopback: true, TCPPort: -1, MaxSessionDuration: 2 * time.Second})
	w := newFrameWatcher()
	v := e.connect(t, "cam1", w.onRTP)
	defer func() { _ = v.pc.Close() }()
	testutil.WaitFor(t, 5*time.Second, "first keyframe", func() bool { return w.state().firstKey >= 0 })
	testutil.WaitFor(t, 10*time.Second, "the session to reach its maximum duration", func() bool { return e.srv.Sessions() == 0 })
	select {
	case <-v.done:
	case <-time.After(10 * time.Second):
		t.Fatal("viewer's track did not end")
	}
}

// A stream with reordered frames (B-frames) is refused with the reason
// (ErrLiveUnavailable, a conflict for the viewer), not as an offline camera.
func TestBFrameStreamRefusedWithReason(t *testing.T) {
	srv := newTestServer(t)
	st := streaming.New()
	c := loadClip(t)
	for i := range 3 {
		u := c.unit(i)
		u.PTS += 2 * c.frame // a decode delay: what B-frames bring
		st.Write(u)
	}
	_, _, err := srv.Offer(context.Background(), OfferRequest{CameraID: "cam", Stream: st,
		SDP: []byte(makeOffer(t, newClientPC(t, nil)))})
	if !errors.Is(err, ErrLiveUnavailable) {
		t.Fatalf("offer for a B-frame stream: %v, want ErrLiveUnavailable", err)
	}
	var unplayable *LiveUnavailableError
	if !errors.As(err, &unplayable) || !strings.Contains(unplayable.Reason, "B-frames") {
		t.Fatalf("offer for a B-frame stream: %v, want a reason naming B-frames", err)
	}
	if n := srv.Sessions(); n != 0 {
		t.Fatalf("%d sessions", n)
	}
}

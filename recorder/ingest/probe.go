package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"github.com/straja-nvr/straja/streaming"
)

// ProbeResult is what one short session with a camera showed of its stream.
type ProbeResult struct {
	Codec   streaming.Codec `json:"codec"`
	Profile string          `json:"profile,omitempty"`
	Width   int             `json:"width,omitempty"`
	Height  int             `json:"height,omitempty"`
	FPS     float64         `json:"fps,omitempty"`
	// GOPFrames is the number of frames from one keyframe to the next; 0 when the
	// probe saw fewer than two keyframes (the GOP is longer than it waited).
	GOPFrames  int      `json:"gop_frames,omitempty"`
	GOPSeconds float64  `json:"gop_seconds,omitempty"`
	BFrames    bool     `json:"b_frames"`
	Audio      []string `json:"audio"`
	// Live says whether a browser can show the stream live (H.264 without B-frames);
	// LiveReason says why not.
	Live       bool   `json:"live"`
	LiveReason string `json:"live_reason,omitempty"`
}

// ProbeReason is why a probe failed, in a word a program can act on.
type ProbeReason string

// Probe failure reasons.
const (
	ProbeUnreachable ProbeReason = "unreachable" // no route, or the name does not resolve
	ProbeRefused     ProbeReason = "refused"     // nothing listens on the port
	ProbeAuthFailed  ProbeReason = "auth_failed" // the camera wants other credentials
	ProbeNoVideo     ProbeReason = "no_video"    // no H.264 or H.265 video track
	ProbeNotRTSP     ProbeReason = "not_rtsp"    // something answered, but not RTSP
	ProbeTimeout     ProbeReason = "timeout"     // no answer, or no video, in time
	ProbeRedirected  ProbeReason = "redirected"  // sent to another host, which a probe never follows
	ProbeFailed      ProbeReason = "failed"      // the camera answered with an error
)

// ProbeError is a failed probe: Reason for programs, Msg for people. Msg never
// quotes the URL or its credentials.
type ProbeError struct {
	Reason ProbeReason
	Msg    string
}

func (e *ProbeError) Error() string { return string(e.Reason) + ": " + e.Msg }

// errOtherHost refuses a redirect to another host: credentials would go with it.
var errOtherHost = errors.New("redirected to another host")

// Probe connects once to the camera at rawURL (credentials in its user info),
// describes, sets up and plays its first H.264 or H.265 video track for up to
// observe, and reports what the stream is. The whole probe ends by ctx's deadline;
// failures are *ProbeError. It follows no redirect to another host or port.
func Probe(ctx context.Context, rawURL string, observe time.Duration) (ProbeResult, error) {
	u, err := base.ParseURL(rawURL)
	if err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") || u.Hostname() == "" {
		return ProbeResult{}, &ProbeError{ProbeNotRTSP, "the url must be rtsp:// or rtsps:// with a host"}
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(8 * time.Second)
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	want := canonicalHost(u.Scheme, u.Host)
	dialer := &net.Dialer{}
	client := &gortsplib.Client{
		Scheme: u.Scheme,
		Host:   u.Host,
		// TCP only: one connection, nothing for a firewall to drop silently.
		Transport:   func() *gortsplib.Transport { t := gortsplib.TransportTCP; return &t }(),
		ReadTimeout: time.Until(deadline),
		DialContext: func(dctx context.Context, network, address string) (net.Conn, error) {
			if address != want {
				return nil, errOtherHost
			}
			dctx, c := context.WithDeadline(dctx, deadline)
			defer c()
			return dialer.DialContext(dctx, network, address)
		},
	}
	if err := client.Start2(); err != nil {
		return ProbeResult{}, &ProbeError{ProbeFailed, "cannot start the rtsp client"}
	}
	p := &prober{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		client.Close()
	}()
	res, err := p.run(ctx, client, u, observe)
	cancel()
	<-done
	client.Close()
	if err != nil {
		return ProbeResult{}, classifyProbe(ctx, err, u.User != nil)
	}
	return res, nil
}

// canonicalHost is host with the scheme's default port, as gortsplib dials it.
func canonicalHost(scheme, host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if scheme == "rtsps" {
		return net.JoinHostPort(host, "322")
	}
	return net.JoinHostPort(host, "554")
}

// prober collects what the video track's packets show.
type prober struct {
	mu      sync.Mutex
	codec   streaming.Codec
	dec     depacketiser
	pts     []int64 // of each access unit, in arrival (decode) order
	keys    []int   // indexes into pts of random access units
	sps     []byte
	enough  chan struct{}
	stopped bool
}

func (p *prober) run(ctx context.Context, client *gortsplib.Client, u *base.URL, observe time.Duration) (ProbeResult, error) {
	desc, _, err := client.Describe(u)
	if err != nil {
		return ProbeResult{}, err
	}
	res := ProbeResult{Audio: audioCodecs(desc)}
	if res.Audio == nil {
		res.Audio = []string{}
	}
	medi, forma := findVideo(desc)
	if medi == nil {
		return ProbeResult{}, &ProbeError{ProbeNoVideo, fmt.Sprintf("the camera offers no H.264 or H.265 video (offered: %s)",
			codecList(desc))}
	}
	switch f := forma.(type) {
	case *format.H264:
		dec, err := f.CreateDecoder()
		if err != nil {
			return ProbeResult{}, &ProbeError{ProbeNoVideo, "the H.264 track cannot be depacketised"}
		}
		p.codec, p.dec = streaming.H264, dec
		p.sps, _ = f.SafeParams()
	case *format.H265:
		dec, err := f.CreateDecoder()
		if err != nil {
			return ProbeResult{}, &ProbeError{ProbeNoVideo, "the H.265 track cannot be depacketised"}
		}
		p.codec, p.dec = streaming.H265, dec
		_, p.sps, _ = f.SafeParams()
	}
	enough := make(chan struct{}) // closed by onPacket, which clears p.enough under p.mu
	p.enough = enough
	if _, err := client.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return ProbeResult{}, err
	}
	client.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		if pts, ok := client.PacketPTS2(medi, pkt); ok {
			p.onPacket(pkt, pts)
		}
	})
	if _, err := client.Play(nil); err != nil {
		return ProbeResult{}, err
	}
	wait := time.NewTimer(observe)
	defer wait.Stop()
	failed := make(chan error, 1)
	go func() { failed <- client.Wait() }()
	select {
	case <-enough:
	case <-wait.C:
	case <-ctx.Done():
	case err := <-failed:
		client.Close()
		return ProbeResult{}, err
	}
	client.Close()
	<-failed
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if len(p.keys) == 0 {
		if ctx.Err() != nil {
			return ProbeResult{}, ctx.Err()
		}
		return ProbeResult{}, &ProbeError{ProbeTimeout, fmt.Sprintf("the camera sent no keyframe within %s", observe)}
	}
	p.describe(&res)
	return res, nil
}

func (p *prober) onPacket(pkt *rtp.Packet, pts int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	au, err := p.dec.Decode(pkt)
	if err != nil {
		return
	}
	var random bool
	if p.codec == streaming.H265 {
		random = h265.IsRandomAccess(au)
		for _, n := range au {
			if len(n) > 1 && h265.NALUType((n[0]>>1)&0b111111) == h265.NALUType_SPS_NUT {
				p.sps = n
			}
		}
	} else {
		random = h264.IsRandomAccess(au)
		for _, n := range au {
			if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
				p.sps = n
			}
		}
	}
	if random {
		p.keys = append(p.keys, len(p.pts))
	}
	if len(p.keys) > 0 { // before the first keyframe nothing can be decoded: not counted
		p.pts = append(p.pts, pts)
	}
	// Two keyframes bound one whole GOP.
	if len(p.keys) >= 2 && p.enough != nil {
		close(p.enough)
		p.enough = nil
	}
}

// describe fills res from what arrived. Needs p.mu held.
func (p *prober) describe(res *ProbeResult) {
	res.Codec = p.codec
	if p.codec == streaming.H265 {
		var sps h265.SPS
		if sps.Unmarshal(p.sps) == nil {
			res.Width, res.Height = sps.Width(), sps.Height()
			res.Profile = h265Profile(sps.ProfileTierLevel.GeneralProfileIdc)
		}
	} else {
		var sps h264.SPS
		if sps.Unmarshal(p.sps) == nil {
			res.Width, res.Height = sps.Width(), sps.Height()
			res.Profile = h264Profile(sps.ProfileIdc, sps.ConstraintSet1Flag)
		}
	}
	// Frames from the first keyframe on, first index relative to it.
	pts := p.pts
	for i := 1; i < len(pts); i++ {
		if pts[i] < pts[i-1] {
			res.BFrames = true
			break
		}
	}
	sorted := slices.Clone(pts)
	slices.Sort(sorted)
	if n := len(sorted); n >= 2 && sorted[n-1] > sorted[0] {
		res.FPS = roundTo(float64(n-1)*streaming.ClockRate/float64(sorted[n-1]-sorted[0]), 100)
	}
	if len(p.keys) >= 2 {
		k := len(p.keys) // the last whole GOP

		res.GOPFrames = p.keys[k-1] - p.keys[k-2]
		if res.FPS > 0 {
			res.GOPSeconds = roundTo(float64(res.GOPFrames)/res.FPS, 100)
		}
	}
	switch {
	case p.codec != streaming.H264:
		res.LiveReason = "this camera sends H.265, which browsers cannot play live; configure live_url with an H.264 substream"
	case res.BFrames:
		res.LiveReason = "this camera sends B-frames, which browsers cannot play live smoothly; turn B-frames off " +
			"in the camera's encoder or configure an H.264 live_url substream without them"
	default:
		res.Live = true
	}
}

func roundTo(v float64, scale float64) float64 { return float64(int64(v*scale+0.5)) / scale }

func h264Profile(idc uint8, constrained bool) string {
	switch idc {
	case 66:
		if constrained {
			return "Constrained Baseline"
		}
		return "Baseline"
	case 77:
		return "Main"
	case 88:
		return "Extended"
	case 100:
		return "High"
	case 110:
		return "High 10"
	case 122:
		return "High 4:2:2"
	case 244:
		return "High 4:4:4"
	}
	return fmt.Sprintf("profile_idc %d", idc)
}

func h265Profile(idc uint8) string {
	switch idc {
	case 1:
		return "Main"
	case 2:
		return "Main 10"
	case 3:
		return "Main Still Picture"
	}
	return fmt.Sprintf("profile_idc %d", idc)
}

// classifyProbe turns what the RTSP client returned into a reason.
func classifyProbe(ctx context.Context, err error, withCredentials bool) error {
	var pe *ProbeError
	if errors.As(err, &pe) {
		return pe
	}
	var bad liberrors.ErrClientBadStatusCode
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, errOtherHost):
		return &ProbeError{ProbeRedirected, "the camera redirected to another host, which a probe does not follow"}
	case errors.As(err, &bad) && bad.Code == base.StatusUnauthorized:
		if !withCredentials {
			return &ProbeError{ProbeAuthFailed, "the camera wants a user name and password"}
		}
		return &ProbeError{ProbeAuthFailed, "the camera refused the user name or password"}
	case errors.As(err, &bad) && bad.Code >= 300 && bad.Code < 400:
		return &ProbeError{ProbeRedirected, fmt.Sprintf("the camera answered %d %s; a probe follows no redirect", bad.Code, bad.Message)}
	case errors.As(err, &bad):
		return &ProbeError{ProbeFailed, fmt.Sprintf("the camera answered %d %s", bad.Code, bad.Message)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &ProbeError{ProbeRefused, "the connection was refused: nothing listens on that port"}
	case errors.As(err, &dnsErr):
		return &ProbeError{ProbeUnreachable, "the host name does not resolve"}
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return &ProbeError{ProbeUnreachable, "the host cannot be reached"}
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			return &ProbeError{ProbeTimeout, "no answer to the connection in time (host down or port filtered)"}
		}
		return &ProbeError{ProbeTimeout, "the camera did not answer in time"}
	case errors.As(err, &opErr):
		return &ProbeError{ProbeUnreachable, "the connection failed"}
	}
	return &ProbeError{ProbeNotRTSP, "the server did not answer in RTSP"}
}

package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	pion "github.com/pion/webrtc/v4"

	"github.com/straja-nvr/straja/recorder/ingest"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/streaming"
	"github.com/straja-nvr/straja/streaming/clip"
	"github.com/straja-nvr/straja/streaming/webrtc"
)

// liveCameras are cameras as the recorder shows them, with their live streams.
type liveCameras struct {
	fakeCameras
	streams map[string]*streaming.Stream
}

func (l liveCameras) LiveStream(id string) (*streaming.Stream, bool) {
	st, ok := l.streams[id]
	return st, ok
}

// newWHEPServer serves a real WebRTC server: cam-1 sends H.264 (its first GOP is in
// the stream), cam-h265 sends H.265, cam-off is offline, cam-bframes is online with
// B-frames.
func newWHEPServer(t *testing.T) (*Server, *webrtc.Server) {
	return newWHEPServerOpts(t, webrtc.Options{IncludeLoopback: true, TCPPort: -1})
}

func newWHEPServerOpts(t *testing.T, lo webrtc.Options) (*Server, *webrtc.Server) {
	t.Helper()
	c, err := clip.Embedded(streaming.H264)
	if err != nil {
		t.Fatal(err)
	}
	st := streaming.New()
	for i, u := range c.Units(1, 1, time.Now()) {
		if i > 0 && u.Key {
			break
		}
		st.Write(u)
	}
	var srv atomic.Pointer[Server]
	lo.OnSessionEnd = func(e webrtc.SessionEnd) {
		if s := srv.Load(); s != nil {
			s.LiveEnded(e)
		}
	}
	live, err := webrtc.New(lo, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = live.Close() })
	online := ingest.Status{State: ingest.StateOnline, Codec: streaming.H264}
	h265 := ingest.Status{State: ingest.StateOnline, Codec: streaming.H265}
	offline := ingest.Status{State: ingest.StateOffline, Codec: streaming.H264}
	bframes := ingest.Status{State: ingest.StateOnline, Codec: streaming.H264, BFrames: true}
	cams := liveCameras{
		fakeCameras: fakeCameras{
			{ID: "cam-1", Stream: online, Live: online},
			{ID: "cam-h265", Stream: h265, Live: h265},
			{ID: "cam-off", Stream: offline, Live: offline},
			{ID: "cam-bframes", Stream: bframes, Live: bframes},
		},
		streams: map[string]*streaming.Stream{"cam-1": st, "cam-off": streaming.New()},
	}
	s := newTestServer(t, newCatalog(t), func(o *Options) {
		o.Cameras, o.Streams, o.Live = cams, cams, live
	})
	srv.Store(s)
	return s, live
}

// clientOffer is a recvonly offer from a pion client with the given codecs (nil:
// pion's defaults, H.264 included).
func clientOffer(t *testing.T, register func(*pion.MediaEngine) error) string {
	t.Helper()
	me := &pion.MediaEngine{}
	if register == nil {
		register = (*pion.MediaEngine).RegisterDefaultCodecs
	}
	if err := register(me); err != nil {
		t.Fatal(err)
	}
	se := pion.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	pc, err := pion.NewAPI(pion.WithMediaEngine(me), pion.WithSettingEngine(se)).NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	if _, err := pc.AddTransceiverFromKind(pion.RTPCodecTypeVideo,
		pion.RTPTransceiverInit{Direction: pion.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	gathered := pion.GatheringCompletePromise(pc)
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		t.Fatal("client ice gathering timed out")
	}
	return pc.LocalDescription().SDP
}

func do(h http.Handler, method, target, ctype string, body []byte) *httptest.ResponseRecorder {
	r := newRequest(method, target, body)
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// A session's whole life over HTTP: offer -> 201 with an answer and Location,
// trickle ICE, DELETE; then the session is gone.
func TestWHEPSession(t *testing.T) {
	s, live := newWHEPServer(t)
	rec := do(s, "OPTIONS", "/api/v1/cameras/cam-1/whep", "", nil)
	if rec.Code != http.StatusNoContent || rec.Header().Get("Accept-Post") != "application/sdp" {
		t.Fatalf("OPTIONS: %d, Accept-Post %q", rec.Code, rec.Header().Get("Accept-Post"))
	}
	rec = do(s, "POST", "/api/v1/cameras/cam-1/whep", "application/sdp", []byte(clientOffer(t, nil)))
	loc := rec.Header().Get("Location")
	if rec.Code != http.StatusCreated || rec.Header().Get("Content-Type") != "application/sdp" ||
		!strings.HasPrefix(loc, sessionPath) || !strings.HasPrefix(rec.Body.String(), "v=0") {
		t.Fatalf("offer: %d, Location %q, Content-Type %q: %.200s", rec.Code, loc, rec.Header().Get("Content-Type"), rec.Body)
	}
	if n := live.Sessions(); n != 1 {
		t.Fatalf("%d sessions after the offer", n)
	}
	frag := []byte("a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n")
	checkError(t, do(s, "PATCH", loc, "text/plain", frag), http.StatusUnsupportedMediaType, "", "application/trickle-ice-sdpfrag")
	if rec := do(s, "PATCH", loc, "application/trickle-ice-sdpfrag", frag); rec.Code != http.StatusNoContent {
		t.Fatalf("PATCH: %d %s", rec.Code, rec.Body)
	}
	if rec := do(s, "DELETE", loc, "", nil); rec.Code != http.StatusOK {
		t.Fatalf("DELETE: %d %s", rec.Code, rec.Body)
	}
	if n := live.Sessions(); n != 0 {
		t.Fatalf("%d sessions after DELETE", n)
	}
	checkError(t, do(s, "DELETE", loc, "", nil), http.StatusNotFound, "", "live session not found")
	checkError(t, do(s, "PATCH", loc, "application/trickle-ice-sdpfrag", frag), http.StatusNotFound, "", "live session not found")
}

// Bad offers and cameras that cannot be shown get a clear status and the JSON error
// body; none leaves a session behind.
func TestWHEPErrors(t *testing.T) {
	s, live := newWHEPServer(t)
	good := clientOffer(t, nil)
	vp8 := clientOffer(t, func(me *pion.MediaEngine) error {
		return me.RegisterCodec(pion.RTPCodecParameters{
			RTPCodecCapability: pion.RTPCodecCapability{MimeType: pion.MimeTypeVP8, ClockRate: 90000},
			PayloadType:        96,
		}, pion.RTPCodecTypeVideo)
	})
	cases := []struct {
		name, camera, ctype, body string
		code                      int
		msg                       string
	}{
		{"malformed sdp", "cam-1", "application/sdp", "hello, not sdp", 400, "bad sdp offer"},
		{"truncated sdp", "cam-1", "application/sdp", good[:len(good)/3], 400, "bad sdp offer"},
		{"empty body", "cam-1", "application/sdp", "", 400, "bad sdp offer"},
		{"vp8 only", "cam-1", "application/sdp", vp8, 406, "no H.264"},
		{"h264 mode 0 only", "cam-1", "application/sdp", strings.ReplaceAll(good, "packetization-mode=1", "packetization-mode=0"), 406, "no H.264"},
		{"unknown camera", "nope", "application/sdp", good, 403, "you may not watch"},
		{"h265 camera", "cam-h265", "application/sdp", good, 409, "live_url"},
		{"offline camera", "cam-off", "application/sdp", good, 503, "offline"},
		{"b-frame camera", "cam-bframes", "application/sdp", good, 409, "B-frames"},
		{"wrong content type", "cam-1", "application/json", good, 415, "application/sdp"},
		{"huge body", "cam-1", "application/sdp", strings.Repeat("a=x\r\n", 30000), 413, "larger"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkError(t, do(s, "POST", "/api/v1/cameras/"+c.camera+"/whep", c.ctype, []byte(c.body)), c.code, "", c.msg)
		})
	}
	if n := live.Sessions(); n != 0 {
		t.Fatalf("%d sessions left by failed offers", n)
	}
	// Without a live server, live view says so instead of failing inside.
	off := newTestServer(t, newCatalog(t))
	checkError(t, do(off, "POST", "/api/v1/cameras/bastion-gate/whep", "application/sdp", []byte(good)), 503, "", "not running")
}

// The per-client cap counts the request's address, and says when to retry.
func TestWHEPPerClientCap(t *testing.T) {
	s, _ := newWHEPServerOpts(t, webrtc.Options{IncludeLoopback: true, TCPPort: -1, MaxSessionsPerClient: 1,
		ConnectTimeout: time.Minute})
	offer := []byte(clientOffer(t, nil))
	post := func(remote string) *httptest.ResponseRecorder {
		r := newRequest("POST", "/api/v1/cameras/cam-1/whep", offer)
		r.Header.Set("Content-Type", "application/sdp")
		r.RemoteAddr = remote
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		return rec
	}
	if rec := post("192.0.2.7:50001"); rec.Code != http.StatusCreated {
		t.Fatalf("first offer: %d %s", rec.Code, rec.Body)
	}
	rec := post("192.0.2.7:50002")
	checkError(t, rec, http.StatusTooManyRequests, "", "too many live views")
	if rec.Header().Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if rec := post("192.0.2.8:50001"); rec.Code != http.StatusCreated {
		t.Fatalf("offer from another address: %d %s", rec.Code, rec.Body)
	}
}

// The live server's own refusals map to statuses in the one error mapper.
func TestLiveErrorStatuses(t *testing.T) {
	for _, c := range []struct {
		err        error
		code       int
		retryAfter bool
	}{
		{webrtc.ErrTooManySessions, 503, true},
		{webrtc.ErrTooManyClientSessions, 429, true},
		{&webrtc.LiveUnavailableError{Reason: webrtc.ReasonBFrames}, 409, false},
		{webrtc.ErrClosed, 503, true},
		{webrtc.ErrUnavailable, 503, false},
		{webrtc.ErrCodecNotSupported, 409, false},
		{webrtc.ErrSessionNotFound, 404, false},
	} {
		code, body, retry := classify(c.err)
		if code != c.code || (retry > 0) != c.retryAfter || body.Error == "" {
			t.Errorf("%v: %d %q retry %d; want %d (Retry-After %v)", c.err, code, body.Error, retry, c.code, c.retryAfter)
		}
	}
}

// TestLiveEndsWithUserChange: disabling a user, a new password or other grants end
// the live views the user has open.
func TestLiveEndsWithUserChange(t *testing.T) {
	for _, change := range []struct{ method, path, body string }{
		{"PATCH", "/api/v1/users/guard", `{"disabled":true}`},
		{"PATCH", "/api/v1/users/guard", `{"password":"Another-Long-Pass-2026"}`},
		{"PUT", "/api/v1/users/guard/grants", `{"grants":[]}`},
	} {
		t.Run(change.path+" "+change.body, func(t *testing.T) {
			s, live := newWHEPServerOpts(t, webrtc.Options{IncludeLoopback: true, TCPPort: -1, ConnectTimeout: time.Minute})
			openLive(t, s, "guard")
			openLive(t, s, "guard")
			if n := live.Sessions(); n != 2 {
				t.Fatalf("%d live sessions before the change; want 2", n)
			}
			r := newRequestAs("itc", change.method, change.path, []byte(change.body))
			r.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, r)
			if rec.Code != http.StatusOK {
				t.Fatalf("%s %s: %d %s", change.method, change.path, rec.Code, rec.Body)
			}
			if n := live.Sessions(); n != 0 {
				t.Errorf("%d live sessions of the guard still open after the change; want none", n)
			}
		})
	}
}

// A user disabled in the database by another process (the CLI) loses their live
// views at the next sweep.
func TestLiveSweepDisabledElsewhere(t *testing.T) {
	s, live := newWHEPServerOpts(t, webrtc.Options{IncludeLoopback: true, TCPPort: -1, ConnectTimeout: time.Minute})
	openLive(t, s, "guard")
	s.sweepLive(t.Context())
	if n := live.Sessions(); n != 1 {
		t.Fatalf("%d live sessions after a sweep with the guard enabled; want 1", n)
	}
	if err := s.users.DB.SetDisabled(t.Context(), "guard", true); err != nil {
		t.Fatal(err)
	}
	s.sweepLive(t.Context())
	if n := live.Sessions(); n != 0 {
		t.Errorf("%d live sessions after a sweep with the guard disabled; want none", n)
	}
}

// A user whose roles were changed by another process (straja user roles) to ones
// without live view loses their live views at the next sweep.
func TestLiveSweepRolesChangedElsewhere(t *testing.T) {
	s, live := newWHEPServerOpts(t, webrtc.Options{IncludeLoopback: true, TCPPort: -1, ConnectTimeout: time.Minute})
	openLive(t, s, "guard")
	if err := s.users.DB.SetRoles(t.Context(), "guard", []string{"guard", "itc"}, ""); err != nil {
		t.Fatal(err)
	}
	s.sweepLive(t.Context())
	if n := live.Sessions(); n != 1 {
		t.Fatalf("%d live sessions after a sweep with guard and itc; want 1", n)
	}
	if err := s.users.DB.SetRoles(t.Context(), "guard", []string{"itc"}, ""); err != nil {
		t.Fatal(err)
	}
	s.sweepLive(t.Context())
	if n := live.Sessions(); n != 0 {
		t.Errorf("%d live sessions after a sweep with itc only; want none", n)
	}
}

// A guard who is also itc watches a granted camera live; an itc granted it without a
// video role is refused.
func TestLiveWithSeveralRoles(t *testing.T) {
	s, live := newWHEPServerOpts(t, webrtc.Options{IncludeLoopback: true, TCPPort: -1, ConnectTimeout: time.Minute})
	cam := state.Grant{Kind: "camera", Target: "cam-1"}
	addRolesUser(t, s, "it.guard", []string{"guard", "itc"}, cam)
	addRolesUser(t, s, "it.only", []string{"itc"}, cam)
	for _, tc := range []struct {
		user string
		code int
	}{{"it.only", http.StatusForbidden}, {"it.guard", http.StatusCreated}} {
		r := newRequestAs(tc.user, "POST", "/api/v1/cameras/cam-1/whep", []byte(clientOffer(t, nil)))
		r.Header.Set("Content-Type", "application/sdp")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		if rec.Code != tc.code {
			t.Errorf("%s offers for cam-1: %d %s, want %d", tc.user, rec.Code, rec.Body, tc.code)
		}
	}
	if n := live.Sessions(); n != 1 {
		t.Errorf("%d live sessions, want the guard+itc user's only", n)
	}
}

// openLive opens a live view of cam-1 as role through WHEP, failing the test unless
// it is created.
func openLive(t *testing.T, s *Server, role string) {
	t.Helper()
	r := newRequestAs(role, "POST", "/api/v1/cameras/cam-1/whep", []byte(clientOffer(t, nil)))
	r.Header.Set("Content-Type", "application/sdp")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	if rec.Code != http.StatusCreated {
		t.Fatalf("offer as %s: %d %s", role, rec.Code, rec.Body)
	}
}

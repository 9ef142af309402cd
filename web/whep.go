package web

import (
	"context"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"time"

	"github.com/straja-nvr/straja/streaming/webrtc"
	"github.com/straja-nvr/straja/web/audit"
	"github.com/straja-nvr/straja/web/auth"
)

// WHEP (RFC 9725) routes, served over the live server's Go API:
//
//	POST    /api/v1/cameras/{id}/whep     SDP offer -> 201, SDP answer, Location
//	OPTIONS /api/v1/cameras/{id}/whep     what the endpoint accepts
//	PATCH   /api/v1/whep/sessions/{sid}   trickle ICE (application/trickle-ice-sdpfrag)
//	DELETE  /api/v1/whep/sessions/{sid}   end the session
const (
	// sessionPath is where sessions live: a new session's Location is sessionPath + ID.
	sessionPath = "/api/v1/whep/sessions/"
	// maxOfferSize bounds an offer or a trickle fragment; real offers are a few KiB.
	maxOfferSize = 64 << 10
	// offerTimeout bounds the negotiation of one offer (ICE gathering included).
	offerTimeout = 10 * time.Second
)

func (s *Server) handleWHEPOffer(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !hasType(r, "application/sdp") {
		return errorf(errUnsupportedType, "content type must be application/sdp")
	}
	offer, err := readBody(r)
	if err != nil {
		return err
	}
	if s.live == nil || s.lookup == nil {
		return errLiveOff
	}
	st, err := s.lookup(id)
	if err == nil && st == nil {
		err = webrtc.ErrUnavailable
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), offerTimeout)
	defer cancel()
	// The per-client session cap counts by IP address (behind a reverse proxy, all
	// viewers share the proxy's).
	client, _, _ := net.SplitHostPort(r.RemoteAddr)
	answer, sid, err := s.live.Offer(ctx, webrtc.OfferRequest{CameraID: id, Stream: st, SDP: offer, Client: client})
	if err != nil {
		return err
	}
	s.liveOwners.Store(sid, principal(r).Username)
	short := sid[:min(8, len(sid))]
	if err := s.note(r, audit.Event{Action: audit.ActionLiveStart, Camera: id,
		Detail: map[string]any{"session": short}}); err != nil {
		_ = s.live.Delete(sid) // no unrecorded live view
		return err
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", sessionPath+sid)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(answer)
	return nil
}

func (s *Server) handleWHEPOptions(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "OPTIONS, POST")
	w.Header().Set("Accept-Post", "application/sdp")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleWHEPPatch(w http.ResponseWriter, r *http.Request) error {
	if !hasType(r, "application/trickle-ice-sdpfrag") {
		return errorf(errUnsupportedType, "content type must be application/trickle-ice-sdpfrag")
	}
	frag, err := readBody(r)
	if err != nil {
		return err
	}
	if s.live == nil {
		return errLiveOff
	}
	if err := s.live.Patch(r.PathValue("sid"), frag); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleWHEPDelete(w http.ResponseWriter, r *http.Request) error {
	if s.live == nil {
		return errLiveOff
	}
	if err := s.live.Delete(r.PathValue("sid")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// readBody reads a request body, which the route's MaxBody bounds (past it:
// *http.MaxBytesError, 413).
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	if err != nil && !errors.As(err, &tooBig) {
		return nil, errorf(errBadRequest, "read request body: %v", err)
	}
	return b, err
}

func hasType(r *http.Request, want string) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == want
}

// endLive ends the live views username has open: once a user is disabled, gets a
// new password or other grants, a view opened before must not run on (the page
// reconnects, through the route's permission, to what the user may still see).
func (s *Server) endLive(username string) {
	if s.live == nil {
		return
	}
	s.liveOwners.Range(func(sid, owner any) bool {
		if owner.(string) == username {
			_ = s.live.Delete(sid.(string)) // gone already: nothing to end
		}
		return true
	})
}

// SweepLive ends, every interval until ctx ends, the live views of users that were
// disabled, removed or left without a live role in the state database by another
// process (straja user disable, straja user roles): the API ends them at once
// (endLive), but the CLI only changes the database.
func (s *Server) SweepLive(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweepLive(ctx)
		}
	}
}

func (s *Server) sweepLive(ctx context.Context) {
	owners := map[string]bool{}
	s.liveOwners.Range(func(_, owner any) bool {
		owners[owner.(string)] = true
		return true
	})
	for name := range owners {
		u, err := s.users.Get(ctx, name)
		if errors.Is(err, auth.ErrNoUser) || err == nil && (u.Disabled || !(&auth.Principal{Roles: u.Roles}).Holds(auth.RightLive)) {
			s.endLive(name)
		}
	}
}

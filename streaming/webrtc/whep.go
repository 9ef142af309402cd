package webrtc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"time"

	"github.com/straja-nvr/straja/streaming"
)

// MaxOfferSize bounds a WHEP request body; real offers are a few KiB.
const MaxOfferSize = 64 << 10

// SessionPath is where sessions live; the Location of a new session is SessionPath + ID.
const SessionPath = "/api/v1/whep/sessions/"

// LookupFunc finds a camera's stream. It returns an error matching ErrUnknownCamera for
// a camera that does not exist and ErrCodecNotSupported for one whose live stream
// browsers cannot play.
type LookupFunc func(cameraID string) (*streaming.Stream, error)

// WHEP serves the WHEP protocol (RFC 9725) for a Server:
//
//	POST   /api/v1/cameras/{id}/whep       offer (application/sdp) -> 201 answer + Location
//	DELETE /api/v1/whep/sessions/{sid}     end the session
//	PATCH  /api/v1/whep/sessions/{sid}     trickle ICE (application/trickle-ice-sdpfrag)
//
// Authentication and authorisation belong to the caller, which wraps this handler or
// calls ServeOffer/ServeSession from its own routes.
type WHEP struct {
	srv    *Server
	lookup LookupFunc
	log    *slog.Logger
	mux    *http.ServeMux
}

// WHEP returns the WHEP handler for s.
func (s *Server) WHEP(lookup LookupFunc) *WHEP {
	h := &WHEP{srv: s, lookup: lookup, log: s.log, mux: http.NewServeMux()}
	h.mux.HandleFunc("/api/v1/cameras/{id}/whep", func(w http.ResponseWriter, r *http.Request) {
		h.ServeOffer(w, r, r.PathValue("id"))
	})
	h.mux.HandleFunc(SessionPath+"{sid}", func(w http.ResponseWriter, r *http.Request) {
		h.ServeSession(w, r, r.PathValue("sid"))
	})
	return h
}

// Routes returns the WHEP handler under method patterns for a parent http.ServeMux
// (web.Options.Extra).
func (h *WHEP) Routes() map[string]http.Handler {
	return map[string]http.Handler{
		"POST /api/v1/cameras/{id}/whep":    h,
		"OPTIONS /api/v1/cameras/{id}/whep": h,
		"DELETE " + SessionPath + "{sid}":   h,
		"PATCH " + SessionPath + "{sid}":    h,
	}
}

// ServeHTTP routes WHEP requests by path.
func (h *WHEP) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// ServeOffer handles POST of an SDP offer for cameraID.
func (h *WHEP) ServeOffer(w http.ResponseWriter, r *http.Request, cameraID string) {
	switch r.Method {
	case http.MethodPost:
	case http.MethodOptions:
		w.Header().Set("Allow", "OPTIONS, POST")
		w.Header().Set("Accept-Post", "application/sdp")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "OPTIONS, POST")
		h.fail(w, r, cameraID, errMethod)
		return
	}
	if !hasType(r, "application/sdp") {
		h.fail(w, r, cameraID, errContentType)
		return
	}
	offer, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxOfferSize))
	if err != nil {
		h.fail(w, r, cameraID, fmt.Errorf("read offer: %w", err))
		return
	}
	st, err := h.lookup(cameraID)
	if err != nil {
		h.fail(w, r, cameraID, err)
		return
	}
	if st == nil {
		h.fail(w, r, cameraID, ErrUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	client, _, _ := net.SplitHostPort(r.RemoteAddr)
	answer, sid, err := h.srv.Offer(ctx, OfferRequest{CameraID: cameraID, Stream: st, SDP: offer, Client: client})
	if err != nil {
		h.fail(w, r, cameraID, err)
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", SessionPath+sid)
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(answer)
}

// ServeSession handles DELETE (end) and PATCH (trickle ICE) of a session.
func (h *WHEP) ServeSession(w http.ResponseWriter, r *http.Request, sessionID string) {
	switch r.Method {
	case http.MethodDelete:
		if err := h.srv.Delete(sessionID); err != nil {
			h.fail(w, r, "", err)
			return
		}
		w.WriteHeader(http.StatusOK)
	case http.MethodPatch:
		if !hasType(r, "application/trickle-ice-sdpfrag") {
			h.fail(w, r, "", errContentType)
			return
		}
		frag, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxOfferSize))
		if err != nil {
			h.fail(w, r, "", fmt.Errorf("read fragment: %w", err))
			return
		}
		if err := h.srv.Patch(sessionID, frag); err != nil {
			h.fail(w, r, "", err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "DELETE, PATCH")
		h.fail(w, r, "", errMethod)
	}
}

var (
	errMethod      = errors.New("method not allowed")
	errContentType = errors.New("unsupported content type")
)

func hasType(r *http.Request, want string) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == want
}

// fail writes err as a plain-text status; this is the one place errors become statuses.
func (h *WHEP) fail(w http.ResponseWriter, r *http.Request, cameraID string, err error) {
	code, msg := Status(err, cameraID)
	if errors.Is(err, ErrTooManySessions) || errors.Is(err, ErrTooManyClientSessions) {
		w.Header().Set("Retry-After", "10")
	}
	if code >= 500 {
		h.log.Error("whep request failed", "camera", cameraID, "method", r.Method, "err", err)
	}
	http.Error(w, msg, code)
}

// Status maps an error from this package (or a lookup) to an HTTP status and a message
// for the user.
func Status(err error, cameraID string) (int, string) {
	var tooBig *http.MaxBytesError
	var unplayable *LiveUnavailableError
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("offer larger than %d bytes", MaxOfferSize)
	case errors.Is(err, errContentType):
		return http.StatusUnsupportedMediaType, "content type must be application/sdp (offers) or application/trickle-ice-sdpfrag (patches)"
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed, err.Error()
	case errors.Is(err, ErrBadOffer):
		return http.StatusBadRequest, "bad sdp offer: " + err.Error()
	case errors.Is(err, ErrNoH264):
		return http.StatusNotAcceptable, "the offer has no H.264 video (packetization-mode=1); live view sends H.264 only"
	case errors.Is(err, ErrUnknownCamera):
		return http.StatusNotFound, fmt.Sprintf("camera %q not found", cameraID)
	case errors.Is(err, ErrCodecNotSupported):
		return http.StatusConflict, fmt.Sprintf("camera %q sends H.265, which browsers cannot play: it cannot be shown live in a browser; configure live_url with an H.264 substream", cameraID)
	case errors.As(err, &unplayable):
		return http.StatusConflict, fmt.Sprintf("camera %q cannot be shown live: %s", cameraID, unplayable.Reason)
	case errors.Is(err, ErrSessionNotFound):
		return http.StatusNotFound, "live session not found"
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, fmt.Sprintf("camera %q is offline", cameraID)
	case errors.Is(err, ErrTooManySessions):
		return http.StatusServiceUnavailable, "too many live views are open on this server; close another live view or try again later"
	case errors.Is(err, ErrTooManyClientSessions):
		return http.StatusTooManyRequests, "too many live views are open from this computer; close another live view or try again later"
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable, "live view is shutting down"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "timed out negotiating the live session"
	default:
		return http.StatusInternalServerError, "internal error"
	}
}

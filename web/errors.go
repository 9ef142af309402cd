package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/straja-nvr/straja/recorder/alerts"
	"github.com/straja-nvr/straja/storage"
	"github.com/straja-nvr/straja/storage/export"
	"github.com/straja-nvr/straja/storage/playback"
	"github.com/straja-nvr/straja/storage/retention"
	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/streaming/webrtc"
	"github.com/straja-nvr/straja/web/auth"
)

// FieldError is a bad request parameter; the response names the field, so a client
// can point at the input to fix.
type FieldError struct {
	Field string // query parameter or body field, e.g. "limit"
	Msg   string // what is wrong with it, for the user
}

// FieldConflict is a well-formed value that is taken, such as a duplicate ID: a 409
// naming the field.
type FieldConflict struct {
	Field string
	Msg   string
}

func (e *FieldConflict) Error() string { return e.Field + ": " + e.Msg }

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Errors of the HTTP layer itself; the handlers' other errors come from the packages
// they call and are mapped in statuses.
var (
	errBadRequest       = errors.New("bad request")
	errNotFound         = errors.New("not found")
	errMethodNotAllowed = errors.New("method not allowed")
	errUnsupportedType  = errors.New("unsupported content type")
	errMisdirected      = errors.New("not served here")
	errBusy             = errors.New("too many requests in progress")
	errCallerShare      = errors.New("too many requests in progress for this caller")
	errLiveOff          = errors.New("live view is not running")
)

// kindError is an error whose text is written for the user and whose kind (one of
// the errors above) picks the status.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// errorf makes a kindError.
func errorf(kind error, format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: kind}
}

// errorBody is the one JSON shape of every error response.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// status is how one kind of error is answered.
type status struct {
	err  error
	code int
	// msg is the body's text: nil shows the error's own text, which only 4xx
	// answers do (a 5xx body never shows internal detail).
	msg        func(err error) string
	retryAfter int // seconds, 0 for none
}

func text(s string) func(error) string { return func(error) string { return s } }

// statuses maps errors to HTTP answers; the first match wins.
var statuses = []status{
	{err: errBadRequest, code: http.StatusBadRequest},
	{err: errUnauthenticated, code: http.StatusUnauthorized},
	{err: errForbidden, code: http.StatusForbidden},
	{err: errLockedOut, code: http.StatusTooManyRequests},
	{err: auth.ErrNoUser, code: http.StatusNotFound},
	{err: errNotFound, code: http.StatusNotFound},
	{err: storage.ErrNotFound, code: http.StatusNotFound},
	{err: errMethodNotAllowed, code: http.StatusMethodNotAllowed, msg: text("method not allowed")},
	{err: errUnsupportedType, code: http.StatusUnsupportedMediaType},
	{err: errMisdirected, code: http.StatusMisdirectedRequest},
	{err: webrtc.ErrBadOffer, code: http.StatusBadRequest, msg: func(err error) string { return "bad sdp offer: " + err.Error() }},
	{err: webrtc.ErrNoH264, code: http.StatusNotAcceptable,
		msg: text("the offer has no H.264 video (packetization-mode=1); live view sends H.264 only")},
	{err: webrtc.ErrUnknownCamera, code: http.StatusNotFound},
	{err: webrtc.ErrSessionNotFound, code: http.StatusNotFound, msg: text("live session not found")},
	{err: webrtc.ErrCodecNotSupported, code: http.StatusConflict, msg: func(err error) string {
		return err.Error() + ": browsers cannot play H.265; configure live_url with an H.264 substream"
	}},
	{err: webrtc.ErrLiveUnavailable, code: http.StatusConflict}, // the error says why
	{err: webrtc.ErrUnavailable, code: http.StatusServiceUnavailable,
		msg: text("the camera is offline; live view returns when it reconnects")},
	{err: webrtc.ErrTooManySessions, code: http.StatusServiceUnavailable, retryAfter: 10,
		msg: text("too many live views are open on this server; close another live view or try again later")},
	{err: webrtc.ErrTooManyClientSessions, code: http.StatusTooManyRequests, retryAfter: 10,
		msg: text("too many live views are open from this computer; close another live view or try again later")},
	{err: webrtc.ErrClosed, code: http.StatusServiceUnavailable, retryAfter: 2, msg: text("live view is restarting")},
	{err: errAudit, code: http.StatusServiceUnavailable, retryAfter: 5, msg: text("the audit trail cannot be written; try again later")},
	{err: errPlaybackOff, code: http.StatusServiceUnavailable, msg: text("playback is not running on this server")},
	{err: playback.ErrNoFootage, code: http.StatusNotFound, msg: text("no footage is recorded in this range")},
	{err: state.ErrReleased, code: http.StatusConflict, msg: text("the hold is already released")},
	{err: errNoHolds, code: http.StatusServiceUnavailable, msg: text("evidence holds are not available on this server")},
	{err: errLiveOff, code: http.StatusServiceUnavailable, msg: text("live view is not running on this server")},
	{err: errRetentionOff, code: http.StatusServiceUnavailable, msg: text("retention is not running on this server")},
	{err: retention.ErrReadOnly, code: http.StatusConflict},
	{err: retention.ErrNoPolicy, code: http.StatusNotFound},
	{err: alerts.ErrReadOnly, code: http.StatusConflict},
	{err: alerts.ErrNotFound, code: http.StatusNotFound},
	{err: errBusy, code: http.StatusServiceUnavailable, retryAfter: 1,
		msg: text("the server is busy; try again in a moment")},
	{err: errCallerShare, code: http.StatusTooManyRequests, retryAfter: 5},
	{err: ErrConflict, code: http.StatusConflict},
	{err: errProbeLimit, code: http.StatusTooManyRequests, retryAfter: 5},
	{err: errNoManager, code: http.StatusServiceUnavailable, msg: text("camera management is not available on this server")},
	{err: errExportsOff, code: http.StatusServiceUnavailable, msg: text("export is not running on this server")},
	{err: errExportNotReady, code: http.StatusConflict},
	{err: export.ErrBusy, code: http.StatusTooManyRequests, retryAfter: 30},
	{err: state.ErrExportBusy, code: http.StatusConflict},
	{err: state.ErrExportDeleted, code: http.StatusConflict},
	{err: context.DeadlineExceeded, code: http.StatusServiceUnavailable, msg: text("the request took too long")},
}

// classify returns the status, body and Retry-After seconds for err.
func classify(err error) (int, errorBody, int) {
	var fe *FieldError
	if errors.As(err, &fe) {
		return http.StatusBadRequest, errorBody{Error: fe.Error(), Field: fe.Field}, 0
	}
	var fc *FieldConflict
	if errors.As(err, &fc) {
		return http.StatusConflict, errorBody{Error: fc.Error(), Field: fc.Field}, 0
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("request body larger than %d bytes", tooBig.Limit)}, 0
	}
	for _, st := range statuses {
		if errors.Is(err, st.err) {
			msg := err.Error()
			if st.msg != nil {
				msg = st.msg(err)
			} else if st.code >= 500 {
				msg = http.StatusText(st.code)
			}
			return st.code, errorBody{Error: msg}, st.retryAfter
		}
	}
	return http.StatusInternalServerError, errorBody{Error: "internal error"}, 0
}

// maxErrorText bounds an error message's length.
const maxErrorText = 1024

// writeError is the one place an error becomes an HTTP answer. An unexpected error
// (500) is logged with the request ID, which the client got in X-Request-Id, so the
// two can be matched; the known conditions are in the access log.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, body, retry := classify(err)
	// Messages quote what the client sent (an ID, a value): as much as a header holds.
	body.Error = truncate(body.Error, maxErrorText)
	if code == http.StatusInternalServerError {
		s.log.Error("request failed", "request_id", requestID(r.Context()), "method", r.Method,
			"path", r.URL.Path, "err", err)
	} else if code >= 500 {
		s.log.Debug("request refused", "request_id", requestID(r.Context()), "method", r.Method,
			"path", r.URL.Path, "status", code, "err", err)
	}
	if retry > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retry))
	}
	writeJSON(w, code, body)
}

// api adapts a handler that returns its error, which is then answered as every error
// is (writeError), so a handler's failure paths are a plain return.
func (s *Server) api(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

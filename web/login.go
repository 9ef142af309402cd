package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"

	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/audit"
	"github.com/straja-nvr/straja/web/auth"
)

// decodeJSON reads a JSON body into v, refusing unknown fields and trailing data, so
// a typo in a field name is an error rather than silently ignored.
func decodeJSON(r *http.Request, v any) error {
	if !hasType(r, "application/json") {
		return errorf(errUnsupportedType, "content type must be application/json")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooBig):
			return err
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return &FieldError{Field: typeErr.Field, Msg: fmt.Sprintf("must be a JSON %s", typeErr.Type)}
		case errors.Is(err, io.EOF):
			return errorf(errBadRequest, "the request body is empty; send a JSON object")
		}
		return errorf(errBadRequest, "malformed JSON body: %v", err)
	}
	if dec.More() {
		return errorf(errBadRequest, "malformed JSON body: data after the object")
	}
	return nil
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// handleLogin signs a user in: 204 and a session cookie. Five failures within a
// minute for one account or one client address lock both out for the rest of that
// minute: 429 without checking the password.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := auth.CheckUsername(req.Username); err != nil {
		return &FieldError{Field: "username", Msg: trimField(err, "username")}
	}
	if req.Password == "" || len(req.Password) > 4096 {
		return &FieldError{Field: "password", Msg: "must be 1 to 4096 bytes"}
	}
	client := clientAddr(r)
	keys := []string{"user:" + req.Username, "addr:" + client}
	if locked, wait := s.limiter.Locked(keys...); locked {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
		return errorf(errLockedOut, "too many failed sign-ins; try again in %d seconds",
			int(math.Ceil(wait.Seconds())))
	}
	u, err := s.users.Authenticate(r.Context(), req.Username, req.Password)
	if errors.Is(err, auth.ErrBadCredentials) {
		locked := s.limiter.Fail(keys...)
		ev := audit.Event{Action: audit.ActionLoginFailed, User: req.Username}
		if err := s.record(r, ev); err != nil {
			return err
		}
		if len(locked) > 0 {
			ev = audit.Event{Action: audit.ActionLockout, User: req.Username,
				Detail: map[string]any{"locked": locked, "for_seconds": s.limiter.Window.Seconds()}}
			if err := s.record(r, ev); err != nil {
				return err
			}
		}
		return errorf(errUnauthenticated, "wrong username or password")
	}
	if err != nil {
		return err
	}
	s.limiter.Reset("user:" + req.Username)
	secret, err := s.sessions.Create(r.Context(), u, client)
	if err != nil {
		return err
	}
	info(r.Context()).user = &auth.Principal{UserID: u.ID, Username: u.Username, Roles: u.Roles}
	if err := s.record(r, audit.Event{Action: audit.ActionLogin}); err != nil {
		_ = s.sessions.End(r.Context(), secret)
		return err
	}
	http.SetCookie(w, sessionCookieFor(r, secret, s.sessions.Absolute))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleLogout ends the caller's session and deletes its cookie.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	if ri := info(r.Context()); ri.session != "" {
		if err := s.sessions.End(r.Context(), ri.session); err != nil {
			return err
		}
	}
	_ = s.record(r, audit.Event{Action: audit.ActionLogout}) // the session is over either way
	http.SetCookie(w, sessionCookieFor(r, "", -1))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// meJSON is who the caller is and what they may see.
type meJSON struct {
	Username string        `json:"username"`
	Role     string        `json:"role"`  // the first of roles, for clients that know one
	Roles    []string      `json:"roles"` // one or more; rights are their union
	Grants   []state.Grant `json:"grants"`
	Cameras  []string      `json:"cameras"`
	Lookback float64       `json:"lookback_seconds,omitempty"`
	Via      string        `json:"via"`
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	u := principal(r)
	out := meJSON{Username: u.Username, Role: primaryRole(u.Roles), Roles: u.Roles, Grants: u.Grants, Cameras: []string{},
		Lookback: u.Lookback.Seconds(), Via: u.Via}
	if out.Grants == nil {
		out.Grants = []state.Grant{}
	}
	for _, c := range s.cams.Cameras() {
		if u.Granted(c.ID, c.Site) {
			out.Cameras = append(out.Cameras, c.ID)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// trimField drops the "field: " prefix that auth's errors carry.
func trimField(err error, field string) string {
	msg := err.Error()
	if len(msg) > len(field)+2 && msg[:len(field)+2] == field+": " {
		return msg[len(field)+2:]
	}
	return msg
}

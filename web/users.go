package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/straja-nvr/straja/storage/state"
	"github.com/straja-nvr/straja/web/audit"
	"github.com/straja-nvr/straja/web/auth"
)

// userJSON is a user as the API shows it: never the password hash.
type userJSON struct {
	Username string        `json:"username"`
	Role     string        `json:"role"`  // the first of roles, for clients that know one
	Roles    []string      `json:"roles"` // one or more, in the documented order
	Disabled bool          `json:"disabled"`
	Created  time.Time     `json:"created"`
	Updated  time.Time     `json:"updated"`
	Grants   []state.Grant `json:"grants"`
}

func userOut(u state.User) userJSON {
	g := u.Grants
	if g == nil {
		g = []state.Grant{}
	}
	return userJSON{Username: u.Username, Role: primaryRole(u.Roles), Roles: rolesOut(u.Roles), Disabled: u.Disabled, Created: u.Created, Updated: u.Updated, Grants: g}
}

func primaryRole(roles []string) string {
	if len(roles) == 0 {
		return ""
	}
	return roles[0]
}

func rolesOut(roles []string) []string {
	if roles == nil {
		return []string{}
	}
	return roles
}

func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request) error {
	us, err := s.users.List(r.Context())
	if err != nil {
		return err
	}
	out := make([]userJSON, len(us))
	for i, u := range us {
		out[i] = userOut(u)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type addUserRequest struct {
	Username string        `json:"username"`
	Role     string        `json:"role"`  // one role, or
	Roles    []string      `json:"roles"` // one or more
	Password string        `json:"password"`
	Grants   []state.Grant `json:"grants"`
}

// userError turns auth's "field: message" errors into a FieldError naming field.
func userError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, auth.ErrNoUser) {
		return errorf(errNotFound, "%s", trimField(err, "username"))
	}
	for _, f := range []string{"username", "password", "roles", "role", "grants", "site", "camera", "grant", "name"} {
		if msg, ok := strings.CutPrefix(err.Error(), f+": "); ok {
			if f == "site" || f == "camera" || f == "grant" {
				f = "grants"
				msg = err.Error()
			}
			return &FieldError{Field: f, Msg: msg}
		}
	}
	return err
}

func (s *Server) handleAddUser(w http.ResponseWriter, r *http.Request) error {
	var req addUserRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	// Grants are checked before the user exists, so a bad one adds nobody.
	for _, g := range req.Grants {
		if err := s.users.CheckGrant(g); err != nil {
			return userError(err)
		}
	}
	var err error
	switch {
	case req.Roles != nil && req.Role != "":
		err = &FieldError{Field: "roles", Msg: "send roles or role, not both"}
	case req.Roles != nil:
		err = userError(s.users.AddRoles(r.Context(), req.Username, req.Roles, req.Password))
	default:
		err = userError(s.users.Add(r.Context(), req.Username, req.Role, req.Password))
	}
	if err != nil {
		return err
	}
	if len(req.Grants) > 0 {
		if err := s.users.SetGrants(r.Context(), req.Username, req.Grants); err != nil {
			return userError(err)
		}
	}
	u, err := s.users.Get(r.Context(), req.Username)
	if err != nil {
		return err
	}
	if err := s.record(r, audit.Event{Action: audit.ActionUserAdd, Detail: map[string]any{
		"username": u.Username, "roles": u.Roles, "grants": grantStrings(u.Grants)}}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, userOut(u))
	return nil
}

type updateUserRequest struct {
	Disabled *bool     `json:"disabled"`
	Password *string   `json:"password"`
	Roles    *[]string `json:"roles"` // replaces the user's roles
}

func (s *Server) handleUpdateUser(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("username")
	var req updateUserRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Disabled == nil && req.Password == nil && req.Roles == nil {
		return errorf(errBadRequest, "nothing to change: send disabled, password and/or roles")
	}
	if req.Disabled != nil && *req.Disabled && name == principal(r).Username {
		return &FieldError{Field: "disabled", Msg: "you cannot disable yourself"}
	}
	if _, err := s.users.Get(r.Context(), name); err != nil {
		return err
	}
	if req.Roles != nil { // first: a bad set changes nothing
		roles, err := s.users.SetRoles(r.Context(), name, *req.Roles)
		if err != nil {
			return userError(err)
		}
		s.sessions.Changed()
		s.endLive(name) // a live view goes on only if still allowed: the player asks again
		if err := s.record(r, audit.Event{Action: audit.ActionUserRoles, Detail: map[string]any{
			"username": name, "roles": roles}}); err != nil {
			return err
		}
	}
	if req.Password != nil {
		if err := s.users.SetPassword(r.Context(), name, *req.Password); err != nil {
			return userError(err)
		}
		s.sessions.Changed()
		s.endLive(name)
		if err := s.record(r, audit.Event{Action: audit.ActionUserPassword, Detail: map[string]any{"username": name}}); err != nil {
			return err
		}
	}
	if req.Disabled != nil {
		if err := s.users.SetDisabled(r.Context(), name, *req.Disabled); err != nil {
			return userError(err)
		}
		s.sessions.Changed()
		s.endLive(name)
		action := audit.ActionUserEnable
		if *req.Disabled {
			action = audit.ActionUserDisable
		}
		if err := s.record(r, audit.Event{Action: action, Detail: map[string]any{"username": name}}); err != nil {
			return err
		}
	}
	s.writeUser(w, r, name)
	return nil
}

type grantsRequest struct {
	Grants []state.Grant `json:"grants"`
}

func (s *Server) handleSetGrants(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("username")
	var req grantsRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Grants == nil {
		return &FieldError{Field: "grants", Msg: "is required (an empty list removes every grant)"}
	}
	if err := s.users.SetGrants(r.Context(), name, req.Grants); err != nil {
		return userError(err)
	}
	s.sessions.Changed()
	s.endLive(name)
	if err := s.record(r, audit.Event{Action: audit.ActionUserGrants, Detail: map[string]any{
		"username": name, "grants": grantStrings(req.Grants)}}); err != nil {
		return err
	}
	s.writeUser(w, r, name)
	return nil
}

func (s *Server) writeUser(w http.ResponseWriter, r *http.Request, name string) {
	u, err := s.users.Get(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userOut(u))
}

func grantStrings(gs []state.Grant) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.String()
	}
	return out
}

package web

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/straja-nvr/straja/streaming/webrtc"
	"github.com/straja-nvr/straja/web/auth"
)

// Permission says who may call a route. authorize is the one place it is checked;
// handlers never look at roles.
type Permission struct {
	kind  permKind
	roles []string   // kind permRole: any of these
	right auth.Right // kind permCamera: the right on the path's {id} camera
}

type permKind uint8

const (
	permAnonymous   permKind = iota // anyone who reaches the service
	permUser                        // any signed-in user
	permRole                        // a signed-in user with one of roles
	permCamera                      // a signed-in user with right on the {id} camera
	permLiveSession                 // the user who opened the {sid} live session
	permMetrics                     // the metrics bearer token
)

// Permissions of the route table.
var (
	// Anonymous routes show nothing by themselves: sign-in, health, static assets.
	Anonymous = Permission{kind: permAnonymous}
	// AnyUser routes need a signed-in user of any role.
	AnyUser = Permission{kind: permUser}
	// LiveSessionOwner routes act on one live session: only its opener may.
	LiveSessionOwner = Permission{kind: permLiveSession}
	// MetricsReader is a scraper holding metrics.token.
	MetricsReader = Permission{kind: permMetrics}
)

// Role is a permission for signed-in users holding one of roles.
func Role(roles ...string) Permission { return Permission{kind: permRole, roles: roles} }

// Camera is a permission for signed-in users holding right on the camera named by
// the route's {id}.
func Camera(right auth.Right) Permission { return Permission{kind: permCamera, right: right} }

func (p Permission) String() string {
	switch p.kind {
	case permAnonymous:
		return "anonymous"
	case permUser:
		return "user"
	case permRole:
		return "role:" + strings.Join(p.roles, ",")
	case permCamera:
		return "camera:" + string(p.right)
	case permLiveSession:
		return "live-session-owner"
	case permMetrics:
		return "metrics-token"
	}
	return "unknown"
}

// Errors of authorization.
var (
	errUnauthenticated = errors.New("sign in first")
	errForbidden       = errors.New("not allowed")
	errLockedOut       = errors.New("too many failed sign-ins")
)

// sessionCookie is the name of the session cookie.
const sessionCookie = "straja_session"

// principal is the signed-in caller of r, or nil.
func principal(r *http.Request) *auth.Principal { return info(r.Context()).user }

// authenticate identifies the caller by session cookie or by Authorization: Bearer
// (an API token) and puts the user in the request's info. A bad or expired secret
// leaves the request anonymous; routes that need a user answer 401.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := info(r.Context())
		if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			ri.bearer = strings.TrimSpace(bearer)
		}
		if s.sessions != nil {
			var p auth.Principal
			var err error
			switch secret, ok := cookieValue(r, sessionCookie); {
			case strings.HasPrefix(ri.bearer, auth.TokenPrefix):
				p, err = s.sessions.LookupToken(r.Context(), ri.bearer)
			case ok:
				ri.session = secret
				p, err = s.sessions.Lookup(r.Context(), secret)
			default:
				err = auth.ErrNoSession
			}
			switch {
			case err == nil:
				ri.caller = p
				ri.user = &ri.caller
			case !errors.Is(err, auth.ErrNoSession):
				s.writeError(w, r, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// cookieValue is the value of r's first cookie called name, as r.Cookie gives it.
// Session secrets are URL-safe base64, found without r.Cookie's allocations; any
// other value is left to r.Cookie.
func cookieValue(r *http.Request, name string) (string, bool) {
	for _, line := range r.Header["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || k != name {
				continue
			}
			if v == "" || strings.ContainsFunc(v, func(c rune) bool {
				return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_')
			}) {
				c, err := r.Cookie(name)
				if err != nil {
					return "", false
				}
				return c.Value, true
			}
			return v, true
		}
	}
	return "", false
}

// caller looks the request's session or token up again, for a request that lasts
// (an event stream): auth.ErrNoSession once the user signed out, was disabled or
// had the token revoked; the principal holds the user's grants of now.
func (s *Server) caller(r *http.Request) (auth.Principal, error) {
	ri := info(r.Context())
	if strings.HasPrefix(ri.bearer, auth.TokenPrefix) {
		return s.sessions.LookupToken(r.Context(), ri.bearer)
	}
	return s.sessions.Lookup(r.Context(), ri.session)
}

// authorize decides whether the caller may use a route with permission p.
func (s *Server) authorize(p Permission, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.allowed(p, r); err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) allowed(p Permission, r *http.Request) error {
	switch p.kind {
	case permAnonymous:
		return nil
	case permMetrics:
		bearer := info(r.Context()).bearer
		if s.metricsToken == "" {
			return errorf(errForbidden, "metrics need a bearer token: set metrics.token in the configuration, "+
				"or scrape the loopback-only metrics.listen address")
		}
		if subtle.ConstantTimeCompare([]byte(bearer), []byte(s.metricsToken)) != 1 {
			return errorf(errUnauthenticated, "metrics need Authorization: Bearer with metrics.token")
		}
		return nil
	}
	u := principal(r)
	if u == nil {
		return errorf(errUnauthenticated, "sign in first")
	}
	switch p.kind {
	case permUser:
		return nil
	case permRole:
		if u.HasRole(p.roles...) {
			return nil
		}
		return errorf(errForbidden, "your roles (%s) may not do this", strings.Join(u.Roles, ", "))
	case permCamera:
		id := r.PathValue("id")
		site := s.siteOf(id)
		if u.May(p.right, id, site) {
			return nil
		}
		// The same answer for a camera that does not exist: a user cannot probe for
		// cameras not granted to them.
		return errorf(errForbidden, "you may not %s camera %q", rightVerb[p.right], id)
	case permLiveSession:
		if owner, ok := s.liveOwners.Load(r.PathValue("sid")); ok && owner.(string) == u.Username {
			return nil
		}
		return webrtc.ErrSessionNotFound
	}
	return errorf(errForbidden, "not allowed")
}

var rightVerb = map[auth.Right]string{
	auth.RightView: "see", auth.RightLive: "watch live", auth.RightPlayback: "play back footage of",
	auth.RightExport: "export footage of", auth.RightHold: "put holds on",
}

// mayAll checks right on every camera a request body names (a hold over several
// cameras, an export): the route table cannot, as the cameras are not in the path.
// Like authorize, it answers 403 for a camera that does not exist.
func (s *Server) mayAll(r *http.Request, right auth.Right, cameras []string) error {
	u := principal(r)
	for _, id := range cameras {
		site := s.siteOf(id)
		if !u.May(right, id, site) {
			return errorf(errForbidden, "you may not %s camera %q", rightVerb[right], id)
		}
	}
	return nil
}

// siteOf is the site of camera id: a running camera's, or that of a camera deleted at
// runtime whose footage stays; "" for none.
func (s *Server) siteOf(id string) string {
	if c, ok := s.cams.Camera(id); ok {
		return c.Site
	}
	if s.mgr != nil {
		site, _ := s.mgr.RetiredSite(id)
		return site
	}
	return ""
}

// securityHeaders are sent with every response: no script but the page's own files,
// no framing (clickjacking), no MIME sniffing, no referrer leaking URLs.
func securityHeaders(next http.Handler) http.Handler {
	const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
		"media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; " +
		"form-action 'self'; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// crossOrigin refuses state-changing requests that a browser marks as coming from
// another site (Go's CrossOriginProtection: Sec-Fetch-Site, then Origin vs Host).
func (s *Server) crossOrigin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errorf(errForbidden, "cross-origin request refused"))
	}))
	return cop.Handler(next)
}

// sessionCookieFor is the cookie carrying secret; maxAge < 0 deletes it.
func sessionCookieFor(r *http.Request, secret string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: sessionCookie, Value: secret, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(maxAge.Seconds())
	}
	return c
}

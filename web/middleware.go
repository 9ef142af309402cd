package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/straja-nvr/straja/web/auth"
)

// The middleware chain. Every request, in this order:
//
//	withRequestID -> accessLog -> securityHeaders -> checkHost -> crossOrigin ->
//	authenticate -> dispatch (the mux)
//
// then, for a route of the table (routeChain):
//
//	authorize(Permission) -> readBody -> limitInFlight -> deadline -> handler
//
// or, for a streaming route, authorize -> limitStreams -> limitBody -> handler.
//
// A request the mux does not route gets the same JSON 404/405 as any other error.

// requestInfo travels in a request's context.
type requestInfo struct {
	id      string
	route   string          // the matched pattern, once dispatched
	user    *auth.Principal // the signed-in caller, nil when anonymous
	caller  auth.Principal  // what user points to when signed in by authenticate
	session string          // the session cookie's secret, when one was sent
	bearer  string          // the Authorization: Bearer secret, when one was sent
}

type requestInfoKey struct{}

func info(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	if ri == nil {
		return &requestInfo{}
	}
	return ri
}

// requestID is the request's ID, also sent to the client in X-Request-Id.
func requestID(ctx context.Context) string { return info(ctx).id }

// goodRequestID is what an X-Request-Id from a proxy in front may look like; anything
// else is replaced, so logs never carry a client's arbitrary text.
var goodRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// withRequestID gives every request an ID (the proxy's, when it set a sane one).
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !goodRequestID.MatchString(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, &requestInfo{id: id})))
	})
}

// statusWriter records what a handler answered, for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (write deadlines, flush).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog logs every request once it is answered (also when a handler aborts).
// Successful reads are at debug level: live pages poll the camera list and
// Prometheus scrapes /metrics, which would bury everything else.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			ri := info(r.Context())
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			lvl := s.log.Info
			if status < 400 && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
				lvl = s.log.Debug
			}
			lvl("http", "request_id", ri.id, "method", r.Method, "path", r.URL.Path, "route", ri.route,
				"status", status, "bytes", sw.bytes, "duration", time.Since(start), "remote", r.RemoteAddr)
		}()
		next.ServeHTTP(sw, r)
	})
}

// allowedHosts is the set of Host names the server answers: the listen host,
// loopback names and the configured public hosts.
func allowedHosts(listen string, public []string) map[string]bool {
	hosts := map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}
	if h, _, err := net.SplitHostPort(listen); err == nil {
		if ip := net.ParseIP(h); h != "" && (ip == nil || !ip.IsUnspecified()) {
			hosts[normalHost(h)] = true
		}
	}
	for _, h := range public {
		hosts[normalHost(h)] = true
	}
	return hosts
}

// normalHost is a Host header's name without port, brackets, case or final dot.
func normalHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// checkHost refuses (421) a request for a Host the server does not answer to. A web
// page on another site can point its own name at 127.0.0.1 (DNS rebinding); the
// browser then sends that name, so only known names can read the API or open
// live views.
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hosts[normalHost(r.Host)] {
			s.writeError(w, r, errorf(errMisdirected, "host %q is not served here; add it to public_hosts "+
				"in the configuration", truncate(r.Host, 100)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// dispatch routes a request through the mux; what the mux cannot route gets the
// same JSON error as any other (404, or 405 with the Allow header).
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		c := &discardWriter{header: http.Header{}}
		h.ServeHTTP(c, r)
		if c.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", c.header.Get("Allow"))
			s.writeError(w, r, errMethodNotAllowed)
			return
		}
		s.writeError(w, r, errorf(errNotFound, "no such page or API route: %s", truncate(r.URL.Path, 200)))
		return
	}
	info(r.Context()).route = pattern
	s.mux.ServeHTTP(w, r)
}

// discardWriter takes the mux's own 404/405 answer apart.
type discardWriter struct {
	header http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }

// routeChain wraps one route's handler in the per-route middleware.
func (s *Server) routeChain(rt Route) http.Handler {
	var h http.Handler = rt.Handler
	if rt.API != nil {
		h = s.api(rt.API)
	}
	if rt.Streaming {
		h = s.limitStreams(limitBody(rt.MaxBody, h))
	} else {
		h = s.readBody(rt.MaxBody, s.limitInFlight(deadline(rt.Timeout, h)))
	}
	return s.authorize(rt.Permission, h)
}

// Caps on requests in progress per caller (a user, or a client address before
// sign-in), besides the server's. Streaming requests (video, stills, export files,
// live events) each hold a connection, an open file and buffers for as long as the
// client reads: without a cap one user's 9,800 slow Range requests took 660 MB, and
// one user's 256 event streams locked every other user out of live events. Without
// one on the others, 130 sign-ins sending their bodies slowly made every API
// request of every user 503.
const (
	maxStreams           = 512
	maxStreamsPerCaller  = 32
	maxInFlightPerCaller = 32
)

// shares counts requests in progress, in all and per caller.
type shares struct {
	max, perCaller int
	// tooMany is the error past a caller's share.
	tooMany func() error

	mu       sync.Mutex
	total    int
	byCaller map[string]int
}

// acquire takes a place for caller, or says which cap is reached.
func (c *shares) acquire(caller string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.byCaller[caller] >= c.perCaller:
		return c.tooMany()
	case c.total >= c.max:
		return errBusy
	}
	if c.byCaller == nil {
		c.byCaller = map[string]int{}
	}
	c.byCaller[caller]++
	c.total++
	return nil
}

func (c *shares) release(caller string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byCaller[caller]--; c.byCaller[caller] <= 0 {
		delete(c.byCaller, caller)
	}
	c.total--
}

// callerKey names the caller a share is counted for: the user, or the client
// address of an anonymous request.
func callerKey(r *http.Request) string {
	if u := principal(r); u != nil {
		return "user:" + u.Username
	}
	return "addr:" + clientAddr(r)
}

// limitShare runs next within c: 429 beyond the caller's share, 503 beyond the
// server's.
func (s *Server) limitShare(c *shares, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := callerKey(r)
		if err := c.acquire(key); err != nil {
			s.writeError(w, r, err)
			return
		}
		defer c.release(key)
		next.ServeHTTP(w, r)
	})
}

// limitStreams caps the streaming requests in progress.
func (s *Server) limitStreams(next http.Handler) http.Handler { return s.limitShare(&s.streams, next) }

// limitInFlight caps the non-streaming requests in progress; beyond it the server
// answers at once rather than queue work it cannot finish.
func (s *Server) limitInFlight(next http.Handler) http.Handler {
	return s.limitShare(&s.inFlight, next)
}

// readBody reads the request body, at most max bytes (413 past it), before the
// request takes a place among those in progress: a client sending its body slowly
// holds its own connection only.
func (s *Server) readBody(max int64, next http.Handler) http.Handler {
	if max <= 0 {
		max = defaultMaxBody
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
			var tooBig *http.MaxBytesError
			if err != nil && !errors.As(err, &tooBig) {
				err = errorf(errBadRequest, "the request body could not be read")
			}
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody caps the request body; reading past it fails with *http.MaxBytesError (413).
func limitBody(max int64, next http.Handler) http.Handler {
	if max <= 0 {
		max = defaultMaxBody
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		next.ServeHTTP(w, r)
	})
}

// deadline bounds a request's context and its response write: a client that stops
// reading cannot hold a handler (and its catalog query) for ever. The connection's
// deadline is cleared afterwards, for the next request on it.
func deadline(d time.Duration, next http.Handler) http.Handler {
	if d <= 0 {
		d = defaultTimeout
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Now().Add(d)) // not supported by test recorders
		defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

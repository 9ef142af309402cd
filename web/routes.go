package web

import (
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"time"
)

// Permission says who may call a route. There are no users yet, so authorize lets
// every request through; the users issue gives these their meaning (or replaces
// them with roles) without touching the handlers.
type Permission string

// Permissions of the route table.
const (
	// Anonymous routes stay open to anyone who reaches the service: health and the
	// page's static assets, which show nothing by themselves.
	Anonymous Permission = "anonymous"
	// Local routes show video, cameras or metrics. Today they are open because the
	// service listens on loopback (or allow_remote says the network is trusted);
	// they will need a signed-in user allowed to see the camera.
	Local Permission = "local"
)

// Route is one entry of the route table: the only way a handler is reachable.
type Route struct {
	Method     string // GET also answers HEAD
	Pattern    string // http.ServeMux path pattern
	Handler    http.HandlerFunc
	Permission Permission
	// Streaming routes write for as long as the client reads (video): they get no
	// write deadline or request timeout and do not count against the cap on
	// requests in progress.
	Streaming bool
	// Timeout bounds a non-streaming request: its context and its write deadline
	// (0: defaultTimeout).
	Timeout time.Duration
	// MaxBody bounds the request body (0: defaultMaxBody).
	MaxBody int64
}

// Defaults of Route limits.
const (
	defaultTimeout = 30 * time.Second
	defaultMaxBody = 64 << 10
)

// String is the route's ServeMux pattern, "METHOD /path".
func (rt Route) String() string { return rt.Method + " " + rt.Pattern }

// HandlerName is the handler's function name, e.g. "handleSegments", for listings.
func (rt Route) HandlerName() string {
	name := runtime.FuncForPC(reflect.ValueOf(rt.Handler).Pointer()).Name()
	name = name[strings.LastIndex(name, ".")+1:]
	return strings.TrimSuffix(name, "-fm") // a method value
}

// routeTable lists every route the server answers. register mounts exactly these;
// nothing else registers a handler (TestRoutesOnlyFromTable).
func (s *Server) routeTable() []Route {
	return []Route{
		{Method: "GET", Pattern: "/healthz", Handler: s.handleHealth, Permission: Anonymous},
		{Method: "GET", Pattern: "/metrics", Handler: s.handleMetrics, Permission: Local},
		{Method: "GET", Pattern: "/api/v1/cameras", Handler: s.handleCameras, Permission: Local},
		{Method: "GET", Pattern: "/api/v1/cameras/{id}", Handler: s.handleCamera, Permission: Local},
		{Method: "GET", Pattern: "/api/v1/cameras/{id}/segments", Handler: s.handleSegments, Permission: Local},
		{Method: "POST", Pattern: "/api/v1/cameras/{id}/whep", Handler: s.handleWHEPOffer, Permission: Local,
			MaxBody: maxOfferSize, Timeout: offerTimeout + 5*time.Second},
		{Method: "OPTIONS", Pattern: "/api/v1/cameras/{id}/whep", Handler: s.handleWHEPOptions, Permission: Local},
		{Method: "PATCH", Pattern: sessionPath + "{sid}", Handler: s.handleWHEPPatch, Permission: Local,
			MaxBody: maxOfferSize},
		{Method: "DELETE", Pattern: sessionPath + "{sid}", Handler: s.handleWHEPDelete, Permission: Local},
		// The users issue makes the audit trail admin-only.
		{Method: "GET", Pattern: "/api/v1/audit", Handler: s.handleAudit, Permission: Local},
		{Method: "GET", Pattern: "/{$}", Handler: s.handleUI, Permission: Anonymous},
		{Method: "GET", Pattern: UIPrefix, Handler: s.handleUI, Permission: Anonymous},
	}
}

// register mounts routes, each behind its part of the middleware chain, on a new
// mux. It is the only code that registers handlers.
func (s *Server) register(routes []Route) *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.Handle(rt.String(), s.routeChain(rt))
	}
	return mux
}

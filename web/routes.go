package web

import (
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"time"

	"github.com/straja-nvr/straja/web/auth"
)

// Route is one entry of the route table: the only way a handler is reachable.
type Route struct {
	Method  string // GET also answers HEAD
	Pattern string // http.ServeMux path pattern
	// Handler answers the route; or API does, returning its error for writeError to
	// answer as every error is (set one of them).
	Handler    http.HandlerFunc
	API        func(http.ResponseWriter, *http.Request) error
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
	// loginTimeout covers waiting for a turn at password hashing under a flood.
	loginTimeout = 20 * time.Second
)

// String is the route's ServeMux pattern, "METHOD /path".
func (rt Route) String() string { return rt.Method + " " + rt.Pattern }

// HandlerName is the handler's function name, e.g. "handleSegments", for listings.
func (rt Route) HandlerName() string {
	var fn any = rt.Handler
	if rt.API != nil {
		fn = rt.API
	}
	name := runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name()
	name = name[strings.LastIndex(name, ".")+1:]
	return strings.TrimSuffix(name, "-fm") // a method value
}

// routeTable lists every route the server answers. register mounts exactly these;
// nothing else registers a handler (TestRoutesOnlyFromTable).
func (s *Server) routeTable() []Route {
	return []Route{
		{Method: "GET", Pattern: "/healthz", Handler: s.handleHealth, Permission: Anonymous},
		{Method: "GET", Pattern: "/metrics", Handler: s.handleMetrics, Permission: MetricsReader},
		{Method: "POST", Pattern: "/api/v1/login", API: s.handleLogin, Permission: Anonymous, MaxBody: 8 << 10,
			Timeout: loginTimeout},
		{Method: "POST", Pattern: "/api/v1/logout", API: s.handleLogout, Permission: AnyUser},
		{Method: "GET", Pattern: "/api/v1/me", Handler: s.handleMe, Permission: AnyUser},
		{Method: "GET", Pattern: "/api/v1/cameras", Handler: s.handleCameras, Permission: AnyUser},
		{Method: "GET", Pattern: "/api/v1/cameras/{id}", API: s.handleCamera, Permission: Camera(auth.RightView)},
		{Method: "GET", Pattern: "/api/v1/cameras/{id}/segments", Handler: s.handleSegments,
			Permission: Camera(auth.RightPlayback)},
		// Playback: timeline, video (Range requests), still pictures for previews.
		{Method: "GET", Pattern: "/api/v1/cameras/{id}/timeline", API: s.handleTimeline,
			Permission: Camera(auth.RightPlayback)},
		{Method: "GET", Pattern: "/api/v1/cameras/{id}/video.mp4", API: s.handleVideo,
			Permission: Camera(auth.RightPlayback), Streaming: true},
		{Method: "GET", Pattern: "/api/v1/cameras/{id}/still.mp4", API: s.handleStill,
			Permission: Camera(auth.RightPlayback), Streaming: true},
		{Method: "POST", Pattern: "/api/v1/cameras/{id}/whep", API: s.handleWHEPOffer, Permission: Camera(auth.RightLive),
			MaxBody: maxOfferSize, Timeout: offerTimeout + 5*time.Second},
		{Method: "OPTIONS", Pattern: "/api/v1/cameras/{id}/whep", Handler: s.handleWHEPOptions,
			Permission: Camera(auth.RightLive)},
		{Method: "PATCH", Pattern: sessionPath + "{sid}", API: s.handleWHEPPatch, Permission: LiveSessionOwner,
			MaxBody: maxOfferSize},
		{Method: "DELETE", Pattern: sessionPath + "{sid}", API: s.handleWHEPDelete, Permission: LiveSessionOwner},
		{Method: "GET", Pattern: "/api/v1/audit", Handler: s.handleAudit, Permission: Role(auth.RoleAdmin)},
		{Method: "GET", Pattern: "/api/v1/users", API: s.handleUsers, Permission: Role(auth.RoleITC)},
		{Method: "POST", Pattern: "/api/v1/users", API: s.handleAddUser, Permission: Role(auth.RoleITC),
			Timeout: loginTimeout},
		{Method: "PATCH", Pattern: "/api/v1/users/{username}", API: s.handleUpdateUser, Permission: Role(auth.RoleITC),
			Timeout: loginTimeout},
		{Method: "PUT", Pattern: "/api/v1/users/{username}/grants", API: s.handleSetGrants,
			Permission: Role(auth.RoleITC)},
		// Health and gap ledger: the service summary for itc; a camera's figures and
		// recording gaps for whoever may view the camera (gaps show where footage is
		// missing, not footage, and itc watches them).
		{Method: "GET", Pattern: "/api/v1/health", Handler: s.handleServiceHealth, Permission: Role(auth.RoleITC)},
		{Method: "GET", Pattern: "/api/v1/cameras/{id}/health", API: s.handleCameraHealth,
			Permission: Camera(auth.RightView)},
		{Method: "GET", Pattern: "/api/v1/cameras/{id}/gaps", API: s.handleGaps, Permission: Camera(auth.RightView)},
		// Cameras and sites managed at runtime (itc), and the probe of a camera's stream.
		{Method: "POST", Pattern: "/api/v1/cameras", API: s.handleAddCamera, Permission: Role(auth.RoleITC)},
		{Method: "POST", Pattern: "/api/v1/cameras/probe", Handler: s.handleProbe, Permission: Role(auth.RoleITC),
			Timeout: probeTimeout + 5*time.Second},
		{Method: "GET", Pattern: "/api/v1/cameras/{id}/settings", API: s.handleCameraSettings,
			Permission: Role(auth.RoleITC)},
		{Method: "PUT", Pattern: "/api/v1/cameras/{id}", API: s.handleUpdateCamera, Permission: Role(auth.RoleITC)},
		{Method: "DELETE", Pattern: "/api/v1/cameras/{id}", API: s.handleDeleteCamera, Permission: Role(auth.RoleITC)},
		{Method: "GET", Pattern: "/api/v1/sites", API: s.handleSites, Permission: AnyUser},
		{Method: "POST", Pattern: "/api/v1/sites", API: s.handleAddSite, Permission: Role(auth.RoleITC)},
		{Method: "PUT", Pattern: "/api/v1/sites/{id}", API: s.handleUpdateSite, Permission: Role(auth.RoleITC)},
		{Method: "DELETE", Pattern: "/api/v1/sites/{id}", API: s.handleDeleteSite, Permission: Role(auth.RoleITC)},
		// Clip export (admins; the body's or the export's camera checked with mayAll).
		// The signing keys are public: any signed-in user may fetch them to check a clip.
		{Method: "POST", Pattern: "/api/v1/exports", API: s.handleExport, Permission: Role(auth.RoleAdmin)},
		{Method: "GET", Pattern: "/api/v1/exports", API: s.handleExports, Permission: Role(auth.RoleAdmin)},
		{Method: "GET", Pattern: "/api/v1/exports/{id}", API: s.handleExportStatus, Permission: Role(auth.RoleAdmin)},
		{Method: "GET", Pattern: "/api/v1/exports/{id}/{file}", API: s.handleExportFile,
			Permission: Role(auth.RoleAdmin), Streaming: true},
		{Method: "GET", Pattern: "/api/v1/export-keys", API: s.handleExportKeys, Permission: AnyUser},
		// Export deletion (admins; the export's camera checked with mayAll; a reason required).
		{Method: "DELETE", Pattern: "/api/v1/exports/{id}", API: s.handleDeleteExport, Permission: Role(auth.RoleAdmin)},
		// Retention: policies, dry-run plans and runs (IT&C).
		{Method: "GET", Pattern: "/api/v1/retention/policies", API: s.handleRetentionPolicies,
			Permission: Role(auth.RoleITC)},
		{Method: "PUT", Pattern: "/api/v1/retention/policies/{name}", API: s.handlePutRetentionPolicy,
			Permission: Role(auth.RoleITC)},
		{Method: "DELETE", Pattern: "/api/v1/retention/policies/{name}", API: s.handleDeleteRetentionPolicy,
			Permission: Role(auth.RoleITC)},
		{Method: "POST", Pattern: "/api/v1/retention/plan", API: s.handleRetentionPlan, Permission: Role(auth.RoleITC),
			Timeout: 2 * time.Minute},
		{Method: "POST", Pattern: "/api/v1/retention/run", API: s.handleRetentionRun, Permission: Role(auth.RoleITC),
			Timeout: retentionRunTimeout},
		{Method: "GET", Pattern: "/api/v1/retention/runs", API: s.handleRetentionRuns, Permission: Role(auth.RoleITC)},
		// Alerts: rules (the configuration's read only) and alerts, for itc.
		{Method: "GET", Pattern: "/api/v1/alerts", API: s.handleAlerts, Permission: Role(auth.RoleITC)},
		{Method: "GET", Pattern: "/api/v1/alerts/rules", API: s.handleAlertRules, Permission: Role(auth.RoleITC)},
		{Method: "PUT", Pattern: "/api/v1/alerts/rules/{rule}", API: s.handlePutAlertRule, Permission: Role(auth.RoleITC)},
		{Method: "DELETE", Pattern: "/api/v1/alerts/rules/{rule}", API: s.handleDeleteAlertRule,
			Permission: Role(auth.RoleITC)},
		// Live events (Server-Sent Events), each filtered to what its user may see.
		{Method: "GET", Pattern: "/api/v1/events", Handler: s.handleEvents, Permission: AnyUser, Streaming: true},
		// Evidence holds: admins hold footage of the cameras they may hold (the handlers
		// check every camera a hold names, with mayAll).
		{Method: "GET", Pattern: "/api/v1/holds", API: s.handleHolds, Permission: Role(auth.RoleAdmin)},
		{Method: "POST", Pattern: "/api/v1/holds", API: s.handleAddHold, Permission: Role(auth.RoleAdmin)},
		{Method: "DELETE", Pattern: "/api/v1/holds/{hold}", API: s.handleReleaseHold, Permission: Role(auth.RoleAdmin)},
		{Method: "GET", Pattern: "/{$}", API: s.handleUI, Permission: Anonymous},
		{Method: "GET", Pattern: UIPrefix, API: s.handleUI, Permission: Anonymous},
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

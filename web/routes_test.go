package web

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/storage"
)

// TestRouteTable lists every route with its method, handler and permission. A route
// added, removed or given another permission changes this list on purpose: the
// users issue hangs authorization on these entries.
func TestRouteTable(t *testing.T) {
	s := newTestServer(t, newCatalog(t))
	var got []string
	for _, rt := range s.Routes() {
		line := fmt.Sprintf("%-7s %-32s %-18s %s", rt.Method, rt.Pattern, rt.HandlerName(), rt.Permission)
		if rt.Streaming {
			line += " streaming"
		}
		t.Log(line)
		got = append(got, strings.Join(strings.Fields(line), " "))
	}
	want := []string{
		"GET /healthz handleHealth anonymous",
		"GET /metrics handleMetrics metrics-token",
		"POST /api/v1/login handleLogin anonymous",
		"POST /api/v1/logout handleLogout user",
		"GET /api/v1/me handleMe user",
		"GET /api/v1/cameras handleCameras user",
		"GET /api/v1/cameras/{id} handleCamera camera:view",
		"GET /api/v1/cameras/{id}/segments handleSegments camera:playback",
		"GET /api/v1/cameras/{id}/timeline handleTimeline camera:playback",
		"GET /api/v1/cameras/{id}/video.mp4 handleVideo camera:playback streaming",
		"GET /api/v1/cameras/{id}/still.mp4 handleStill camera:playback streaming",
		"POST /api/v1/cameras/{id}/whep handleWHEPOffer camera:live",
		"OPTIONS /api/v1/cameras/{id}/whep handleWHEPOptions camera:live",
		"PATCH /api/v1/whep/sessions/{sid} handleWHEPPatch live-session-owner",
		"DELETE /api/v1/whep/sessions/{sid} handleWHEPDelete live-session-owner",
		"GET /api/v1/audit handleAudit role:admin",
		"GET /api/v1/users handleUsers role:itc",
		"POST /api/v1/users handleAddUser role:itc",
		"PATCH /api/v1/users/{username} handleUpdateUser role:itc",
		"PUT /api/v1/users/{username}/grants handleSetGrants role:itc",
		"GET /api/v1/health handleServiceHealth role:itc",
		"GET /api/v1/cameras/{id}/health handleCameraHealth camera:view",
		"GET /api/v1/cameras/{id}/gaps handleGaps camera:view",
		"POST /api/v1/cameras handleAddCamera role:itc",
		"POST /api/v1/cameras/probe handleProbe role:itc",
		"GET /api/v1/cameras/{id}/settings handleCameraSettings role:itc",
		"PUT /api/v1/cameras/{id} handleUpdateCamera role:itc",
		"DELETE /api/v1/cameras/{id} handleDeleteCamera role:itc",
		"GET /api/v1/sites handleSites user",
		"POST /api/v1/sites handleAddSite role:itc",
		"PUT /api/v1/sites/{id} handleUpdateSite role:itc",
		"DELETE /api/v1/sites/{id} handleDeleteSite role:itc",
		"POST /api/v1/exports handleExport role:admin",
		"GET /api/v1/exports handleExports role:admin",
		"GET /api/v1/exports/{id} handleExportStatus role:admin",
		"GET /api/v1/exports/{id}/{file} handleExportFile role:admin streaming",
		"GET /api/v1/export-keys handleExportKeys user",
		"DELETE /api/v1/exports/{id} handleDeleteExport role:admin",
		"GET /api/v1/retention/policies handleRetentionPolicies role:itc",
		"PUT /api/v1/retention/policies/{name} handlePutRetentionPolicy role:itc",
		"DELETE /api/v1/retention/policies/{name} handleDeleteRetentionPolicy role:itc",
		"POST /api/v1/retention/plan handleRetentionPlan role:itc",
		"POST /api/v1/retention/run handleRetentionRun role:itc",
		"GET /api/v1/retention/runs handleRetentionRuns role:itc",
		"GET /api/v1/alerts handleAlerts role:itc",
		"GET /api/v1/alerts/rules handleAlertRules role:itc",
		"PUT /api/v1/alerts/rules/{rule} handlePutAlertRule role:itc",
		"DELETE /api/v1/alerts/rules/{rule} handleDeleteAlertRule role:itc",
		"GET /api/v1/events handleEvents user streaming",
		"GET /api/v1/holds handleHolds role:admin",
		"POST /api/v1/holds handleAddHold role:admin",
		"DELETE /api/v1/holds/{hold} handleReleaseHold role:admin",
		"GET /{$} handleUI anonymous",
		"GET /ui/ handleUI anonymous",
	}
	if !slices.Equal(got, want) {
		t.Errorf("route table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRoutesOnlyFromTable fails when a handler is reachable without a table entry:
// the package's code registers handlers only in register, and the mux answers each
// table path with exactly the table's methods and nothing else.
func TestRoutesOnlyFromTable(t *testing.T) {
	// Static: no Handle/HandleFunc call outside register, on any mux.
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Name.Name == "register" {
				continue
			}
			ast.Inspect(fn, func(n ast.Node) bool {
				if call, ok := n.(*ast.CallExpr); ok {
					if sel, ok := call.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "Handle" || sel.Sel.Name == "HandleFunc") {
						t.Errorf("%s: %s registers a handler outside the route table", fset.Position(call.Pos()), fn.Name.Name)
					}
				}
				return true
			})
		}
	}

	// Dynamic: probe each table path with every method.
	s := newTestServer(t, newCatalog(t))
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	byPath := map[string][]string{}
	for _, rt := range s.Routes() {
		byPath[rt.Pattern] = append(byPath[rt.Pattern], rt.Method)
	}
	wildcard := regexp.MustCompile(`\{[a-z]+\}`)
	for pattern, allowed := range byPath {
		path := strings.TrimSuffix(wildcard.ReplaceAllString(pattern, "x"), "{$}")
		if strings.HasSuffix(path, "/") && path != "/" {
			path += "style.css"
		}
		for _, m := range methods {
			r := newRequest(m, path, nil)
			_, got := s.mux.Handler(r)
			want := ""
			if slices.Contains(allowed, m) || (m == "HEAD" && slices.Contains(allowed, "GET")) {
				want = allowedMethod(m) + " " + pattern
			}
			if want == "" && got != "" && slices.ContainsFunc(s.Routes(), func(rt Route) bool { return rt.String() == got }) {
				// Another table route whose wildcard takes this path's value, as
				// GET /api/v1/cameras/{id} takes "probe" of POST /api/v1/cameras/probe.
				continue
			}
			if got != want {
				t.Errorf("%s %s: mux matched %q, want %q (the table's)", m, path, got, want)
			}
			if want == "" {
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, r)
				checkError(t, rec, http.StatusMethodNotAllowed, "", "method not allowed")
				if rec.Header().Get("Allow") == "" {
					t.Errorf("%s %s: 405 without Allow", m, path)
				}
			}
		}
	}
	// Paths that are in no table entry: a JSON 404, not someone's handler.
	for _, p := range []string{"/debug/pprof/", "/api/v1/", "/api/v2/cameras", "/index.html", "/ui", "/api/v1/whep/sessions/"} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, newRequest("GET", p, nil))
		if rec.Code/100 == 3 && rec.Header().Get("Location") == p+"/" {
			continue // the mux's redirect to a table path ("/ui" -> "/ui/")
		}
		checkError(t, rec, http.StatusNotFound, "", "no such")
	}
}

func allowedMethod(m string) string {
	if m == "HEAD" {
		return "GET"
	}
	return m
}

// TestHostCheck is the DNS-rebinding regression test: a page on evil.example that
// resolves its name to 127.0.0.1 makes the browser send Host: evil.example, which
// gets 421 on every route, WHEP included; the names the service is reached by pass.
func TestHostCheck(t *testing.T) {
	s := newTestServer(t, newCatalog(t), func(o *Options) {
		o.Listen = "192.0.2.10:8080"
		o.PublicHosts = []string{"straja.cj.local", "10.20.0.5"}
	})
	routes := []struct{ method, path, ctype string }{
		{"GET", "/api/v1/cameras", ""},
		{"GET", "/api/v1/cameras/bastion-gate/segments", ""},
		{"GET", "/healthz", ""},
		{"GET", "/metrics", ""},
		{"GET", "/", ""},
		{"POST", "/api/v1/cameras/bastion-gate/whep", "application/sdp"},
		{"DELETE", "/api/v1/whep/sessions/0123", ""},
		{"GET", "/no/such/route", ""},
	}
	for _, host := range []string{"evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil.example",
		"straja.cj.local.evil.example", "192.0.2.11:8080", "", "[::2]:8080"} {
		for _, rt := range routes {
			r := newRequest(rt.method, rt.path, []byte("v=0\r\n"))
			r.Host = host
			if rt.ctype != "" {
				r.Header.Set("Content-Type", rt.ctype)
			}
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, r)
			checkError(t, rec, http.StatusMisdirectedRequest, "", "public_hosts")
		}
	}
	for _, host := range []string{"localhost", "localhost:8080", "LOCALHOST.:8080", "127.0.0.1:8080", "[::1]:8080", "[::1]",
		"192.0.2.10:8080", "straja.cj.local", "Straja.CJ.local:443", "10.20.0.5:8080"} {
		r := newRequest("GET", "/api/v1/cameras", nil)
		r.Host = host
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			t.Errorf("Host %q: %d %s, want 200", host, rec.Code, rec.Body)
		}
	}
	// Listening on every interface allows no more than loopback and the public hosts.
	all := New(withTestUsers(t, Options{Cameras: fakeCameras{}, Listen: "0.0.0.0:8080", Auditor: newAuditLog(t)}), slog.New(slog.DiscardHandler))
	for host, want := range map[string]int{"0.0.0.0:8080": 421, "192.0.2.10:8080": 421, "127.0.0.1:8080": 200} {
		r := newRequest("GET", "/api/v1/cameras", nil)
		r.Host = host
		rec := httptest.NewRecorder()
		all.ServeHTTP(rec, r)
		if rec.Code != want {
			t.Errorf("listen 0.0.0.0, Host %q: %d, want %d", host, rec.Code, want)
		}
	}
}

// Every request gets an ID, in the X-Request-Id header and in the access log; a sane
// one from a proxy in front is kept.
func TestRequestIDAndAccessLog(t *testing.T) {
	var logs bytes.Buffer
	s := New(withTestUsers(t, Options{Cameras: fakeCameras{{ID: "bastion-gate"}}, Segments: newCatalog(t), Auditor: newAuditLog(t)}),
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	rec := get(s, "/api/v1/cameras/nope/segments")
	id := rec.Header().Get("X-Request-Id")
	if len(id) != 16 {
		t.Fatalf("X-Request-Id %q", id)
	}
	for _, want := range []string{"request_id=" + id, "method=GET", "path=/api/v1/cameras/nope/segments",
		"route=\"GET /api/v1/cameras/{id}/segments\"", "status=403"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("access log lacks %q:\n%s", want, logs.String())
		}
	}
	for in, kept := range map[string]bool{"proxy-7f3a.1": true, "has space": false, strings.Repeat("a", 65): false, "x\nlevel=ERROR": false} {
		r := newRequest("GET", "/healthz", nil)
		r.Header.Set("X-Request-Id", in)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		if got := rec.Header().Get("X-Request-Id"); (got == in) != kept || got == "" {
			t.Errorf("incoming X-Request-Id %q: answered %q", in, got)
		}
	}
}

// blockingLister holds every listing until release is closed.
type blockingLister struct {
	entered chan struct{}
	release chan struct{}
}

func (b blockingLister) ListSegments(ctx context.Context, _ storage.SegmentQuery, _ func(storage.Segment) error) error {
	b.entered <- struct{}{}
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Beyond MaxInFlight requests in progress, the next is refused at once with 503 and
// Retry-After; the ones in progress finish.
func TestInFlightLimit(t *testing.T) {
	bl := blockingLister{entered: make(chan struct{}, 2), release: make(chan struct{})}
	s := newTestServer(t, bl, func(o *Options) { o.MaxInFlight = 2 })
	done := make(chan int, 2)
	for range 2 {
		go func() { done <- get(s, "/api/v1/cameras/bastion-gate/segments").Code }()
	}
	<-bl.entered
	<-bl.entered
	rec := get(s, "/api/v1/cameras")
	checkError(t, rec, http.StatusServiceUnavailable, "", "busy")
	if rec.Header().Get("Retry-After") == "" {
		t.Error("503 busy without Retry-After")
	}
	close(bl.release)
	for range 2 {
		if code := <-done; code != http.StatusOK {
			t.Errorf("request in progress answered %d", code)
		}
	}
	if rec := get(s, "/api/v1/cameras"); rec.Code != http.StatusOK {
		t.Errorf("after the others finished: %d", rec.Code)
	}
}

// A request body beyond the route's MaxBody is refused with 413.
func TestBodyLimit(t *testing.T) {
	s := newTestServer(t, newCatalog(t))
	r := newRequest("POST", "/api/v1/cameras/bastion-gate/whep", bytes.Repeat([]byte("a=x\r\n"), 30000))
	r.Header.Set("Content-Type", "application/sdp")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	checkError(t, rec, http.StatusRequestEntityTooLarge, "", "larger than 65536 bytes")
}

// A client that stops reading cannot hold a non-streaming handler: its write fails
// at the route's deadline, and the handler returns.
func TestWriteDeadline(t *testing.T) {
	result := make(chan error, 1)
	h := deadline(300*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		for range 1 << 10 { // 1 GiB, far more than socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				result <- err
				return
			}
		}
		result <- nil
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing.
	select {
	case err := <-result:
		if !os.IsTimeout(err) && (err == nil || !strings.Contains(err.Error(), "timeout")) {
			t.Fatalf("write to a client that reads nothing: %v, want a timeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("handler still writing after 30 s to a client that reads nothing")
	}
}

// A non-streaming route's request has a deadline; a streaming route's has none, so
// video can flow for as long as the viewer watches.
func TestStreamingRoutesHaveNoDeadline(t *testing.T) {
	s := newTestServer(t, newCatalog(t))
	for _, streaming := range []bool{false, true} {
		var has bool
		h := s.routeChain(Route{Method: "GET", Pattern: "/x", Streaming: streaming,
			Handler: func(w http.ResponseWriter, r *http.Request) { _, has = r.Context().Deadline() }})
		h.ServeHTTP(httptest.NewRecorder(), newRequest("GET", "/x", nil))
		if has == streaming {
			t.Errorf("streaming %v: request deadline %v", streaming, has)
		}
	}
}

// The connection limits: oversized headers are refused before any handler runs.
func TestHeaderSizeLimit(t *testing.T) {
	s := newTestServer(t, newCatalog(t))
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = NewHTTPServer(s, slog.New(slog.DiscardHandler))
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/healthz", nil)
	req.Header.Set("X-Filler", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB of headers: %s, want 431", resp.Status)
	}
	resp, err = http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %s", resp.Status)
	}
}

// Requests sending their bodies slowly do not take places among the requests in
// progress (130 such sign-ins made every API request 503): the body is read first.
func TestSlowBodiesHoldNoPlace(t *testing.T) {
	s := newTestServer(t, newCatalog(t), func(o *Options) { o.MaxInFlight = 2 })
	srv := httptest.NewUnstartedServer(s)
	var active atomic.Int32 // connections whose request has begun
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateActive {
			active.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	for range 3 {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "POST /api/v1/login HTTP/1.1\r\nHost: localhost\r\n"+
			"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 5*time.Second, "the slow sign-ins to begin", func() bool { return active.Load() == 3 })
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/v1/cameras", nil)
	req.Host = "localhost"
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: testSession("admin")})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/v1/cameras beside 3 slow sign-ins with 2 places: %s; want 200", resp.Status)
	}
}

// One caller cannot take every place: past its share it gets 429, and another
// user is still served.
func TestInFlightPerCaller(t *testing.T) {
	bl := blockingLister{entered: make(chan struct{}, maxInFlightPerCaller), release: make(chan struct{})}
	s := newTestServer(t, bl, func(o *Options) { o.MaxInFlight = maxInFlightPerCaller + 10 })
	done := make(chan int, maxInFlightPerCaller)
	for range maxInFlightPerCaller {
		go func() { done <- get(s, "/api/v1/cameras/bastion-gate/segments").Code }()
	}
	for range maxInFlightPerCaller {
		<-bl.entered
	}
	rec := get(s, "/api/v1/cameras")
	checkError(t, rec, http.StatusTooManyRequests, "", "requests in progress")
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, newRequestAs("guard", "GET", "/api/v1/cameras", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("another user while the admin holds %d requests: %d %s", maxInFlightPerCaller, rec.Code, rec.Body)
	}
	close(bl.release)
	for range maxInFlightPerCaller {
		<-done
	}
}

// An error quoting what the client sent stays short, however long that was.
func TestErrorTextBounded(t *testing.T) {
	s := newTestServer(t, newCatalog(t))
	long := strings.Repeat("a", 20000)
	for _, target := range []string{"/api/v1/cameras/" + long + "/segments", "/api/v1/cameras/bastion-gate/segments?from=" + long} {
		rec := get(s, target)
		if rec.Code < 400 || rec.Body.Len() > maxErrorText+200 {
			t.Errorf("GET %.60s…: %d with a %d-byte body; want an error of at most about %d bytes", target, rec.Code,
				rec.Body.Len(), maxErrorText)
		}
	}
}

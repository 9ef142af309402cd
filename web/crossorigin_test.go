package web_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/straja-nvr/straja/internal/testutil"
	"github.com/straja-nvr/straja/web"
)

// A page from another origin, open in the browser of a signed-in guard, tries to
// sign the guard out (a state-changing POST that carries the cookie, since both
// origins are on 127.0.0.1): CrossOriginProtection refuses it before any handler,
// and the guard stays signed in.
func TestCrossOriginPostFromBrowserRefused(t *testing.T) {
	needChromium(t)
	var mu sync.Mutex
	var statuses []int
	h := web.New(web.WithTestUsers(t, web.Options{Cameras: noCameras{}, Auditor: web.NewAuditLog(t)}), slog.New(slog.DiscardHandler))
	straja := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if r.URL.Path == "/api/v1/logout" {
			mu.Lock()
			statuses = append(statuses, rec.Code)
			mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	defer straja.Close()
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><script>
fetch(%q, {method: 'POST', credentials: 'include', mode: 'no-cors'}).finally(() => { document.title = 'sent'; });
</script>`, straja.URL+"/api/v1/logout")
	}))
	defer evil.Close()

	ctx := newBrowser(t)
	signInBrowser(t, ctx, straja.URL, "guard")
	run(t, ctx, chromedp.Navigate(evil.URL))
	testutil.WaitFor(t, 10*time.Second, "the other origin's POST", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(statuses) > 0
	})
	mu.Lock()
	got := statuses[0]
	mu.Unlock()
	if got != http.StatusForbidden {
		t.Errorf("cross-origin POST /api/v1/logout answered %d, want 403", got)
	}
	req, _ := http.NewRequest("GET", straja.URL+"/api/v1/me", nil)
	req.AddCookie(&http.Cookie{Name: "straja_session", Value: web.TestSession("guard")})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after the other origin's POST the guard's session answers %d, want 200 (still signed in)", resp.StatusCode)
	}
}

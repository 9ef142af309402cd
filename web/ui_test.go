package web_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/straja-nvr/straja/web"
)

// TestUIPagesHaveNoInlineCode: every page of the UI loads its scripts and styles from
// files and is served with the CSP that forbids anything inline, so an inline script,
// style or event handler would be blocked in the browser; this catches it before.
func TestUIPagesHaveNoInlineCode(t *testing.T) {
	srv := httptest.NewServer(web.New(web.WithTestUsers(t, web.Options{Cameras: noCameras{}, Auditor: web.NewAuditLog(t)}),
		slog.New(slog.DiscardHandler)))
	defer srv.Close()

	pages, err := filepath.Glob("ui/*.html")
	if err != nil || len(pages) < 4 {
		t.Fatalf("ui pages: %v %v", pages, err)
	}
	inline := []struct {
		what string
		re   *regexp.Regexp
	}{
		{"inline script", regexp.MustCompile(`<script(\s[^>]*)?>\s*[^<\s]`)},
		{"style element", regexp.MustCompile(`<style[\s>]`)},
		{"style attribute", regexp.MustCompile(`\sstyle\s*=`)},
		{"event handler attribute", regexp.MustCompile(`\son[a-z]+\s*=`)},
		{"javascript: URL", regexp.MustCompile(`(?i)javascript:`)},
		{"remote resource", regexp.MustCompile(`(src|href)\s*=\s*"(https?:)?//`)},
	}
	for _, p := range pages {
		body, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range inline {
			if m := c.re.Find(body); m != nil {
				t.Errorf("%s: %s: %q", p, c.what, m)
			}
		}
		for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAll(body, -1) {
			if !strings.Contains(string(tag), ` src="/ui/`) {
				t.Errorf("%s: a script not from a file under /ui/: %q", p, tag)
			}
		}
		url := srv.URL + web.UIPrefix + filepath.Base(p)
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		served, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != http.StatusOK || string(served) != string(body) {
			t.Errorf("GET %s: %s, or not the file's bytes", url, resp.Status)
		}
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "style-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: Content-Security-Policy %q", url, csp)
		}
		// Every script and stylesheet the page names is served.
		for _, m := range regexp.MustCompile(`(?:src|href)="(/ui/[^"]+)"`).FindAllSubmatch(body, -1) {
			resp, err := http.Get(srv.URL + string(m[1]))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s names %s: %s", p, m[1], resp.Status)
			}
		}
	}
}

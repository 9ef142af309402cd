package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/straja-nvr/straja/internal/testutil"
)

// A browser that trusts the certificate `straja cert` wrote (imported into its NSS
// database, as on a guard-room computer) opens Straja over HTTPS by the name and the
// IP in it without a warning, and signing in there gives a Secure cookie. A browser
// that does not trust it, or a name not in it, is refused.
func TestBrowserTrustsCert(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	testutil.NeedChromium(t)
	certutil := testutil.NeedTool(t, "certutil")
	dir := t.TempDir()
	out, err := runCert(t, "--hosts", "straja.test,127.0.0.1", "--out-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	m := startPasted(t, dir, out, &stdout)
	pw := regexp.MustCompile(`user admin was created with password (\S+)`).FindStringSubmatch(stdout.String())
	if pw == nil {
		t.Fatalf("no admin password in %q", stdout.String())
	}
	_, port, _ := strings.Cut(m.Addr(), ":")

	trusting := filepath.Join(dir, "trusting-home")
	nssdb := filepath.Join(trusting, ".pki", "nssdb")
	if err := os.MkdirAll(nssdb, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-N", "-d", "sql:" + nssdb, "--empty-password"},
		// P: a trusted peer, how a self-signed server certificate is trusted.
		{"-A", "-d", "sql:" + nssdb, "-n", "straja", "-t", "P,,", "-i", filepath.Join(dir, "straja-cert.pem")},
	} {
		if b, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, b)
		}
	}
	untrusting := filepath.Join(dir, "untrusting-home")
	if err := os.MkdirAll(untrusting, 0o700); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		home, host, wantErr string
	}{
		{trusting, "straja.test", ""},
		{trusting, "127.0.0.1", ""},
		{trusting, "other.test", "ERR_CERT_COMMON_NAME_INVALID"},
		{untrusting, "straja.test", "ERR_CERT_AUTHORITY_INVALID"},
	} {
		ctx := browserWithHome(t, tc.home)
		// /healthz: a page without script, which cannot navigate away under the test.
		url := "https://" + tc.host + ":" + port + "/healthz"
		_, err := chromedp.Run(ctx, chromedp.Navigate(url))
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s, %s: %v, want %s", filepath.Base(tc.home), url, err, tc.wantErr)
			continue
		case tc.wantErr != "":
			continue
		case err != nil:
			t.Errorf("%s, %s: %v", filepath.Base(tc.home), url, err)
			continue
		}
		secure, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.isSecureContext && location.protocol === "https:"`))
		if err != nil || !secure {
			t.Errorf("%s: secure context %v, %v", url, secure, err)
		}
		if tc.host != "straja.test" {
			continue
		}
		// Sign in from the page, as its login form does.
		pwJSON, _ := json.Marshal(pw[1])
		status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/api/v1/login", {method: "POST",
			headers: {"Content-Type": "application/json"},
			body: JSON.stringify({username: "admin", password: `+string(pwJSON)+`})}).then(r => r.status)`,
			chromedp.EvalAwaitPromise))
		if err != nil || status != 204 {
			t.Fatalf("sign in over https: %d, %v", status, err)
		}
		cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
		if err != nil || len(cookies.Cookies) == 0 {
			t.Fatalf("cookies after sign-in: %+v, %v", cookies, err)
		}
		for _, c := range cookies.Cookies {
			if !c.Secure || !c.HTTPOnly {
				t.Errorf("cookie %s over https: Secure %v HttpOnly %v, want both", c.Name, c.Secure, c.HTTPOnly)
			}
		}
	}
}

// browserWithHome starts headless Chromium whose home (and so NSS certificate
// database) is home, resolving the test names to loopback.
func browserWithHome(t *testing.T, home string) context.Context {
	t.Helper()
	return testutil.Browser(t, nil, chromedp.Env("HOME="+home),
		chromedp.Flag("host-resolver-rules", "MAP straja.test 127.0.0.1, MAP other.test 127.0.0.1"))
}

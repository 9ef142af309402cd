package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/internal/testutil"
)

// runCert runs `straja cert` and returns what it printed.
func runCert(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), append([]string{"cert"}, args...), &stdout, &stderr)
	return stdout.String(), err
}

// `straja cert` writes a pair a browser can be told to trust, prints the lines to
// add, and the service started from exactly those lines answers HTTPS only.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	out, err := runCert(t, "--hosts", "Straja.cj.local,127.0.0.1", "--out-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "straja-cert.pem"), filepath.Join(dir, "straja-key.pem")
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v; want mode 0600", fi, err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != "straja.cj.local" || len(cert.IPAddresses) != 1 ||
		!cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("certificate names: DNS %v IP %v", cert.DNSNames, cert.IPAddresses)
	}
	sum := sha256.Sum256(cert.Raw)
	if fp := strings.ToUpper(hex.EncodeToString(sum[:2])); !strings.Contains(out, "SHA-256 fingerprint: "+fp[:2]+":"+fp[2:]+":") {
		t.Errorf("output does not show the SHA-256 fingerprint starting %s:\n%s", fp, out)
	}
	for _, want := range []string{certPath, keyPath} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not name %s:\n%s", want, out)
		}
	}

	m := startPasted(t, dir, out, io.Discard)
	if m.Config.TLS.CertFile != certPath || strings.Join(m.Config.PublicHosts, ",") != "straja.cj.local,127.0.0.1" {
		t.Errorf("pasted lines: tls %+v public_hosts %v", m.Config.TLS, m.Config.PublicHosts)
	}
	if !strings.HasPrefix(m.URL(), "https://") {
		t.Errorf("URL() = %s, want https", m.URL())
	}

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	trusting := func(serverName string, maxVersion uint16) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion}}}
	}
	for _, name := range []string{"", "straja.cj.local"} { // by IP, and by the name users type
		resp, err := trusting(name, 0).Get(m.URL() + "/healthz")
		if err != nil {
			t.Fatalf("GET /healthz over https (server name %q): %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"ok"`) || resp.TLS == nil ||
			resp.TLS.Version < tls.VersionTLS12 {
			t.Errorf("GET /healthz over https: %s %s (tls %v)", resp.Status, body, resp.TLS != nil)
		}
	}
	// Only a client that trusts the certificate gets through.
	if resp, err := anonClient.Get(m.URL() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("a client that does not trust the certificate got %s", resp.Status)
	} else if ue := (x509.UnknownAuthorityError{}); !errors.As(err, &ue) {
		t.Errorf("untrusted client: %v, want an unknown authority error", err)
	}
	// TLS 1.1 and older are refused.
	if resp, err := trusting("", tls.VersionTLS11).Get(m.URL() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("a TLS 1.1 client got %s", resp.Status)
	} else if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("a TLS 1.1 client: %v, want the server to refuse the protocol version", err)
	}
	// Plain HTTP to the HTTPS port never reaches the API.
	resp, err := anonClient.Get("http://" + m.Addr() + "/healthz")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || strings.Contains(string(body), `"ok"`) {
			t.Errorf("plain HTTP to the TLS port: %s %s", resp.Status, body)
		}
	}
}

// startPasted starts the service from the configuration lines `straja cert` printed
// in out, as a user pastes them, with a loopback listen for the test and data in dir.
// The first start's admin password goes to stdout.
func startPasted(t *testing.T, dir, out string, stdout io.Writer) *Main {
	t.Helper()
	_, lines, ok := strings.Cut(out, "0.0.0.0:8443):\n")
	if !ok {
		t.Fatalf("no configuration lines in:\n%s", out)
	}
	cfg, err := configs.Parse([]byte("listen: 127.0.0.1:0\ndata_dir: "+filepath.Join(dir, "data")+
		"\nwebrtc: {udp_port: 0, tcp_port: -1}\n"+lines), "tls.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, lines)
	}
	m := &Main{Config: cfg, Log: slog.New(slog.DiscardHandler), Out: stdout}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// `straja cert` keeps what exists unless told, and names a bad host.
func TestCertCommand(t *testing.T) {
	dir := t.TempDir()
	if _, err := runCert(t, "--hosts", "10.20.0.5", "--out-dir", dir); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "straja-key.pem")
	key1, _ := os.ReadFile(keyPath)
	if _, err := runCert(t, "--hosts", "10.20.0.5", "--out-dir", dir); err == nil ||
		!strings.Contains(err.Error(), "exists; use --force") {
		t.Errorf("second run without --force: %v, want a refusal", err)
	}
	if key, _ := os.ReadFile(keyPath); !bytes.Equal(key, key1) {
		t.Error("the refused run changed the key file")
	}
	// A key loosened by hand is tightened when replaced.
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runCert(t, "--hosts", "10.20.0.5", "--out-dir", dir, "--force"); err != nil {
		t.Fatal(err)
	}
	if key, _ := os.ReadFile(keyPath); bytes.Equal(key, key1) {
		t.Error("--force left the old key")
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced key file: %v, %v; want mode 0600", fi, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".straja-cert-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--hosts", "straja.cj.local,https://straja.cj.local"}, `--hosts: "https://straja.cj.local" is not a host name`},
		{[]string{"--hosts", "straja.cj.local:8443"}, `--hosts: "straja.cj.local:8443" is not a host name`},
		{[]string{"--hosts", "a,,b"}, `--hosts: "" is not a host name`},
		{[]string{"--hosts", "fe80::1%eth0"}, `--hosts: "fe80::1%eth0": an IP address with a zone`},
		{nil, "--hosts: is required"},
		{[]string{"--hosts", "a", "--days", "0"}, "--days must be 1..825"},
		{[]string{"--hosts", "a", "--days", "3650"}, "--days must be 1..825"},
	} {
		out := t.TempDir()
		_, err := runCert(t, append(tc.args, "--out-dir", out)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cert %v: %v, want %q", tc.args, err, tc.want)
		}
		if files, _ := os.ReadDir(out); len(files) > 0 {
			t.Errorf("cert %v failed but wrote %d files", tc.args, len(files))
		}
	}
}

// metrics.listen serves /metrics of the same registry on a second, loopback-only
// address, which Close closes.
func TestMetricsListen(t *testing.T) {
	m, _ := startBare(t, func(c *configs.Config) { c.Metrics.Listen = "127.0.0.1:0" })
	u := m.MetricsURL()
	if !strings.HasPrefix(u, "http://127.0.0.1:") || strings.HasSuffix(u, ":0/metrics") || strings.Contains(u, m.Addr()) {
		t.Fatalf("MetricsURL() = %q (service on %s)", u, m.Addr())
	}
	resp, err := anonClient.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "straja_store_up") {
		t.Errorf("GET %s: %s, want the service's metrics:\n%.300s", u, resp.Status, body)
	}
	// Nothing else is served there, and a rebound name is refused.
	for _, tc := range []struct {
		path, host string
		want       int
	}{
		{"/api/v1/cameras", "", http.StatusNotFound},
		{"/metrics", "evil.example", http.StatusMisdirectedRequest},
		{"/metrics", "localhost:9464", http.StatusOK},
	} {
		req, _ := http.NewRequest("GET", strings.TrimSuffix(u, "/metrics")+tc.path, nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := anonClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s with Host %q: %s, want %d", tc.path, tc.host, resp.Status, tc.want)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if resp, err := anonClient.Get(u); err == nil {
		resp.Body.Close()
		t.Errorf("after Close, %s answers %s", u, resp.Status)
	}
}

// An old configuration, or metrics on a reachable address, stops `straja serve`
// before it starts, saying why.
func TestServeRefusesRemoteConfigs(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"listen: 0.0.0.0:8080\nallow_remote: true\n",
			"straja.yaml:2: allow_remote: allow_remote was removed: users now sign in; serve HTTPS with " +
				"tls.cert_file/key_file, or set insecure_plain_http: true on a trusted network"},
		{"metrics:\n  listen: 0.0.0.0:9464\n", `straja.yaml:2: metrics.listen: "0.0.0.0:9464" is not a loopback address`},
		{"listen: 0.0.0.0:8080\n", `straja.yaml:1: listen: "0.0.0.0:8080" is reachable from other machines`},
		{"tls: {cert_file: /nonexistent/cert.pem, key_file: /nonexistent/key.pem}\n",
			"straja.yaml:1: tls.cert_file: open /nonexistent/cert.pem: no such file or directory"},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "straja.yaml")
		if err := os.WriteFile(path, []byte(tc.yaml+"data_dir: "+filepath.Join(dir, "data")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), []string{"serve", "--config", path}, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), strings.Replace(tc.want, "straja.yaml", path, 1)) {
			t.Errorf("serve with %q: %v, want %q", tc.yaml, err, tc.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
			t.Errorf("serve with %q created the data directory before failing", tc.yaml)
		}
	}
}

// metrics.token opens /metrics on the main address to a scraper that sends it, and
// to nobody else; the token never reaches the log.
func TestMetricsToken(t *testing.T) {
	const token = "prom-scrape-7c1e94b0d2"
	m, logs := startBare(t, func(c *configs.Config) { c.Metrics.Token = token })
	for _, tc := range []struct {
		auth string
		ok   bool
	}{
		{"Bearer " + token, true},
		{"", false},
		{"Bearer " + token[:len(token)-1] + "X", false},
		{"Bearer " + token + "X", false},
		{token, false},
	} {
		req, _ := http.NewRequest("GET", m.URL()+"/metrics", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := anonClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.StatusCode == http.StatusOK && strings.Contains(string(body), "straja_store_up"); got != tc.ok {
			t.Errorf("GET /metrics with Authorization %q: %s, want served %v", tc.auth, resp.Status, tc.ok)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the log holds the metrics token:\n%s", logs.String())
	}
}

// FuzzCertHosts: whatever --hosts holds, parsing does not panic, and every host it
// accepts is one the configuration accepts in public_hosts, so the printed lines load.
func FuzzCertHosts(f *testing.F) {
	for _, s := range []string{"straja.cj.local,10.20.0.5", "::1", "[::1]", "A.B", "a..b", "-a", "fe80::1%eth0", ",", "x" + strings.Repeat(".y", 130)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dns, ips, err := parseCertHosts(s)
		if err != nil {
			return
		}
		var quoted []string
		for _, h := range dns {
			quoted = append(quoted, strconv.Quote(h))
		}
		for _, ip := range ips {
			quoted = append(quoted, strconv.Quote(ip.String()))
		}
		if _, err := configs.Parse([]byte("public_hosts: ["+strings.Join(quoted, ", ")+"]\n"), "fuzz.yaml"); err != nil {
			t.Errorf("--hosts %q accepted, but the printed public_hosts do not load: %v", s, err)
		}
	})
}

// A name in public_hosts that the certificate lacks would get a browser warning on
// every computer that uses it: the service says so at start.
func TestCertNamesWarning(t *testing.T) {
	dir := t.TempDir()
	if _, err := runCert(t, "--hosts", "straja.cj.local,10.20.0.5", "--out-dir", dir); err != nil {
		t.Fatal(err)
	}
	_, logs := startBare(t, func(c *configs.Config) {
		c.TLS = configs.TLS{CertFile: filepath.Join(dir, "straja-cert.pem"), KeyFile: filepath.Join(dir, "straja-key.pem")}
		c.PublicHosts = []string{"straja.cj.local", "cctv.cj.local", "10.20.0.5", "10.20.0.6"}
	})
	l := logs.String()
	for _, h := range []string{"cctv.cj.local", "10.20.0.6"} {
		if !strings.Contains(l, "browsers reaching Straja as "+h+" will warn") {
			t.Errorf("no warning about %s, which the certificate lacks:\n%s", h, l)
		}
	}
	for _, h := range []string{"straja.cj.local ", "10.20.0.5 "} {
		if strings.Contains(l, "as "+h+"will warn") {
			t.Errorf("a warning about %s, which the certificate has:\n%s", h, l)
		}
	}
}

// Close stops the HTTPS and metrics listeners and their connections' goroutines.
func TestRemoteCloseLeavesNoGoroutine(t *testing.T) {
	dir := t.TempDir()
	if _, err := runCert(t, "--hosts", "127.0.0.1", "--out-dir", dir); err != nil {
		t.Fatal(err)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, "straja-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	check := testutil.CheckGoroutines(t)
	m, _ := startBare(t, func(c *configs.Config) {
		c.TLS = configs.TLS{CertFile: filepath.Join(dir, "straja-cert.pem"), KeyFile: filepath.Join(dir, "straja-key.pem")}
		c.Metrics.Listen = "127.0.0.1:0"
	})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	mtr := &http.Transport{}
	for _, get := range []struct {
		tr  *http.Transport
		url string
	}{{tr, m.URL() + "/healthz"}, {mtr, m.MetricsURL()}} {
		resp, err := (&http.Client{Transport: get.tr}).Get(get.url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", get.url, resp.Status)
		}
		if get.tr == tr && resp.ProtoMajor != 2 {
			t.Errorf("GET %s: %s, want HTTP/2 over TLS", get.url, resp.Proto)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	tr.CloseIdleConnections()
	mtr.CloseIdleConnections()
	check()
}

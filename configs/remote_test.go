package configs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePair writes a self-signed certificate and its key into dir as name-cert.pem
// and name-key.pem.
func writePair(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{name}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+"-cert.pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// The listen rule: loopback always; any other address only with TLS or an explicit
// insecure_plain_http.
func TestListenNeedsTLSOrInsecure(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePair(t, dir, "a")
	tlsYAML := "tls: {cert_file: " + cert + ", key_file: " + key + "}\n"
	for _, tc := range []struct {
		yaml, wantErr string
	}{
		{"listen: 127.0.0.1:8080\n", ""},
		{"listen: localhost:8080\n", ""},
		{"listen: \"[::1]:8080\"\n", ""},
		{"listen: 127.0.0.1:8443\n" + tlsYAML, ""},
		{"listen: 0.0.0.0:8443\n" + tlsYAML, ""},
		{"listen: 10.20.0.5:8080\ninsecure_plain_http: true\n", ""},
		{"listen: 0.0.0.0:8080\n", `t.yaml:1: listen: "0.0.0.0:8080" is reachable from other machines`},
		{"listen: \":8080\"\n", `t.yaml:1: listen: ":8080" is reachable from other machines`},
		{"listen: 10.20.0.5:8080\ninsecure_plain_http: false\n", `listen: "10.20.0.5:8080" is reachable`},
		{"listen: straja.cj.local:8080\n", `listen: "straja.cj.local:8080" is reachable`},
	} {
		_, err := parse([]byte(tc.yaml), "t.yaml", noEnv)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.wantErr)
		}
	}
}

func noEnv(string) (string, bool) { return "", false }

// The certificate and key are read at load: a file that is not a certificate, or a
// key of another certificate, fails there, naming the field.
func TestTLSFiles(t *testing.T) {
	dir := t.TempDir()
	certA, keyA := writePair(t, dir, "a")
	_, keyB := writePair(t, dir, "b")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cert, key, wantErr string
	}{
		{certA, keyA, ""},
		{certA, keyB, "t.yaml:3: tls.key_file: " + keyB + " is not the private key of tls.cert_file"},
		{garbage, keyA, "t.yaml:2: tls.cert_file: " + garbage + ": holds no PEM CERTIFICATE block"},
		{keyA, keyA, "t.yaml:2: tls.cert_file: " + keyA + ": holds no PEM CERTIFICATE block"},
		{certA, certA, "t.yaml:3: tls.key_file: " + certA + " is not the private key"},
		{certA, "", "t.yaml:3: tls.key_file: is required with tls.cert_file"},
		{"", keyA, "t.yaml:2: tls.cert_file: is required with tls.key_file"},
	} {
		y := "tls:\n  cert_file: " + tc.cert + "\n  key_file: " + tc.key + "\n"
		cfg, err := parse([]byte(y), "t.yaml", noEnv)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("cert %s key %s: %v", tc.cert, tc.key, err)
		case tc.wantErr == "" && (!cfg.TLS.Enabled() || cfg.TLS.CertFile != tc.cert):
			t.Errorf("cert %s key %s: tls = %+v", tc.cert, tc.key, cfg.TLS)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("cert %s key %s: error %v, want %q", tc.cert, tc.key, err, tc.wantErr)
		}
	}
}

// The metrics token may come from the environment, and no error or Redact output
// shows it.
func TestMetricsToken(t *testing.T) {
	const token = "prom-3f9c2a7b-token"
	env := map[string]string{"STRAJA_METRICS_TOKEN": token}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := parse([]byte("metrics:\n  listen: 127.0.0.1:9464\n"), "t.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Metrics.Token != token || cfg.Metrics.Listen != "127.0.0.1:9464" {
		t.Errorf("metrics = %+v", cfg.Metrics)
	}
	if got := Redact("scrape failed with "+token, cfg); strings.Contains(got, token) {
		t.Errorf("Redact left the metrics token: %q", got)
	}

	env["STRAJA_METRICS_TOKEN"] = "short-secret"
	_, err = parse(nil, "t.yaml", lookup)
	if err == nil || !strings.Contains(err.Error(), "environment variable STRAJA_METRICS_TOKEN: metrics.token: must be 16-256") {
		t.Errorf("short token: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "short-secret") {
		t.Errorf("error shows the token: %v", err)
	}
}

// The example's commented tls lines, uncommented with real files, make a valid
// configuration listening on every interface.
func TestExampleTLSLines(t *testing.T) {
	t.Setenv("STRAJA_CAM_BASTION_GATE_PASSWORD", "pw")
	t.Setenv("STRAJA_S3_SECRET_KEY", "sk")
	data, err := os.ReadFile("straja.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cert, key := writePair(t, t.TempDir(), "straja")
	s := strings.NewReplacer("listen: 127.0.0.1:8080", "listen: 0.0.0.0:8443",
		"# tls:\n", "tls:\n",
		"#   cert_file: /etc/straja/straja-cert.pem", "  cert_file: "+cert,
		"#   key_file: /etc/straja/straja-key.pem", "  key_file: "+key).Replace(string(data))
	if s == string(data) || !strings.Contains(s, "\ntls:\n  cert_file: ") {
		t.Fatalf("the example's tls lines changed; update this test:\n%s", s)
	}
	cfg, err := Parse([]byte(s), "example-tls.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "0.0.0.0:8443" || cfg.TLS.CertFile != cert || cfg.TLS.KeyFile != key {
		t.Errorf("listen %s tls %+v", cfg.Listen, cfg.TLS)
	}
}

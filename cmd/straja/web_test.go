package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/straja-nvr/straja/configs"
	"github.com/straja-nvr/straja/internal/testutil"
)

// startBare runs the service with no cameras, logging into a buffer.
func startBare(t *testing.T, edit func(*configs.Config)) (*Main, *testutil.Buffer) {
	t.Helper()
	cfg := baseConfig(t, t.TempDir(), nil, 0)
	edit(cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &testutil.Buffer{}
	m := &Main{Config: cfg, Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	signInTests(t, m)
	return m, logs
}

// Plain HTTP beyond loopback sends passwords in clear: the service says so at every
// start, and only then.
func TestInsecurePlainHTTPWarns(t *testing.T) {
	_, logs := startBare(t, func(c *configs.Config) {
		c.InsecurePlainHTTP, c.Listen, c.PublicHosts = true, "0.0.0.0:0", []string{"straja.cj.local"}
	})
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "insecure_plain_http") ||
		!strings.Contains(l, "unencrypted") {
		t.Errorf("insecure_plain_http: true on 0.0.0.0; log at start:\n%s\nwant a warning that traffic is unencrypted", l)
	}
	if l := logs.String(); strings.Contains(l, "public_hosts is empty") {
		t.Errorf("public_hosts set, a warning about it:\n%s", l)
	}
	_, logs = startBare(t, func(c *configs.Config) { c.InsecurePlainHTTP, c.Listen = true, "0.0.0.0:0" })
	if l := logs.String(); !strings.Contains(l, "public_hosts is empty") {
		t.Errorf("listening on every interface without public_hosts; log at start:\n%s\nwant a warning about the 421s", l)
	}
	// On loopback nothing crosses the network: no warning.
	_, logs = startBare(t, func(c *configs.Config) { c.InsecurePlainHTTP = true })
	if l := logs.String(); strings.Contains(l, "insecure_plain_http") || strings.Contains(l, "public_hosts") {
		t.Errorf("insecure_plain_http on loopback; log at start:\n%s", l)
	}
}

// The service wires public_hosts into the Host check: a rebound name gets 421 on the
// API and WHEP, a configured one is answered.
func TestPublicHosts(t *testing.T) {
	m, _ := startBare(t, func(c *configs.Config) { c.PublicHosts = []string{"straja.cj.local"} })
	for _, tc := range []struct {
		method, path, host string
		want               int
	}{
		{"GET", "/api/v1/cameras", "evil.example", http.StatusMisdirectedRequest},
		{"POST", "/api/v1/cameras/cam-1/whep", "evil.example", http.StatusMisdirectedRequest},
		{"GET", "/api/v1/cameras", "straja.cj.local:8080", http.StatusOK},
		{"GET", "/api/v1/cameras", m.Addr(), http.StatusOK},
	} {
		req, err := http.NewRequest(tc.method, "http://"+m.Addr()+tc.path, strings.NewReader("v=0\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tc.host
		req.Header.Set("Content-Type", "application/sdp")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s with Host %s: %s, want %d", tc.method, tc.path, tc.host, resp.Status, tc.want)
		}
	}
}
